//! The four Lambda binaries as Lambda runs them: under the Runtime API emulator of `testkit`
//! (the benchmark's), fed events of every shape a misconfigured integration or a hostile test
//! can produce, and DynamoDB stalling behind a proxy. Each event gets an answer (the caller's
//! error format where a response is possible, an invocation error otherwise) and the process
//! lives on. Needs the debug binaries: `scripts/test` builds them first (`cargo build --bins`).

use crate::support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use testkit::fault_proxy::{Fault, FaultProxy};
use testkit::runtime_api::{Outcome, RuntimeApi};

fn bin_dir() -> PathBuf {
    // target/debug/deps/<this test> -> target/debug
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|p| p.parent()).unwrap().to_path_buf()
}

/// One function's binary, started against its own emulator.
struct Function {
    api: RuntimeApi,
    child: tokio::process::Child,
    /// The route the binary serves (`agent-sync` in its softphone role), whose openapi.yaml
    /// operation every HTTP answer is checked against.
    route: &'static str,
}

fn route_of(binary: &str) -> &'static str {
    cc_callbacks::functions::FUNCTIONS
        .iter()
        .find(|f| f.name == binary)
        .unwrap_or_else(|| panic!("no function {binary}"))
        .route
}

async fn start(binary: &str, env: &[(&str, String)]) -> Function {
    start_with(binary, env, Stdio::null()).await
}

/// `start`, with the function's stdout (its log) going to `stdout`.
async fn start_with(binary: &str, env: &[(&str, String)], stdout: Stdio) -> Function {
    let api = RuntimeApi::start().await;
    let child = spawn(binary, &api, env, stdout);
    api.wait_ready(Duration::from_secs(30)).await.unwrap();
    Function {
        api,
        child,
        route: route_of(binary),
    }
}

/// The function's process, as Lambda starts it, against `api`.
fn spawn(
    binary: &str,
    api: &RuntimeApi,
    env: &[(&str, String)],
    stdout: Stdio,
) -> tokio::process::Child {
    let path = bin_dir().join(binary);
    assert!(
        path.exists(),
        "{} is missing: build the function binaries first (`cargo build --workspace --bins`, as \
         scripts/test does)",
        path.display()
    );
    tokio::process::Command::new(path)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "tests")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("LOG_LEVEL", "warn")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(stdout)
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

impl Function {
    /// One invocation; an HTTP answer is checked against openapi.yaml.
    async fn invoke(&self, event: &Value) -> Outcome {
        let bytes = serde_json::to_vec(event).unwrap();
        let outcome = self.api.invoke(bytes.into()).await.unwrap().1;
        if outcome.ok {
            let response: Value = serde_json::from_slice(&outcome.body).unwrap();
            let mut headers = http::HeaderMap::new();
            for (name, value) in response["headers"].as_object().into_iter().flatten() {
                headers.insert(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    http::HeaderValue::from_str(value.as_str().unwrap()).unwrap(),
                );
            }
            support::openapi::contract().check_answer(
                self.route,
                response["statusCode"].as_u64().unwrap() as u16,
                &headers,
                response["body"].as_str().unwrap(),
            );
        }
        outcome
    }

    /// Stops the function and returns what it wrote on stdout (when started with it piped).
    async fn stop(self) -> Vec<u8> {
        let Function {
            api: _api,
            mut child,
            ..
        } = self;
        child.start_kill().unwrap();
        child.wait_with_output().await.unwrap().stdout
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

async fn table() -> String {
    let (store, _) = support::dynamo_store().await;
    store.table().to_string()
}

/// Each binary with the settings it needs to start (vendors it never reaches in these tests).
async fn binaries(
    endpoint: &str,
) -> Vec<(&'static str, Vec<(&'static str, String)>, &'static str)> {
    let table = table().await;
    let dev = cc_shared::web::auth::entry_for("dev", "dev");
    let common = vec![
        ("TABLE_NAME", table),
        ("AWS_ENDPOINT_URL_DYNAMODB", endpoint.to_string()),
    ];
    let with = |extra: &[(&'static str, &str)]| {
        let mut env = common.clone();
        env.extend(
            extra
                .iter()
                .map(|(k, v)| (*k, v.replace("DEV_ENTRY", &dev))),
        );
        env
    };
    vec![
        (
            "number-mapping",
            with(&[
                ("NUMBER_MAPPING_CREDENTIALS", "DEV_ENTRY"),
                ("NUMBER_INDEX_KEY", support::INDEX_KEY),
                ("NUMBER_KEYRING", support::KEYRING),
            ]),
            "/number-mapping",
        ),
        (
            "identity-verification",
            with(&[
                ("IDENTITY_VERIFY_CREDENTIALS", "DEV_ENTRY"),
                ("IDENTITY_PIN_PEPPER", "a-local-pepper-of-at-least-32-bytes"),
                ("NUMBER_INDEX_KEY", support::INDEX_KEY),
            ]),
            "/identity/verify",
        ),
        (
            "token-exchange",
            with(&[
                ("TOKEN_EXCHANGE_CREDENTIALS", "DEV_ENTRY"),
                ("FUYUN_CLIENT_ID", "client"),
                ("FUYUN_CLIENT_SECRET", "secret"),
                ("FUYUN_SCOPE", "scope"),
                ("FUYUN_REDIRECT_URL", "https://crm.example.com/cb"),
                ("FUYUN_APP_NAME", "crm"),
                ("FUYUN_TOKEN_URL", "http://127.0.0.1:9/oauth/token_exchange"),
                ("NUMBER_INDEX_KEY", support::INDEX_KEY),
            ]),
            "/token-exchange",
        ),
        (
            "agent-sync",
            with(&[
                ("AGENT_SYNC_ROLE", "softphone"),
                ("AGENT_DIRECTORY_CREDENTIALS", "DEV_ENTRY"),
                ("CEC_BASE_URL", "http://127.0.0.1:9"),
                ("CEC_APP_KEY", "key"),
                ("CEC_APP_SECRET", "secret"),
                ("NUMBER_INDEX_KEY", support::INDEX_KEY),
            ]),
            "/agents/softphone",
        ),
    ]
}

fn v2(path: &str, body: Value) -> Value {
    let mut event = json!({
        "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": "Basic ZGV2OmRldg==", "content-type": "application/json"},
        "requestContext": {"http": {"method": "POST", "path": path}, "requestId": "r1"},
        "isBase64Encoded": false
    });
    if !body.is_null() {
        event["body"] = body;
    }
    event
}

/// The HTTP answer inside a proxy response: (status, parsed body).
fn http_answer(outcome: &Outcome) -> (u16, Value) {
    assert!(
        outcome.ok,
        "an invocation error where an HTTP answer was due: {}",
        String::from_utf8_lossy(&outcome.body)
    );
    let response: Value = serde_json::from_slice(&outcome.body).unwrap();
    let status = response["statusCode"].as_u64().unwrap() as u16;
    let body = serde_json::from_str(response["body"].as_str().unwrap()).unwrap();
    (status, body)
}

/// The caller's own error format, by function: (status, body) is an error of it.
fn assert_vendor_error(binary: &str, status: u16, body: &Value, what: &str) {
    match binary {
        "number-mapping" => {
            assert!(matches!(status, 400 | 405), "{what}: {status}");
            assert_eq!(body["Code"], status, "{what}: {body}");
        }
        "identity-verification" => {
            assert_eq!(status, 200, "{what}");
            assert_eq!(
                body["calldata"]["data"]["verifyResult"], 3,
                "{what}: {body}"
            );
            assert_eq!(body["calldata"]["data"]["verifyReturn1"], "bad_request");
        }
        "token-exchange" => {
            assert!(matches!(status, 400 | 405), "{what}: {status}");
            assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        }
        _ => {
            assert!(matches!(status, 400 | 405), "{what}: {status}");
            assert_eq!(body["error"], "invalid_request", "{what}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_shape_stops_a_function() {
    let endpoint = support::dynamodb_endpoint();
    for (binary, env, path) in binaries(&endpoint).await {
        let mut f = start(binary, &env).await;

        // Events that are HTTP requests, however broken: answered in the caller's format.
        let mut not_base64 = v2(path, json!("%%% this is not base64 %%%"));
        not_base64["isBase64Encoded"] = json!(true);
        let mut no_context = v2(path, json!("{}"));
        no_context.as_object_mut().unwrap().remove("requestContext");
        let huge = v2(path, json!("x".repeat(6 * 1024 * 1024)));
        let mut huge_base64 = v2(path, json!("QUJD".repeat(1024 * 1024)));
        huge_base64["isBase64Encoded"] = json!(true);
        let mut bad_method = v2(path, json!("{}"));
        bad_method["requestContext"]["http"]["method"] = json!("NOT A METHOD");
        for (what, event) in [
            ("a body marked base64 that is not", not_base64),
            ("no requestContext", no_context),
            ("a 6 MB body", huge),
            ("a 4 MB base64 body", huge_base64),
            ("a malformed method", bad_method),
        ] {
            let (status, body) = http_answer(&f.invoke(&event).await);
            assert_vendor_error(binary, status, &body, what);
        }
        // 405 names what is allowed.
        let mut get = v2(path, Value::Null);
        get["requestContext"]["http"]["method"] = json!("GET");
        let outcome = f.invoke(&get).await;
        let response: Value = serde_json::from_slice(&outcome.body).unwrap();
        assert_eq!(response["headers"]["allow"], "POST", "{binary}: {response}");

        // A REST API (payload 1.0) event is a request too.
        let rest = json!({
            "resource": path, "path": path, "httpMethod": "POST",
            "headers": {"Authorization": "Basic ZGV2OmRldg=="},
            "multiValueHeaders": {"Authorization": ["Basic ZGV2OmRldg=="]},
            "requestContext": {"httpMethod": "POST", "requestId": "r2"},
            "body": "not json", "isBase64Encoded": false
        });
        let (status, body) = http_answer(&f.invoke(&rest).await);
        assert_vendor_error(binary, status, &body, "a REST API event");

        // Events with nothing of HTTP in them: invocation errors, never a crash.
        for event in [
            json!({}),
            json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}),
            json!({"Records": [{"eventSource": "aws:s3"}]}),
            json!([1, 2, 3]),
            json!("a string"),
            json!(42),
            json!({"headers": 5, "body": ["not", "a", "string"]}),
        ] {
            let outcome = f.invoke(&event).await;
            assert!(!outcome.ok, "{binary}: {event} answered as a request");
        }

        // Still the same process, still answering.
        let mut bad_auth = v2(path, json!("{}"));
        bad_auth["headers"]["authorization"] = json!("Basic bm9ib2R5Om5vcGU=");
        let (status, _) = http_answer(&f.invoke(&bad_auth).await);
        assert_eq!(status, 401, "{binary}");
        assert!(f.alive(), "{binary} exited");
    }
}

/// DynamoDB that never answers, or answers late: the vendor's "unavailable" answer within
/// the function's store budget (3 s for number mapping and identity verification), every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_dynamodb_gets_the_vendors_unavailable_answer_in_time() {
    let proxy = FaultProxy::start(&support::dynamodb_endpoint()).await;
    let all = binaries(&proxy.url).await;
    for (binary, env, path) in all.into_iter().take(2) {
        let mut f = start(binary, &env).await;
        let body = if binary == "number-mapping" {
            json!(r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#)
        } else {
            json!(
                r#"{"calldata":{"verifyServiceNo":"13988888888","verifyWorkNo":"371","verifyCode":"4321"}}"#
            )
        };
        for fault in [
            Fault::Stall,
            Fault::Delay(Duration::from_secs(30)),
            Fault::Reset,
            Fault::Truncate,
        ] {
            proxy.set(fault);
            for _ in 0..2 {
                let started = Instant::now();
                let (status, answer) = http_answer(&f.invoke(&v2(path, body.clone())).await);
                let took = started.elapsed();
                assert!(
                    took < Duration::from_millis(4500),
                    "{binary} {fault:?}: answered after {took:?}"
                );
                if binary == "number-mapping" {
                    assert_eq!(
                        (status, answer["Code"].clone()),
                        (503, json!(503)),
                        "{fault:?}"
                    );
                } else {
                    assert_eq!(status, 200);
                    assert_eq!(answer["calldata"]["data"]["verifyResult"], 3, "{fault:?}");
                    assert_eq!(answer["calldata"]["data"]["verifyReturn1"], "unavailable");
                }
            }
        }
        // And it recovers as soon as DynamoDB does.
        proxy.set(Fault::None);
        let (status, _) = http_answer(&f.invoke(&v2(path, body.clone())).await);
        assert_eq!(status, 200, "{binary} after recovery");
        assert!(f.alive());
    }
}

/// Secrets Manager that never answers at init: the function's init fails within the AWS call
/// bounds (3 s), naming the setting, instead of hanging until Lambda's init limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_secrets_manager_fails_init_in_time_naming_the_setting() {
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:pepper";
    let secrets = testkit::fake_secrets_manager(vec![(arn.into(), "p".repeat(40))]).await;
    let proxy = FaultProxy::start(&secrets).await;
    proxy.set(Fault::Stall);
    let path = bin_dir().join("identity-verification");
    let api = RuntimeApi::start().await;
    let started = Instant::now();
    let child = tokio::process::Command::new(path)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", &api.address)
        .env("AWS_LAMBDA_FUNCTION_NAME", "identity-verification")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env(
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/identity-verification",
        )
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "tests")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("TABLE_NAME", "unused")
        .env("DYNAMODB_PRIME", "false")
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &proxy.url)
        .env("IDENTITY_PIN_PEPPER_SECRET_ARN", arn)
        .env("NUMBER_INDEX_KEY", support::INDEX_KEY)
        .env(
            "IDENTITY_VERIFY_CREDENTIALS",
            cc_shared::web::auth::entry_for("dev", "dev"),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
        .await
        .expect("init hung on a stalled Secrets Manager")
        .unwrap();
    assert!(!output.status.success());
    let took = started.elapsed();
    assert!(took < Duration::from_millis(4500), "{took:?}");
    // The init failure is logged (Lambda keeps the function's output) naming the setting.
    let logged = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(logged.contains("init failed"), "{logged}");
    assert!(
        logged.contains("IDENTITY_PIN_PEPPER_SECRET_ARN"),
        "{logged}"
    );
}

/// Every log line of a request carries Lambda's request ID, API Gateway's
/// `requestContext.requestId` and the X-Ray trace ID, so that a contact center's complaint can
/// be found in the logs (README "Operating a stage").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_log_line_of_a_request_carries_its_ids() {
    let endpoint = support::dynamodb_endpoint();
    let (binary, mut env, path) = binaries(&endpoint).await.remove(0);
    assert_eq!(binary, "number-mapping");
    env.push(("LOG_LEVEL", "info".into()));
    let f = start_with(binary, &env, Stdio::piped()).await;
    let body = json!({"Numbers": ["13988888888"], "Mode": "PhoneToUID"}).to_string();
    let mut event = v2(path, json!(body));
    event["requestContext"]["requestId"] = json!("api-req-42");
    assert_eq!(http_answer(&f.invoke(&event).await).0, 200);
    // A requestId of another type is ignored, not fatal.
    event["requestContext"]["requestId"] = json!(42);
    assert_eq!(http_answer(&f.invoke(&event).await).0, 200);

    let stdout = f.stop().await;
    let lines: Vec<Value> = String::from_utf8_lossy(&stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .filter(|l: &Value| l["message"] == "request")
        .collect();
    assert_eq!(lines.len(), 2, "{}", String::from_utf8_lossy(&stdout));
    for (line, api_id) in lines.iter().zip(["api-req-42", ""]) {
        let span = &line["span"];
        assert!(
            span["request_id"].as_str().is_some_and(|id| !id.is_empty()),
            "{line}"
        );
        assert_eq!(span["api_request_id"], api_id, "{line}");
        assert_eq!(
            span["trace_id"], "Root=1-00000000-000000000000000000000000",
            "{line}"
        );
    }
    assert_ne!(
        lines[0]["span"]["request_id"],
        lines[1]["span"]["request_id"]
    );
}

/// An init failure is reported through the Runtime API (`/runtime/init/error`, checked strictly
/// by the emulator) with an error type and a message naming the missing setting, then the process
/// exits: the function's log and `Errors` say why, instead of a bare `Runtime.ExitError`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_binary_reports_an_init_failure_naming_the_setting() {
    let endpoint = support::dynamodb_endpoint();
    // (binary, its settings less one, the one left out)
    type Case = (&'static str, Vec<(&'static str, String)>, &'static str);
    let mut cases: Vec<Case> = Vec::new();
    for (binary, env, _) in binaries(&endpoint).await {
        let var = cc_callbacks::functions::FUNCTIONS
            .iter()
            .find(|f| f.name == binary)
            .unwrap()
            .credentials_var;
        let without =
            |name: &str| -> Vec<_> { env.iter().filter(|(k, _)| *k != name).cloned().collect() };
        cases.push((binary, without(var), var));
        cases.push((binary, without("TABLE_NAME"), "TABLE_NAME"));
        if binary == "agent-sync" {
            // One binary, two functions: without its role it is neither.
            cases.push((binary, without("AGENT_SYNC_ROLE"), "AGENT_SYNC_ROLE"));
        }
    }
    for (binary, env, missing) in cases {
        let api = RuntimeApi::start().await;
        let mut child = spawn(binary, &api, &env, Stdio::null());
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .unwrap_or_else(|_| panic!("{binary} without {missing} did not exit"))
            .unwrap();
        assert!(!status.success(), "{binary} without {missing} exited 0");
        let report = api
            .init_error()
            .unwrap_or_else(|| panic!("{binary} without {missing} reported nothing"));
        let report: Value =
            serde_json::from_str(&report).unwrap_or_else(|_| panic!("{binary}: {report}"));
        assert_eq!(
            report["errorType"], "Runtime.ConfigError",
            "{binary}: {report}"
        );
        let message = report["errorMessage"].as_str().unwrap();
        assert!(
            message.contains(missing),
            "{binary} without {missing}: {message}"
        );
        assert!(
            api.first_next().is_none(),
            "{binary} asked for work after failing"
        );
    }
}

/// SIGTERM (what Lambda sends at shutdown when an extension is registered) during an
/// invocation cut short: the metrics counted so far are written before the process exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_the_metrics_of_an_invocation_cut_short() {
    let proxy = FaultProxy::start(&support::dynamodb_endpoint()).await;
    let (binary, mut env, path) = binaries(&proxy.url).await.remove(0);
    env.push(("DYNAMODB_PRIME", "false".into()));
    env.push(("STAGE", "test".into()));
    let f = start_with(binary, &env, Stdio::piped()).await;
    proxy.set(Fault::Stall);
    let body = json!(r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#);
    let event = serde_json::to_vec(&v2(path, body)).unwrap();
    let api = std::sync::Arc::new(f.api);
    let invocation = tokio::spawn({
        let api = api.clone();
        async move { api.invoke(event.into()).await }
    });
    // The invocation is in flight once its read reaches DynamoDB (stalled there).
    tokio::time::timeout(Duration::from_secs(10), proxy.requests_reach(1))
        .await
        .expect("the invocation never reached DynamoDB");
    let child = f.child;
    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    let out = tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
        .await
        .expect("SIGTERM did not end the process")
        .unwrap();
    assert!(out.status.success(), "{:?}", out.status);
    let docs = emf_documents(&out.stdout);
    assert_eq!(
        total(&docs, cc_shared::metrics::name::COLD_START),
        1.0,
        "the cut-short invocation's metrics were not flushed:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    invocation.abort();
}

/// An invocation that cannot be a request at all is an invocation error whose body says what
/// is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_is_no_request_gets_an_error_naming_the_problem() {
    let endpoint = support::dynamodb_endpoint();
    let (binary, env, _) = binaries(&endpoint).await.remove(0);
    let f = start(binary, &env).await;
    let outcome = f
        .invoke(&json!({"Records": [{"eventSource": "aws:s3"}]}))
        .await;
    assert!(!outcome.ok);
    let error: Value = serde_json::from_slice(&outcome.body).unwrap();
    let message = error["errorMessage"].as_str().unwrap_or_default();
    assert!(
        message.contains("API Gateway") || message.contains("HTTP"),
        "the error does not say what is wrong: {error}"
    );
}

/// The scheduled sync is no API request, but its lines carry Lambda's request ID too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_syncs_log_line_carries_its_request_id() {
    let endpoint = support::dynamodb_endpoint();
    let (binary, mut env, _) = binaries(&endpoint).await.remove(3);
    assert_eq!(binary, "agent-sync");
    env.retain(|(k, _)| *k != "AGENT_SYNC_ROLE");
    env.push(("AGENT_SYNC_ROLE", "schedule".into()));
    // The CEC at 127.0.0.1:9 refuses: the sync fails, and says so in an error line.
    let f = start_with(binary, &env, Stdio::piped()).await;
    let event = json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}});
    let bytes = serde_json::to_vec(&event).unwrap();
    let (_, outcome) = f.api.invoke(bytes.into()).await.unwrap();
    assert!(!outcome.ok, "a sync against a refusing CEC must fail");
    let stdout = f.stop().await;
    let text = String::from_utf8_lossy(&stdout).to_string();
    let line: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "sync failed")
        .unwrap_or_else(|| panic!("no sync line:\n{text}"));
    let span = &line["span"];
    assert!(
        span["request_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{line}"
    );
    assert_eq!(span["api_request_id"], "", "{line}");
}

/// The EMF documents among a function's stdout lines (the rest are its JSON log).
fn emf_documents(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l.get("_aws").is_some())
        .collect()
}

/// Checks one EMF document against the specification's shape and our vocabulary: namespace
/// `cc-callbacks`, one dimension set `[Function, Stage]`, every metric declared with its unit
/// in `cc_shared::metrics::UNITS` and given a number (or a list of numbers), and nothing else
/// in the document (so no number, ID, token or account can ride along as a property).
fn assert_valid_emf(doc: &Value, function: &str, stage: &str) {
    let aws = &doc["_aws"];
    assert!(
        aws["Timestamp"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000_000),
        "{doc}"
    );
    let directives = aws["CloudWatchMetrics"]
        .as_array()
        .expect("CloudWatchMetrics");
    assert_eq!(directives.len(), 1, "{doc}");
    let directive = &directives[0];
    assert_eq!(directive["Namespace"], "cc-callbacks", "{doc}");
    assert_eq!(
        directive["Dimensions"],
        json!([["Function", "Stage"]]),
        "{doc}"
    );
    assert_eq!(doc["Function"], function, "{doc}");
    assert_eq!(doc["Stage"], stage, "{doc}");
    let metrics = directive["Metrics"].as_array().expect("Metrics");
    assert!(!metrics.is_empty(), "{doc}");
    let mut allowed: Vec<&str> = vec!["_aws", "Function", "Stage"];
    for m in metrics {
        let name = m["Name"].as_str().expect("Name");
        let (_, unit) = cc_shared::metrics::UNITS
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("{name} is not a declared metric: {doc}"));
        let unit = match unit {
            metrics::Unit::Count => "Count",
            metrics::Unit::Milliseconds => "Milliseconds",
            other => panic!("unexpected unit {other:?}"),
        };
        assert_eq!(m["Unit"], unit, "{name}: {doc}");
        let value = &doc[name];
        let numbers = match value {
            Value::Array(values) => values.iter().all(Value::is_number) && !values.is_empty(),
            other => other.is_number(),
        };
        assert!(numbers, "{name} has no numeric value: {doc}");
        allowed.push(name);
    }
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    for key in keys {
        assert!(
            allowed.contains(&key.as_str()),
            "unexpected member {key}: {doc}"
        );
    }
}

/// The sum of metric `name` over `docs` (a list of values counts its length).
fn total(docs: &[Value], name: &str) -> f64 {
    docs.iter()
        .map(|d| match &d[name] {
            Value::Array(values) => values.len() as f64,
            v => v.as_f64().unwrap_or(0.0),
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_write_valid_emf_metrics_and_nothing_private() {
    use cc_shared::metrics::name;
    let endpoint = support::dynamodb_endpoint();
    let number = "13900001111";
    let subject_token = "crm-subject-token-4711";
    for (binary, mut env, path) in binaries(&endpoint).await {
        env.push(("STAGE", "test".into()));
        let secrets: Vec<String> = env
            .iter()
            .filter(|(k, _)| {
                ["KEY", "PEPPER", "CRED", "SECRET"]
                    .iter()
                    .any(|w| k.contains(w))
            })
            .map(|(_, v)| v.clone())
            .collect();
        // Each binary's usual request, the status it gets here, and what must be counted
        // over the four invocations below (this request twice, one with wrong credentials,
        // one malformed): the token exchange's IdP and the softphone's account do not exist
        // in this test, so those requests fail upstream and are not found.
        let (body, status, expected): (Value, u16, Vec<(&str, f64)>) = match binary {
            "number-mapping" => (
                json!({"Numbers": [number], "Mode": "PhoneToUID"}),
                200,
                vec![
                    (name::REQUESTS_OK, 2.0),
                    (name::REQUESTS_CLIENT_ERROR, 1.0),
                    (name::NUMBERS_LOOKED_UP, 2.0),
                    (name::IDS_CREATED, 1.0),
                ],
            ),
            // Huawei's flow gets its answers with status 200: an unknown customer is an
            // answered request, the refused ones count as bad requests.
            "identity-verification" => (
                json!({"calldata": {"verifyServiceNo": number, "verifyWorkNo": "1001",
                        "verifyCode": "123456", "verifyTypeCode": "PIN_CHECK"}}),
                200,
                vec![
                    (name::REQUESTS_OK, 2.0),
                    (name::REQUESTS_CLIENT_ERROR, 1.0),
                    (name::VERIFY_UNKNOWN_CUSTOMER, 2.0),
                    (name::VERIFY_BAD_REQUEST, 2.0),
                ],
            ),
            "token-exchange" => (
                json!({"mode": "oauth", "subjectToken": subject_token}),
                502,
                vec![
                    (name::REQUESTS_UPSTREAM_FAILURE, 2.0),
                    (name::REQUESTS_CLIENT_ERROR, 1.0),
                    (name::TOKEN_CACHE_MISSES, 2.0),
                    (name::UPSTREAM_EXCHANGES, 2.0),
                    (name::UPSTREAM_LATENCY, 2.0),
                    (name::UPSTREAM_ERRORS, 2.0),
                ],
            ),
            _ => (
                json!({"account": "alice"}),
                404,
                vec![(name::REQUESTS_CLIENT_ERROR, 3.0)],
            ),
        };
        let f = start_with(binary, &env, Stdio::piped()).await;
        let ok = v2(path, json!(body.to_string()));
        let answer = http_answer(&f.invoke(&ok).await);
        assert_eq!(answer.0, status, "{binary}: {answer:?}");
        let uid = answer.1["Results"][0]["Value"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let mut unauthorized = ok.clone();
        unauthorized["headers"]["authorization"] = json!("Basic ZGV2Ondyb25n");
        f.invoke(&unauthorized).await;
        f.invoke(&v2(path, json!("{not json"))).await;
        // A second request after the first: the cold start is not counted again.
        f.invoke(&ok).await;

        let stdout = f.stop().await;
        let text = String::from_utf8_lossy(&stdout).to_string();
        let docs = emf_documents(&stdout);
        assert!(
            docs.len() >= 4,
            "{binary}: one flush per invocation expected:\n{text}"
        );
        for doc in &docs {
            assert_valid_emf(doc, binary, "test");
            let line = doc.to_string();
            for forbidden in [number, "8613900001111", subject_token, "alice", &uid]
                .into_iter()
                .chain(secrets.iter().map(String::as_str))
            {
                assert!(
                    forbidden.is_empty() || !line.contains(forbidden),
                    "{binary}: an EMF line holds a number, ID, account, token or secret: {line}"
                );
            }
        }
        let counted = [
            (name::COLD_START, 1.0),
            (name::REQUESTS_AUTH_FAILURE, 1.0),
            (name::LATENCY_AUTH_FAILURE, 1.0),
        ];
        for (metric, want) in counted.into_iter().chain(expected) {
            assert_eq!(total(&docs, metric), want, "{binary}, {metric}:\n{text}");
        }
    }
}

/// An API Gateway event of `body` at `path` with BasicAuth `user`:`password`.
fn event_as(path: &str, body: &str, user: &str, password: &str) -> Value {
    let mut event = v2(path, json!(body));
    event["headers"]["authorization"] = json!(cc_shared::web::auth::basic_header(user, password));
    event
}

/// Registers tenant `acme` in `store` with a credential `user@acme` for `function`; its keys.
async fn register_acme(
    store: &cc_shared::store::dynamo::DynamoStore,
    user: &str,
    function: &str,
    password: &str,
) -> cc_shared::domain::tenant::TenantKeys {
    register(store, "acme", user, function, password).await
}

/// Registers tenant `tenant` in `store` with a credential `user@tenant` for `function`; its
/// keys.
async fn register(
    store: &cc_shared::store::dynamo::DynamoStore,
    tenant: &str,
    user: &str,
    function: &str,
    password: &str,
) -> cc_shared::domain::tenant::TenantKeys {
    use cc_shared::domain::tenant::TenantKeys;
    use cc_shared::domain::tenant::{password_digest, Tenant, TenantCredential, TenantId};
    use cc_shared::store::TenantRegistry;

    let acme = TenantId::parse(tenant).unwrap();
    let stack = support::keys();
    let keys = TenantKeys::generate().unwrap();
    store
        .add_tenant(&Tenant::new(acme.clone(), String::new(), 0, &keys, &stack).unwrap())
        .await
        .unwrap();
    let credential = TenantCredential {
        user: user.into(),
        function: function.into(),
        digest: password_digest(password),
        created_at: 0,
    };
    store.add_credential(&acme, &credential).await.unwrap();
    keys
}

/// Platform mode in the Lambda binary: a tenant's caller is served from its own scope and
/// keys beside the default tenant, another tenant's name is 401, and a registry that stalls
/// while a tenant is resolved gets Tencent's 503 in time, never a 401 or a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn number_mapping_serves_a_tenant_in_lambda() {
    let proxy = FaultProxy::start(&support::dynamodb_endpoint()).await;
    let (store, _) = support::dynamo_store().await;
    let password = "the-password-of-tencent-at-acme-0";
    register_acme(&store, "tencent", "number-mapping", password).await;

    let (_, mut env, path) = binaries(&proxy.url).await.remove(0);
    env.retain(|(k, _)| *k != "TABLE_NAME");
    env.push(("TABLE_NAME", store.table().to_string()));
    env.push(("TENANT_CACHE_SECONDS", "0".into()));
    env.push(("DYNAMODB_PRIME", "false".into()));
    let f = start("number-mapping", &env).await;
    let body = r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#;
    let as_user = |user: &str, password: &str| event_as(path, body, user, password);
    let (status, tenant) = http_answer(&f.invoke(&as_user("tencent@acme", password)).await);
    assert_eq!(status, 200, "{tenant}");
    let (status, default) = http_answer(&f.invoke(&as_user("dev", "dev")).await);
    assert_eq!(status, 200);
    let id = |v: &Value| v["Results"][0]["Value"].as_str().unwrap().to_string();
    assert_ne!(id(&tenant), id(&default), "one ID across tenants");
    let (status, _) = http_answer(&f.invoke(&as_user("tencent@globex", password)).await);
    assert_eq!(status, 401);

    proxy.set(Fault::Stall);
    let started = Instant::now();
    let (status, answer) = http_answer(&f.invoke(&as_user("tencent@acme", password)).await);
    assert!(started.elapsed() < Duration::from_millis(4500));
    assert_eq!((status, answer["Code"].clone()), (503, json!(503)));
    proxy.set(Fault::None);
    let (status, again) = http_answer(&f.invoke(&as_user("tencent@acme", password)).await);
    assert_eq!((status, id(&again)), (200, id(&tenant)));
}

/// Identity verification in the Lambda binary serves a tenant with the stack's index key alone
/// (no keyring is given to it): the tenant's PIN checks in its own scope, the default tenant
/// does not see it, another tenant's name is 401, and a stalled registry gets verifyResult 3
/// `unavailable` in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_verification_serves_a_tenant_in_lambda() {
    use cc_shared::domain::tenant::TenantId;
    use cc_shared::store::IdentityStore;

    let proxy = FaultProxy::start(&support::dynamodb_endpoint()).await;
    let (store, _) = support::dynamo_store().await;
    let password = "the-password-of-huawei-at-acme-00";
    let keys = register_acme(&store, "huawei", "identity-verification", password).await;
    let lookup = keys.lookup().unwrap();
    let phone = cc_shared::config::phone_normalizer()
        .unwrap()
        .normalize("13988888888")
        .unwrap();
    store
        .for_tenant(&TenantId::parse("acme").unwrap())
        .put_pins(&[(
            lookup.index.index(&phone),
            lookup.pepper.pin_digest(&phone, "2468"),
        )])
        .await
        .unwrap();

    let (_, mut env, path) = binaries(&proxy.url).await.remove(1);
    assert!(env.iter().all(|(k, _)| *k != "NUMBER_KEYRING"));
    env.retain(|(k, _)| *k != "TABLE_NAME");
    env.push(("TABLE_NAME", store.table().to_string()));
    env.push(("TENANT_CACHE_SECONDS", "0".into()));
    env.push(("DYNAMODB_PRIME", "false".into()));
    let f = start("identity-verification", &env).await;
    let body = r#"{"calldata":{"verifyServiceNo":"13988888888","verifyWorkNo":"371","verifyCode":"2468"}}"#;
    let as_user = |user: &str, password: &str| event_as(path, body, user, password);
    let reason = |v: &Value| v["calldata"]["data"]["verifyReturn1"].clone();
    let (status, tenant) = http_answer(&f.invoke(&as_user("huawei@acme", password)).await);
    assert_eq!((status, reason(&tenant)), (200, json!("ok")), "{tenant}");
    let (status, default) = http_answer(&f.invoke(&as_user("dev", "dev")).await);
    assert_eq!((status, reason(&default)), (200, json!("unknown_customer")));
    let (status, _) = http_answer(&f.invoke(&as_user("huawei@globex", password)).await);
    assert_eq!(status, 401);

    proxy.set(Fault::Stall);
    let started = Instant::now();
    let (status, answer) = http_answer(&f.invoke(&as_user("huawei@acme", password)).await);
    assert!(started.elapsed() < Duration::from_millis(4500));
    assert_eq!(
        (status, reason(&answer)),
        (200, json!("unavailable")),
        "{answer}"
    );
    proxy.set(Fault::None);
    let (status, again) = http_answer(&f.invoke(&as_user("huawei@acme", password)).await);
    assert_eq!((status, reason(&again)), (200, json!("ok")));
}

/// Platform mode's token exchange in the Lambda binary: two tenants, each with its own AICCS
/// app (settings sealed in the registry as `tenants set` seals them), each exchanged at its
/// own fake IdP (the JWT checked against its own key); the default tenant, configured with no
/// app on this stack, gets 503; a tenant's hanging IdP answers it 504 in time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_serves_tenants_at_their_own_idp_in_lambda() {
    use cc_shared::domain::tenant::TenantId;
    use cc_shared::domain::tenant_settings::TenantSettings;
    use cc_shared::store::TenantRegistry;
    use support::fake_idp::{decoding_key, App, Behavior, FakeIdp, JwtExpectation, KeyPair};

    let (store, _) = support::dynamo_store().await;
    let mut idps = Vec::new();
    for tenant in ["acme", "globex"] {
        let keys = register(&store, tenant, "crm", "token-exchange", "crm-password-0001").await;
        let pair = KeyPair::generate();
        let app = App {
            client_id: format!("{tenant}-client"),
            client_secret: format!("{tenant}-secret"),
            issuer: format!("https://{tenant}.example.com"),
            app_name: format!("{tenant}app"),
            ..App::default()
        };
        let idp = FakeIdp::start_for(
            JwtExpectation {
                key: decoding_key(&pair),
                exp_millis: false,
            },
            app.clone(),
        )
        .await;
        let mut settings = TenantSettings::default();
        for (name, value) in [
            ("FUYUN_CLIENT_ID", app.client_id.as_str()),
            ("FUYUN_CLIENT_SECRET", app.client_secret.as_str()),
            ("FUYUN_PRIVATE_KEY", pair.private_pem.as_str()),
            ("FUYUN_SCOPE", app.scope.as_str()),
            ("FUYUN_REDIRECT_URL", app.redirect_url.as_str()),
            ("FUYUN_ISSUER", app.issuer.as_str()),
            ("FUYUN_TOKEN_URL", idp.url.as_str()),
        ] {
            settings.set(name, Some(value.into())).unwrap();
        }
        let id = TenantId::parse(tenant).unwrap();
        let sealed = settings
            .seal(&keys.lookup().unwrap().settings, &id, 1)
            .unwrap();
        assert!(store.set_settings(&id, 0, &sealed).await.unwrap());
        idps.push(idp);
    }
    let (_, mut env, path) = binaries(&support::dynamodb_endpoint()).await.remove(2);
    env.retain(|(k, _)| *k != "TABLE_NAME" && !k.starts_with("FUYUN_"));
    env.push(("TABLE_NAME", store.table().to_string()));
    env.push(("TENANT_CACHE_SECONDS", "0".into()));
    env.push(("FUYUN_TIMEOUT_MS", "2000".into()));
    let f = start("token-exchange", &env).await;
    let body = r#"{"mode":"jwt","accountName":"agent007"}"#;
    let as_user = |user: &str| event_as(path, body, user, "crm-password-0001");
    let token = |answer: &(u16, Value)| {
        assert_eq!(answer.0, 200, "{}", answer.1);
        answer.1["access_token"].as_str().unwrap().to_string()
    };
    let acme = token(&http_answer(&f.invoke(&as_user("crm@acme")).await));
    let globex = token(&http_answer(&f.invoke(&as_user("crm@globex")).await));
    assert_ne!(acme, globex);
    assert_eq!((idps[0].requests(), idps[1].requests()), (1, 1));
    // Cached per tenant.
    assert_eq!(
        token(&http_answer(&f.invoke(&as_user("crm@acme")).await)),
        acme
    );
    assert_eq!(idps[0].requests(), 1);
    let (status, answer) = http_answer(&f.invoke(&event_as(path, body, "dev", "dev")).await);
    assert_eq!(
        (status, answer["error"].clone()),
        (503, json!("temporarily_unavailable"))
    );

    idps[1].set(Behavior::Hang);
    let started = Instant::now();
    let other = r#"{"mode":"jwt","accountName":"agent008"}"#;
    let hung = http_answer(
        &f.invoke(&event_as(path, other, "crm@globex", "crm-password-0001"))
            .await,
    );
    assert_eq!(hung.0, 504, "{}", hung.1);
    assert!(started.elapsed() < Duration::from_millis(4500));
    let acme_other = token(&http_answer(
        &f.invoke(&event_as(path, other, "crm@acme", "crm-password-0001"))
            .await,
    ));
    assert_ne!(acme_other, acme);
    for idp in &idps {
        idp.assert_no_violations();
    }
}

/// Registers `tenant` with its own CEC at `cec` (AK/SK `<tenant>-ak`/`<tenant>-sk`), its
/// settings sealed as `tenants set` seals them.
async fn register_with_cec(store: &cc_shared::store::dynamo::DynamoStore, tenant: &str, cec: &str) {
    use cc_shared::domain::tenant::TenantId;
    use cc_shared::domain::tenant_settings::TenantSettings;
    use cc_shared::store::TenantRegistry;

    let keys = register(store, tenant, "crm", "agent-sync", "crm-password-0001").await;
    let mut settings = TenantSettings::default();
    for (name, value) in [
        ("CEC_BASE_URL", cec.to_string()),
        ("CEC_APP_KEY", format!("{tenant}-ak")),
        ("CEC_APP_SECRET", format!("{tenant}-sk")),
    ] {
        settings.set(name, Some(value)).unwrap();
    }
    let id = TenantId::parse(tenant).unwrap();
    let sealed = settings
        .seal(&keys.lookup().unwrap().settings, &id, 1)
        .unwrap();
    assert!(store.set_settings(&id, 0, &sealed).await.unwrap());
}

/// The scheduled role's environment on `store`'s table, with `extra` settings.
async fn scheduler_env(
    store: &cc_shared::store::dynamo::DynamoStore,
    extra: &[(&'static str, String)],
) -> Vec<(&'static str, String)> {
    let (_, mut env, _) = binaries(&support::dynamodb_endpoint()).await.remove(3);
    env.retain(|(k, _)| !matches!(*k, "AGENT_SYNC_ROLE" | "TABLE_NAME") && !k.starts_with("CEC_"));
    env.push(("AGENT_SYNC_ROLE", "schedule".into()));
    env.push(("TABLE_NAME", store.table().to_string()));
    env.extend(extra.iter().cloned());
    env
}

/// One scheduled run's report.
async fn scheduled_run(f: &Function) -> Value {
    let event = json!({"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}});
    let (_, outcome) = f
        .api
        .invoke(serde_json::to_vec(&event).unwrap().into())
        .await
        .unwrap();
    assert!(outcome.ok, "{}", String::from_utf8_lossy(&outcome.body));
    serde_json::from_slice(&outcome.body).unwrap()
}

/// A scheduled run syncs the default tenant and every tenant with a CEC of its own, each into
/// its own directory; a tenant whose CEC stalls costs only its own budget, is reported failed
/// and stale (it never synced), and the run still ends well inside the function's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_run_syncs_every_tenant_and_a_stalled_cec_holds_only_its_own() {
    use cc_shared::domain::tenant::TenantId;
    use cc_shared::store::AgentStore;
    use support::fake_cec::{directory, Behavior, FakeCec, APP_KEY, APP_SECRET};

    let (store, _) = support::dynamo_store().await;
    let default_cec = FakeCec::start().await;
    default_cec.set(Behavior::Directory(directory(&[1001], false)));
    let acme_cec = FakeCec::start_with("acme-ak", "acme-sk").await;
    acme_cec.set(Behavior::Directory(directory(&[1001, 1002], false)));
    let globex_cec = FakeCec::start_with("globex-ak", "globex-sk").await;
    globex_cec.set(Behavior::Stall);
    register_with_cec(&store, "acme", &acme_cec.base_url).await;
    register_with_cec(&store, "globex", &globex_cec.base_url).await;
    register(&store, "initech", "crm", "agent-sync", "crm-password-0001").await;

    let env = scheduler_env(
        &store,
        &[
            ("CEC_BASE_URL", default_cec.base_url.clone()),
            ("CEC_APP_KEY", APP_KEY.into()),
            ("CEC_APP_SECRET", APP_SECRET.into()),
            ("AGENT_SYNC_CONCURRENCY", "2".into()),
            ("AGENT_SYNC_TENANT_BUDGET_MS", "1500".into()),
            ("AGENT_SYNC_RUN_BUDGET_MS", "8000".into()),
        ],
    )
    .await;
    let f = start("agent-sync", &env).await;
    let started = Instant::now();
    let report = scheduled_run(&f).await;
    assert!(started.elapsed() < Duration::from_millis(5000), "{report}");
    assert_eq!(report["default"]["added"], 1, "{report}");
    assert_eq!(report["tenants_synced"], 1, "{report}");
    assert_eq!(report["tenants_failed"], json!(["globex"]), "{report}");
    assert_eq!(report["tenants_stale"], 1, "{report}");
    assert_eq!(report["tenants_left"], 0, "{report}");
    let works = |agents: Vec<cc_shared::domain::agents::Agent>| {
        agents.into_iter().map(|a| a.work_no).collect::<Vec<_>>()
    };
    let acme = store.for_tenant(&TenantId::parse("acme").unwrap());
    assert_eq!(works(acme.list_agents().await.unwrap()), ["1001", "1002"]);
    assert_eq!(works(store.list_agents().await.unwrap()), ["1001"]);
    for cec in [&default_cec, &acme_cec, &globex_cec] {
        cec.assert_no_violations();
    }
}

/// More tenants than one run starts: each run goes on after the last tenant the previous one
/// started, and the round starts over once every tenant was reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_round_of_tenants_goes_on_where_the_last_run_stopped() {
    use support::fake_cec::{directory, Behavior, FakeCec};

    let (store, _) = support::dynamo_store().await;
    let mut cecs = Vec::new();
    for tenant in ["acme", "globex"] {
        let cec = FakeCec::start_with(&format!("{tenant}-ak"), &format!("{tenant}-sk")).await;
        cec.set(Behavior::Directory(directory(&[1001], false)));
        register_with_cec(&store, tenant, &cec.base_url).await;
        cecs.push(cec);
    }
    let env = scheduler_env(&store, &[("AGENT_SYNC_TENANTS_PER_RUN", "1".into())]).await;
    let f = start("agent-sync", &env).await;
    let runs = [(1, 0, 1), (0, 1, 0), (1, 0, 1)];
    for (i, (acme, globex, left)) in runs.into_iter().enumerate() {
        let before = (cecs[0].agent_requests(), cecs[1].agent_requests());
        let report = scheduled_run(&f).await;
        assert_eq!(
            report["default"],
            Value::Null,
            "no default CEC here: {report}"
        );
        assert_eq!(report["tenants_synced"], 1, "run {i}: {report}");
        assert_eq!(report["tenants_left"], left, "run {i}: {report}");
        let after = (cecs[0].agent_requests(), cecs[1].agent_requests());
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            (acme, globex),
            "run {i}"
        );
    }
}

/// The softphone endpoint in the Lambda binary serves a tenant's caller from the tenant's own
/// directory and CEC; a tenant whose stored settings no longer pass the checks (written past
/// `tenants set`, as a newer release's stricter rule would leave them) gets 503 `unavailable`
/// and a log line naming the tenant and the setting, never a crash; the default tenant,
/// without a CEC here, 503 too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_softphone_serves_tenants_and_refuses_unusable_settings_in_lambda() {
    use cc_shared::domain::tenant::TenantId;
    use cc_shared::domain::tenant_settings::TenantSettings;
    use cc_shared::store::{AgentStore, TenantRegistry};
    use support::fake_cec::{directory, Behavior, FakeCec, SIP_PASSWORDS};

    let (store, _) = support::dynamo_store().await;
    let cec = FakeCec::start_with("acme-ak", "acme-sk").await;
    cec.set(Behavior::Directory(directory(&[1001, 1002], false)));
    register_with_cec(&store, "acme", &cec.base_url).await;
    let acme = store.for_tenant(&TenantId::parse("acme").unwrap());
    acme.put_agents(&[cc_shared::domain::agents::Agent {
        work_no: "1002".into(),
        account_code: None,
        sip_account: None,
        active: true,
        first_seen: 0,
        last_seen: 0,
        inactive_since: None,
    }])
    .await
    .unwrap();
    acme.link_account("alice", "1002").await.unwrap();
    // broken: a CEC URL no release accepts, stored as if by an older `tenants set`.
    let keys = register(&store, "broken", "crm", "agent-sync", "crm-password-0001").await;
    let mut settings = TenantSettings::default();
    for (name, value) in [
        ("CEC_BASE_URL", "http://cec.example.com"),
        ("CEC_APP_KEY", "ak"),
        ("CEC_APP_SECRET", "sk"),
    ] {
        settings.set(name, Some(value.into())).unwrap();
    }
    let broken = TenantId::parse("broken").unwrap();
    let sealed = settings
        .seal(&keys.lookup().unwrap().settings, &broken, 1)
        .unwrap();
    assert!(store.set_settings(&broken, 0, &sealed).await.unwrap());

    let (_, mut env, path) = binaries(&support::dynamodb_endpoint()).await.remove(3);
    env.retain(|(k, _)| *k != "TABLE_NAME" && !k.starts_with("CEC_"));
    env.push(("TABLE_NAME", store.table().to_string()));
    let f = start_with("agent-sync", &env, Stdio::piped()).await;
    let body = r#"{"account":"alice"}"#;
    let as_user = |user: &str| event_as(path, body, user, "crm-password-0001");
    let (status, answer) = http_answer(&f.invoke(&as_user("crm@acme")).await);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["sipPwd"], SIP_PASSWORDS[1]);
    let (status, answer) = http_answer(&f.invoke(&as_user("crm@broken")).await);
    assert_eq!(
        (status, answer["error"].clone()),
        (503, json!("unavailable"))
    );
    assert!(
        answer["message"].as_str().unwrap().contains("CEC_BASE_URL"),
        "{answer}"
    );
    let (status, _) = http_answer(&f.invoke(&event_as(path, body, "dev", "dev")).await);
    assert_eq!(status, 503);
    cec.assert_no_violations();
    let log = String::from_utf8_lossy(&f.stop().await).to_string();
    let line: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "tenant settings unusable")
        .unwrap_or_else(|| panic!("no settings line:\n{log}"));
    assert_eq!(
        (line["tenant"].as_str(), line["setting"].as_str()),
        (Some("broken"), Some("CEC_BASE_URL"))
    );
    assert!(!log.contains(SIP_PASSWORDS[1]) && !log.contains("acme-sk"));
}

/// The number-mapping binary on `store`'s table with `extra` settings, its stdout to
/// `stdout`, and the user ID it gave 13988888888: (the function, its path, the ID).
async fn number_mapping_with_one_id(
    store: &cc_shared::store::dynamo::DynamoStore,
    extra: &[(&'static str, &str)],
    stdout: Stdio,
) -> (Function, &'static str, String) {
    let (_, mut env, path) = binaries(&support::dynamodb_endpoint()).await.remove(0);
    env.retain(|(k, _)| *k != "TABLE_NAME");
    env.push(("TABLE_NAME", store.table().to_string()));
    env.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    let f = start_with("number-mapping", &env, stdout).await;
    let (status, ids) = http_answer(
        &f.invoke(&v2(
            path,
            json!(r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#),
        ))
        .await,
    );
    assert_eq!(status, 200);
    let uid = ids["Results"][0]["Value"].as_str().unwrap().to_string();
    (f, path, uid)
}

/// UIDToPhone in the Lambda binary records the ID asked with API Gateway's request ID and the
/// client's source IP from the event, expiring after `UNMASK_AUDIT_TTL_DAYS`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uid_to_phone_records_the_request_it_answered_in_lambda() {
    use cc_shared::store::UnmaskingQuery;

    let (store, _) = support::dynamo_store().await;
    let (f, path, uid) =
        number_mapping_with_one_id(&store, &[("UNMASK_AUDIT_TTL_DAYS", "30")], Stdio::null()).await;
    let body = json!({"Numbers": [uid], "Mode": "UIDToPhone"}).to_string();
    let mut event = v2(path, json!(body));
    event["requestContext"]["http"]["sourceIp"] = json!("198.51.100.9");
    event["requestContext"]["requestId"] = json!("api-request-42");
    let (status, answer) = http_answer(&f.invoke(&event).await);
    assert_eq!(status, 200, "{answer}");
    let now = cc_shared::domain::clock::now_epoch();
    let records = store.unmaskings_of(&uid, 0, now + 10, 0, 10).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    let r = &records[0];
    assert_eq!(
        (
            r.caller.as_str(),
            r.request_id.as_str(),
            r.source_ip.as_str()
        ),
        ("dev", "api-request-42", "198.51.100.9")
    );
    assert!((r.expires_at - (r.time + 30 * 86_400)).abs() <= 1, "{r:?}");
}

/// UIDToPhone's budget in the Lambda binary (`UNMASK_MAX_PER_MINUTE=1`): past it Tencent's
/// `{"Code": 429}` with `Retry-After` and no number, each refusal counted in EMF
/// (`UnmaskRequestsRefused`) beside the numbers unmasked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uid_to_phone_past_its_budget_is_refused_and_counted_in_lambda() {
    use cc_shared::metrics::name;

    let (store, _) = support::dynamo_store().await;
    let env = [("UNMASK_MAX_PER_MINUTE", "1"), ("STAGE", "test")];
    let (f, path, uid) = number_mapping_with_one_id(&store, &env, Stdio::piped()).await;
    let ask = v2(
        path,
        json!(json!({"Numbers": [uid], "Mode": "UIDToPhone"}).to_string()),
    );
    // Three asks of one ID against a budget of one: at most two minutes are touched, so at
    // least one is refused.
    let (mut answered, mut refused) = (0, 0);
    for _ in 0..3 {
        let outcome = f.invoke(&ask).await;
        let (status, body) = http_answer(&outcome);
        let response: Value = serde_json::from_slice(&outcome.body).unwrap();
        match status {
            200 => {
                assert_eq!(body["Results"][0]["Value"], "008613988888888");
                answered += 1;
            }
            429 => {
                assert_eq!(body["Code"], 429, "{body}");
                assert_eq!(body["Results"], json!([]), "{body}");
                let wait: u64 = response["headers"]["retry-after"]
                    .as_str()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| panic!("no Retry-After: {response}"));
                assert!((1..=60).contains(&wait), "{wait}");
                refused += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert!(
        refused >= 1 && answered >= 1,
        "{answered} answered, {refused} refused"
    );
    let docs = emf_documents(&f.stop().await);
    for doc in &docs {
        assert_valid_emf(doc, "number-mapping", "test");
    }
    assert_eq!(
        total(&docs, name::UNMASK_REQUESTS_REFUSED),
        f64::from(refused)
    );
    assert_eq!(total(&docs, name::NUMBERS_UNMASKED), f64::from(answered));
}
