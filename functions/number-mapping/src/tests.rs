//! Handler tests on plain `Request`s, against the embedded store in a temporary directory.
//! (The same behaviour against DynamoDB Local is covered by the workspace's `tests/`.)

use std::sync::Arc;

use super::*;
use crate::wire::MappingResponse;
use cc_shared::domain::phone::PhoneNormalizer;
use cc_shared::domain::protect::NumberProtection;
use cc_shared::domain::uid::Uid;
use cc_shared::number_keys::LiveKeys;
use cc_shared::store::embedded::EmbeddedStore;
use cc_shared::web::auth::Credentials;
use cc_shared::web::auth::{basic_header, entry_for};
use http::StatusCode;
use lambda_http::{Body, Request, Response};

const PASSWORD: &str = "s3cret-pass";

struct Fixture {
    svc: NumberMapping,
    store: Arc<EmbeddedStore>,
    _dir: tempfile::TempDir,
}

fn fixture() -> Fixture {
    fixture_with_budget(Some(crate::config::DEFAULT_UNMASK_MAX_PER_MINUTE))
}

fn fixture_with_budget(unmask_budget: Option<u32>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let config = Config {
        credentials: Credentials::parse("T", &entry_for("tencent", PASSWORD)).unwrap(),
        phones: PhoneNormalizer::new("CN", &[]).unwrap(),
        store_budget: cc_shared::web::StoreBudget::from_millis(3000),
        unmask_ttl_days: 180,
        unmask_budget,
    };
    Fixture {
        svc: NumberMapping::new(
            config,
            LiveKeys::fixed(NumberProtection::generate().unwrap()),
            store.clone(),
            store.clone(),
        ),
        store,
        _dir: dir,
    }
}

fn request(body: &str) -> Request {
    http::Request::builder()
        .method("POST")
        .uri("/number-mapping")
        .header("authorization", basic_header("tencent", PASSWORD))
        .header("content-type", "application/json")
        .body(Body::Text(body.to_string()))
        .unwrap()
}

async fn call(f: &Fixture, req: Request) -> (StatusCode, MappingResponse, Response<Body>) {
    let resp = handle(&f.svc, req).await;
    let body = match resp.body() {
        Body::Text(s) => s.clone(),
        other => panic!("unexpected body {other:?}"),
    };
    let parsed: MappingResponse = serde_json::from_str(&body).expect("JSON response");
    (resp.status(), parsed, resp)
}

fn body(numbers: &[&str], mode: &str) -> String {
    serde_json::json!({ "Numbers": numbers, "Mode": mode }).to_string()
}

#[tokio::test]
async fn phone_to_uid_is_stable_across_spellings_and_reversible() {
    let f = fixture();
    let spellings = [
        "13988888888",
        "+8613988888888",
        "008613988888888",
        "139-8888 8888",
    ];
    let (status, resp, _) = call(&f, request(&body(&spellings, "PhoneToUID"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp.code, 0);
    assert_eq!(resp.message, None);
    let keys: Vec<&str> = resp.results.iter().map(|r| r.key.as_str()).collect();
    assert_eq!(keys, spellings, "keys echo the input, in order");
    let uid = &resp.results[0].value;
    assert!(Uid::parse(uid).is_some(), "{uid}");
    assert!(resp.results.iter().all(|r| &r.value == uid));

    let (_, again, _) = call(&f, request(&body(&["13988888888"], "PhoneToUID"))).await;
    assert_eq!(&again.results[0].value, uid);

    let (status, back, _) = call(&f, request(&body(&[uid], "UIDToPhone"))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(back.results[0].value, "008613988888888");
    // IDs are accepted in upper case too (agents type them).
    let upper = uid.to_ascii_uppercase();
    let (_, back, _) = call(&f, request(&body(&[&upper], "UIDToPhone"))).await;
    assert_eq!(back.results[0].key, upper);
    assert_eq!(back.results[0].value, "008613988888888");
}

#[tokio::test]
async fn different_numbers_get_different_ids_in_request_order() {
    let f = fixture();
    let (_, resp, _) = call(
        &f,
        request(&body(
            &["13788888888", "13988888888", "95588"],
            "PhoneToUID",
        )),
    )
    .await;
    let values: Vec<&str> = resp.results.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values.len(), 3);
    assert_ne!(values[0], values[1]);
    assert_ne!(values[1], values[2]);
    let (_, back, _) = call(&f, request(&body(&values, "UIDToPhone"))).await;
    let phones: Vec<&str> = back.results.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(phones, ["008613788888888", "008613988888888", "95588"]);
}

#[tokio::test]
async fn unknown_and_malformed_ids_get_an_empty_value() {
    let f = fixture();
    let (_, created, _) = call(&f, request(&body(&["13988888888"], "PhoneToUID"))).await;
    let known = created.results[0].value.clone();
    let unknown = Uid::generate().unwrap().to_string();
    let (status, resp, _) = call(
        &f,
        request(&body(
            &[&unknown, &known, "13988888888", "not-an-id"],
            "UIDToPhone",
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(resp.code, 0);
    let values: Vec<&str> = resp.results.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, ["", "008613988888888", "", ""]);
}

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_with_a_challenge() {
    let f = fixture();
    for auth in [
        None,
        Some(basic_header("tencent", "wrong")),
        Some(basic_header("other", PASSWORD)),
        Some("Bearer x".to_string()),
    ] {
        let mut req = request(&body(&["13988888888"], "PhoneToUID"));
        req.headers_mut().remove("authorization");
        if let Some(a) = auth {
            req.headers_mut()
                .insert("authorization", a.parse().unwrap());
        }
        let (status, resp, raw) = call(&f, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_ne!(resp.code, 0);
        assert!(resp.message.is_some());
        assert!(raw.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic "));
    }
    // Nothing was written by the rejected requests.
    let key = f.svc.config.phones.normalize("13988888888").unwrap();
    let key = f.svc.keys.get().index(&key);
    assert!(f.store.uids_of(&[key]).await.unwrap().is_empty());
}

#[tokio::test]
async fn bad_input_gets_400_with_a_message_and_writes_nothing() {
    let f = fixture();
    let many: Vec<String> = (0..101).map(|i| format!("1390000{i:04}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let cases: Vec<(String, &str)> = vec![
        ("{".into(), "not valid JSON"),
        ("".into(), "not valid JSON"),
        ("[]".into(), "schema"),
        (
            r#"{"Numbers": "13988888888", "Mode": "PhoneToUID"}"#.into(),
            "schema",
        ),
        (
            r#"{"Numbers": [13988888888], "Mode": "PhoneToUID"}"#.into(),
            "schema",
        ),
        (r#"{"Numbers": ["13988888888"]}"#.into(), "Mode"),
        (r#"{"Mode": "PhoneToUID"}"#.into(), "Numbers"),
        (body(&["13988888888"], "phonetouid"), "Mode must be"),
        (body(&[], "PhoneToUID"), "Numbers is empty"),
        (body(&many, "PhoneToUID"), "at most 100"),
        (
            body(&["13988888888", "1398abc8888"], "PhoneToUID"),
            "Numbers[1]",
        ),
        (body(&["13988888888", ""], "PhoneToUID"), "Numbers[1]"),
        (
            body(&["13988888888", &"1".repeat(40)], "PhoneToUID"),
            "Numbers[1]",
        ),
        (body(&[&"a".repeat(65)], "UIDToPhone"), "longer than 64"),
        ("x".repeat(MAX_BODY_BYTES + 1), "larger than 32768 bytes"),
    ];
    for (body, want) in cases {
        let (status, resp, _) = call(&f, request(&body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body:.60}");
        assert_eq!(resp.code, 400);
        let msg = resp.message.unwrap_or_default();
        assert!(msg.contains(want), "{body:.60} -> {msg}");
        assert!(
            !msg.contains("13988888888"),
            "message echoes a number: {msg}"
        );
    }
    let key = f.svc.config.phones.normalize("13988888888").unwrap();
    let key = f.svc.keys.get().index(&key);
    assert!(
        f.store.uids_of(&[key]).await.unwrap().is_empty(),
        "a rejected batch wrote its valid numbers"
    );
}

#[tokio::test]
async fn only_post_is_allowed() {
    let f = fixture();
    let mut req = request(&body(&["13988888888"], "PhoneToUID"));
    *req.method_mut() = http::Method::GET;
    let (status, resp, _) = call(&f, req).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(resp.code, 405);
}

/// The caller's budget of unmaskings (README "Privacy"): IDs asked per minute, past which
/// UIDToPhone answers `{"Code": 429}` with no number and `Retry-After` until the minute ends;
/// PhoneToUID is never limited; the refused request is still recorded.
#[tokio::test]
async fn past_its_budget_a_caller_gets_429_until_the_minute_ends() {
    use cc_shared::domain::clock::ManualClock;
    use cc_shared::store::UnmaskingQuery;
    let mut f = fixture_with_budget(Some(5));
    let clock = Arc::new(ManualClock::at(1_800_000_000 + 50));
    f.svc = f.svc.with_clock(clock.clone());
    let numbers = [
        "13788888881",
        "13788888882",
        "13788888883",
        "13788888884",
        "13788888885",
        "13788888886",
    ];
    let (_, created, _) = call(&f, request(&body(&numbers, "PhoneToUID"))).await;
    let ids: Vec<&str> = created.results.iter().map(|r| r.value.as_str()).collect();

    // More IDs than the whole budget: refused even in an empty minute.
    let (status, resp, _) = call(&f, request(&body(&ids, "UIDToPhone"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // 2 + 3 (the same ID twice is asked once) fill the budget exactly.
    for ask in [&ids[..2], &[ids[2], ids[3], ids[4], ids[4]][..]] {
        let (status, resp, _) = call(&f, request(&body(ask, "UIDToPhone"))).await;
        assert_eq!(status, StatusCode::OK, "{:?}", resp.message);
        assert!(resp.results.iter().all(|r| !r.value.is_empty()));
    }
    let (status, refused, raw) = call(&f, request(&body(&ids[..1], "UIDToPhone"))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.code, 429);
    assert!(refused.results.is_empty(), "no number past the budget");
    assert!(refused
        .message
        .as_deref()
        .is_some_and(|m| m.contains("UNMASK_MAX_PER_MINUTE")));
    assert_eq!(
        raw.headers()["retry-after"],
        "10",
        "the minute ends in 10 s"
    );
    assert_eq!(resp.code, 429);
    // PhoneToUID is never limited.
    let (status, _, _) = call(&f, request(&body(&numbers, "PhoneToUID"))).await;
    assert_eq!(status, StatusCode::OK);
    // Every distinct ID asked is recorded, refused or not (6 + 2 + 3 + 1).
    let now = clock.now();
    let recorded = f
        .store
        .unmaskings_between(None, 0, now, now, 100)
        .await
        .unwrap();
    assert_eq!(recorded.len(), 12);

    clock.advance(10);
    let (status, back, _) = call(&f, request(&body(&ids[..1], "UIDToPhone"))).await;
    assert_eq!(status, StatusCode::OK, "a new minute, a new budget");
    assert_eq!(back.results[0].value, "008613788888881");
}

/// `UNMASK_MAX_PER_MINUTE=0`: no budget, no counting (more than the default budget's IDs in
/// one minute are answered).
#[tokio::test]
async fn without_a_budget_unmasking_is_not_counted() {
    let f = fixture_with_budget(None);
    let over_default = crate::config::DEFAULT_UNMASK_MAX_PER_MINUTE as usize / 100 + 1;
    for _ in 0..over_default {
        let ids: Vec<String> = (0..100)
            .map(|_| Uid::generate().unwrap().to_string())
            .collect();
        let (status, resp, _) = call(
            &f,
            request(&body(
                &ids.iter().map(String::as_str).collect::<Vec<_>>(),
                "UIDToPhone",
            )),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{:?}", resp.message);
    }
}
