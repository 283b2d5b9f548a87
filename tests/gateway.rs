//! The README's run command end to end: the real `cc-callbacks` binary serving on loopback.

mod support;

use support::cli::{command, post, spawn, start};

#[test]
fn serves_number_mapping_with_dev_credentials_on_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let gw = start(dir.path());
    let dev = cc_shared::auth::basic_header("dev", "dev");
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
        cc_shared::auth::entry_for("tencent", "pw-1"),
    );
    let gw = spawn(cmd);
    let body = r#"{"Numbers":["13988888888"],"Mode":"PhoneToUID"}"#;
    let dev = cc_shared::auth::basic_header("dev", "dev");
    assert_eq!(post(&gw.addr, "/number-mapping", Some(&dev), body).0, 401);
    let good = cc_shared::auth::basic_header("tencent", "pw-1");
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
    assert_eq!(entry, cc_shared::auth::entry_for("tencent", password));
    assert!(password.len() >= 32);
}
