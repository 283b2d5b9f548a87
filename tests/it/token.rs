//! Token exchange against the fake Fuyun IdP: both modes, the cache, single flight, every
//! failure mapping, and the audit records.

use crate::support;

use std::sync::Arc;

use cc_shared::domain::clock::Clock;
use serde_json::json;
use support::fake_idp::{self, Behavior, FakeIdp, JwtExpectation, KeyPair};
use support::{call_token, token_request, TokenSetup};

struct World {
    idp: FakeIdp,
    svc: token_exchange::TokenExchange,
    clock: Arc<cc_shared::domain::clock::ManualClock>,
    store: Arc<dyn support::Store>,
    keys: KeyPair,
    _dir: tempfile::TempDir,
}

async fn world_with(pem: bool, exp_millis: bool, timeout_ms: u64) -> World {
    let keys = KeyPair::generate();
    let idp = FakeIdp::start(JwtExpectation {
        key: fake_idp::decoding_key(&keys),
        exp_millis,
    })
    .await;
    let (store, dir) = support::embedded_store();
    let key = if pem {
        &keys.private_pem
    } else {
        &keys.private_base64
    };
    let (svc, clock) = support::token_exchange(
        TokenSetup {
            idp_url: &idp.url,
            private_key: Some(key),
            exp_millis,
            timeout_ms,
        },
        store.clone(),
    );
    World {
        idp,
        svc,
        clock,
        store,
        keys,
        _dir: dir,
    }
}

async fn world() -> World {
    world_with(false, false, 2000).await
}

fn jwt(account: &str) -> serde_json::Value {
    json!({"mode": "jwt", "accountName": account})
}

fn oauth(token: &str) -> serde_json::Value {
    json!({"mode": "oauth", "subjectToken": token})
}

#[tokio::test]
async fn jwt_mode_exchanges_a_signed_jwt_and_audits_it() {
    let w = world().await;
    let (status, body, headers) = call_token(&w.svc, token_request(jwt("agent007"))).await;
    assert_eq!(status, 200, "{body}");
    w.idp.assert_no_violations();
    let (access_token, subject_token, jti) = {
        let seen = w.idp.seen();
        (
            seen.access_tokens[0].clone(),
            seen.subject_tokens[0].clone(),
            seen.jtis[0].clone(),
        )
    };
    assert_eq!(body["access_token"], access_token.as_str());
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["scope"], "fuyun-dev");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(headers["cache-control"], "no-store");
    let mut keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["access_token", "expires_in", "scope", "token_type"]);

    let audit = w.store.list_audit(10, w.clock.now()).await.unwrap();
    assert_eq!(audit.len(), 1);
    let a = &audit[0];
    assert_eq!(
        (
            a.caller.as_str(),
            a.mode.as_str(),
            a.subject.as_str(),
            a.outcome.as_str()
        ),
        ("crm", "jwt", "agent007", "ok")
    );
    assert_eq!(
        a.jti.as_deref(),
        Some(jti.as_str()),
        "the audited jti is the JWT's"
    );
    let text = format!("{audit:?}");
    assert!(!text.contains(&access_token) && !text.contains(&subject_token));
}

#[tokio::test]
async fn a_pem_key_and_exp_in_milliseconds_work_too() {
    let w = world_with(true, true, 2000).await;
    let (status, body, _) = call_token(&w.svc, token_request(jwt("agent007"))).await;
    assert_eq!(status, 200, "{body}");
    w.idp.assert_no_violations();
}

#[tokio::test]
async fn oauth_mode_passes_the_crm_token_with_the_app_name() {
    let w = world().await;
    let crm_token = "crm-oauth-access-token-5f2b";
    let (status, body, _) = call_token(&w.svc, token_request(oauth(crm_token))).await;
    assert_eq!(status, 200, "{body}");
    w.idp.assert_no_violations();
    assert_eq!(w.idp.seen().subject_tokens, [crm_token]);
    let audit = w.store.list_audit(10, w.clock.now()).await.unwrap();
    assert_eq!(audit[0].mode, "oauth");
    assert!(audit[0].subject.starts_with("sha256:"));
    assert!(!format!("{audit:?}").contains(crm_token));
    assert_eq!(audit[0].jti, None);
}

#[tokio::test]
async fn tokens_are_cached_per_subject_until_expiry_minus_the_margin() {
    let w = world().await;
    let (_, first, _) = call_token(&w.svc, token_request(jwt("a1"))).await;
    w.clock.advance(1000);
    let (status, second, _) = call_token(&w.svc, token_request(jwt("a1"))).await;
    assert_eq!(status, 200);
    assert_eq!(w.idp.requests(), 1, "served from the cache");
    assert_eq!(second["access_token"], first["access_token"]);
    assert_eq!(second["expires_in"], 2600, "expires_in counts down");
    // Another subject, another mode: its own entry.
    call_token(&w.svc, token_request(jwt("a2"))).await;
    call_token(&w.svc, token_request(oauth("a1"))).await;
    assert_eq!(w.idp.requests(), 3);
    // Within the 60 s margin of expiry: exchanged again.
    w.clock.advance(3600 - 1000 - 60);
    let (_, third, _) = call_token(&w.svc, token_request(jwt("a1"))).await;
    assert_eq!(w.idp.requests(), 4);
    assert_ne!(third["access_token"], first["access_token"]);
    assert_eq!(
        w.store.list_audit(10, w.clock.now()).await.unwrap().len(),
        4,
        "cache hits are not issuances"
    );
    w.idp.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_for_one_subject_make_one_upstream_call() {
    let w = Arc::new(world().await);
    w.idp.close_gate();
    let arrived = w.idp.first_request();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let w = w.clone();
        tasks.push(tokio::spawn(async move {
            call_token(&w.svc, token_request(jwt("busy-agent"))).await
        }));
    }
    arrived.await;
    w.idp.release();
    let mut tokens = std::collections::HashSet::new();
    for t in tasks {
        let (status, body, _) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
        tokens.insert(body["access_token"].as_str().unwrap().to_string());
    }
    assert_eq!(w.idp.requests(), 1, "single flight");
    assert_eq!(tokens.len(), 1);
    w.idp.assert_no_violations();
}

#[tokio::test]
async fn idp_failures_map_to_oauth_errors_and_are_not_cached() {
    let w = world_with(false, false, 300).await;
    // (behavior, our status, error code, retryable)
    let cases = [
        (
            Behavior::Status(
                400,
                r#"{"error":"invalid_grant","error_description":"user agent007 unknown"}"#,
            ),
            403,
            "invalid_grant",
            false,
        ),
        (
            Behavior::Status(403, "forbidden"),
            403,
            "access_denied",
            false,
        ),
        (
            Behavior::Status(401, r#"{"error":"invalid_client"}"#),
            401,
            "invalid_client",
            false,
        ),
        (
            Behavior::Status(500, "oops"),
            502,
            "temporarily_unavailable",
            true,
        ),
        (
            Behavior::Status(503, ""),
            502,
            "temporarily_unavailable",
            true,
        ),
        (Behavior::Garbage, 502, "temporarily_unavailable", true),
        (Behavior::Redirect, 502, "temporarily_unavailable", true),
        (Behavior::Hang, 504, "temporarily_unavailable", true),
    ];
    for (i, (behavior, status, error, retryable)) in cases.into_iter().enumerate() {
        w.idp.set(behavior.clone());
        let before = w.idp.requests();
        let (got, body, headers) = call_token(&w.svc, token_request(jwt("agent007"))).await;
        assert_eq!(got, status, "{behavior:?}: {body}");
        assert_eq!(body["error"], error, "{behavior:?}");
        assert_eq!(body["retryable"], retryable, "{behavior:?}");
        assert_eq!(headers.contains_key("retry-after"), retryable);
        assert!(
            !headers.contains_key("www-authenticate"),
            "not the CRM's credentials"
        );
        assert!(
            !body.to_string().contains("agent007 unknown"),
            "IdP descriptions are not passed on"
        );
        assert!(body.get("access_token").is_none());
        assert_eq!(
            w.idp.requests(),
            before + 1,
            "case {i}: failures are not cached, redirects not followed"
        );
    }
    w.idp.set(Behavior::Success { expires_in: 3600 });
    let (status, _, _) = call_token(&w.svc, token_request(jwt("agent007"))).await;
    assert_eq!(status, 200);
    let outcomes: Vec<String> = w
        .store
        .list_audit(20, w.clock.now())
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.outcome)
        .collect();
    assert_eq!(outcomes.len(), 9);
    assert_eq!(outcomes[0], "ok");
    assert!(outcomes.contains(&"timeout".to_string()) && outcomes.contains(&"refused".to_string()));
    w.idp.assert_no_violations();
}

#[tokio::test]
async fn bad_requests_and_bad_credentials_never_reach_the_idp() {
    let w = world().await;
    let long = "x".repeat(200);
    let cases = [
        json!({}),
        json!({"mode": "saml", "accountName": "a"}),
        json!({"mode": "jwt"}),
        json!({"mode": "jwt", "accountName": ""}),
        json!({"mode": "jwt", "accountName": long}),
        json!({"mode": "jwt", "accountName": "a\nb"}),
        json!({"mode": "jwt", "accountName": "a", "subjectToken": "t"}),
        json!({"mode": "oauth"}),
        json!({"mode": "oauth", "subjectToken": "t", "accountName": "a"}),
        json!({"mode": "jwt", "accountName": "a", "extra": 1}),
        json!(["jwt"]),
    ];
    for body in cases {
        let (status, answer, _) = call_token(&w.svc, token_request(body.clone())).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["error"], "invalid_request", "{body}");
        assert!(answer["error_description"]
            .as_str()
            .is_some_and(|d| !d.is_empty()));
    }
    let mut req = token_request(jwt("a"));
    req.headers_mut().insert(
        "authorization",
        cc_shared::web::auth::basic_header("crm", "wrong")
            .parse()
            .unwrap(),
    );
    let (status, answer, headers) = call_token(&w.svc, req).await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (401, Some("invalid_client"))
    );
    assert!(headers.contains_key("www-authenticate"));
    assert_eq!(w.idp.requests(), 0);
    let _ = &w.keys;
}

#[tokio::test]
async fn a_mode_not_configured_is_refused() {
    let keys = KeyPair::generate();
    let idp = FakeIdp::start(JwtExpectation {
        key: fake_idp::decoding_key(&keys),
        exp_millis: false,
    })
    .await;
    let (store, _dir) = support::embedded_store();
    let (svc, _) = support::token_exchange(
        TokenSetup {
            idp_url: &idp.url,
            private_key: None,
            exp_millis: false,
            timeout_ms: 2000,
        },
        store,
    );
    let (status, body, _) = call_token(&svc, token_request(jwt("a"))).await;
    assert_eq!(status, 400);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("jwt mode is not configured"));
    let (status, _, _) = call_token(&svc, token_request(oauth("t"))).await;
    assert_eq!(status, 200);
}

contract!(audit_records_list_newest_first, |store: Arc<
    dyn support::Store,
>| async move {
    let record = |time: i64, id: &str| cc_shared::domain::audit::AuditRecord {
        time,
        id: id.into(),
        caller: "crm".into(),
        mode: "jwt".into(),
        subject: "agent".into(),
        outcome: "ok".into(),
        jti: Some(id.into()),
        expires_at: time + 100,
    };
    for (t, id) in [(1000, "a"), (1002, "c"), (1001, "b")] {
        store.put_audit(&record(t, id)).await.unwrap();
    }
    let ids: Vec<String> = store
        .list_audit(10, 1000)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["c", "b", "a"]);
    assert_eq!(store.list_audit(2, 1000).await.unwrap().len(), 2);
    assert_eq!(
        store.list_audit(10, 1101).await.unwrap().len(),
        1,
        "expired ones are not listed"
    );
});
