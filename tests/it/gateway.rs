//! The README's run command end to end: the real `cc-callbacks` binary serving on loopback.

use crate::support;

use support::cli::{command, post, spawn, start};

#[test]
fn serves_number_mapping_with_dev_credentials_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let dev = cc_shared::web::auth::basic_header("dev", "dev");
    let (status, body) = post(
        &gw.addr,
        "/number-mapping",
        Some(&dev),
        r#"{"Numbers":["13988888888","008613988888888"],"Mode":"PhoneToUID"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let resp: serde_json::Value = serde_json::from_str(&body).unwrap();
    let uid = resp["Results"][0]["Value"].as_str().unwrap().to_string();
    assert_eq!(resp["Results"][1]["Value"], uid.as_str());

    let (status, body) = post(
        &gw.addr,
        "/number-mapping",
        Some(&dev),
        &format!(r#"{{"Numbers":["{uid}"],"Mode":"UIDToPhone"}}"#),
    );
    assert_eq!(status, 200);
    assert!(body.contains("008613988888888"), "{body}");

    let (status, _) = post(&gw.addr, "/number-mapping", None, "{}");
    assert_eq!(status, 401);
    let (status, _) = post(&gw.addr, "/nowhere", Some(&dev), "{}");
    assert_eq!(status, 404);

    // The store is the file under --data-dir: a restarted gateway answers with the same ID.
    drop(gw);
    let gw = start(dir.path());
    let (_, body) = post(
        &gw.addr,
        "/number-mapping",
        Some(&dev),
        r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#,
    );
    assert!(body.contains(&uid), "{body}");
}

#[test]
fn refuses_dev_credentials_on_a_public_address() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .args(["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("NUMBER_MAPPING_CREDENTIALS"), "{stderr}");
}

#[test]
fn configured_credentials_replace_dev_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env(
        "NUMBER_MAPPING_CREDENTIALS",
        cc_shared::web::auth::entry_for("tencent", "pw-1"),
    );
    let gw = spawn(cmd);
    let body = r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#;
    let dev = cc_shared::web::auth::basic_header("dev", "dev");
    assert_eq!(post(&gw.addr, "/number-mapping", Some(&dev), body).0, 401);
    let good = cc_shared::web::auth::basic_header("tencent", "pw-1");
    assert_eq!(post(&gw.addr, "/number-mapping", Some(&good), body).0, 200);
}

#[test]
fn credentials_new_prints_a_password_and_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .args(["credentials", "new", "--user", "tencent"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password (give it to the caller, then forget it): "))
        .unwrap();
    let entry = stdout
        .lines()
        .find_map(|l| l.strip_prefix("entry (append to the function's *_CREDENTIALS parameter): "))
        .unwrap();
    assert_eq!(entry, cc_shared::web::auth::entry_for("tencent", password));
    assert!(password.len() >= 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_exchange_works_through_the_gateway_in_both_modes() {
    use support::fake_idp::*;
    let keys = KeyPair::generate();
    let idp = FakeIdp::start(JwtExpectation {
        key: decoding_key(&keys),
        exp_millis: false,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = command(dir.path());
    cmd.env("FUYUN_TOKEN_URL", &idp.url)
        .env("FUYUN_CLIENT_ID", CLIENT_ID)
        .env("FUYUN_CLIENT_SECRET", CLIENT_SECRET)
        .env("FUYUN_SCOPE", SCOPE)
        .env("FUYUN_REDIRECT_URL", REDIRECT_URL)
        .env("FUYUN_ISSUER", ISSUER)
        .env("FUYUN_PRIVATE_KEY", &keys.private_base64)
        .env("FUYUN_APP_NAME", APP_NAME);
    let gw = spawn(cmd);
    let addr = gw.addr.clone();
    let answers = tokio::task::spawn_blocking(move || {
        let dev = cc_shared::web::auth::basic_header("dev", "dev");
        [
            r#"{"mode":"jwt","accountName":"agent007"}"#,
            r#"{"mode":"oauth","subjectToken":"crm-token-1"}"#,
            r#"{"mode":"jwt","accountName":"agent007"}"#,
        ]
        .map(|body| post(&addr, "/token-exchange", Some(&dev), body))
    })
    .await
    .unwrap();
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert!(body.contains("\"access_token\":\"at-"), "{body}");
    }
    assert_eq!(idp.requests(), 2, "the third answer came from the cache");
    idp.assert_no_violations();
    drop(gw);
}

#[test]
fn token_exchange_without_configuration_is_unavailable_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let dev = cc_shared::web::auth::basic_header("dev", "dev");
    let (status, body) = post(
        &gw.addr,
        "/token-exchange",
        Some(&dev),
        r#"{"mode":"jwt","accountName":"a"}"#,
    );
    assert_eq!(status, 503);
    assert!(body.contains("FUYUN_CLIENT_ID"), "{body}");
}
