//! Every sample event in `events/` goes through its handler and gets the documented answer,
//! so the samples used with `cargo lambda invoke --data-file` and `sam local invoke -e` never
//! go stale. A new event file must be added to `EXPECTED`.
//!
//! The identity events assume the store state and modes described in the README:
//! `13988888888` enrolled with PIN `4321`, ID number `11010519491231002X`, birth date
//! `19491231` and card digits `0427`, `13711112222` locked out, and
//! `IDENTITY_MODES=PIN_CHECK=pin,IDCARD=id_last6,DOB=birth_date,CARD=card_last4`.

use crate::support;

use std::collections::BTreeSet;
use std::sync::Arc;

/// What a sample event must get.
enum Answer {
    /// Tencent: HTTP status and `Code`.
    Tencent(u16, i32),
    /// Huawei: HTTP status, `verifyResult` and reason (`verifyReturn1`).
    Huawei(u16, u8, &'static str),
    /// Token exchange: HTTP status and OAuth `error` (None: a token).
    OAuth(u16, Option<&'static str>),
    /// Softphone details: HTTP status and `error` (None: the details).
    Directory(u16, Option<&'static str>),
    /// A scheduled sync event: the sync runs.
    Sync,
}

const EXPECTED: &[(&str, Answer)] = &[
    ("number-mapping-phone-to-uid.json", Answer::Tencent(200, 0)),
    ("number-mapping-uid-to-phone.json", Answer::Tencent(200, 0)),
    ("number-mapping-bad-auth.json", Answer::Tencent(401, 401)),
    ("number-mapping-malformed.json", Answer::Tencent(400, 400)),
    ("identity-verify-passed.json", Answer::Huawei(200, 1, "ok")),
    (
        "identity-verify-failed.json",
        Answer::Huawei(200, 2, "wrong_pin"),
    ),
    (
        "identity-verify-locked.json",
        Answer::Huawei(200, 2, "locked"),
    ),
    (
        "identity-verify-malformed.json",
        Answer::Huawei(200, 3, "bad_request"),
    ),
    (
        "identity-verify-id-last6.json",
        Answer::Huawei(200, 1, "ok"),
    ),
    (
        "identity-verify-birth-date.json",
        Answer::Huawei(200, 1, "ok"),
    ),
    (
        "identity-verify-card-last4.json",
        Answer::Huawei(200, 1, "ok"),
    ),
    ("token-exchange-jwt.json", Answer::OAuth(200, None)),
    ("token-exchange-oauth.json", Answer::OAuth(200, None)),
    (
        "token-exchange-bad-auth.json",
        Answer::OAuth(401, Some("invalid_client")),
    ),
    (
        "token-exchange-malformed.json",
        Answer::OAuth(400, Some("invalid_request")),
    ),
    ("agent-sync-schedule.json", Answer::Sync),
    ("agents-softphone.json", Answer::Directory(200, None)),
    (
        "agents-softphone-unlinked.json",
        Answer::Directory(404, Some("not_found")),
    ),
    (
        "agents-softphone-bad-auth.json",
        Answer::Directory(401, Some("unauthorized")),
    ),
];

#[tokio::test]
async fn every_sample_event_gets_its_documented_answer() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let expected: BTreeSet<String> = EXPECTED.iter().map(|(f, _)| f.to_string()).collect();
    assert_eq!(files, expected, "events/ and EXPECTED differ");

    let (store, _dir) = support::embedded_store();
    let mapping = number_mapping::NumberMapping::new(
        number_mapping::Config {
            credentials: cc_shared::web::auth::Credentials::dev(),
            phones: cc_shared::domain::phone::PhoneNormalizer::new("CN", &[]).unwrap(),
            store_budget: cc_shared::web::StoreBudget::from_millis(3000),
            unmask_ttl_days: 180,
            unmask_budget: Some(number_mapping::config::DEFAULT_UNMASK_MAX_PER_MINUTE),
        },
        cc_shared::number_keys::LiveKeys::fixed(support::keys()),
        store.clone(),
        store.clone(),
    );
    let (identity, _clock) = {
        use cc_shared::domain::factor::{Factor, Modes};
        use cc_shared::store::IdentityStore;
        let config = identity_verification::Config {
            credentials: cc_shared::web::auth::Credentials::dev(),
            modes: identity_verification::config::ModeSettings {
                modes: Modes::parse(
                    "PIN_CHECK=pin,IDCARD=id_last6,DOB=birth_date,CARD=card_last4",
                    None,
                )
                .unwrap(),
                id_x_key: '*',
            },
            ..support::identity_config()
        };
        let phones = &config.phones;
        for (factor, number, value) in [
            (Factor::Pin, "13988888888", "4321"),
            (Factor::Pin, "13711112222", "4321"),
            (Factor::IdLast6, "13988888888", "31002X"),
            (Factor::BirthDate, "13988888888", "19491231"),
            (Factor::CardLast4, "13988888888", "0427"),
        ] {
            let p = phones.normalize(number).unwrap();
            let d = config.pepper.factor_digest(factor, &p, value);
            store
                .put_factors(factor, &[(config.index.index(&p), d)])
                .await
                .unwrap();
        }
        let clock = Arc::new(cc_shared::domain::clock::ManualClock::at(support::T0));
        let svc =
            identity_verification::IdentityVerification::new(config, store.clone(), clock.clone());
        // Lock 13711112222 out.
        for _ in 0..5 {
            let body = r#"{"calldata": {"verifyServiceNo": "13711112222", "verifyWorkNo": "371",
                           "verifyCode": "0000", "verifyTypeCode": "PIN_CHECK"}}"#;
            let mut req = support::verify_request("13711112222", "0000");
            *req.body_mut() = lambda_http::Body::Text(body.into());
            let dev = cc_shared::web::auth::basic_header("dev", "dev");
            req.headers_mut()
                .insert("authorization", dev.parse().unwrap());
            let (_, data) = support::call_verify(&svc, req).await;
            assert_eq!(data.verify_return1, "wrong_pin");
        }
        (svc, clock)
    };

    // Token exchange against the fake IdP, accepting dev:dev.
    let keys = support::fake_idp::KeyPair::generate();
    let idp = support::fake_idp::FakeIdp::start(support::fake_idp::JwtExpectation {
        key: support::fake_idp::decoding_key(&keys),
        exp_millis: false,
    })
    .await;
    let (tokens, _) = {
        let (svc, clock) = support::token_exchange(
            support::TokenSetup {
                idp_url: &idp.url,
                private_key: Some(&keys.private_base64),
                exp_millis: false,
                timeout_ms: 2000,
            },
            store.clone(),
        );
        (
            svc.with_credentials(cc_shared::web::auth::Credentials::dev()),
            clock,
        )
    };

    // The agent directory against the fake CEC: `alice` linked to agent 1002, accepting dev:dev.
    let cec = support::fake_cec::FakeCec::start().await;
    let cec_client = Arc::new(support::cec_client(&cec.base_url));
    let clock = cc_shared::domain::clock::ManualClock::at(support::T0);
    agent_sync::sync(&*store, &cec_client, &clock, Default::default())
        .await
        .unwrap();
    cc_shared::store::AgentStore::link_account(&*store, "alice", "1002")
        .await
        .unwrap();
    let directory = agent_sync::AgentDirectory::new(
        cc_shared::web::auth::Credentials::dev(),
        cec_client.clone(),
        store.clone(),
        Arc::new(cc_shared::domain::clock::ManualClock::at(support::T0)),
    );

    for (file, answer) in EXPECTED {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        if let Answer::Sync = answer {
            let event: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(event["detail-type"], "Scheduled Event", "{file}");
            let counts = agent_sync::sync(&*store, &cec_client, &clock, Default::default())
                .await
                .unwrap();
            assert_eq!(counts.unchanged, 3, "{file}");
            continue;
        }
        // Every sample meant to be well-formed (all but `*-malformed`) fits openapi.yaml's
        // request schema; every answer below is checked against it too.
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        // The route, without the stage's prefix of `rawPath`.
        let path = event["routeKey"]
            .as_str()
            .and_then(|r| r.strip_prefix("POST "))
            .unwrap_or_else(|| panic!("{file}: routeKey"));
        if !file.contains("malformed") {
            let body: serde_json::Value = serde_json::from_str(event["body"].as_str().unwrap())
                .unwrap_or_else(|e| panic!("{file}: body: {e}"));
            support::openapi::contract().check_request(path, &body);
        }
        // The conversion the Lambda binaries run (cc_shared::web::lambda), not lambda_http's.
        let req = serde_json::from_str::<cc_shared::web::lambda::HttpEvent>(&text)
            .map_err(|e| e.to_string())
            .and_then(|event| event.into_request().map_err(|e| e.to_string()))
            .unwrap_or_else(|e| panic!("{file} is not an API Gateway HTTP event: {e}"));
        match answer {
            Answer::Directory(status, error) => {
                let resp = agent_sync::handle(&directory, req).await;
                let (got_status, body) = support::checked_answer(path, resp);
                assert_eq!(got_status, *status, "{file}");
                let body: serde_json::Value = serde_json::from_str(&body).unwrap();
                assert_eq!(body["error"].as_str(), *error, "{file}");
                if error.is_none() {
                    assert_eq!(body["workNo"], "1002", "{file}");
                }
            }
            Answer::Sync => unreachable!("handled above"),
            Answer::Tencent(status, code) => {
                let (got_status, resp) = support::call_mapping(&mapping, req).await;
                assert_eq!(got_status, *status, "{file}: {:?}", resp.message);
                assert_eq!(resp.code, *code, "{file}");
                if *code == 0 {
                    assert!(!resp.results.is_empty(), "{file}");
                }
            }
            Answer::OAuth(status, error) => {
                let (got_status, body, _) = support::call_token(&tokens, req).await;
                assert_eq!(got_status, *status, "{file}: {body}");
                assert_eq!(body["error"].as_str(), *error, "{file}");
                if error.is_none() {
                    assert!(body["access_token"].is_string(), "{file}");
                }
            }
            Answer::Huawei(status, result, reason) => {
                let (got_status, data) = support::call_verify(&identity, req).await;
                assert_eq!(
                    (got_status, data.verify_result, data.verify_return1.as_str()),
                    (*status, *result, *reason),
                    "{file}"
                );
            }
        }
    }
    idp.assert_no_violations();
    cec.assert_no_violations();
}
