//! The DynamoDB backend: one table for the bundle, `pk`/`sk` string keys.
//!
//! This module holds the client and the helpers every record family uses (batched reads and
//! writes with backoff, error classification, the table's schema); each family has its file:
//! `mapping.rs`, `identity.rs`, `agents.rs`, `audit.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::config::{Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, CancellationReason, GlobalSecondaryIndex,
    KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType, PutRequest,
    ScalarAttributeType, TimeToLiveSpecification, TransactWriteItem, WriteRequest,
};
pub use aws_sdk_dynamodb::Client;

use super::StoreError;

mod admin;
mod agents;
mod audit;
mod identity;
mod legacy;
mod mapping;
mod tenants;
mod unmasking;
pub use identity::{GSI_BY_AGENT, GSI_BY_TIME};

/// The table's key and TTL attributes; `template.yaml` declares the same (a test checks).
pub const PK: &str = "pk";
pub const SK: &str = "sk";
pub const TTL_ATTRIBUTE: &str = "expires_at";

const MAP_SK: &str = "MAP";
/// DynamoDB's limits: keys per BatchGetItem, actions per TransactWriteItems (two per mapping).
const BATCH_GET_LIMIT: usize = 100;
const BATCH_WRITE_LIMIT: usize = 25;
/// Attempts at one batch's unprocessed keys before giving up as unavailable.
const MAX_ATTEMPTS: u32 = 6;
/// Attempts at creating the table (timeouts and throttling retried).
const CREATE_TABLE_ATTEMPTS: u32 = 3;
/// BatchWriteItem requests one write has in flight at once (a 100-ID UIDToPhone's records are
/// 4, all at once; a directory of thousands of agents is written 8 requests at a time).
const WRITES_AT_ONCE: usize = 8;

/// Runs `one` on each of `items`, at most `limit` at a time (a new one starts as one ends), and
/// returns their results in no particular order. The first error ends it, the calls still in
/// flight dropped.
pub(super) async fn at_once<I, T, Fut>(
    items: impl IntoIterator<Item = I>,
    limit: usize,
    one: impl Fn(I) -> Fut,
) -> Result<Vec<T>, StoreError>
where
    T: Send + 'static,
    Fut: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
{
    let mut out = Vec::new();
    let mut tasks = tokio::task::JoinSet::new();
    for item in items {
        if tasks.len() >= limit.max(1) {
            if let Some(done) = tasks.join_next().await {
                out.push(done.map_err(failed)??);
            }
        }
        tasks.spawn(one(item));
    }
    while let Some(done) = tasks.join_next().await {
        out.push(done.map_err(failed)??);
    }
    Ok(out)
}

#[derive(Clone)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// What a tenant's keys start with (`T#<tenant>#`); empty for the default tenant.
    scope: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore {
            client,
            table: table.into(),
            scope: String::new(),
        }
    }

    /// The same table, with the number mapping under `tenant`'s keys.
    pub fn for_tenant(&self, tenant: &crate::domain::tenant::TenantId) -> Self {
        DynamoStore {
            client: self.client.clone(),
            table: self.table.clone(),
            scope: crate::store::tenant_scope(tenant),
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn key(pk: String) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (PK.to_string(), AttributeValue::S(pk)),
            (SK.to_string(), AttributeValue::S(MAP_SK.to_string())),
        ])
    }

    /// Consistent BatchGetItem of `pks` (sort key `MAP`), returning `attr` of each item found,
    /// by pk.
    async fn batch_get(
        &self,
        pks: Vec<String>,
        attr: &str,
    ) -> Result<HashMap<String, String>, StoreError> {
        let mut found = HashMap::with_capacity(pks.len());
        for chunk in pks.chunks(BATCH_GET_LIMIT) {
            let keys = chunk.iter().map(|pk| Self::key(pk.clone())).collect();
            for item in self.batch_get_items(keys, Some(attr)).await? {
                if let (Some(pk), Some(v)) = (string_attr(&item, PK), string_attr(&item, attr)) {
                    found.insert(pk, v);
                }
            }
        }
        Ok(found)
    }

    /// One consistent BatchGetItem of at most 100 `keys` (more round trips only while DynamoDB
    /// returns keys unprocessed, under throttling), projecting `pk` and `attr` when given.
    async fn batch_get_items(
        &self,
        mut keys: Vec<HashMap<String, AttributeValue>>,
        attr: Option<&str>,
    ) -> Result<Vec<HashMap<String, AttributeValue>>, StoreError> {
        let mut items = Vec::with_capacity(keys.len());
        let mut attempt = 0;
        while !keys.is_empty() {
            attempt += 1;
            let mut request = KeysAndAttributes::builder()
                .set_keys(Some(std::mem::take(&mut keys)))
                .consistent_read(true);
            if let Some(attr) = attr {
                request = request
                    .projection_expression("#pk, #v")
                    .expression_attribute_names("#pk", PK)
                    .expression_attribute_names("#v", attr);
            }
            let request = request
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))?;
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(classify)?;
            items.extend(
                out.responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default(),
            );
            // Throttled keys come back unprocessed: retry them with backoff.
            if let Some(ka) = out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                keys = ka.keys;
            }
            if !keys.is_empty() {
                if attempt >= MAX_ATTEMPTS {
                    return Err(StoreError::Unavailable(
                        "BatchGetItem left keys unprocessed".into(),
                    ));
                }
                backoff(attempt).await;
            }
        }
        Ok(items)
    }

    /// Opens the connection to DynamoDB (DNS, TCP, TLS) and resolves credentials at init, with
    /// one BatchGetItem of a key that never exists under `pk_prefix` (a prefix the function's
    /// policy allows), so that the first live call does not pay for it. Failures are ignored:
    /// the first call will simply pay.
    pub async fn prime(&self, pk_prefix: &str) {
        let key = HashMap::from([
            (
                PK.to_string(),
                AttributeValue::S(format!("{pk_prefix}~prime")),
            ),
            (SK.to_string(), AttributeValue::S(MAP_SK.to_string())),
        ]);
        let _ = self.batch_get_items(vec![key], None).await;
    }

    /// One TransactWriteItems: `None` when it landed, else the reason each action was
    /// cancelled for (in the order of `actions`; a failed condition returns the item when
    /// the action asked for it).
    async fn transact(
        &self,
        actions: Vec<TransactWriteItem>,
    ) -> Result<Option<Vec<CancellationReason>>, StoreError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(actions))
            .send()
            .await;
        match result {
            Ok(_) => Ok(None),
            Err(SdkError::ServiceError(ctx)) => match ctx.into_err() {
                TransactWriteItemsError::TransactionCanceledException(e) => {
                    Ok(Some(e.cancellation_reasons.unwrap_or_default()))
                }
                other => Err(classify_service(&other)),
            },
            Err(e) => Err(classify(e)),
        }
    }

    /// Puts `items` with BatchWriteItem, 25 a request, retrying unprocessed ones with backoff.
    async fn batch_put(
        &self,
        items: Vec<HashMap<String, AttributeValue>>,
    ) -> Result<(), StoreError> {
        let requests = items
            .into_iter()
            .map(|item| {
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|p| WriteRequest::builder().put_request(p).build())
                    .map_err(|e| StoreError::Failed(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.batch_write(requests).await
    }

    /// Sends `requests` with BatchWriteItem, 25 a request, `WRITES_AT_ONCE` requests at
    /// once, retrying unprocessed ones with backoff.
    async fn batch_write(&self, requests: Vec<WriteRequest>) -> Result<(), StoreError> {
        if requests.len() <= BATCH_WRITE_LIMIT {
            return self.write_chunk(requests).await;
        }
        let chunks: Vec<Vec<WriteRequest>> = requests
            .chunks(BATCH_WRITE_LIMIT)
            .map(<[WriteRequest]>::to_vec)
            .collect();
        at_once(chunks, WRITES_AT_ONCE, |chunk| {
            let store = self.clone();
            async move { store.write_chunk(chunk).await }
        })
        .await?;
        Ok(())
    }

    /// One BatchWriteItem of at most 25 requests, its unprocessed ones retried with backoff.
    async fn write_chunk(&self, chunk: Vec<WriteRequest>) -> Result<(), StoreError> {
        let mut pending = chunk;
        let mut attempt = 0;
        while !pending.is_empty() {
            attempt += 1;
            let out = self
                .client
                .batch_write_item()
                .request_items(&self.table, std::mem::take(&mut pending))
                .send()
                .await
                .map_err(classify)?;
            if let Some(rest) = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&self.table))
            {
                pending = rest;
            }
            if !pending.is_empty() {
                if attempt >= MAX_ATTEMPTS {
                    return Err(StoreError::Unavailable(
                        "BatchWriteItem left items unprocessed".into(),
                    ));
                }
                backoff(attempt).await;
            }
        }
        Ok(())
    }

    /// Creates the bundle's table (DynamoDB Local, tests, `cc-callbacks table create`) with the
    /// key schema and TTL attribute of `template.yaml`.
    pub async fn create_table(&self) -> Result<(), StoreError> {
        let attr = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))
        };
        let key = |name: &str, kt: KeyType| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(kt)
                .build()
                .map_err(|e| StoreError::Failed(e.to_string()))
        };
        let mut create = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key(PK, KeyType::Hash)?)
            .key_schema(key(SK, KeyType::Range)?);
        for name in [PK, SK] {
            create = create.attribute_definitions(attr(name)?);
        }
        for (index, pk, sk) in [
            (GSI_BY_AGENT, "gsi1pk", "gsi1sk"),
            (GSI_BY_TIME, "gsi2pk", "gsi2sk"),
        ] {
            create = create
                .attribute_definitions(attr(pk)?)
                .attribute_definitions(attr(sk)?)
                .global_secondary_indexes(
                    GlobalSecondaryIndex::builder()
                        .index_name(index)
                        .key_schema(key(pk, KeyType::Hash)?)
                        .key_schema(key(sk, KeyType::Range)?)
                        .projection(
                            Projection::builder()
                                .projection_type(ProjectionType::All)
                                .build(),
                        )
                        .build()
                        .map_err(|e| StoreError::Failed(e.to_string()))?,
                );
        }
        // Attempts made here, not by the SDK: an attempt that timed out may have created the
        // table all the same, and only then is "already exists" on the next attempt our own
        // table (a table that existed before still answers it).
        let mut ambiguous = false;
        for attempt in 1..=CREATE_TABLE_ATTEMPTS {
            let sent = create
                .clone()
                .customize()
                .config_override(
                    aws_sdk_dynamodb::config::Builder::default()
                        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled()),
                )
                .send()
                .await;
            match sent {
                Ok(_) => break,
                Err(SdkError::ServiceError(ctx))
                    if ambiguous
                        && matches!(
                            ctx.err(),
                            aws_sdk_dynamodb::operation::create_table::CreateTableError::ResourceInUseException(_)
                        ) =>
                {
                    break
                }
                Err(e) => match classify(e) {
                    StoreError::Unavailable(_) if attempt < CREATE_TABLE_ATTEMPTS => {
                        ambiguous = true;
                    }
                    err => return Err(err),
                },
            }
        }
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(|e| StoreError::Failed(e.to_string()))?,
            )
            .send()
            .await
            .map_err(classify)?;
        Ok(())
    }
}

pub(super) fn failed(e: impl std::fmt::Display) -> StoreError {
    StoreError::Failed(e.to_string())
}

/// A delete of the item at `key`, as a transaction action.
pub(super) fn delete_action(
    table: &str,
    key: HashMap<String, AttributeValue>,
) -> Result<TransactWriteItem, StoreError> {
    let delete = aws_sdk_dynamodb::types::Delete::builder()
        .table_name(table)
        .set_key(Some(key))
        .build()
        .map_err(failed)?;
    Ok(TransactWriteItem::builder().delete(delete).build())
}

fn number_attr<T: std::str::FromStr>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Option<T> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

fn string_attr(item: &HashMap<String, AttributeValue>, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Exponential backoff with full jitter, 10 ms base, capped at 400 ms.
async fn backoff(attempt: u32) {
    let cap = (10u64 << attempt.min(6)).min(400);
    let jitter = getrandom::u64().unwrap_or(0) % (cap + 1);
    tokio::time::sleep(Duration::from_millis(jitter)).await;
}

const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
];

fn classify_service(e: &impl ProvideErrorMetadata) -> StoreError {
    let code = e.code().unwrap_or("Unknown").to_string();
    if RETRYABLE_CODES.contains(&code.as_str()) {
        StoreError::Unavailable(code)
    } else {
        StoreError::Failed(code)
    }
}

/// Maps an SDK error to a store error. Only error codes are kept: DynamoDB messages can quote
/// key values, which would carry numbers into logs.
pub(crate) fn classify<E: ProvideErrorMetadata, R>(e: SdkError<E, R>) -> StoreError {
    match e {
        SdkError::ServiceError(ctx) => classify_service(ctx.err()),
        SdkError::TimeoutError(_) => StoreError::Unavailable("timeout".into()),
        SdkError::DispatchFailure(_) => StoreError::Unavailable("dispatch failure".into()),
        SdkError::ResponseError(_) => StoreError::Unavailable("unreadable response".into()),
        SdkError::ConstructionFailure(_) => StoreError::Failed("request construction".into()),
        _ => StoreError::Failed("unknown SDK error".into()),
    }
}

/// Builds a Lambda function's DynamoDB client from its environment (region, credentials, and
/// `AWS_ENDPOINT_URL_DYNAMODB` for DynamoDB Local): see `aws::lambda_sdk_config`.
pub fn lambda_client() -> Result<Client, crate::config::ConfigError> {
    Ok(client(&crate::aws::lambda_sdk_config()?))
}

/// A DynamoDB client from an already loaded SDK configuration.
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    Client::new(sdk)
}

/// Counts the HTTP attempts a client makes (retries included): tests and the benchmark
/// harness assert DynamoDB round trips per request with it.
#[derive(Debug, Clone, Default)]
pub struct RoundTripCounter(Arc<AtomicU64>);

impl RoundTripCounter {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    pub fn reset(&self) {
        self.0.store(0, Ordering::SeqCst);
    }
}

impl Intercept for RoundTripCounter {
    fn name(&self) -> &'static str {
        "RoundTripCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), BoxError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}
