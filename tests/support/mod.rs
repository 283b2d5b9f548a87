//! Test support: DynamoDB Local tables, embedded stores, and request builders.
#![allow(dead_code)]

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
    let table = format!("cc-test-{}", cc_shared::uid::Uid::generate().unwrap());
    let store = DynamoStore::new(dynamodb_client(&counter), table);
    store
        .create_table()
        .await
        .expect("create table in DynamoDB Local");
    counter.reset();
    (Arc::new(store), counter)
}

/// An embedded store in a fresh temporary directory (kept alive by the returned guard).
pub fn embedded_store() -> (Arc<EmbeddedStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Arc::new(EmbeddedStore::open(dir.path()).unwrap()), dir)
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
                ($body)(store as std::sync::Arc<dyn cc_shared::store::MappingStore>).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn dynamodb() {
                let (store, _counter) = support::dynamo_store().await;
                ($body)(store as std::sync::Arc<dyn cc_shared::store::MappingStore>).await;
            }
        }
    };
}

pub const PASSWORD: &str = "test-password-42";

/// The number-mapping handler on `store`, accepting `tencent:PASSWORD`.
pub fn number_mapping(
    store: Arc<dyn cc_shared::store::MappingStore>,
) -> number_mapping::NumberMapping {
    let config = number_mapping::Config {
        credentials: cc_shared::auth::Credentials::parse(
            "TEST",
            &cc_shared::auth::entry_for("tencent", PASSWORD),
        )
        .unwrap(),
        phones: cc_shared::phone::PhoneNormalizer::new("CN", &[]).unwrap(),
    };
    number_mapping::NumberMapping::new(config, store)
}

pub fn mapping_request(numbers: &[&str], mode: &str) -> lambda_http::Request {
    http::Request::builder()
        .method("POST")
        .uri("/number-mapping")
        .header(
            "authorization",
            cc_shared::auth::basic_header("tencent", PASSWORD),
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
) -> (u16, cc_shared::tencent::MappingResponse) {
    let resp = number_mapping::handle(svc, req).await;
    let status = resp.status().as_u16();
    let body = match resp.into_body() {
        lambda_http::Body::Text(s) => s,
        other => panic!("unexpected body {other:?}"),
    };
    (status, serde_json::from_str(&body).expect("JSON body"))
}

pub fn numbers(n: usize, prefix: &str) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i:04}")).collect()
}

pub fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
