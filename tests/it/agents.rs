//! The agent directory against the fake CEC, on both backends: sync (upsert, deactivation,
//! idempotence, failures changing nothing, token expiry), links, the softphone endpoint, and
//! the softphone password never at rest.

use crate::support;

use std::sync::Arc;

use agent_sync::{sync, AgentDirectory};
use cc_shared::domain::clock::{Clock, ManualClock};
use support::fake_cec::{self, Behavior, FakeCec};
use support::Store;

const T0: i64 = 1_790_000_000;

struct World {
    cec: FakeCec,
    client: Arc<agent_sync::cec_client::CecClient>,
    clock: ManualClock,
}

async fn world() -> World {
    let cec = FakeCec::start().await;
    let client = Arc::new(support::cec_client(&cec.base_url));
    World {
        cec,
        client,
        clock: ManualClock::at(T0),
    }
}

async fn snapshot(
    store: &dyn Store,
) -> (
    Vec<cc_shared::domain::agents::Agent>,
    Option<cc_shared::domain::agents::SyncState>,
) {
    (
        store.list_agents().await.unwrap(),
        store.last_sync().await.unwrap(),
    )
}

async fn sync_lifecycle(store: Arc<dyn Store>) {
    let w = world().await;
    let c = sync(&*store, &w.client, &w.clock, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (c.added, c.updated, c.deactivated, c.unchanged),
        (3, 0, 0, 0)
    );
    let agents = store.list_agents().await.unwrap();
    assert_eq!(agents.len(), 3);
    let a = agents.iter().find(|a| a.work_no == "1001").unwrap();
    assert_eq!(
        (
            a.account_code.as_deref(),
            a.sip_account.as_deref(),
            a.active,
            a.first_seen,
            a.last_seen
        ),
        (Some("acc1001"), Some("9001"), true, T0, T0)
    );

    // Twice in a row: nothing changes, the same token is reused.
    let before = store.list_agents().await.unwrap();
    w.clock.advance(3600 - 120);
    let c = sync(&*store, &w.client, &w.clock, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (c.added, c.updated, c.deactivated, c.unchanged),
        (0, 0, 0, 3)
    );
    assert_eq!(store.list_agents().await.unwrap(), before);
    assert_eq!(w.cec.token_requests(), 1);

    // 1003 leaves, 1002 changes softphone, the port now comes as a string.
    let mut dir = fake_cec::directory(&[1001, 1002], true);
    dir["agents"][1]["sipAccount"] = serde_json::json!("9999");
    w.cec.set(Behavior::Directory(dir));
    w.clock.advance(100);
    let c = sync(&*store, &w.client, &w.clock, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (c.added, c.updated, c.deactivated, c.unchanged),
        (0, 1, 1, 1)
    );
    let gone = store
        .get_agent("1003")
        .await
        .unwrap()
        .expect("never deleted");
    assert_eq!(
        (gone.active, gone.inactive_since),
        (false, Some(w.clock.now()))
    );
    assert_eq!(
        store
            .get_agent("1002")
            .await
            .unwrap()
            .unwrap()
            .sip_account
            .as_deref(),
        Some("9999")
    );
    assert_eq!(w.cec.token_requests(), 2, "renewed shortly before expiry");

    // Failed or invalid answers change nothing.
    let kept = snapshot(&*store).await;
    for behavior in [
        Behavior::TokenFails(500),
        Behavior::AgentsFail(500),
        Behavior::AgentsFail(403),
        Behavior::AgentsBody("<html>maintenance</html>"),
        Behavior::AgentsBody(r#"{"agents":[{"workNo":1001},{"sipAccount":"9002"}]}"#),
        Behavior::AgentsBody(r#"{"sipServiceIp":"10.0.0.1"}"#),
    ] {
        w.cec.expire_tokens(); // so that TokenFails is reached
        w.cec.set(behavior.clone());
        w.clock.advance(10);
        assert!(
            sync(&*store, &w.client, &w.clock, Default::default())
                .await
                .is_err(),
            "{behavior:?}"
        );
        assert_eq!(
            snapshot(&*store).await,
            kept,
            "{behavior:?} changed the store"
        );
    }

    // An expired token is renewed once, transparently; 1003 comes back.
    w.cec.set(Behavior::Directory(fake_cec::directory(
        &[1001, 1002, 1003],
        false,
    )));
    w.cec.expire_tokens();
    let tokens = w.cec.token_requests();
    let c = sync(&*store, &w.client, &w.clock, Default::default())
        .await
        .unwrap();
    assert_eq!(
        (c.updated, c.deactivated),
        (2, 0),
        "1003 reactivated, 1002 changed back"
    );
    assert!(store.get_agent("1003").await.unwrap().unwrap().active);
    assert_eq!(w.cec.token_requests(), tokens + 1);
    w.cec.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_lifecycle_dynamodb() {
    let (store, _) = support::dynamo_store().await;
    sync_lifecycle(store.clone()).await;
    let stored = support::dump_dynamo(&store).await;
    for pw in fake_cec::SIP_PASSWORDS {
        assert!(!stored.contains(pw), "a softphone password is stored");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_lifecycle_embedded() {
    let (store, dir) = support::embedded_store();
    sync_lifecycle(store).await;
    let stored = support::dump_embedded(dir.path());
    assert!(stored.contains("acc1001"), "the dump reads the data");
    for pw in fake_cec::SIP_PASSWORDS {
        assert!(!stored.contains(pw), "a softphone password is stored");
    }
}

contract!(links_point_accounts_at_work_numbers, |store: Arc<
    dyn Store,
>| async move {
    assert_eq!(store.linked_work_no("alice").await.unwrap(), None);
    store.link_account("alice", "1001").await.unwrap();
    store.link_account("alice", "1002").await.unwrap();
    store.link_account("bob@crm", "1001").await.unwrap();
    assert_eq!(
        store.linked_work_no("alice").await.unwrap().as_deref(),
        Some("1002")
    );
    assert_eq!(
        store.linked_work_no("bob@crm").await.unwrap().as_deref(),
        Some("1001")
    );
    assert_eq!(store.last_sync().await.unwrap(), None);
});

const PASSWORD: &str = "directory-pw";

fn softphone_request(account: &str) -> lambda_http::Request {
    http::Request::builder()
        .method("POST")
        .uri("/agents/softphone")
        .header(
            "authorization",
            cc_shared::web::auth::basic_header("crm", PASSWORD),
        )
        .body(lambda_http::Body::Text(
            serde_json::json!({ "account": account }).to_string(),
        ))
        .unwrap()
}

async fn call(svc: &AgentDirectory, req: lambda_http::Request) -> (u16, serde_json::Value) {
    let resp = agent_sync::handle(svc, req).await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let (status, body) = support::checked_answer("/agents/softphone", resp);
    (status, serde_json::from_str(&body).unwrap())
}

async fn softphone_endpoint(store: Arc<dyn Store>) {
    let w = world().await;
    sync(&*store, &w.client, &w.clock, Default::default())
        .await
        .unwrap();
    store.link_account("alice", "1002").await.unwrap();
    store.link_account("ghost", "4242").await.unwrap();
    let svc = AgentDirectory::new(
        cc_shared::web::auth::Credentials::parse(
            "T",
            &cc_shared::web::auth::entry_for("crm", PASSWORD),
        )
        .unwrap(),
        w.client.clone(),
        store.clone(),
        Arc::new(ManualClock::at(T0)),
    );
    let requests_before = w.cec.agent_requests();
    let (status, body) = call(&svc, softphone_request("alice")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"workNo": "1002", "sipAccount": "9002", "sipPwd": "cti-pw-1002",
                           "sipServiceIp": "10.100.10.10", "sipServicePort": 5060})
    );
    call(&svc, softphone_request("alice")).await;
    assert_eq!(
        w.cec.agent_requests(),
        requests_before + 2,
        "fetched live each time, never cached"
    );

    for (account, status, error) in [
        ("nobody", 404, "not_found"),
        ("ghost", 404, "not_found"),
        ("", 400, "invalid_request"),
    ] {
        let (got, body) = call(&svc, softphone_request(account)).await;
        assert_eq!(
            (got, body["error"].as_str()),
            (status, Some(error)),
            "{account}: {body}"
        );
        assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    // Linked, but gone from the CEC since the last sync.
    w.cec
        .set(Behavior::Directory(fake_cec::directory(&[1001], false)));
    let (status, body) = call(&svc, softphone_request("alice")).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    w.cec.set(Behavior::AgentsFail(500));
    let (status, body) = call(&svc, softphone_request("alice")).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (502, Some("upstream_error"))
    );
    assert!(!body.to_string().contains("cti-pw"));

    let mut bad = softphone_request("alice");
    bad.headers_mut().insert(
        "authorization",
        cc_shared::web::auth::basic_header("crm", "x")
            .parse()
            .unwrap(),
    );
    let resp = agent_sync::handle(&svc, bad).await;
    assert_eq!(resp.status().as_u16(), 401);
    assert!(resp.headers().contains_key("www-authenticate"));
    w.cec.assert_no_violations();
}

#[tokio::test]
async fn softphone_endpoint_dynamodb() {
    let (store, _) = support::dynamo_store().await;
    softphone_endpoint(store).await;
}

#[tokio::test]
async fn softphone_endpoint_embedded() {
    let (store, _dir) = support::embedded_store();
    softphone_endpoint(store).await;
}

async fn identity_requires_a_known_agent(store: Arc<dyn Store>) {
    let w = world().await;
    sync(&*store, &w.client, &w.clock, Default::default())
        .await
        .unwrap();
    w.cec.set(Behavior::Directory(fake_cec::directory(
        &[1001, 1002],
        false,
    )));
    sync(&*store, &w.client, &w.clock, Default::default())
        .await
        .unwrap(); // 1003 inactive now
    let config = identity_verification::Config {
        require_known_agent: true,
        ..support::identity_config()
    };
    let phone = config.phones.normalize("13988888888").unwrap();
    let digest = config.pepper.pin_digest(&phone, "2468");
    store
        .put_pins(&[(config.index.index(&phone), digest)])
        .await
        .unwrap();
    let svc = identity_verification::IdentityVerification::new(
        config,
        store,
        Arc::new(ManualClock::at(T0)),
    );
    let verify = |work_no: &str| {
        let mut req = support::verify_request("13988888888", "2468");
        let body = serde_json::json!({"calldata": {"verifyServiceNo": "13988888888",
            "verifyWorkNo": work_no, "verifyCode": "2468"}});
        *req.body_mut() = lambda_http::Body::Text(body.to_string());
        req
    };
    for (work_no, result, reason) in [
        ("1001", 1, "ok"),
        ("1003", 3, "unknown_agent"),
        ("371", 3, "unknown_agent"),
    ] {
        let (status, data) = support::call_verify(&svc, verify(work_no)).await;
        assert_eq!(
            (status, data.verify_result, data.verify_return1.as_str()),
            (200, result, reason),
            "{work_no}"
        );
    }
}

#[tokio::test]
async fn identity_requires_a_known_agent_dynamodb() {
    let (store, _) = support::dynamo_store().await;
    identity_requires_a_known_agent(store).await;
}

#[tokio::test]
async fn identity_requires_a_known_agent_embedded() {
    let (store, _dir) = support::embedded_store();
    identity_requires_a_known_agent(store).await;
}
