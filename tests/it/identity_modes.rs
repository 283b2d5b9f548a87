//! Identity verification by mode (README "Identity verification"): each `verifyTypeCode`
//! checks its own factor (PIN, the ID number's last six, the birth date, a card's last four),
//! one lock per customer across modes, unknown modes, customers not enrolled for a factor,
//! enrolment and forgetting through the CLI, on both backends, with no value in the store or
//! the logs.

use std::sync::Arc;

use crate::numbers_cli::{on_backend, rejected, Cli};
use crate::support;
use support::cli::{post, spawn, Gateway};
use support::Store;

use cc_shared::domain::factor::Factor;
use cc_shared::domain::identity::{RecordQuery, VerificationRecord};

const MODES: &str = "PIN=pin,IDCARD=id_last6,DOB=birth_date,CARD=card_last4";
const NUMBER: &str = "13988888888";
/// GB 11643's own example: its check character is X.
const ID_NUMBER: &str = "11010519491231002X";
const BIRTH: &str = "19491231";
const CARD: &str = "0427";
const PIN: &str = "2468";

/// The handler on `store` with `MODES`, `NUMBER` enrolled for every factor.
async fn with_modes(store: Arc<dyn Store>) -> identity_verification::IdentityVerification {
    let mut config = support::identity_config();
    config.modes = identity_verification::config::ModeSettings {
        modes: cc_shared::domain::factor::Modes::parse(MODES, None).unwrap(),
        id_x_key: '*',
    };
    let phone = config.phones.normalize(NUMBER).unwrap();
    let index = config.index.index(&phone);
    for (factor, value) in [
        (Factor::Pin, PIN),
        (Factor::IdLast6, "31002X"),
        (Factor::BirthDate, BIRTH),
        (Factor::CardLast4, CARD),
    ] {
        let digest = config.pepper.factor_digest(factor, &phone, value);
        store
            .put_factors(factor, &[(index.clone(), digest)])
            .await
            .unwrap();
    }
    let clock = Arc::new(cc_shared::domain::clock::ManualClock::at(support::T0));
    identity_verification::IdentityVerification::new(config, store, clock)
}

fn request(number: &str, mode: Option<&str>, typed: &str) -> lambda_http::Request {
    let mut calldata = serde_json::json!({"verifyServiceNo": number, "verifyWorkNo": "371",
                                         "verifyCode": typed});
    if let Some(mode) = mode {
        calldata["verifyTypeCode"] = mode.into();
    }
    http::Request::builder()
        .method("POST")
        .uri("/identity/verify")
        .header(
            "authorization",
            cc_shared::web::auth::basic_header("ivr", support::IVR_PASSWORD),
        )
        .body(lambda_http::Body::Text(
            serde_json::json!({ "calldata": calldata }).to_string(),
        ))
        .unwrap()
}

/// The store's records (of `mode` when given), newest first.
async fn records_of(store: &Arc<dyn Store>, mode: Option<&str>) -> Vec<VerificationRecord> {
    store
        .list_records(&RecordQuery {
            mode: mode.map(str::to_string),
            limit: 100,
            now: support::T0,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// (verifyResult, verifyReturn1, verifyReturn2) of one request.
async fn verify(
    svc: &identity_verification::IdentityVerification,
    mode: Option<&str>,
    typed: &str,
) -> (u8, String, String) {
    let (status, data) = support::call_verify(svc, request(NUMBER, mode, typed)).await;
    assert_eq!(status, 200);
    (data.verify_result, data.verify_return1, data.verify_return2)
}

crate::contract!(
    each_mode_checks_its_own_factor,
    |store: Arc<dyn Store>| async move {
        let svc = with_modes(store.clone()).await;
        let ok = |left: &str| (1, "ok".to_string(), left.to_string());
        assert_eq!(verify(&svc, Some("PIN"), PIN).await, ok("5"));
        // The ID number's X is typed as the key the prompt names (`*`).
        assert_eq!(verify(&svc, Some("IDCARD"), "31002*").await, ok("5"));
        assert_eq!(verify(&svc, Some("DOB"), BIRTH).await, ok("5"));
        assert_eq!(verify(&svc, Some("CARD"), CARD).await, ok("5"));
        // A wrong value says which factor was wrong, never what was right.
        for (mode, typed, reason) in [
            ("IDCARD", "310021", "wrong_id_last6"),
            ("DOB", "19491230", "wrong_birth_date"),
            ("CARD", "0428", "wrong_card_last4"),
            ("PIN", BIRTH, "wrong_pin"),
        ] {
            let (result, why, _) = verify(&svc, Some(mode), typed).await;
            assert_eq!((result, why.as_str()), (2, reason), "{mode}");
        }
        // Another mode's value does not pass: the PIN typed in the card's mode.
        let (result, _, left) = verify(&svc, Some("CARD"), &PIN[..4]).await;
        assert_eq!((result, left.as_str()), (2, "0"), "the fifth failure locks");
        // One lock per customer: every mode is locked now.
        for (mode, typed) in [("PIN", PIN), ("DOB", BIRTH), ("IDCARD", "31002*")] {
            let (result, why, _) = verify(&svc, Some(mode), typed).await;
            assert_eq!((result, why.as_str()), (2, "locked"), "{mode}");
        }
        // An unknown mode (or none, without a default) is abnormal and counts for nothing.
        for mode in [Some("FACE"), None] {
            let (result, why, left) = verify(&svc, mode, PIN).await;
            assert_eq!(
                (result, why.as_str(), left.as_str()),
                (3, "unknown_mode", "")
            );
        }
        // Records carry the mode and its factor; listed by mode.
        let records = records_of(&store, Some("DOB")).await;
        assert_eq!(records.len(), 3, "{records:?}");
        assert!(records
            .iter()
            .all(|r| r.factor == "birth_date" && r.verify_type_code == "DOB"));
        let all = records_of(&store, None).await;
        let unknown: Vec<_> = all.iter().filter(|r| r.reason == "unknown_mode").collect();
        assert_eq!(unknown.len(), 2);
        assert!(unknown.iter().all(|r| r.factor.is_empty() && r.result == 3));
    }
);

crate::contract!(
    a_customer_not_enrolled_for_a_factor_is_unknown_to_it,
    |store: Arc<dyn Store>| async move {
        let svc = with_modes(store.clone()).await;
        let config = support::identity_config();
        let phone = config.phones.normalize(NUMBER).unwrap();
        assert!(store
            .forget_factor(&config.index.index(&phone), Factor::BirthDate)
            .await
            .unwrap());
        assert!(!store
            .forget_factor(&config.index.index(&phone), Factor::BirthDate)
            .await
            .unwrap());
        let (result, why, _) = verify(&svc, Some("DOB"), BIRTH).await;
        assert_eq!((result, why.as_str()), (2, "unknown_customer"));
        // Its other factors stay, and the unknown answer counted nothing.
        assert_eq!(verify(&svc, Some("PIN"), PIN).await.0, 1);
        let records = records_of(&store, None).await;
        let unknown = records
            .iter()
            .find(|r| r.reason == "unknown_customer")
            .unwrap();
        assert_eq!(
            unknown.factor, "birth_date",
            "the factor is named in the record"
        );
        // Re-enrolling a factor keeps the others.
        let digest = config
            .pepper
            .factor_digest(Factor::CardLast4, &phone, "9999");
        store
            .put_factors(Factor::CardLast4, &[(config.index.index(&phone), digest)])
            .await
            .unwrap();
        assert_eq!(verify(&svc, Some("CARD"), "9999").await.0, 1);
        assert_eq!(verify(&svc, Some("IDCARD"), "31002*").await.0, 1);
    }
);

/// 20 concurrent wrong attempts, half in one mode and half in another: at most 5 checks run
/// (one window per customer, whatever the mode).
async fn twenty_wrong_across_two_modes(store: Arc<dyn Store>) {
    let svc = Arc::new(with_modes(store).await);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let (mode, typed) = if i % 2 == 0 {
                    ("PIN", "0000")
                } else {
                    ("DOB", "20000101")
                };
                verify(&svc, Some(mode), typed).await
            })
        })
        .collect();
    let mut checked = 0;
    for t in tasks {
        let (result, why, _) = t.await.unwrap();
        assert_eq!(result, 2);
        match why.as_str() {
            "wrong_pin" | "wrong_birth_date" => checked += 1,
            "locked" => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!((1..=5).contains(&checked), "{checked} checks ran");
    assert_eq!(verify(&svc, Some("CARD"), CARD).await.1, "locked");
}

crate::contract!(
    one_lock_across_modes_under_concurrency,
    twenty_wrong_across_two_modes
);

/// Round trips per verification are those of a PIN: 3 for a checked value, 2 for an unknown
/// customer or a locked one; an unknown mode writes its record only.
#[tokio::test]
async fn round_trips_by_mode_on_dynamodb() {
    let (store, counter) = support::dynamo_store().await;
    let svc = with_modes(store).await;
    for (mode, typed, reason, round_trips) in [
        (Some("IDCARD"), "31002*", "ok", 3),
        (Some("DOB"), "19000101", "wrong_birth_date", 3),
        (Some("FACE"), "1", "unknown_mode", 1),
    ] {
        counter.reset();
        assert_eq!(verify(&svc, mode, typed).await.1, reason);
        assert_eq!(counter.get(), round_trips, "{reason}");
    }
    counter.reset();
    let (status, data) =
        support::call_verify(&svc, request("13700000000", Some("CARD"), CARD)).await;
    assert_eq!(
        (status, data.verify_return1.as_str()),
        (200, "unknown_customer")
    );
    assert_eq!(counter.get(), 2);
}

/// `verifyReturn1` of the gateway's answer to NUMBER typing `typed` in `mode`, as `auth`.
fn reason_of(gw: &Gateway, auth: &str, mode: &str, typed: &str) -> String {
    let body = serde_json::json!({"calldata": {"verifyServiceNo": NUMBER,
        "verifyWorkNo": "371", "verifyCode": typed, "verifyTypeCode": mode}});
    let (status, body) = post(&gw.addr, "/identity/verify", Some(auth), &body.to_string());
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["calldata"]["data"]["verifyReturn1"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Through the CLI and the gateway: `factors import` (the whole file checked first, reasons
/// by line, never a value), a flow per mode, `records list --mode`, `factors forget`, `numbers
/// forget` erasing every factor; no value in the store's dump or the gateway's log.
fn factors_end_to_end(cli: &Cli, dump: &dyn Fn() -> String) {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    // Bad rows: each rejected with its line and reason, nothing written.
    let bad = file(
        "bad.csv",
        "number,value\n13900000001,110105194912310021\n13900000002,110105194902300020\n\
         13900000003,1101051949\n13900000004,31002X\n",
    );
    let (ok, stdout, stderr) = cli.run(&["factors", "import", &bad, "--factor", "id_last6"]);
    assert!(!ok, "{stdout}{stderr}");
    let reasons = rejected(&stdout);
    assert_eq!(reasons.len(), 3, "{stdout}");
    assert!(reasons[0].1.contains("check character"), "{reasons:?}");
    assert!(reasons[1].1.contains("birth date"), "{reasons:?}");
    assert!(reasons[2].1.contains("18 characters"), "{reasons:?}");
    assert!(!stdout.contains("110105") && !stderr.contains("110105"));
    let dates = file(
        "dates.csv",
        "number,value\n13900000001,1981-02-29\n13900000002,198102\n",
    );
    let (ok, stdout, _) = cli.run(&["factors", "import", &dates, "--factor", "birth_date"]);
    assert!(!ok);
    assert_eq!(rejected(&stdout).len(), 2, "{stdout}");
    let (ok, _, stderr) = cli.run(&["factors", "import", &dates, "--factor", "face"]);
    assert!(!ok && stderr.contains("not a factor"), "{stderr}");

    for (factor, value) in [
        ("id_last6", ID_NUMBER),
        ("birth_date", "1949-12-31"),
        ("card_last4", CARD),
    ] {
        let csv = file(
            &format!("{factor}.csv"),
            &format!("number,value\n{NUMBER},{value}\n"),
        );
        let out = cli.ok(&["factors", "import", &csv, "--factor", factor]);
        assert!(
            out.contains(&format!("enrolled 1 values of {factor}")),
            "{out}"
        );
    }
    let pins = file("pins.csv", &format!("number,pin\n{NUMBER},{PIN}\n"));
    cli.ok(&["pins", "import", &pins]);

    let mut cmd = cli.cmd();
    cmd.env("IDENTITY_MODES", MODES)
        .env("IDENTITY_ID_X_KEY", "#");
    let gw = spawn(cmd);
    let dev = cc_shared::web::auth::basic_header("dev", "dev");
    let ask = |mode: &str, typed: &str| reason_of(&gw, &dev, mode, typed);
    assert_eq!(ask("IDCARD", "31002#"), "ok");
    assert_eq!(
        ask("IDCARD", "31002*"),
        "wrong_id_last6",
        "the key is # here"
    );
    assert_eq!(ask("DOB", BIRTH), "ok");
    assert_eq!(ask("CARD", CARD), "ok");
    assert_eq!(ask("PIN", PIN), "ok");
    assert_eq!(ask("VOICE", PIN), "unknown_mode");
    let listed: serde_json::Value =
        serde_json::from_str(&cli.ok(&["records", "list", "--mode", "IDCARD", "--json"])).unwrap();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    assert!(
        listed.iter().all(|r| r["factor"] == "id_last6"),
        "{listed:?}"
    );

    let out = cli.ok(&["factors", "forget", NUMBER, "--factor", "card_last4"]);
    assert!(out.contains("card_last4") && !out.contains(NUMBER), "{out}");
    assert_eq!(ask("CARD", CARD), "unknown_customer");
    let (ok, _, stderr) = cli.run(&["factors", "forget", NUMBER, "--factor", "card_last4"]);
    assert!(!ok && stderr.contains("not enrolled"), "{stderr}");

    // No value, in any form, in the store or the log. (The card's 4 digits are searched as
    // a JSON string in the log only: among the store's hex digests any 4 digits turn up by
    // chance; the store is only ever handed digests, `IdentityStore::put_factors`.)
    let secrets = [ID_NUMBER, "31002X", "31002#", BIRTH, "1949-12-31"];
    let stored = dump();
    let log = gw.log.lock().unwrap().clone();
    for s in secrets {
        assert!(!stored.contains(s), "{s} is in the store");
        assert!(!log.contains(s), "{s} is in the log");
    }
    assert!(
        !log.contains(&format!("\"{CARD}\"")),
        "the card digits are in the log"
    );
    // `numbers forget` erases every factor of the customer.
    cli.ok(&["numbers", "forget", NUMBER]);
    assert_eq!(ask("DOB", BIRTH), "unknown_customer");
    assert_eq!(ask("PIN", PIN), "unknown_customer");
    drop(gw);
}

#[test]
fn factors_through_the_cli_and_the_gateway_embedded() {
    on_backend(false, "cc-factors", factors_end_to_end);
}

#[test]
fn factors_through_the_cli_and_the_gateway_dynamodb() {
    on_backend(true, "cc-factors", factors_end_to_end);
}

/// Platform mode: a tenant's modes are its own settings (`tenants set`, checked by the
/// function's own code), its factors enrolled with `--tenant`; the default tenant, without
/// modes, checks the PIN whatever the code, as before.
fn tenant_modes(cli: &Cli, _dump: &dyn Fn() -> String) {
    cli.ok(&["tenants", "add", "acme"]);
    let pw = crate::platform::credential(cli, "huawei", "acme", "identity-verification");
    let (ok, _, stderr) = cli.run(&["tenants", "set", "acme", "IDENTITY_MODES=DOB=face"]);
    assert!(!ok && stderr.contains("IDENTITY_MODES"), "{stderr}");
    let (ok, _, stderr) = cli.run(&["tenants", "set", "acme", "IDENTITY_ID_X_KEY=5"]);
    assert!(!ok && stderr.contains("IDENTITY_ID_X_KEY"), "{stderr}");
    cli.ok(&["tenants", "set", "acme", "IDENTITY_MODES=DOB=birth_date"]);
    assert!(cli
        .ok(&["tenants", "show", "acme"])
        .contains("DOB=birth_date"));
    let dir = tempfile::tempdir().unwrap();
    let births = dir.path().join("births.csv");
    std::fs::write(&births, format!("number,value\n{NUMBER},{BIRTH}\n")).unwrap();
    let births = births.to_str().unwrap();
    // The tenant's first: its enrolments are under its own pepper, so the default tenant's
    // local pepper is still generated on its first enrolment.
    cli.ok(&[
        "factors",
        "import",
        births,
        "--factor",
        "birth_date",
        "--tenant",
        "acme",
    ]);
    let pins = dir.path().join("pins.csv");
    std::fs::write(&pins, format!("number,pin\n{NUMBER},{PIN}\n")).unwrap();
    cli.ok(&["pins", "import", pins.to_str().unwrap()]);

    let mut cmd = cli.cmd();
    cmd.env("TENANT_CACHE_SECONDS", "0");
    let gw = spawn(cmd);
    let ask = |auth: &str, mode: &str, typed: &str| reason_of(&gw, auth, mode, typed);
    let acme = cc_shared::web::auth::basic_header("huawei@acme", &pw);
    let default = cc_shared::web::auth::basic_header("dev", "dev");
    assert_eq!(ask(&acme, "DOB", BIRTH), "ok");
    assert_eq!(ask(&acme, "PIN", PIN), "unknown_mode");
    // The default tenant has no modes: every code checks its PIN.
    assert_eq!(ask(&default, "DOB", PIN), "ok");
    assert_eq!(ask(&default, "DOB", BIRTH), "wrong_pin");
    // A change of the tenant's modes is used once the registry is read again.
    cli.ok(&["tenants", "set", "acme", "IDENTITY_MODES=BIRTH=birth_date"]);
    assert_eq!(ask(&acme, "DOB", BIRTH), "unknown_mode");
    assert_eq!(ask(&acme, "BIRTH", BIRTH), "ok");
    drop(gw);
}

#[test]
fn a_tenants_modes_are_its_own_embedded() {
    on_backend(false, "cc-factor-tenant", tenant_modes);
}

#[test]
fn a_tenants_modes_are_its_own_dynamodb() {
    on_backend(true, "cc-factor-tenant", tenant_modes);
}
