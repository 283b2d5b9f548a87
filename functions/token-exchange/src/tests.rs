//! Handler tests on plain `Request`s against the embedded store and the fake IdP (the same
//! behaviour against DynamoDB Local is covered by the workspace's `tests/it`).

use std::sync::Arc;
use std::time::Duration;

use cc_shared::domain::clock::ManualClock;
use cc_shared::store::embedded::EmbeddedStore;
use cc_shared::store::AuditStore;
use cc_shared::web::auth::{basic_header, entry_for};
use lambda_http::{Body, Request};
use testkit::fake_idp::{self, FakeIdp, JwtExpectation, KeyPair};

use super::*;

fn request(auth: &str, body: &str) -> Request {
    http::Request::builder()
        .method("POST")
        .uri("/token-exchange")
        .header("authorization", auth)
        .body(Body::Text(body.into()))
        .unwrap()
}

async fn fixture() -> (
    TokenExchange,
    FakeIdp,
    Arc<EmbeddedStore>,
    tempfile::TempDir,
) {
    let keys = KeyPair::generate();
    let idp = FakeIdp::start(JwtExpectation {
        key: fake_idp::decoding_key(&keys),
        exp_millis: false,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let config = Config {
        credentials: Credentials::parse("T", &entry_for("crm", "pw")).unwrap(),
        fuyun: Some(Arc::new(crate::Fuyun {
            signer: None,
            app_name: Some(fake_idp::APP_NAME.into()),
            idp: idp::IdpClient::new(idp::IdpSettings {
                url: idp.url.parse().unwrap(),
                client_id: fake_idp::CLIENT_ID.into(),
                client_secret: fake_idp::CLIENT_SECRET.into(),
                scope: fake_idp::SCOPE.into(),
                redirect_url: fake_idp::REDIRECT_URL.into(),
                connect_timeout: Duration::from_secs(2),
                timeout: Duration::from_secs(5),
            })
            .unwrap(),
        })),
        timeouts: crate::IdpTimeouts {
            connect: Duration::from_secs(2),
            total: Duration::from_secs(5),
        },
        tenant_cache: Duration::from_secs(60),
        cache_margin_seconds: 60,
        audit_ttl_days: 90,
        store_budget: cc_shared::web::StoreBudget::from_millis(2000),
    };
    let clock = Arc::new(ManualClock::at(cc_shared::domain::clock::now_epoch()));
    let svc = TokenExchange::new(config, store.clone(), clock);
    (svc, idp, store, dir)
}

fn status_and_error(resp: lambda_http::Response<Body>) -> (u16, serde_json::Value) {
    let status = resp.status().as_u16();
    let Body::Text(text) = resp.into_body() else {
        panic!("not a text body")
    };
    (status, serde_json::from_str(&text).unwrap())
}

#[tokio::test]
async fn an_oauth_exchange_is_answered_audited_and_cached() {
    let (svc, idp, store, _dir) = fixture().await;
    let body = r#"{"mode": "oauth", "subjectToken": "crm-token-1"}"#;
    let (status, token) =
        status_and_error(handle(&svc, request(&basic_header("crm", "pw"), body)).await);
    assert_eq!(status, 200, "{token}");
    assert!(token["access_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let (status, _) =
        status_and_error(handle(&svc, request(&basic_header("crm", "pw"), body)).await);
    assert_eq!(status, 200);
    assert_eq!(idp.requests(), 1, "the second answer came from the cache");
    idp.assert_no_violations();
    let audit = store.list_audit(10, 0).await.unwrap();
    assert_eq!(audit.len(), 1, "one issuance, one record");
    assert!(!format!("{audit:?}").contains("crm-token-1"));
}

#[tokio::test]
async fn credentials_come_before_anything_else() {
    let (svc, idp, store, _dir) = fixture().await;
    for (method, body) in [("POST", "not json"), ("GET", "")] {
        let mut req = request(&basic_header("crm", "wrong"), body);
        *req.method_mut() = method.parse().unwrap();
        let (status, error) = status_and_error(handle(&svc, req).await);
        assert_eq!(
            (status, error["error"].as_str()),
            (401, Some("invalid_client"))
        );
    }
    assert_eq!(idp.requests(), 0);
    assert!(store.list_audit(10, 0).await.unwrap().is_empty());
}
