//! Test support: DynamoDB Local tables, embedded stores, and request builders.

pub mod cli;
pub mod openapi;
pub use testkit::{fake_cec, fake_idp};

use std::sync::Arc;

use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region};
use cc_shared::store::dynamo::{DynamoStore, RoundTripCounter};
use cc_shared::store::embedded::EmbeddedStore;

/// DynamoDB Local's endpoint, started by `scripts/test` (or by hand with
/// `scripts/dynamodb-local start` and this variable exported). Missing, the test fails: a
/// storage test that silently skipped would prove nothing.
pub fn dynamodb_endpoint() -> String {
    std::env::var("CC_TEST_DYNAMODB_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "CC_TEST_DYNAMODB_ENDPOINT is not set: run the tests with scripts/test, which starts \
             DynamoDB Local, or start it with scripts/dynamodb-local start and export \
             CC_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:8000"
        )
    })
}

pub fn dynamodb_client(counter: &RoundTripCounter) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(cc_shared::aws::sdk_http_client())
        .endpoint_url(dynamodb_endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("local", "local", None, None, "tests"))
        .interceptor(counter.clone())
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

/// A DynamoDB store on a fresh table (created from the same key schema as template.yaml),
/// with a counter of its HTTP round trips.
pub async fn dynamo_store() -> (Arc<DynamoStore>, RoundTripCounter) {
    let counter = RoundTripCounter::default();
    let table = format!(
        "cc-test-{}",
        cc_shared::domain::uid::Uid::generate().unwrap()
    );
    let store = DynamoStore::new(dynamodb_client(&counter), table);
    store
        .create_table()
        .await
        .expect("create table in DynamoDB Local");
    counter.reset();
    (Arc::new(store), counter)
}

/// The environment that points the CLI and the gateway at `table` in DynamoDB Local.
pub fn dynamodb_cli_env(table: &str) -> Vec<(String, String)> {
    [
        ("TABLE_NAME", table),
        ("AWS_ENDPOINT_URL_DYNAMODB", &dynamodb_endpoint()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// An embedded store in a fresh temporary directory (kept alive by the returned guard).
pub fn embedded_store() -> (Arc<EmbeddedStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(EmbeddedStore::open(dir.path()).unwrap()), dir)
}

/// Every store trait: what both backends implement.
pub trait Store:
    cc_shared::store::MappingStore
    + cc_shared::store::IdentityStore
    + cc_shared::store::AuditStore
    + cc_shared::store::AgentStore
    + cc_shared::store::NumbersAdmin
    + cc_shared::store::TenantRegistry
    + cc_shared::store::KeyedRecords
    + cc_shared::store::UnmaskingLog
    + cc_shared::store::UnmaskingQuery
{
}
impl<T> Store for T where
    T: cc_shared::store::MappingStore
        + cc_shared::store::IdentityStore
        + cc_shared::store::AuditStore
        + cc_shared::store::AgentStore
        + cc_shared::store::NumbersAdmin
        + cc_shared::store::TenantRegistry
        + cc_shared::store::KeyedRecords
        + cc_shared::store::UnmaskingLog
        + cc_shared::store::UnmaskingQuery
{
}

/// Everything a store holds, as text: every item of the DynamoDB table (attributes sorted,
/// items in a stable order, so that two dumps compare), or the embedded store's database and
/// WAL files (to prove what is never stored at rest).
pub async fn dump_dynamo(store: &DynamoStore) -> String {
    let out = store
        .client()
        .scan()
        .table_name(store.table())
        .send()
        .await
        .unwrap();
    let mut items: Vec<String> = out
        .items()
        .iter()
        .map(|item| {
            let sorted: std::collections::BTreeMap<_, _> = item.iter().collect();
            format!("{sorted:?}")
        })
        .collect();
    items.sort();
    items.join("\n")
}

pub fn dump_embedded(dir: &std::path::Path) -> String {
    let mut all = String::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        all.push_str(&String::from_utf8_lossy(&bytes));
    }
    all
}

/// Runs an async contract test against both backends: `contract!(name, |store| async {...})`
/// defines `name::embedded` and `name::dynamodb`.
#[macro_export]
macro_rules! contract {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn embedded() {
                let (store, _dir) = support::embedded_store();
                ($body)(store as std::sync::Arc<dyn support::Store>).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn dynamodb() {
                let (store, _counter) = support::dynamo_store().await;
                ($body)(store as std::sync::Arc<dyn support::Store>).await;
            }
        }
    };
}

pub const PASSWORD: &str = "test-password-42";

/// The number keys of the tests, as `NUMBER_INDEX_KEY` and `NUMBER_KEYRING` give them to a
/// function binary or the CLI (fixed, so that every handler and command of a test agrees).
pub const INDEX_KEY: &str = "test-index-key-0123456789abcdef0123456789";
pub const KEYRING: &str =
    r#"{"current": 1, "1": "test-encryption-key-version-1-0123456789abcdef"}"#;

pub fn keys() -> cc_shared::domain::protect::NumberProtection {
    let ring = cc_shared::domain::protect::KeyringText::parse(KEYRING).unwrap();
    cc_shared::domain::protect::NumberProtection::from_texts(INDEX_KEY, &ring).unwrap()
}

/// The indexes of `numbers` and a sealer for them, as the number-mapping handler builds them:
/// for calling `MappingStore::create_uids` directly.
pub fn sealer(
    numbers: &[&str],
) -> (
    Vec<cc_shared::domain::protect::NumberIndex>,
    cc_shared::store::Sealer,
) {
    let phones = cc_shared::domain::phone::PhoneNormalizer::new("CN", &[]).unwrap();
    let keys = keys();
    let by_index: std::collections::HashMap<_, _> = numbers
        .iter()
        .map(|n| {
            let p = phones.normalize(n).unwrap();
            (keys.index(&p), p)
        })
        .collect();
    let indexes = numbers.iter().map(|n| index_of(n)).collect();
    let seal: cc_shared::store::Sealer = Arc::new(move |index, uid| {
        keys.seal(uid, &by_index[index])
            .map_err(|e| cc_shared::store::StoreError::Failed(e.to_string()))
    });
    (indexes, seal)
}

/// The blind index of a number as the tests' handlers compute it.
pub fn index_of(number: &str) -> cc_shared::domain::protect::NumberIndex {
    let phone = cc_shared::domain::phone::PhoneNormalizer::new("CN", &[])
        .unwrap()
        .normalize(number)
        .unwrap();
    keys().index(&phone)
}

/// The number-mapping handler on `store`, accepting `tencent:PASSWORD`.
pub fn number_mapping(store: Arc<dyn Store>) -> number_mapping::NumberMapping {
    let config = number_mapping::Config {
        credentials: cc_shared::web::auth::Credentials::parse(
            "TEST",
            &cc_shared::web::auth::entry_for("tencent", PASSWORD),
        )
        .unwrap(),
        phones: cc_shared::domain::phone::PhoneNormalizer::new("CN", &[]).unwrap(),
        store_budget: cc_shared::web::StoreBudget::from_millis(9000),
        unmask_ttl_days: 180,
        unmask_budget: Some(number_mapping::config::DEFAULT_UNMASK_MAX_PER_MINUTE),
    };
    number_mapping::NumberMapping::new(
        config,
        cc_shared::number_keys::LiveKeys::fixed(keys()),
        store.clone(),
        store,
    )
}

pub fn mapping_request(numbers: &[&str], mode: &str) -> lambda_http::Request {
    http::Request::builder()
        .method("POST")
        .uri("/number-mapping")
        .header(
            "authorization",
            cc_shared::web::auth::basic_header("tencent", PASSWORD),
        )
        .body(lambda_http::Body::Text(
            serde_json::json!({ "Numbers": numbers, "Mode": mode }).to_string(),
        ))
        .unwrap()
}

/// Calls the handler and returns the status and the parsed Tencent response.
pub async fn call_mapping(
    svc: &number_mapping::NumberMapping,
    req: lambda_http::Request,
) -> (u16, number_mapping::wire::MappingResponse) {
    let resp = number_mapping::handle(svc, req).await;
    let (status, body) = checked_answer("/number-mapping", resp);
    (status, serde_json::from_str(&body).expect("JSON body"))
}

pub fn numbers(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

pub const IVR_PASSWORD: &str = "ivr-test-password";
pub const T0: i64 = 1_790_000_000;

pub fn pepper() -> cc_shared::domain::identity::Pepper {
    cc_shared::domain::identity::Pepper::new(vec![5; 32]).unwrap()
}

/// The identity-verification settings of the tests (default lockout policy).
pub fn identity_config() -> identity_verification::Config {
    identity_verification::Config {
        credentials: cc_shared::web::auth::Credentials::parse(
            "TEST",
            &cc_shared::web::auth::entry_for("ivr", IVR_PASSWORD),
        )
        .unwrap(),
        phones: cc_shared::domain::phone::PhoneNormalizer::new("CN", &[]).unwrap(),
        pepper: pepper(),
        index: keys().index,
        input_field: "verifyCode".into(),
        lockout: identity_verification::LockoutPolicy::default(),
        record_ttl_days: 90,
        require_known_agent: false,
        store_budget: cc_shared::web::StoreBudget::from_millis(9000),
        modes: Default::default(),
    }
}

/// The identity-verification handler on `store` with a manual clock, accepting
/// `ivr:IVR_PASSWORD`, with `pins` (number, PIN) enrolled.
pub async fn identity_verification(
    store: Arc<dyn Store>,
    pins: &[(&str, &str)],
) -> (
    identity_verification::IdentityVerification,
    Arc<cc_shared::domain::clock::ManualClock>,
) {
    let config = identity_config();
    let enrolled: Vec<_> = pins
        .iter()
        .map(|(n, pin)| {
            let p = config.phones.normalize(n).unwrap();
            let d = config.pepper.pin_digest(&p, pin);
            (config.index.index(&p), d)
        })
        .collect();
    store.put_pins(&enrolled).await.unwrap();
    let clock = Arc::new(cc_shared::domain::clock::ManualClock::at(T0));
    let svc = identity_verification::IdentityVerification::new(config, store, clock.clone());
    (svc, clock)
}

pub fn verify_request(number: &str, pin: &str) -> lambda_http::Request {
    http::Request::builder()
        .method("POST")
        .uri("/identity/verify")
        .header(
            "authorization",
            cc_shared::web::auth::basic_header("ivr", IVR_PASSWORD),
        )
        .body(lambda_http::Body::Text(
            serde_json::json!({"calldata": {"verifyServiceNo": number, "verifyWorkNo": "371",
                               "verifyCode": pin, "verifyTypeCode": "PIN"}})
            .to_string(),
        ))
        .unwrap()
}

/// Calls the handler: (HTTP status, the `calldata.data` object).
pub async fn call_verify(
    svc: &identity_verification::IdentityVerification,
    req: lambda_http::Request,
) -> (u16, identity_verification::wire::VerifyData) {
    let resp = identity_verification::handle(svc, req).await;
    let (status, body) = checked_answer("/identity/verify", resp);
    let parsed: identity_verification::wire::VerifyResponse =
        serde_json::from_str(&body).expect("Huawei-shaped JSON");
    (status, parsed.calldata.data)
}

/// The token-exchange handler against `idp`, on `store`, with a manual clock at the real time
/// (the fake IdP checks `exp` against the wall clock), accepting `crm:CRM_PASSWORD`.
pub const CRM_PASSWORD: &str = "crm-test-password";

pub struct TokenSetup<'a> {
    pub idp_url: &'a str,
    pub private_key: Option<&'a str>,
    pub exp_millis: bool,
    pub timeout_ms: u64,
}

pub fn token_exchange(
    setup: TokenSetup<'_>,
    store: Arc<dyn Store>,
) -> (
    token_exchange::TokenExchange,
    Arc<cc_shared::domain::clock::ManualClock>,
) {
    use fake_idp::*;
    let signer = setup.private_key.map(|k| {
        token_exchange::jwt::Signer::new(
            token_exchange::jwt::parse_private_key(k).unwrap(),
            ISSUER.into(),
            300,
            setup.exp_millis,
        )
        .unwrap()
    });
    let config = token_exchange::Config {
        credentials: cc_shared::web::auth::Credentials::parse(
            "TEST",
            &cc_shared::web::auth::entry_for("crm", CRM_PASSWORD),
        )
        .unwrap(),
        fuyun: Some(Arc::new(token_exchange::Fuyun {
            signer,
            app_name: Some(APP_NAME.into()),
            idp: token_exchange::idp::IdpClient::new(token_exchange::idp::IdpSettings {
                url: setup.idp_url.parse().unwrap(),
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                scope: SCOPE.into(),
                redirect_url: REDIRECT_URL.into(),
                connect_timeout: std::time::Duration::from_millis(setup.timeout_ms),
                timeout: std::time::Duration::from_millis(setup.timeout_ms),
            })
            .unwrap(),
        })),
        timeouts: token_exchange::IdpTimeouts {
            connect: std::time::Duration::from_millis(setup.timeout_ms),
            total: std::time::Duration::from_millis(setup.timeout_ms),
        },
        tenant_cache: std::time::Duration::from_secs(60),
        cache_margin_seconds: 60,
        audit_ttl_days: 90,
        store_budget: cc_shared::web::StoreBudget::from_millis(9000),
    };
    let clock = Arc::new(cc_shared::domain::clock::ManualClock::at(
        cc_shared::domain::clock::now_epoch(),
    ));
    (
        token_exchange::TokenExchange::new(config, store, clock.clone()),
        clock,
    )
}

pub fn token_request(body: serde_json::Value) -> lambda_http::Request {
    http::Request::builder()
        .method("POST")
        .uri("/token-exchange")
        .header(
            "authorization",
            cc_shared::web::auth::basic_header("crm", CRM_PASSWORD),
        )
        .body(lambda_http::Body::Text(body.to_string()))
        .unwrap()
}

/// (status, JSON body, headers)
pub async fn call_token(
    svc: &token_exchange::TokenExchange,
    req: lambda_http::Request,
) -> (u16, serde_json::Value, http::HeaderMap) {
    let resp = token_exchange::handle(svc, req).await;
    let headers = resp.headers().clone();
    let (status, body) = checked_answer("/token-exchange", resp);
    (
        status,
        serde_json::from_str(&body).expect("JSON body"),
        headers,
    )
}

/// A CEC client for the fake CEC at `base_url`.
pub fn cec_client(base_url: &str) -> agent_sync::cec_client::CecClient {
    agent_sync::cec_client::CecClient::new(agent_sync::cec_client::CecSettings {
        base_url: base_url.into(),
        agent_info_path: fake_cec::AGENTS_PATH.into(),
        app_key: fake_cec::APP_KEY.into(),
        app_secret: fake_cec::APP_SECRET.into(),
        token_expire_seconds: 3600,
        connect_timeout: std::time::Duration::from_secs(2),
        timeout: std::time::Duration::from_secs(5),
        tenant_space_id: None,
    })
    .unwrap()
}

/// A handler's answer to `POST path`, checked against openapi.yaml: (status, body text).
pub fn checked_answer(path: &str, resp: lambda_http::Response<lambda_http::Body>) -> (u16, String) {
    let (parts, body) = resp.into_parts();
    let body = match body {
        lambda_http::Body::Text(s) => s,
        other => panic!("unexpected body {other:?}"),
    };
    let status = parts.status.as_u16();
    openapi::contract().check_answer(path, status, &parts.headers, &body);
    (status, body)
}
