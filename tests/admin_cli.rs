//! The identity admin commands through the real binary, on the embedded store the gateway
//! serves: import PINs from CSV, verify through the gateway, list records, unlock.

mod support;

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
    let dev = cc_shared::auth::basic_header("dev", "dev");
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
    assert!(records
        .iter()
        .all(|r| r["masked_number"] == "+86139****8888" && r["agent"] == "371"));
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
    assert!(stdout.contains("unlocked +86139****8888"), "{stdout}");
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
