//! A battery of bad input for every endpoint, on both backends: more than 100 requests each
//! (bad credentials, methods, bodies, event defects, every field wrong in every way). Each gets
//! the right status in its caller's own format with a message saying what was wrong, nothing
//! is written (identity verification keeps only its records of refused attempts, by design),
//! no vendor is called (they sit at a closed port: a call would answer 502), and the handler
//! answers a good request afterwards.

use crate::support;

use std::sync::Arc;

use base64::Engine;
use cc_shared::web::http::BodyDefect;
use lambda_http::{Body, Request, Response};
use serde_json::{json, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Unauthorized,
    Method,
    Bad,
}

struct Case {
    name: String,
    request: Request,
    expect: Expect,
}

fn request(path: &str, method: &str, auth: Option<&str>, body: Body) -> Request {
    let mut builder = http::Request::builder().method(method).uri(path);
    if let Some(auth) = auth {
        builder = builder.header("authorization", auth);
    }
    builder.body(body).unwrap()
}

/// Cases every endpoint shares: credentials, methods, bodies that are not the request.
fn common_cases(path: &str, user: &str, password: &str) -> Vec<Case> {
    let good = cc_shared::web::auth::basic_header(user, password);
    let b64 = |s: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(s)
        )
    };
    let mut cases = Vec::new();
    let mut auth_case = |name: &str, auth: Option<String>| {
        cases.push(Case {
            name: format!("auth: {name}"),
            request: request(path, "POST", auth.as_deref(), Body::Text("{}".into())),
            expect: Expect::Unauthorized,
        })
    };
    auth_case("missing", None);
    auth_case("empty", Some(String::new()));
    auth_case("scheme only", Some("Basic".into()));
    auth_case("not base64", Some("Basic !!!not-base64!!!".into()));
    auth_case("no colon", Some(b64(user)));
    auth_case("wrong password", Some(b64(&format!("{user}:wrong"))));
    auth_case("wrong user", Some(b64(&format!("nobody:{password}"))));
    auth_case("empty pair", Some(b64(":")));
    auth_case("bearer", Some("Bearer abc.def.ghi".into()));
    auth_case(
        "password with suffix",
        Some(b64(&format!("{user}:{password}x"))),
    );
    auth_case("unicode", Some(b64("用户:密码")));
    auth_case("10 KB", Some(format!("Basic {}", "A".repeat(10_240))));
    // Credentials come first, in every function: without them, any method is a 401.
    for method in ["GET", "PUT", "DELETE"] {
        cases.push(Case {
            name: format!("method {method} without credentials"),
            request: request(path, method, None, Body::Empty),
            expect: Expect::Unauthorized,
        });
    }
    for method in ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"] {
        cases.push(Case {
            name: format!("method {method}"),
            request: request(path, method, Some(&good), Body::Text("{}".into())),
            expect: Expect::Method,
        });
    }
    let bodies: Vec<(&str, Body)> = vec![
        ("empty body", Body::Empty),
        ("null", Body::Text("null".into())),
        ("array", Body::Text("[]".into())),
        ("number", Body::Text("1".into())),
        ("string", Body::Text("\"text\"".into())),
        ("truncated", Body::Text("{\"a\": [1, 2".into())),
        ("not JSON", Body::Text("hello".into())),
        ("form-encoded", Body::Text("a=1&b=2".into())),
        ("XML", Body::Text("<a>1</a>".into())),
        ("invalid UTF-8", Body::Binary(vec![0xff, 0xfe, 0x7b, 0x7d])),
        ("NUL bytes", Body::Binary(vec![0, 0, 0])),
        ("nested 100,000 deep", Body::Text("[".repeat(100_000))),
        (
            "1 MiB",
            Body::Text(format!("{{\"x\":\"{}\"}}", "a".repeat(1 << 20))),
        ),
        ("two objects", Body::Text("{}{}".into())),
        ("trailing garbage", Body::Text("{} x".into())),
    ];
    for (name, body) in bodies {
        cases.push(Case {
            name: format!("body: {name}"),
            request: request(path, "POST", Some(&good), body),
            expect: Expect::Bad,
        });
    }
    for defect in [
        BodyDefect::NotBase64,
        BodyDefect::TooLarge(6 << 20),
        BodyDefect::Incomplete,
    ] {
        let mut req = request(path, "POST", Some(&good), Body::Empty);
        req.extensions_mut().insert(defect);
        cases.push(Case {
            name: format!("defect {defect:?}"),
            request: req,
            expect: Expect::Bad,
        });
    }
    cases
}

/// Requests whose JSON is well formed but wrong.
fn json_cases(path: &str, user: &str, password: &str, bodies: Vec<Value>) -> Vec<Case> {
    let good = cc_shared::web::auth::basic_header(user, password);
    bodies
        .into_iter()
        .map(|body| Case {
            name: format!("json {}", truncate(&body.to_string())),
            request: request(path, "POST", Some(&good), Body::Text(body.to_string())),
            expect: Expect::Bad,
        })
        .collect()
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

fn parts(resp: Response<Body>) -> (u16, http::HeaderMap, Value) {
    let (parts, body) = resp.into_parts();
    let text = match body {
        Body::Text(t) => t,
        other => panic!("not a text body: {other:?}"),
    };
    (
        parts.status.as_u16(),
        parts.headers,
        serde_json::from_str(&text).expect("a JSON body"),
    )
}

/// Runs `cases` through `call`, checking each answer with `check`.
async fn run<F, Fut>(
    label: &str,
    cases: Vec<Case>,
    call: F,
    check: impl Fn(Expect, u16, &http::HeaderMap, &Value) -> Result<(), String>,
) where
    F: Fn(Request) -> Fut,
    Fut: std::future::Future<Output = Response<Body>>,
{
    assert!(cases.len() >= 100, "{label}: only {} cases", cases.len());
    for case in cases {
        let path = case.request.uri().path().to_string();
        let (status, headers, body) = parts(call(case.request).await);
        // Every refusal is one openapi.yaml documents.
        support::openapi::contract().check_answer(&path, status, &headers, &body.to_string());
        if let Err(e) = check(case.expect, status, &headers, &body) {
            panic!("{label}, {}: {e} (status {status}, body {body})", case.name);
        }
        if case.expect == Expect::Method
            && headers.get("allow").map(|v| v.as_bytes()) != Some(b"POST")
        {
            panic!("{label}, {}: no Allow: POST", case.name);
        }
    }
}

fn message_says_something(body: &Value, field: &str) -> Result<(), String> {
    match body[field].as_str() {
        Some(m) if m.len() > 5 => Ok(()),
        _ => Err(format!("no clear message in {field}")),
    }
}

fn tencent(expect: Expect, status: u16, _: &http::HeaderMap, body: &Value) -> Result<(), String> {
    let want = match expect {
        Expect::Unauthorized => 401,
        Expect::Method => 405,
        Expect::Bad => 400,
    };
    if status != want || body["Code"] != want || body["Results"] != json!([]) {
        return Err(format!("expected {want} with Code {want}"));
    }
    message_says_something(body, "Message")
}

fn huawei(expect: Expect, status: u16, _: &http::HeaderMap, body: &Value) -> Result<(), String> {
    let data = &body["calldata"]["data"];
    let (want_status, want_reason) = match expect {
        Expect::Unauthorized => (401, "unauthorized"),
        _ => (200, "bad_request"),
    };
    if status != want_status || data["verifyResult"] != 3 || data["verifyReturn1"] != want_reason {
        return Err(format!("expected {want_status} with 3/{want_reason}"));
    }
    message_says_something(body, "message")
}

fn oauth(expect: Expect, status: u16, _: &http::HeaderMap, body: &Value) -> Result<(), String> {
    let (want_status, want_error) = match expect {
        Expect::Unauthorized => (401, "invalid_client"),
        Expect::Method => (405, "invalid_request"),
        Expect::Bad => (400, "invalid_request"),
    };
    if status != want_status || body["error"] != want_error || body["retryable"] != false {
        return Err(format!("expected {want_status} {want_error}"));
    }
    message_says_something(body, "error_description")
}

fn directory(expect: Expect, status: u16, _: &http::HeaderMap, body: &Value) -> Result<(), String> {
    let (want_status, want_error) = match expect {
        Expect::Unauthorized => (401, "unauthorized"),
        Expect::Method => (405, "invalid_request"),
        Expect::Bad => (400, "invalid_request"),
    };
    if status != want_status || body["error"] != want_error {
        return Err(format!("expected {want_status} {want_error}"));
    }
    message_says_something(body, "message")
}

/// Numbers refused as numbers (the PhoneToUID mode, verifyServiceNo).
const BAD_NUMBERS: &[&str] = &[
    "",
    " ",
    "   ",
    "abc",
    "139888a8888",
    "1398888888８",
    "１３９８８８８８８８８",
    "+",
    "++8613988888888",
    "86+13988888888",
    "123456789012345678901",
    "1-2-3-4-5-6-7-8-9-0-1-2-3-4-5-6-7",
    "13988888888                        ",
    "\u{3000}13988888888",
    "13988888888\u{3000}",
    "139\n8888\n8888",
    "139\t88888888",
    "#13988888888",
    "*13988888888",
    "13988888888#",
    "139/8888/8888",
    "139_8888_8888",
    "+86 139 8888 8888 ext 1",
    "tel:+8613988888888",
    "1398888888😀",
    "13988888888;",
    "0x13988888888",
    "1e10",
    "(((",
    "---",
    "...",
    "1398888888\u{0}",
    "<script>",
    "'; DROP TABLE",
];

fn number_mapping_cases() -> Vec<Case> {
    let mut cases = common_cases("/number-mapping", "tencent", support::PASSWORD);
    let mut bodies = vec![
        json!({}),
        json!({"Numbers": ["13988888888"]}),
        json!({"Mode": "PhoneToUID"}),
        json!({"Numbers": null, "Mode": "PhoneToUID"}),
        json!({"Numbers": "13988888888", "Mode": "PhoneToUID"}),
        json!({"Numbers": 13988888888u64, "Mode": "PhoneToUID"}),
        json!({"Numbers": [], "Mode": "PhoneToUID"}),
        json!({"Numbers": [], "Mode": "UIDToPhone"}),
        json!({"Numbers": vec!["13988888888"; 101], "Mode": "PhoneToUID"}),
        json!({"Numbers": vec!["z521q6zeaf06kyes"; 101], "Mode": "UIDToPhone"}),
        json!({"Numbers": [13988888888u64], "Mode": "PhoneToUID"}),
        json!({"Numbers": [null], "Mode": "PhoneToUID"}),
        json!({"Numbers": [[]], "Mode": "PhoneToUID"}),
        json!({"Numbers": [{}], "Mode": "PhoneToUID"}),
        json!({"Numbers": [true], "Mode": "UIDToPhone"}),
        json!({"Numbers": [1], "Mode": "UIDToPhone"}),
        json!({"Numbers": ["x".repeat(65)], "Mode": "UIDToPhone"}),
        json!({"Numbers": ["z521q6zeaf06kyes", "y".repeat(200)], "Mode": "UIDToPhone"}),
    ];
    for mode in [
        json!(null),
        json!(1),
        json!(""),
        json!("phonetouid"),
        json!("PHONETOUID"),
        json!("PhoneToUID "),
        json!(" UIDToPhone"),
        json!("PhoneToUid"),
        json!("UIDtoPhone"),
        json!("Both"),
        json!(["PhoneToUID"]),
        json!({"Mode": "PhoneToUID"}),
        json!("PhoneToUID\u{0}"),
    ] {
        bodies.push(json!({"Numbers": ["13988888888"], "Mode": mode}));
    }
    // Numbers the PhoneToUID mode refuses; each alone, and hidden among good ones (the
    // whole batch is refused and nothing of it written).
    for n in BAD_NUMBERS {
        bodies.push(json!({"Numbers": [n], "Mode": "PhoneToUID"}));
        bodies.push(json!({"Numbers": ["13600000001", n, "13600000002"], "Mode": "PhoneToUID"}));
    }
    cases.extend(json_cases(
        "/number-mapping",
        "tencent",
        support::PASSWORD,
        bodies,
    ));
    cases
}

fn identity_cases() -> Vec<Case> {
    let mut cases = common_cases("/identity/verify", "ivr", support::IVR_PASSWORD);
    let good = json!({"verifyServiceNo": "13988888888", "verifyWorkNo": "371",
                      "verifyCode": "4321", "verifyTypeCode": "PIN"});
    let with = |field: &str, value: Value| {
        let mut calldata = good.clone();
        if value.is_null() && field.starts_with('-') {
            calldata.as_object_mut().unwrap().remove(&field[1..]);
        } else {
            calldata[field] = value;
        }
        json!({ "calldata": calldata })
    };
    let mut bodies = vec![
        json!({}),
        json!({"calldata": null}),
        json!({"calldata": []}),
        json!({"calldata": "x"}),
        json!({"calldata": 1}),
        json!({"calldata": {}}),
        json!({"data": good.clone()}),
        json!({"Calldata": good.clone()}),
        with("-verifyServiceNo", Value::Null),
        with("-verifyWorkNo", Value::Null),
        with("-verifyCode", Value::Null),
    ];
    for v in [
        json!(null),
        json!(true),
        json!([]),
        json!({}),
        json!(""),
        json!("abc"),
        json!("1".repeat(21)),
        json!(format!("{:<33}", "13988888888")),
        json!("13988888888\u{3000}"),
        json!("139-8888-888a"),
        json!(-13988888888i64),
        json!(1.5),
    ] {
        bodies.push(with("verifyServiceNo", v));
    }
    for n in BAD_NUMBERS {
        bodies.push(with("verifyServiceNo", json!(n)));
    }
    for v in [
        json!(null),
        json!(""),
        json!(true),
        json!([]),
        json!({}),
        json!("a b"),
        json!("371 "),
        json!(" 371"),
        json!("371\u{3000}"),
        json!("w".repeat(33)),
        json!("37/1"),
        json!("371;"),
        json!(-1.5),
    ] {
        bodies.push(with("verifyWorkNo", v));
    }
    for v in [
        json!("a-b"),
        json!("x".repeat(65)),
        json!(5),
        json!(true),
        json!([]),
        json!({}),
        json!("PIN "),
        json!("P.I.N"),
    ] {
        bodies.push(with("verifyTypeCode", v));
    }
    for v in [
        json!(4321),
        json!(null),
        json!([]),
        json!({}),
        json!(true),
        json!(4321.0),
    ] {
        bodies.push(with("verifyCode", v));
    }
    cases.extend(json_cases(
        "/identity/verify",
        "ivr",
        support::IVR_PASSWORD,
        bodies,
    ));
    cases
}

fn token_cases() -> Vec<Case> {
    let mut cases = common_cases("/token-exchange", "crm", support::CRM_PASSWORD);
    let mut bodies = vec![
        json!({}),
        json!({"mode": null}),
        json!({"mode": 1}),
        json!({"mode": ""}),
        json!({"mode": "JWT", "accountName": "a"}),
        json!({"mode": "saml", "accountName": "a"}),
        json!({"mode": "jwt"}),
        json!({"mode": "jwt", "accountName": null}),
        json!({"mode": "jwt", "accountName": ""}),
        json!({"mode": "jwt", "accountName": "   "}),
        json!({"mode": "jwt", "accountName": 7}),
        json!({"mode": "jwt", "accountName": ["a"]}),
        json!({"mode": "jwt", "accountName": "a".repeat(129)}),
        json!({"mode": "jwt", "accountName": "a", "subjectToken": "t"}),
        json!({"mode": "jwt", "accountName": "a", "extra": 1}),
        json!({"mode": "oauth"}),
        json!({"mode": "oauth", "subjectToken": ""}),
        json!({"mode": "oauth", "subjectToken": null}),
        json!({"mode": "oauth", "subjectToken": 5}),
        json!({"mode": "oauth", "subjectToken": "t".repeat(8193)}),
        json!({"mode": "oauth", "subjectToken": "t", "accountName": "a"}),
        json!({"mode": "oauth", "subjectToken": "t", "scope": "x"}),
    ];
    for i in 0..60 {
        // Unknown fields are refused, whatever they are called.
        bodies.push(json!({"mode": "oauth", "subjectToken": "t", format!("field{i}"): i}));
    }
    cases.extend(json_cases(
        "/token-exchange",
        "crm",
        support::CRM_PASSWORD,
        bodies,
    ));
    cases
}

fn directory_cases() -> Vec<Case> {
    let mut cases = common_cases("/agents/softphone", "dev", "dev");
    let mut bodies = vec![
        json!({}),
        json!({"account": null}),
        json!({"account": ""}),
        json!({"account": "   "}),
        json!({"account": 1}),
        json!({"account": ["alice"]}),
        json!({"account": {}}),
        json!({"account": true}),
        json!({"account": "a".repeat(129)}),
        json!({"account": "ali\u{0}ce"}),
        json!({"account": "ali\nce"}),
        json!({"account": "ali\u{7f}ce"}),
        json!({"Account": "alice"}),
        json!({"accounts": ["alice"]}),
        json!({"account": "x".repeat(5000)}),
    ];
    for i in 0..80 {
        bodies.push(json!({"account": format!("a\u{1}{i}")}));
    }
    cases.extend(json_cases("/agents/softphone", "dev", "dev", bodies));
    cases
}

type Fut = std::pin::Pin<Box<dyn std::future::Future<Output = String> + Send>>;

async fn every_endpoint(store: Arc<dyn support::Store>, dump: impl Fn() -> Fut) {
    let clock = Arc::new(cc_shared::domain::clock::ManualClock::at(support::T0));

    // Number mapping: nothing written at all.
    let before = dump().await;
    let svc = support::number_mapping(store.clone());
    run(
        "number-mapping",
        number_mapping_cases(),
        |r| number_mapping::handle(&svc, r),
        tencent,
    )
    .await;
    assert_eq!(
        dump().await,
        before,
        "a refused mapping request wrote something"
    );
    let (status, _) = support::call_mapping(
        &svc,
        support::mapping_request(&["13988888888"], "PhoneToUID"),
    )
    .await;
    assert_eq!(status, 200);

    // Token exchange and the agent directory: nothing written, no vendor called.
    let before = dump().await;
    let (token, _) = support::token_exchange(
        support::TokenSetup {
            idp_url: "http://127.0.0.1:9/oauth/token_exchange",
            private_key: None,
            exp_millis: false,
            timeout_ms: 500,
        },
        store.clone(),
    );
    run(
        "token-exchange",
        token_cases(),
        |r| token_exchange::handle(&token, r),
        oauth,
    )
    .await;
    let dir_svc = agent_sync::AgentDirectory::new(
        cc_shared::web::auth::Credentials::dev(),
        Arc::new(support::cec_client("http://127.0.0.1:9")),
        store.clone(),
        clock.clone(),
    );
    run(
        "agent directory",
        directory_cases(),
        |r| agent_sync::handle(&dir_svc, r),
        directory,
    )
    .await;
    assert_eq!(dump().await, before, "a refused request wrote something");

    // Identity verification: a refused attempt is recorded, but never counted against the
    // customer, whose PIN state stays as it was.
    let (ivr, _) = support::identity_verification(store.clone(), &[("13988888888", "4321")]).await;
    let phone = support::index_of("13988888888");
    let state = store.load_customer(&phone).await.unwrap();
    run(
        "identity-verification",
        identity_cases(),
        |r| identity_verification::handle(&ivr, r),
        huawei,
    )
    .await;
    assert_eq!(store.load_customer(&phone).await.unwrap(), state);
    let (status, data) =
        support::call_verify(&ivr, support::verify_request("13988888888", "4321")).await;
    assert_eq!((status, data.verify_result), (200, 1));
}

#[tokio::test]
async fn bad_input_battery_embedded() {
    let (store, dir) = support::embedded_store();
    let path = dir.path().to_path_buf();
    every_endpoint(store, move || {
        let path = path.clone();
        Box::pin(async move { support::dump_embedded(&path) })
    })
    .await;
}

#[tokio::test]
async fn bad_input_battery_dynamodb() {
    let (store, _) = support::dynamo_store().await;
    let scan = store.clone();
    every_endpoint(store, move || {
        let scan = scan.clone();
        Box::pin(async move { support::dump_dynamo(&scan).await })
    })
    .await;
}
