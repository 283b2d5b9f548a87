//! Handler tests on plain `Request`s against the embedded store and the fake CEC (the same
//! behaviour against DynamoDB Local is covered by the workspace's `tests/it`).

use std::sync::Arc;
use std::time::Duration;

use cc_shared::domain::clock::ManualClock;
use cc_shared::store::embedded::EmbeddedStore;
use cc_shared::web::auth::{basic_header, entry_for};
use lambda_http::{Body, Request};
use testkit::fake_cec::{self, FakeCec};

use super::*;
use crate::cec_client::CecSettings;

fn request(auth: &str, body: &str) -> Request {
    http::Request::builder()
        .method("POST")
        .uri("/agents/softphone")
        .header("authorization", auth)
        .body(Body::Text(body.into()))
        .unwrap()
}

fn answer(resp: lambda_http::Response<Body>) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let Body::Text(text) = resp.into_body() else {
        panic!("not a text body")
    };
    (status, serde_json::from_str(&text).unwrap())
}

/// A client of the fake CEC, with `tenant` as its tenant space ID.
fn settings(cec: &FakeCec, tenant: Option<&str>) -> CecSettings {
    CecSettings {
        base_url: cec.base_url.clone(),
        agent_info_path: fake_cec::AGENTS_PATH.into(),
        app_key: fake_cec::APP_KEY.into(),
        app_secret: fake_cec::APP_SECRET.into(),
        token_expire_seconds: 3600,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(5),
        tenant_space_id: tenant.map(str::to_string),
    }
}

/// The softphone endpoint on `client`, after a sync, with `alice` linked to agent 1002 and the
/// caller `crm:pw` (the store lives as long as the returned directory).
async fn directory_with_alice(client: CecClient) -> (AgentDirectory, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let clock = Arc::new(ManualClock::at(1_790_000_000));
    sync(&*store, &client, &*clock, Default::default())
        .await
        .unwrap();
    store.link_account("alice", "1002").await.unwrap();
    let svc = AgentDirectory::new(
        Credentials::parse("T", &entry_for("crm", "pw")).unwrap(),
        Arc::new(client),
        store,
        clock,
    );
    (svc, dir)
}

#[tokio::test]
async fn a_linked_agent_gets_its_softphone_details_live() {
    let cec = FakeCec::start().await;
    let (svc, _dir) = directory_with_alice(CecClient::new(settings(&cec, None)).unwrap()).await;
    let auth = basic_header("crm", "pw");

    let (status, body) = answer(handle(&svc, request(&auth, r#"{"account": "alice"}"#)).await);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["workNo"], "1002");
    assert_eq!(body["sipPwd"], fake_cec::SIP_PASSWORDS[1]);

    let (status, body) = answer(handle(&svc, request(&auth, r#"{"account": "bob"}"#)).await);
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));

    let (status, body) = answer(
        handle(
            &svc,
            request(&basic_header("crm", "no"), r#"{"account": "alice"}"#),
        )
        .await,
    );
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized"))
    );
}

#[tokio::test]
async fn the_tenant_space_id_goes_on_every_call_when_configured() {
    let cec = FakeCec::start().await;
    cec.require_tenant("tenant-42");
    let settings = |tenant| settings(&cec, tenant);
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let clock = ManualClock::at(1_790_000_000);
    let with = CecClient::new(settings(Some("tenant-42"))).unwrap();
    sync(&*store, &with, &clock, Default::default())
        .await
        .unwrap();
    cec.assert_no_violations();
    assert_eq!((cec.token_requests(), cec.agent_requests()), (1, 1));
    // A deployment that requires it refuses calls without it (the fake records a violation).
    let without = CecClient::new(settings(None)).unwrap();
    assert!(sync(&*store, &without, &clock, Default::default())
        .await
        .is_err());
    // Values a header cannot carry are refused at init.
    for bad in ["has space", "多租户", &"t".repeat(65)] {
        assert!(CecClient::new(settings(Some(bad))).is_err(), "{bad}");
    }
}

#[tokio::test]
async fn a_stalled_cec_costs_the_caller_the_cec_budget_not_the_function_timeout() {
    let cec = FakeCec::start().await;
    // Each CEC call may take 30 s: only the request's CEC budget can answer in time.
    let client = CecClient::new(CecSettings {
        timeout: Duration::from_secs(30),
        ..settings(&cec, None)
    })
    .unwrap();
    let (svc, _dir) = directory_with_alice(client).await;
    let svc = svc.with_cec_budget(Duration::from_millis(300));
    cec.set(fake_cec::Behavior::Stall);

    let auth = basic_header("crm", "pw");
    let asked = std::time::Instant::now();
    let (status, body) = answer(handle(&svc, request(&auth, r#"{"account": "alice"}"#)).await);
    assert_eq!(
        (status, body["error"].as_str()),
        (504, Some("upstream_error")),
        "{body}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "answered after {:?}: past the function's timeout",
        asked.elapsed()
    );
    cec.assert_no_violations();
}
