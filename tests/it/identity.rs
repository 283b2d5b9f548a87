//! Identity verification end to end on both backends: the concurrency bound, round trips,
//! an unreachable store, and logs free of PINs and numbers.

use crate::support;

use std::sync::Arc;

use cc_shared::domain::identity::RecordQuery;
use support::{call_verify, verify_request, Store};

const NUMBER: &str = "13988888888";
const PIN: &str = "2468";

async fn twenty_concurrent_wrong_attempts(store: Arc<dyn Store>) {
    let (svc, _clock) = support::identity_verification(store.clone(), &[(NUMBER, PIN)]).await;
    let svc = Arc::new(svc);
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            call_verify(&svc, verify_request(NUMBER, "0000")).await
        }));
    }
    let mut checked = 0;
    for t in tasks {
        let (status, data) = t.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(data.verify_result, 2, "{data:?}");
        match data.verify_return1.as_str() {
            "wrong_pin" => checked += 1,
            "locked" => {}
            other => panic!("unexpected reason {other}"),
        }
    }
    assert!(
        checked <= 5,
        "{checked} PIN checks ran; at most 5 are allowed"
    );
    assert!(checked >= 1);
    // Every attempt left a record, and the customer is locked now.
    let records = store
        .list_records(&RecordQuery {
            limit: 100,
            now: support::T0,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 20);
    let (_, data) = call_verify(&svc, verify_request(NUMBER, PIN)).await;
    assert_eq!(data.verify_return1, "locked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_attempts_are_bounded_dynamodb() {
    let (store, _) = support::dynamo_store().await;
    twenty_concurrent_wrong_attempts(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_attempts_are_bounded_embedded() {
    let (store, _dir) = support::embedded_store();
    twenty_concurrent_wrong_attempts(store).await;
}

#[tokio::test]
async fn verification_round_trips_and_lockout_on_dynamodb() {
    let (store, counter) = support::dynamo_store().await;
    let (svc, clock) = support::identity_verification(store, &[(NUMBER, PIN)]).await;
    // (number, PIN typed, reason, DynamoDB round trips)
    let steps = [
        (NUMBER, PIN, "ok", 3), // read; reserve the check; settle + record
        ("13700000000", PIN, "unknown_customer", 2), // read; record
        (NUMBER, "1111", "wrong_pin", 3), // read; reserve; record
        (NUMBER, "1111", "wrong_pin", 3),
        (NUMBER, "1111", "wrong_pin", 3),
        (NUMBER, "1111", "wrong_pin", 3),
        (NUMBER, "1111", "wrong_pin", 3), // the fifth: read; reserve; lock + record
        (NUMBER, PIN, "locked", 2),       // read; record
    ];
    for (number, pin, reason, round_trips) in steps {
        counter.reset();
        let (status, data) = call_verify(&svc, verify_request(number, pin)).await;
        assert_eq!((status, data.verify_return1.as_str()), (200, reason));
        assert_eq!(counter.get(), round_trips, "{reason}");
    }
    clock.advance(15 * 60);
    let (_, data) = call_verify(&svc, verify_request(NUMBER, PIN)).await;
    assert_eq!(
        (data.verify_result, data.verify_return1.as_str()),
        (1, "ok")
    );
}

#[tokio::test]
async fn an_unreachable_store_is_abnormal_not_an_error() {
    // Nothing listens on port 9 of loopback: a real connection failure, no mock.
    let counter = cc_shared::store::dynamo::RoundTripCounter::default();
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .http_client(cc_shared::aws::sdk_http_client())
        .endpoint_url("http://127.0.0.1:9")
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "local", "local", None, None, "tests",
        ))
        .retry_config(aws_sdk_dynamodb::config::retry::RetryConfig::disabled())
        .interceptor(counter)
        .build();
    let store = cc_shared::store::dynamo::DynamoStore::new(
        aws_sdk_dynamodb::Client::from_conf(config),
        "nowhere",
    );
    let svc = identity_verification::IdentityVerification::new(
        support::identity_config(),
        Arc::new(store),
        Arc::new(cc_shared::domain::clock::ManualClock::at(support::T0)),
    );
    let (status, data) = call_verify(&svc, verify_request(NUMBER, PIN)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (data.verify_result, data.verify_return1.as_str()),
        (3, "unavailable")
    );
}

/// Digits are taken as typed: whitespace (ASCII or not) around a right PIN makes it a wrong
/// PIN, counted like any other, never trimmed into a pass.
#[tokio::test]
async fn a_pin_with_whitespace_is_a_wrong_pin() {
    let (store, _dir) = support::embedded_store();
    let (svc, _clock) = support::identity_verification(store, &[("13988888888", "4321")]).await;
    for typed in ["4321\u{3000}", " 4321", "4321 ", "4321\n", "\u{a0}4321"] {
        let (status, data) = call_verify(&svc, verify_request("13988888888", typed)).await;
        assert_eq!(status, 200);
        assert_eq!(
            (data.verify_result, data.verify_return1.as_str()),
            (2, "wrong_pin"),
            "{typed:?}"
        );
    }
}
