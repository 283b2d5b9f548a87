//! The identity admin commands through the real binary, on the embedded store the gateway
//! serves: import PINs from CSV, verify through the gateway, list records, unlock.

use crate::support;

use support::cli::{command, post, start};

fn run(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = command(dir).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn verify(addr: &str, number: &str, pin: &str) -> serde_json::Value {
    let body = serde_json::json!({"calldata": {"verifyServiceNo": number, "verifyWorkNo": "371",
                                  "verifyCode": pin, "verifyTypeCode": "PIN"}});
    let dev = cc_shared::web::auth::basic_header("dev", "dev");
    let (status, body) = post(addr, "/identity/verify", Some(&dev), &body.to_string());
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["calldata"]["data"].clone()
}

const CSV: &str = "number,pin
13988888888,1234
13700000000,12
1398abc8888,1234
+86 139 8888 8888,5555
13600000000,123456
a,b,c
";

#[test]
fn pins_import_enrols_good_rows_and_reports_bad_ones_by_line() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("pins.csv");
    std::fs::write(&csv, CSV).unwrap();
    let (ok, stdout, stderr) = run(dir.path(), &["pins", "import", csv.to_str().unwrap()]);
    assert!(!ok, "rejected rows make the command fail");
    assert!(
        stdout.contains("enrolled 2 PINs, rejected 4 rows"),
        "{stdout}"
    );
    for line in [
        "line 3: the PIN",
        "line 4: number contains",
        "line 5: the same number as line 2",
        "line 7: expected 2 fields",
    ] {
        assert!(stdout.contains(line), "{line} missing from:\n{stdout}");
    }
    assert!(stderr.contains("some rows were rejected"), "{stderr}");
    for secret in ["13988888888", "13700000000", "1234", "5555", "123456"] {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed"
        );
    }

    // The gateway serves the same store with the same pepper: the imported PINs verify.
    let gw = start(dir.path());
    assert_eq!(verify(&gw.addr, "13988888888", "1234")["verifyResult"], 1);
    assert_eq!(verify(&gw.addr, "13600000000", "123456")["verifyResult"], 1);
    assert_eq!(
        verify(&gw.addr, "13700000000", "1234")["verifyReturn1"],
        "unknown_customer"
    );
    for _ in 0..5 {
        verify(&gw.addr, "13988888888", "0000");
    }
    assert_eq!(
        verify(&gw.addr, "13988888888", "1234")["verifyReturn1"],
        "locked"
    );

    // Records, while the gateway still serves.
    let (ok, stdout, _) = run(
        dir.path(),
        &["records", "list", "--number", "+8613988888888", "--json"],
    );
    assert!(ok);
    let records: Vec<serde_json::Value> = serde_json::from_str(&stdout).unwrap();
    let reasons: Vec<&str> = records
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 7);
    assert_eq!(reasons[0], "locked");
    assert_eq!(*reasons.last().unwrap(), "ok");
    assert!(
        records
            .iter()
            .all(|r| r["masked_number"] == "+86*******8888" && r["agent"] == "371"),
        "{records:?}"
    );
    assert!(!stdout.contains("13988888888"));
    let (ok, table, _) = run(
        dir.path(),
        &["records", "list", "--agent", "371", "--limit", "2"],
    );
    assert!(ok);
    assert_eq!(table.lines().count(), 3, "header and two rows:\n{table}");
    let (ok, _, stderr) = run(dir.path(), &["records", "list", "--since", "yesterday"]);
    assert!(!ok && stderr.contains("RFC 3339"), "{stderr}");

    // Unlock lifts the lock at once.
    let (ok, stdout, _) = run(dir.path(), &["pins", "unlock", "008613988888888"]);
    assert!(ok);
    assert!(stdout.contains("unlocked +86*******8888"), "{stdout}");
    assert_eq!(verify(&gw.addr, "13988888888", "1234")["verifyResult"], 1);
    let (ok, _, stderr) = run(dir.path(), &["pins", "unlock", "13500000000"]);
    assert!(!ok && stderr.contains("no enrolled PIN"), "{stderr}");
}

#[test]
fn pins_import_refuses_a_file_without_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("pins.csv");
    std::fs::write(&csv, "phone,code\n13988888888,1234\n").unwrap();
    let (ok, _, stderr) = run(dir.path(), &["pins", "import", csv.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("number,pin"), "{stderr}");
    let (ok, _, stderr) = run(dir.path(), &["pins", "import", "/nonexistent.csv"]);
    assert!(!ok && stderr.contains("cannot open"), "{stderr}");
}

/// The agent directory through the CLI and the gateway, on the store `store_env` selects.
async fn agents_through_cli_and_gateway(store_env: Vec<(String, String)>) {
    use support::fake_cec::{self, FakeCec};
    let cec = FakeCec::start().await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_path_buf();
    let base = cec.base_url.clone();
    let env = store_env.clone();
    let with_cec = move |args: &[&str]| {
        let out = command(&data)
            .envs(env.iter().cloned())
            .env("CEC_BASE_URL", &base)
            .env("CEC_APP_KEY", fake_cec::APP_KEY)
            .env("CEC_APP_SECRET", fake_cec::APP_SECRET)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (sync1, sync2, list, link, bad_link) = tokio::task::spawn_blocking({
        let with_cec = with_cec.clone();
        move || {
            (
                with_cec(&["agents", "sync"]),
                with_cec(&["agents", "sync"]),
                with_cec(&["agents", "list", "--json"]),
                with_cec(&["agents", "link", "alice", "1002"]),
                with_cec(&["agents", "link", "bob", "4242"]),
            )
        }
    })
    .await
    .unwrap();
    assert!(sync1.0, "{}", sync1.2);
    assert!(
        sync1
            .1
            .contains("added 3, updated 0, deactivated 0, unchanged 0"),
        "{}",
        sync1.1
    );
    assert!(
        sync2
            .1
            .contains("added 0, updated 0, deactivated 0, unchanged 3"),
        "{}",
        sync2.1
    );
    let listed: serde_json::Value = serde_json::from_str(&list.1).unwrap();
    assert_eq!(listed["agents"].as_array().unwrap().len(), 3);
    assert_eq!(listed["last_sync"]["counts"]["unchanged"], 3);
    assert!(
        link.0 && link.1.contains("linked alice to agent 1002"),
        "{}",
        link.2
    );
    assert!(
        !bad_link.0 && bad_link.2.contains("not in the directory"),
        "{}",
        bad_link.2
    );
    for output in [&sync1.1, &sync2.1, &list.1, &link.1] {
        assert!(
            !output.contains("cti-pw"),
            "a softphone password was printed"
        );
    }

    // The gateway serves the softphone endpoint on the same store.
    let mut cmd = command(dir.path());
    cmd.envs(store_env.iter().cloned())
        .env("CEC_BASE_URL", &cec.base_url)
        .env("CEC_APP_KEY", fake_cec::APP_KEY)
        .env("CEC_APP_SECRET", fake_cec::APP_SECRET);
    let gw = support::cli::spawn(cmd);
    let addr = gw.addr.clone();
    let (status, body) = tokio::task::spawn_blocking(move || {
        let dev = cc_shared::web::auth::basic_header("dev", "dev");
        post(
            &addr,
            "/agents/softphone",
            Some(&dev),
            r#"{"account":"alice"}"#,
        )
    })
    .await
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (body["workNo"].as_str(), body["sipPwd"].as_str()),
        (Some("1002"), Some("cti-pw-1002"))
    );

    // A directory answer that would take most agents out of service (here: an empty one, as
    // from another tenant space) is refused whole, until an operator allows it.
    let ten: Vec<u64> = (1001..=1010).collect();
    cec.set(fake_cec::Behavior::Directory(fake_cec::directory(
        &ten, false,
    )));
    let grown = tokio::task::spawn_blocking({
        let with_cec = with_cec.clone();
        move || with_cec(&["agents", "sync"])
    })
    .await
    .unwrap();
    assert!(
        grown.1.contains("added 7, updated 0, deactivated 0"),
        "{}",
        grown.2
    );
    cec.set(fake_cec::Behavior::Directory(fake_cec::directory(
        &[],
        false,
    )));
    let (refused, listed, allowed) = tokio::task::spawn_blocking(move || {
        (
            with_cec(&["agents", "sync"]),
            with_cec(&["agents", "list", "--json"]),
            with_cec(&["agents", "sync", "--allow-mass-deactivation"]),
        )
    })
    .await
    .unwrap();
    assert!(!refused.0, "{}", refused.1);
    assert!(
        refused.2.contains("deactivate 10 of 10 active agents")
            && refused.2.contains("--allow-mass-deactivation"),
        "{}",
        refused.2
    );
    let listed: serde_json::Value = serde_json::from_str(&listed.1).unwrap();
    let agents = listed["agents"].as_array().unwrap();
    assert!(
        agents.len() == 10 && agents.iter().all(|a| a["active"] == true),
        "a refused sync changed the store: {listed}"
    );
    assert!(
        allowed.0 && allowed.1.contains("deactivated 10"),
        "{} {}",
        allowed.1,
        allowed.2
    );
    cec.assert_no_violations();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_through_cli_and_gateway_embedded() {
    agents_through_cli_and_gateway(Vec::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_through_cli_and_gateway_dynamodb() {
    let table = format!(
        "cc-cli-{}",
        cc_shared::domain::uid::Uid::generate().unwrap()
    );
    let env = support::dynamodb_cli_env(&table);
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .envs(env.iter().cloned())
        .args(["table", "create"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    agents_through_cli_and_gateway(env).await;
}
