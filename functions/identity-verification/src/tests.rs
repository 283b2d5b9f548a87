//! Handler tests on plain `Request`s, on the embedded store, with a manual clock.
//! (DynamoDB Local, concurrency and logs: the workspace's `tests/identity_verification.rs`.)

use std::sync::Arc;

use super::*;
use crate::wire::VerifyResponse;
use cc_shared::domain::clock::ManualClock;
use cc_shared::domain::identity::Pepper;
use cc_shared::domain::identity::RecordQuery;
use cc_shared::domain::phone::PhoneNormalizer;
use cc_shared::domain::protect::{KeyringText, NumberProtection};
use cc_shared::store::embedded::EmbeddedStore;
use cc_shared::store::IdentityStore;
use cc_shared::store::MappingStore;
use cc_shared::web::auth::Credentials;
use cc_shared::web::auth::{basic_header, entry_for};
use http::StatusCode;
use lambda_http::{Body, Request};
use serde_json::json;

const PASSWORD: &str = "ivr-password";
const NUMBER: &str = "13988888888";
const PIN: &str = "4321";
const T0: i64 = 1_790_000_000;

struct Fixture {
    svc: IdentityVerification,
    store: Arc<EmbeddedStore>,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// Fixed number keys, so that the handler and the test agree.
fn keys() -> NumberProtection {
    let ring =
        KeyringText::parse(r#"{"current":1,"1":"unit-test-encryption-key-0123456789abcdef"}"#)
            .unwrap();
    NumberProtection::from_texts("unit-test-index-key-0123456789abcdef", &ring).unwrap()
}

fn config(input_field: &str) -> Config {
    Config {
        credentials: Credentials::parse("T", &entry_for("ivr", PASSWORD)).unwrap(),
        phones: PhoneNormalizer::new("CN", &[]).unwrap(),
        pepper: Pepper::new(vec![7; 32]).unwrap(),
        index: keys().index,
        input_field: input_field.into(),
        lockout: LockoutPolicy::default(),
        record_ttl_days: 90,
        require_known_agent: false,
        store_budget: cc_shared::web::StoreBudget::from_millis(3000),
        modes: Default::default(),
    }
}

async fn fixture_with(input_field: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let clock = Arc::new(ManualClock::at(T0));
    let config = config(input_field);
    let phone = config.phones.normalize(NUMBER).unwrap();
    let digest = config.pepper.pin_digest(&phone, PIN);
    store
        .put_pins(&[(config.index.index(&phone), digest)])
        .await
        .unwrap();
    Fixture {
        svc: IdentityVerification::new(config, store.clone(), clock.clone()),
        store,
        clock,
        _dir: dir,
    }
}

async fn fixture() -> Fixture {
    fixture_with("verifyCode").await
}

fn request(body: &str) -> Request {
    http::Request::builder()
        .method("POST")
        .uri("/identity/verify")
        .header("authorization", basic_header("ivr", PASSWORD))
        .body(Body::Text(body.to_string()))
        .unwrap()
}

fn attempt(number: &str, pin: &str) -> Request {
    request(
        &json!({"calldata": {"verifyServiceNo": number, "verifyWorkNo": "371",
                "verifyCode": pin, "verifyTypeCode": "PIN_CHECK"}})
        .to_string(),
    )
}

/// (HTTP status, verifyResult, reason, attempts left, user ID)
async fn call(f: &Fixture, req: Request) -> (StatusCode, u8, String, String, String) {
    let resp = handle(&f.svc, req).await;
    let status = resp.status();
    let Body::Text(body) = resp.into_body() else {
        panic!("not a text body")
    };
    let parsed: VerifyResponse = serde_json::from_str(&body).expect("Huawei-shaped JSON");
    let d = parsed.calldata.data;
    (
        status,
        d.verify_result,
        d.verify_return1,
        d.verify_return2,
        d.verify_return3,
    )
}

#[tokio::test]
async fn the_right_pin_passes_and_returns_the_mapped_user_id() {
    let f = fixture().await;
    let (status, result, reason, left, uid) = call(&f, attempt(NUMBER, PIN)).await;
    assert_eq!(
        (status, result, reason.as_str(), left.as_str(), uid.as_str()),
        (StatusCode::OK, 1, "ok", "5", "")
    );
    // Once number mapping knows the customer, the workbench gets the user ID.
    let phone = f.svc.config.phones.normalize(NUMBER).unwrap();
    let index = keys().index(&phone);
    let seal: cc_shared::store::Sealer =
        Arc::new(move |_, uid| Ok(keys().seal(uid, &phone).unwrap()));
    let mapped = f
        .store
        .create_uids(std::slice::from_ref(&index), &seal)
        .await
        .unwrap();
    let (_, result, _, _, uid) = call(&f, attempt("+86 139 8888 8888", PIN)).await;
    assert_eq!(result, 1);
    assert_eq!(uid, mapped[&index].to_string());
}

#[tokio::test]
async fn a_wrong_pin_fails_and_a_right_one_resets_the_count() {
    let f = fixture().await;
    let (status, result, reason, left, _) = call(&f, attempt(NUMBER, "0000")).await;
    assert_eq!(
        (status, result, reason.as_str(), left.as_str()),
        (StatusCode::OK, 2, "wrong_pin", "4")
    );
    let (_, _, _, left, _) = call(&f, attempt(NUMBER, "123")).await;
    assert_eq!(left, "3", "a malformed PIN is a wrong PIN");
    let (_, result, _, left, _) = call(&f, attempt(NUMBER, PIN)).await;
    assert_eq!((result, left.as_str()), (1, "5"));
    let (_, _, _, left, _) = call(&f, attempt(NUMBER, "0000")).await;
    assert_eq!(left, "4", "the count restarted after the right PIN");
}

#[tokio::test]
async fn an_unknown_customer_fails() {
    let f = fixture().await;
    let (status, result, reason, left, uid) = call(&f, attempt("13700000000", PIN)).await;
    assert_eq!(
        (status, result, reason.as_str(), left.as_str(), uid.as_str()),
        (StatusCode::OK, 2, "unknown_customer", "", "")
    );
}

#[tokio::test]
async fn five_failures_lock_until_the_lock_expires() {
    let f = fixture().await;
    for expected_left in ["4", "3", "2", "1", "0"] {
        let (_, result, reason, left, _) = call(&f, attempt(NUMBER, "0000")).await;
        assert_eq!(
            (result, reason.as_str(), left.as_str()),
            (2, "wrong_pin", expected_left)
        );
        f.clock.advance(10);
    }
    // Locked: refused before the digits are checked, even the right ones.
    let (_, result, reason, left, _) = call(&f, attempt(NUMBER, PIN)).await;
    assert_eq!((result, reason.as_str(), left.as_str()), (2, "locked", "0"));
    f.clock.advance(15 * 60 - 60);
    let (_, _, reason, _, _) = call(&f, attempt(NUMBER, PIN)).await;
    assert_eq!(reason, "locked", "still inside the 15 minutes");
    f.clock.advance(60);
    let (_, result, reason, left, _) = call(&f, attempt(NUMBER, PIN)).await;
    assert_eq!((result, reason.as_str(), left.as_str()), (1, "ok", "5"));
}

#[tokio::test]
async fn a_right_pin_does_not_lift_an_active_lock() {
    let f = fixture().await;
    for _ in 0..5 {
        call(&f, attempt(NUMBER, "0000")).await;
    }
    for _ in 0..3 {
        let (_, _, reason, _, _) = call(&f, attempt(NUMBER, PIN)).await;
        assert_eq!(reason, "locked");
    }
    // Unlocking by ops lifts it at once.
    let phone = f.svc.config.phones.normalize(NUMBER).unwrap();
    assert!(f.store.unlock(&keys().index(&phone)).await.unwrap());
    let (_, result, _, _, _) = call(&f, attempt(NUMBER, PIN)).await;
    assert_eq!(result, 1);
}

#[tokio::test]
async fn failures_outside_the_window_are_forgotten() {
    let f = fixture().await;
    for _ in 0..4 {
        call(&f, attempt(NUMBER, "0000")).await;
    }
    f.clock.advance(15 * 60);
    let (_, _, reason, left, _) = call(&f, attempt(NUMBER, "0000")).await;
    assert_eq!((reason.as_str(), left.as_str()), ("wrong_pin", "4"));
}

#[tokio::test]
async fn the_input_field_is_configurable_and_values_may_be_numbers() {
    let f = fixture_with("ivrDigits").await;
    let body = json!({"calldata": {"verifyServiceNo": 13988888888u64, "verifyWorkNo": 371,
                                   "ivrDigits": PIN}});
    let (_, result, reason, _, _) = call(&f, request(&body.to_string())).await;
    assert_eq!((result, reason.as_str()), (1, "ok"));
    let (_, result, reason, _, _) = call(&f, attempt(NUMBER, PIN)).await;
    assert_eq!(
        (result, reason.as_str()),
        (3, "bad_request"),
        "verifyCode is not the field now"
    );
}

#[tokio::test]
async fn malformed_requests_are_abnormal_with_http_200() {
    let f = fixture().await;
    let big = "x".repeat(MAX_BODY_BYTES + 1);
    let cd = |v: serde_json::Value| json!({ "calldata": v }).to_string();
    let ok = json!({"verifyServiceNo": NUMBER, "verifyWorkNo": "371", "verifyCode": PIN});
    let with = |k: &str, v: serde_json::Value| {
        let mut o = ok.clone();
        o[k] = v;
        cd(o)
    };
    let without = |k: &str| {
        let mut o = ok.clone();
        o.as_object_mut().unwrap().remove(k);
        cd(o)
    };
    let cases = vec![
        "{".to_string(),
        String::new(),
        "[]".into(),
        json!({"data": {}}).to_string(),
        json!({"calldata": "x"}).to_string(),
        without("verifyServiceNo"),
        without("verifyWorkNo"),
        without("verifyCode"),
        with("verifyServiceNo", json!("1398abc8888")),
        with("verifyServiceNo", json!(["13988888888"])),
        with("verifyWorkNo", json!("37 1")),
        with("verifyWorkNo", json!("")),
        with("verifyCode", json!(4321)),
        with("verifyTypeCode", json!("PIN-CHECK")),
        with("verifyTypeCode", json!(5)),
        big,
    ];
    for body in cases {
        let (status, result, reason, left, uid) = call(&f, request(&body)).await;
        assert_eq!(
            (status, result, reason.as_str(), left.as_str(), uid.as_str()),
            (StatusCode::OK, 3, "bad_request", "", ""),
            "{body:.80}"
        );
    }
    let mut get = attempt(NUMBER, PIN);
    *get.method_mut() = http::Method::GET;
    assert_eq!(call(&f, get).await.1, 3);
    // None of them counted against the customer.
    let (_, _, _, left, _) = call(&f, attempt(NUMBER, "0000")).await;
    assert_eq!(left, "4");
}

/// A number the IVR sent as a JSON number that cannot be its digits is named as what it is,
/// not as missing.
#[tokio::test]
async fn malformed_numeric_fields_say_what_is_wrong() {
    let f = fixture().await;
    let raw = [
        "13920000004.0",
        "1.39E10",
        "-13920000004",
        "123456789012345678901234567890",
    ];
    for field in ["verifyServiceNo", "verifyWorkNo"] {
        for number in raw {
            let mut calldata = json!({"verifyServiceNo": NUMBER, "verifyWorkNo": "371",
                                      "verifyCode": PIN});
            calldata[field] = json!("PLACEHOLDER");
            let body = json!({ "calldata": calldata })
                .to_string()
                .replace("\"PLACEHOLDER\"", number);
            let resp = handle(&f.svc, request(&body)).await;
            let Body::Text(text) = resp.into_body() else {
                panic!("a text body")
            };
            let parsed: VerifyResponse = serde_json::from_str(&text).unwrap();
            assert_eq!(parsed.calldata.data.verify_return1, "bad_request");
            let message = parsed.message.unwrap_or_default();
            assert!(
                message.contains(&format!("calldata.{field} is a number but not a whole"))
                    && !message.contains("missing"),
                "{field} = {number}: {message}"
            );
        }
        let mut calldata = json!({"verifyServiceNo": NUMBER, "verifyWorkNo": "371",
                                  "verifyCode": PIN});
        calldata[field] = json!(true);
        let resp = handle(
            &f.svc,
            request(&json!({ "calldata": calldata }).to_string()),
        )
        .await;
        let Body::Text(text) = resp.into_body() else {
            panic!("a text body")
        };
        assert!(
            text.contains(&format!("calldata.{field} must be a string or a number")),
            "{text}"
        );
    }
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401() {
    let f = fixture().await;
    for auth in [None, Some(basic_header("ivr", "nope"))] {
        let mut req = attempt(NUMBER, PIN);
        req.headers_mut().remove("authorization");
        if let Some(a) = auth {
            req.headers_mut()
                .insert("authorization", a.parse().unwrap());
        }
        let resp = handle(&f.svc, req).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().contains_key("www-authenticate"));
    }
    // Nothing was checked or recorded.
    let q = RecordQuery {
        limit: 10,
        now: T0,
        ..Default::default()
    };
    assert!(f.store.list_records(&q).await.unwrap().is_empty());
}

#[tokio::test]
async fn every_attempt_is_recorded_with_a_masked_number() {
    let f = fixture().await;
    call(&f, attempt(NUMBER, PIN)).await;
    f.clock.advance(1);
    call(&f, attempt(NUMBER, "0000")).await;
    f.clock.advance(1);
    call(&f, attempt("13700000000", PIN)).await;
    f.clock.advance(1);
    call(&f, request("{")).await;
    let q = RecordQuery {
        limit: 10,
        now: f.clock.now(),
        ..Default::default()
    };
    let all = f.store.list_records(&q).await.unwrap();
    let reasons: Vec<&str> = all.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(
        reasons,
        ["bad_request", "unknown_customer", "wrong_pin", "ok"]
    );
    let ok = &all[3];
    assert_eq!(ok.masked_number, "+86*******8888");
    assert_eq!(
        (ok.agent.as_str(), ok.verify_type_code.as_str(), ok.result),
        ("371", "PIN_CHECK", 1)
    );
    assert_eq!(ok.expires_at, T0 + 90 * 86_400);

    let phone = f.svc.config.phones.normalize(NUMBER).unwrap();
    let mine = RecordQuery {
        number_key: Some(f.svc.config.pepper.record_key(&phone)),
        ..q.clone()
    };
    assert_eq!(f.store.list_records(&mine).await.unwrap().len(), 2);
    // Expired records are gone.
    let later = RecordQuery {
        now: T0 + 91 * 86_400,
        ..q
    };
    assert!(f.store.list_records(&later).await.unwrap().is_empty());
}
