//! Logs never carry a full number, a user ID, an ID-to-number pair, a PIN or a credential.
//!
//! Alone in their own test binary, one at a time: tracing's per-thread subscribers interact with
//! other threads logging concurrently in the same process.

// Shared with the tests/it binary; this file uses only part of it.
#[allow(dead_code)]
#[path = "it/support/mod.rs"]
mod support;

use support::{call_mapping, call_verify, mapping_request, refs, verify_request};

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "current_thread")]
async fn number_mapping_logs_carry_no_number_id_pair_or_credential() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (capture, _guard) = capture_logs();

    let (store, _dir) = support::embedded_store();
    let svc = support::number_mapping(store);
    let phones = ["13988888888", "+86 137-8888-8888", "95588"];
    let (_, created) = call_mapping(&svc, mapping_request(&phones, "PhoneToUID")).await;
    let uids: Vec<String> = created.results.iter().map(|r| r.value.clone()).collect();
    call_mapping(&svc, mapping_request(&refs(&uids), "UIDToPhone")).await;
    // Rejected requests too: bad number, bad password.
    call_mapping(
        &svc,
        mapping_request(&["13988888888", "1398abc8888"], "PhoneToUID"),
    )
    .await;
    let mut bad_auth = mapping_request(&["13988888888"], "PhoneToUID");
    bad_auth.headers_mut().insert(
        "authorization",
        cc_shared::web::auth::basic_header("tencent", "guess-13988888888")
            .parse()
            .unwrap(),
    );
    call_mapping(&svc, bad_auth).await;

    let (lines, logs) = capture.request_lines();
    assert_eq!(lines.len(), 4, "one line per request:\n{logs}");
    for secret in [
        "13988888888",
        "13788888888",
        "8613988888888",
        "1398abc8888",
        "95588",
        support::PASSWORD,
        "guess-",
    ] {
        assert!(!logs.contains(secret), "logs contain {secret}:\n{logs}");
    }
    for uid in &uids {
        assert!(
            !logs.contains(uid.as_str()),
            "logs contain a user ID:\n{logs}"
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn identity_verification_logs_carry_no_pin_number_or_credential() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (capture, _guard) = capture_logs();
    let (store, _dir) = support::embedded_store();
    let (svc, _) = support::identity_verification(store, &[("13988888888", "2468")]).await;
    call_verify(&svc, verify_request("13988888888", "2468")).await;
    call_verify(&svc, verify_request("+86 139 8888 8888", "97531")).await;
    call_verify(&svc, verify_request("13700000000", "2468")).await;
    call_verify(&svc, verify_request("1398abc8888", "2468")).await;
    let mut bad_auth = verify_request("13988888888", "2468");
    bad_auth.headers_mut().insert(
        "authorization",
        cc_shared::web::auth::basic_header("ivr", "guess-2468")
            .parse()
            .unwrap(),
    );
    call_verify(&svc, bad_auth).await;

    let (lines, logs) = capture.request_lines();
    assert_eq!(lines.len(), 5, "one line per request:\n{logs}");
    for secret in [
        "2468",
        "97531",
        "13988888888",
        "8613988888888",
        "13700000000",
        "1398abc8888",
        support::IVR_PASSWORD,
        "guess-",
    ] {
        assert!(!logs.contains(secret), "logs contain {secret}:\n{logs}");
    }
    // The customer appears masked only.
    assert!(logs.contains("+86*******8888"), "{logs}");
}

#[tokio::test(flavor = "current_thread")]
async fn token_exchange_logs_carry_no_secret_key_or_token() {
    use support::fake_idp::*;
    let _serial = ONE_AT_A_TIME.lock().await;
    let keys = KeyPair::generate();
    let idp = FakeIdp::start(JwtExpectation {
        key: decoding_key(&keys),
        exp_millis: false,
    })
    .await;
    let (capture, _guard) = capture_logs();
    let (store, _dir) = support::embedded_store();
    let (svc, _) = support::token_exchange(
        support::TokenSetup {
            idp_url: &idp.url,
            private_key: Some(&keys.private_base64),
            exp_millis: false,
            timeout_ms: 2000,
        },
        store,
    );
    let crm_token = "crm-subject-token-77aa";
    let requests = [
        serde_json::json!({"mode": "jwt", "accountName": "agent007"}),
        serde_json::json!({"mode": "oauth", "subjectToken": crm_token}),
    ];
    for body in &requests {
        let (status, _, _) = support::call_token(&svc, support::token_request(body.clone())).await;
        assert_eq!(status, 200);
    }
    idp.set(Behavior::Status(500, "boom"));
    support::call_token(&svc, support::token_request(requests[1].clone())).await;
    let mut bad = support::token_request(requests[0].clone());
    bad.headers_mut().insert(
        "authorization",
        cc_shared::web::auth::basic_header("crm", "guess-secret")
            .parse()
            .unwrap(),
    );
    support::call_token(&svc, bad).await;

    let (lines, logs) = capture.request_lines();
    assert_eq!(lines.len(), 4, "one line per request:\n{logs}");
    let seen = idp.seen();
    let mut secrets: Vec<&str> = vec![
        CLIENT_SECRET,
        crm_token,
        support::CRM_PASSWORD,
        "guess-secret",
        "eyJ", // any JWT
        &keys.private_base64[40..80],
    ];
    secrets.extend(seen.access_tokens.iter().map(String::as_str));
    for secret in secrets {
        assert!(!logs.contains(secret), "logs contain {secret}:\n{logs}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn agent_directory_logs_carry_no_softphone_password() {
    use support::fake_cec::{self, FakeCec};
    let _serial = ONE_AT_A_TIME.lock().await;
    let cec = FakeCec::start().await;
    let (capture, _guard) = capture_logs();
    let (store, _dir) = support::embedded_store();
    let client = std::sync::Arc::new(support::cec_client(&cec.base_url));
    let clock = cc_shared::domain::clock::ManualClock::at(1_790_000_000);
    agent_sync::sync(&*store, &client, &clock, Default::default())
        .await
        .unwrap();
    cc_shared::store::AgentStore::link_account(&*store, "alice", "1001")
        .await
        .unwrap();
    let svc = agent_sync::AgentDirectory::new(
        cc_shared::web::auth::Credentials::dev(),
        client,
        store,
        std::sync::Arc::new(clock),
    );
    let req = http::Request::builder()
        .method("POST")
        .uri("/agents/softphone")
        .header(
            "authorization",
            cc_shared::web::auth::basic_header("dev", "dev"),
        )
        .body(lambda_http::Body::Text(r#"{"account":"alice"}"#.into()))
        .unwrap();
    assert_eq!(agent_sync::handle(&svc, req).await.status(), 200);

    let (lines, logs) = capture.request_lines();
    assert_eq!(lines.len(), 1, "{logs}");
    assert!(
        logs.contains("\"added\":3"),
        "the sync's counts line:\n{logs}"
    );
    for secret in fake_cec::SIP_PASSWORDS
        .iter()
        .copied()
        .chain([fake_cec::APP_SECRET, "cec-token-"])
    {
        assert!(!logs.contains(secret), "logs contain {secret}:\n{logs}");
    }
}

/// A writer collecting everything logged, in the production JSON format.
/// A PhoneToUID whose write fails (a disk full, here a trigger refusing the insert) created no
/// ID, and its line says so.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_write_logs_no_created_ids() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let (capture, _guard) = capture_logs();
    let (store, dir) = support::embedded_store();
    let conn =
        rusqlite::Connection::open(dir.path().join(cc_shared::store::embedded::DB_FILE)).unwrap();
    conn.execute_batch(
        "CREATE TRIGGER disk_full BEFORE INSERT ON number_map
         BEGIN SELECT RAISE(FAIL, 'database or disk is full'); END;",
    )
    .unwrap();
    let svc = support::number_mapping(store);
    let numbers = support::numbers(3, "1390000");
    let (status, _) = call_mapping(&svc, mapping_request(&refs(&numbers), "PhoneToUID")).await;
    assert!(status >= 500, "{status}");
    let (lines, logs) = capture.request_lines();
    assert_eq!(lines.len(), 1, "{logs}");
    assert_eq!(lines[0]["numbers"], 3, "{logs}");
    assert_eq!(
        lines[0]["created"], 0,
        "a failed write logged created IDs:\n{logs}"
    );
}

#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Capture {
    /// The request lines (one per request), and the text of every line (all must be JSON)
    /// without timestamps and latencies (digits that could contain a short number by chance).
    fn request_lines(&self) -> (Vec<serde_json::Value>, String) {
        let logs = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        let mut requests = Vec::new();
        let mut checked = String::new();
        for l in logs.lines() {
            let line: serde_json::Value = serde_json::from_str(l).expect("every log line is JSON");
            let mut fields = line.as_object().unwrap().clone();
            fields.remove("timestamp");
            fields.remove("latency_ms");
            checked.push_str(&serde_json::Value::Object(fields).to_string());
            checked.push('\n');
            if line["message"] == "request" {
                assert!(line["latency_ms"].is_number());
                assert!(line["status"].is_number());
                requests.push(line);
            }
        }
        (requests, checked)
    }
}

/// Captures this thread's logs (use a current-thread runtime) until the guard is dropped.
fn capture_logs() -> (Capture, tracing::subscriber::DefaultGuard) {
    use tracing_subscriber::prelude::*;
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::registry().with(
        cc_shared::logging::json_layer(move || writer.clone())
            .with_filter(tracing_subscriber::filter::LevelFilter::TRACE),
    );
    (capture, tracing::subscriber::set_default(subscriber))
}
