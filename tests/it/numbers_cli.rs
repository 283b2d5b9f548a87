//! `cc-callbacks numbers ...` end to end through the real binary while the gateway serves, on
//! both backends: import (with every kind of bad row), export and round trip, rekey under a
//! new key version, forget; then every byte the store holds, and the gateway's log, are
//! searched for the customers' numbers in every spelling.

use crate::support;

use std::process::Command;

use support::cli::{command, post};

/// The customers of the scenario (national spelling).
const A: &str = "13911110001";
const B: &str = "13911110002";
const C: &str = "13911110003";
const D: &str = "13911110004";
const E: &str = "13911110005";
const F: &str = "13911110006";
const G: &str = "13911110008";
const H: &str = "13911110009";
const J: &str = "13911110010";
const ALL: [&str; 9] = [A, B, C, D, E, F, G, H, J];

pub(crate) struct Cli {
    pub(crate) dir: std::path::PathBuf,
    pub(crate) env: Vec<(String, String)>,
}

impl Cli {
    pub(crate) fn cmd(&self) -> Command {
        let mut cmd = command(&self.dir);
        cmd.envs(self.env.iter().cloned());
        cmd
    }

    /// (success, stdout, stderr); asserts that no number of the scenario was printed.
    pub(crate) fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.cmd().args(args).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        );
        for n in ALL {
            assert!(
                !stdout.contains(&n[3..]) && !stderr.contains(&n[3..]),
                "`{}` printed a number:\n{stdout}\n{stderr}",
                args.join(" ")
            );
        }
        (out.status.success(), stdout, stderr)
    }

    /// (success, stdout, stderr) of a command fed `input` on its standard input.
    pub(crate) fn run_with_stdin(&self, args: &[&str], input: &[u8]) -> (bool, String, String) {
        use std::io::Write;
        use std::process::Stdio;
        let mut child = self
            .cmd()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// The stdout of a command that must succeed.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let (ok, stdout, stderr) = self.run(args);
        assert!(ok, "`{}` failed:\n{stdout}\n{stderr}", args.join(" "));
        stdout
    }

    /// The CLI in `dir` on a new DynamoDB Local table (created), and the table's name.
    pub(crate) fn on_new_table(dir: &std::path::Path, prefix: &str) -> (Cli, String) {
        let table = format!(
            "{prefix}-{}",
            cc_shared::domain::uid::Uid::generate().unwrap()
        );
        let cli = Cli {
            dir: dir.to_path_buf(),
            env: support::dynamodb_cli_env(&table),
        };
        cli.ok(&["table", "create"]);
        (cli, table)
    }
}

/// Runs `scenario` with the CLI on a new embedded store, or (`dynamodb`) on a new DynamoDB
/// Local table named after `prefix`, and a dump of everything that store holds.
pub(crate) fn on_backend(
    dynamodb: bool,
    prefix: &str,
    scenario: impl FnOnce(&Cli, &dyn Fn() -> String),
) {
    let dir = tempfile::tempdir().unwrap();
    if dynamodb {
        let (cli, table) = Cli::on_new_table(dir.path(), prefix);
        scenario(&cli, &|| dump_table(&table));
    } else {
        let cli = Cli {
            dir: dir.path().to_path_buf(),
            env: Vec::new(),
        };
        scenario(&cli, &|| support::dump_embedded(dir.path()));
    }
}

/// Every item of DynamoDB Local's `table`, as `support::dump_dynamo` prints them.
pub(crate) fn dump_table(table: &str) -> String {
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let counter = cc_shared::store::dynamo::RoundTripCounter::default();
        let store = cc_shared::store::dynamo::DynamoStore::new(
            support::dynamodb_client(&counter),
            table.to_string(),
        );
        support::dump_dynamo(&store).await
    })
}

fn dev() -> String {
    cc_shared::web::auth::basic_header("dev", "dev")
}

pub(crate) fn mapping(addr: &str, numbers: &[&str], mode: &str) -> Vec<String> {
    let body = serde_json::json!({"Numbers": numbers, "Mode": mode}).to_string();
    let (status, body) = post(addr, "/number-mapping", Some(&dev()), &body);
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Value"].as_str().unwrap().to_string())
        .collect()
}

pub(crate) fn verify(addr: &str, number: &str, pin: &str) -> serde_json::Value {
    let body = serde_json::json!({"calldata": {"verifyServiceNo": number, "verifyWorkNo": "371",
                                  "verifyCode": pin, "verifyTypeCode": "PIN"}});
    let (status, body) = post(addr, "/identity/verify", Some(&dev()), &body.to_string());
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<serde_json::Value>(&body).unwrap()["calldata"]["data"].clone()
}

/// The rejected lines of an import's output, with their reasons.
pub(crate) fn rejected(stdout: &str) -> Vec<(u64, String)> {
    stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("line "))
        .map(|l| {
            let (n, reason) = l.split_once(": ").unwrap();
            (n.parse().unwrap(), reason.to_string())
        })
        .collect()
}

/// The scenario; returns the gateway's log for the caller's checks.
fn numbers_end_to_end(cli: &Cli, exports: &std::path::Path) -> String {
    let gw = support::cli::spawn(cli.cmd());
    let addr = gw.addr.clone();
    let generated = mapping(&addr, &[A, B], "PhoneToUID");

    // Import: one good row and every kind of bad one.
    let csv = exports.join("crm.csv");
    std::fs::write(
        &csv,
        format!(
            "number,uid\n{C},CRM-C3\n{A},crm-a1\n{D},{}\n{E},crm-e1\n{E},crm-e2\n{F},12345\n\
             1391111abc7,crm-x\n{G},crm_g-8\n{J},CRM_G-8\n",
            generated[1]
        ),
    )
    .unwrap();
    let path = csv.to_str().unwrap();
    let (ok, stdout, stderr) = cli.run(&["numbers", "import", path]);
    assert!(!ok, "an import with rejected rows must fail: {stdout}");
    assert!(stderr.contains("some rows were rejected"), "{stderr}");
    assert!(
        stdout.contains("9 rows: 1 written, 0 already there, 8 rejected"),
        "{stdout}"
    );
    let reasons = rejected(&stdout);
    let lines: Vec<u64> = reasons.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9, 10], "{stdout}");
    let reason = |line: u64| &reasons.iter().find(|(l, _)| *l == line).unwrap().1;
    assert_eq!(reason(3), "the number is already mapped to another ID");
    assert_eq!(reason(4), "the ID is already used by another number");
    assert_eq!(reason(5), "the same number as line 6");
    assert_eq!(reason(6), "the same number as line 5");
    assert!(reason(7).starts_with("malformed ID"), "{}", reason(7));
    assert!(reason(8).starts_with("malformed number"), "{}", reason(8));
    // IDs match in any case: crm_g-8 and CRM_G-8 are one ID.
    assert_eq!(reason(9), "the same ID as line 10");
    // A re-run (after an interruption) finds the good row done and nothing else changed.
    let (ok, again, _) = cli.run(&["numbers", "import", path]);
    assert!(!ok);
    assert!(
        again.contains("9 rows: 0 written, 1 already there, 8 rejected"),
        "{again}"
    );
    // Numeric CRM IDs with a prefix.
    let numeric = exports.join("numeric.csv");
    std::fs::write(&numeric, format!("number,uid\n{H},4711\n")).unwrap();
    let (ok, stdout, stderr) = cli.run(&[
        "numbers",
        "import",
        numeric.to_str().unwrap(),
        "--prefix",
        "crm-",
    ]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains("1 written"), "{stdout}");

    // The gateway serves the imported IDs, in their spelling, matched in any case.
    assert_eq!(
        mapping(&addr, &[C, H], "PhoneToUID"),
        ["CRM-C3", "crm-4711"]
    );
    assert_eq!(
        mapping(&addr, &["crm-c3", "CRM-4711"], "UIDToPhone"),
        [format!("0086{C}"), format!("0086{H}")]
    );
    // A PIN for C, verified through the gateway.
    let pins = exports.join("pins.csv");
    std::fs::write(&pins, format!("number,pin\n{C},2468\n")).unwrap();
    let (ok, stdout, stderr) = cli.run(&["pins", "import", pins.to_str().unwrap()]);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(verify(&addr, C, "2468")["verifyResult"], 1);

    // Export: a new file of mode 0600, never overwritten without --force.
    let out = exports.join("all.csv");
    let out_arg = out.to_str().unwrap();
    let (ok, stdout, stderr) = cli.run(&["numbers", "export", "--out", out_arg]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("exported 4 mappings"), "{stdout}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let exported = std::fs::read_to_string(&out).unwrap();
    let mut rows: Vec<&str> = exported.lines().collect();
    assert_eq!(rows.remove(0), "number,uid,created_at");
    rows.sort();
    let numbers: Vec<&str> = rows.iter().map(|r| r.split(',').next().unwrap()).collect();
    let e164 = |n: &str| format!("+86{n}");
    assert_eq!(numbers, [e164(A), e164(B), e164(C), e164(H)]);
    assert!(exported.contains(&format!("+86{C},CRM-C3,")), "{exported}");
    let (ok, _, stderr) = cli.run(&["numbers", "export", "--out", out_arg]);
    assert!(!ok && stderr.contains("--force"), "{stderr}");
    let (ok, _, stderr) = cli.run(&["numbers", "export", "--out", out_arg, "--force"]);
    assert!(ok, "{stderr}");
    let jsonl = exports.join("all.jsonl");
    let (ok, _, stderr) = cli.run(&[
        "numbers",
        "export",
        "--out",
        jsonl.to_str().unwrap(),
        "--format",
        "jsonl",
    ]);
    assert!(ok, "{stderr}");
    let objects: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 4);
    assert!(objects
        .iter()
        .any(|o| o["number"] == e164(C) && o["uid"] == "CRM-C3"));

    // Export, then import into an empty store, reproduces it (IDs and creation times).
    let fresh = tempfile::tempdir().unwrap();
    let copy = Cli {
        dir: fresh.path().to_path_buf(),
        env: Vec::new(),
    };
    let (ok, stdout, stderr) = copy.run(&["numbers", "import", out_arg]);
    assert!(ok, "{stdout}{stderr}");
    let again = exports.join("again.csv");
    let (ok, _, stderr) = copy.run(&["numbers", "export", "--out", again.to_str().unwrap()]);
    assert!(ok, "{stderr}");
    let sorted = |text: String| {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        lines.sort();
        lines
    };
    assert_eq!(
        sorted(std::fs::read_to_string(&again).unwrap()),
        sorted(exported.clone())
    );

    // A new key version while the gateway serves: the gateway still reads every number
    // (re-sealed ones included), and a second rekey finds nothing left.
    let (ok, stdout, stderr) = cli.run(&["numbers", "add-key"]);
    assert!(ok && stdout.contains("key version 2"), "{stdout}{stderr}");
    let (ok, stdout, stderr) = cli.run(&["numbers", "rekey"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("4 mappings scanned: 4 re-encrypted")
            && stdout.contains("run it again until it re-encrypts none"),
        "{stdout}"
    );
    assert_eq!(
        mapping(&addr, &["CRM-C3", &generated[0]], "UIDToPhone"),
        [format!("0086{C}"), format!("0086{A}")]
    );
    let (ok, stdout, _) = cli.run(&["numbers", "rekey"]);
    assert!(
        ok && stdout.contains("0 re-encrypted")
            && stdout.contains("every number is sealed under the current version"),
        "{stdout}"
    );

    // Forget C (by number) and A (by ID): mapping, PIN, records; idempotent.
    let (ok, stdout, stderr) = cli.run(&["numbers", "forget", C, "--uid", &generated[0]]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("forgot 2 customers: 2 mappings, 1 PINs, 1 verification records"),
        "{stdout}"
    );
    let (ok, stdout, _) = cli.run(&["numbers", "forget", C]);
    assert!(
        ok && stdout
            .contains("forgot 0 customers: 0 mappings, 0 PINs, 0 verification records; 1 unknown"),
        "{stdout}"
    );
    assert_eq!(
        mapping(&addr, &["CRM-C3", &generated[0]], "UIDToPhone"),
        ["", ""]
    );
    let unknown = verify(&addr, C, "2468");
    assert_eq!(unknown["verifyReturn1"], "unknown_customer", "{unknown}");
    let renewed = mapping(&addr, &[C], "PhoneToUID");
    assert_ne!(renewed[0], "CRM-C3");
    let (ok, _, stderr) = cli.run(&["numbers", "forget", "not-a-number"]);
    assert!(!ok && stderr.contains("entry 1"), "{stderr}");

    let log = gw.log.lock().unwrap().clone();
    log
}

/// Asserts that `text` holds none of the scenario's numbers, in any spelling.
fn assert_no_number(text: &str, what: &str) {
    assert_none_of(&ALL, text, what);
}

/// Asserts that `text` holds none of `numbers` (national spelling), in any spelling: the
/// national digits, E.164's digits, the `00` form.
pub(crate) fn assert_none_of(numbers: &[&str], text: &str, what: &str) {
    for n in numbers {
        for spelling in [n.to_string(), format!("86{n}"), format!("0086{n}")] {
            assert!(!text.contains(&spelling), "{what} holds a number ({n})");
        }
    }
}

#[test]
fn numbers_commands_end_to_end_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let exports = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env: Vec::new(),
    };
    let log = numbers_end_to_end(&cli, exports.path());
    assert_no_number(&support::dump_embedded(dir.path()), "the embedded store");
    assert_no_number(&log, "the gateway's log");
}

#[test]
fn numbers_commands_end_to_end_dynamodb() {
    let table = format!(
        "cc-numbers-{}",
        cc_shared::domain::uid::Uid::generate().unwrap()
    );
    let dir = tempfile::tempdir().unwrap();
    let exports = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env: support::dynamodb_cli_env(&table),
    };
    let (ok, _, stderr) = cli.run(&["table", "create"]);
    assert!(ok, "{stderr}");
    let log = numbers_end_to_end(&cli, exports.path());
    let dump = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let counter = cc_shared::store::dynamo::RoundTripCounter::default();
        let store = cc_shared::store::dynamo::DynamoStore::new(
            support::dynamodb_client(&counter),
            table.clone(),
        );
        support::dump_dynamo(&store).await
    });
    assert!(dump.contains("NUM#"), "the dump is empty");
    assert_no_number(&dump, "the DynamoDB table");
    assert_no_number(&log, "the gateway's log");
}

/// Against a table in AWS (not DynamoDB Local), keys are never generated: a generated key
/// would not be the stack's, and every number looked up or imported with it would be a new
/// customer. The command names the variable to set, and creates no key file.
#[test]
fn keys_are_not_generated_for_a_table_in_aws() {
    let dir = tempfile::tempdir().unwrap();
    let exports = tempfile::tempdir().unwrap();
    let out = exports.path().join("all.csv");
    let mut env = support::dynamodb_cli_env("cc-callbacks-prod");
    for (k, v) in env.iter_mut() {
        if k == "AWS_ENDPOINT_URL_DYNAMODB" {
            *v = "https://dynamodb.us-east-1.amazonaws.com".into();
        }
    }
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env,
    };
    let (ok, _, stderr) = cli.run(&["numbers", "export", "--out", out.to_str().unwrap()]);
    assert!(!ok, "keys were generated for a table in AWS");
    assert!(
        stderr.contains("NUMBER_INDEX_KEY_SECRET_ARN") && stderr.contains("not a local one"),
        "{stderr}"
    );
    assert!(!dir.path().join("number-index-key").exists());
    assert!(!out.exists(), "an export file was left behind");
    // Nor the PIN pepper.
    let (ok, _, stderr) = cli.run(&["records", "list"]);
    assert!(
        !ok && stderr.contains("IDENTITY_PIN_PEPPER_SECRET_ARN"),
        "{stderr}"
    );
    assert!(!dir.path().join("pin-pepper").exists());
}

/// A local keyring gets one version at a time: the new file beside it is also the lock, so two
/// `add-key` runs cannot each add a different key as the same version; one left behind by an
/// interrupted run is named, and nothing changes until it is removed.
#[test]
fn add_key_on_a_local_keyring_takes_one_version_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env: Vec::new(),
    };
    let current = || {
        let text = std::fs::read_to_string(dir.path().join("number-keyring.json")).unwrap();
        serde_json::from_str::<serde_json::Value>(&text).unwrap()["current"].clone()
    };
    let (ok, stdout, stderr) = cli.run(&["numbers", "add-key"]);
    assert!(ok && stdout.contains("key version 2"), "{stdout}{stderr}");
    let lock = dir.path().join("number-keyring.json.new");
    std::fs::write(&lock, "").unwrap();
    let (ok, _, stderr) = cli.run(&["numbers", "add-key"]);
    assert!(
        !ok && stderr.contains("number-keyring.json.new exists: another add-key is running"),
        "{stderr}"
    );
    assert_eq!(current(), 2, "a refused add-key changed the keyring");
    assert!(lock.exists(), "another run's file was removed");
    std::fs::remove_file(&lock).unwrap();
    let (ok, stdout, stderr) = cli.run(&["numbers", "add-key"]);
    assert!(ok && stdout.contains("key version 3"), "{stdout}{stderr}");
    assert_eq!(current(), 3);
    assert!(!lock.exists(), "the new file is renamed over the keyring");
}
