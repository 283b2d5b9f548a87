//! Keys and damaged rows, through the real binary on both backends: a lost key file is never
//! replaced over the data it protects (every command and the gateway refuse, naming the file);
//! a key file others may read is narrowed with a warning; one item whose number does not open
//! stops neither export, rekey nor erasure; `export --force` replaces only a regular file; the
//! embedded store's files are private; `numbers import` reads a pipe; `forget` counts truly.

use crate::numbers_cli::{assert_none_of, Cli};
use crate::support;

use std::process::Stdio;
use std::time::Duration;

const N1: &str = "13922220001";
const N2: &str = "13922220002";
const N3: &str = "13922220003";
const NUMBERS: [&str; 3] = [N1, N2, N3];

const KEY_FILES: [&str; 3] = ["number-index-key", "number-keyring.json", "pin-pepper"];

/// A CLI on one of the backends: the embedded store in `dir`, or a new DynamoDB Local table
/// (its key files in `dir`).
fn cli(dynamodb: bool, dir: &std::path::Path) -> Cli {
    let env = if dynamodb {
        let table = format!(
            "cc-keys-{}",
            cc_shared::domain::uid::Uid::generate().unwrap()
        );
        support::dynamodb_cli_env(&table)
    } else {
        Vec::new()
    };
    let cli = Cli {
        dir: dir.to_path_buf(),
        env,
    };
    if dynamodb {
        let (ok, _, stderr) = cli.run(&["table", "create"]);
        assert!(ok, "{stderr}");
    }
    cli
}

/// `cli.run`, also asserting that no number of this file was printed.
fn run(cli: &Cli, args: &[&str]) -> (bool, String, String) {
    let (ok, stdout, stderr) = cli.run(args);
    assert_none_of(&NUMBERS, &stdout, "stdout");
    assert_none_of(&NUMBERS, &stderr, "stderr");
    (ok, stdout, stderr)
}

/// Three customers with IDs `crm-1`..`crm-3`, and a PIN for N2.
fn populate(cli: &Cli, files: &std::path::Path) {
    let csv = files.join("ids.csv");
    std::fs::write(
        &csv,
        format!("number,uid\n{N1},crm-1\n{N2},crm-2\n{N3},crm-3\n"),
    )
    .unwrap();
    let (ok, stdout, stderr) = run(cli, &["numbers", "import", csv.to_str().unwrap()]);
    assert!(ok && stdout.contains("3 written"), "{stdout}{stderr}");
    let pins = files.join("pins.csv");
    std::fs::write(&pins, format!("number,pin\n{N2},2468\n")).unwrap();
    let (ok, stdout, stderr) = run(cli, &["pins", "import", pins.to_str().unwrap()]);
    assert!(ok, "{stdout}{stderr}");
}

/// Starts the gateway and waits (at most 30 s) for it to exit: (exited unsuccessfully, stderr).
fn gateway_refuses(cli: &Cli) -> (bool, String) {
    let mut cmd = tokio::process::Command::from(cli.cmd());
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let child = cmd.spawn().unwrap();
        let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
            .await
            .expect("the gateway started (or hung) without its key");
        let out = out.unwrap();
        (
            !out.status.success(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
}

fn lost_keys_are_never_regenerated(dynamodb: bool) {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let cli = cli(dynamodb, dir.path());
    populate(&cli, files.path());
    let out = files.path().join("all.csv");
    let out_arg = out.to_str().unwrap();
    for file in KEY_FILES {
        let path = dir.path().join(file);
        let aside = dir.path().join(format!("{file}.backup"));
        std::fs::rename(&path, &aside).unwrap();
        // The command that needs the key, read-only ones included.
        let args: &[&str] = if file == "pin-pepper" {
            &["records", "list"]
        } else {
            &["numbers", "export", "--out", out_arg]
        };
        let (ok, _, stderr) = run(&cli, args);
        assert!(!ok, "{file} missing: `{}` succeeded", args.join(" "));
        assert!(
            stderr.contains(&format!("{file} is missing"))
                && stderr.contains("restore the file from a backup"),
            "{file}: {stderr}"
        );
        assert!(
            !path.exists(),
            "a new {file} was generated over existing data"
        );
        assert!(!out.exists(), "an export was written without {file}");
        let (refused, stderr) = gateway_refuses(&cli);
        assert!(refused, "the gateway started without {file}");
        assert!(stderr.contains(&format!("{file} is missing")), "{stderr}");
        assert!(!path.exists(), "the gateway generated a new {file}");
        std::fs::rename(&aside, &path).unwrap();
    }
    // Restored, everything is as it was.
    let (ok, stdout, stderr) = run(&cli, &["numbers", "export", "--out", out_arg]);
    assert!(
        ok && stdout.contains("exported 3 mappings"),
        "{stdout}{stderr}"
    );
    let (ok, stdout, stderr) = run(&cli, &["records", "list"]);
    assert!(ok, "{stdout}{stderr}");

    // A key file others may read is narrowed to 0600, with a warning.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in KEY_FILES {
            let path = dir.path().join(file);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::remove_file(&out).unwrap();
        let (ok, _, stderr) = run(&cli, &["numbers", "export", "--out", out_arg]);
        assert!(ok, "{stderr}");
        let (ok, _, stderr_pepper) = run(&cli, &["records", "list"]);
        assert!(ok, "{stderr_pepper}");
        for (file, stderr) in [
            ("number-index-key", &stderr),
            ("number-keyring.json", &stderr),
            ("pin-pepper", &stderr_pepper),
        ] {
            assert!(
                stderr.contains(&format!("{file} was readable by other users"))
                    && stderr.contains("mode is now 0600"),
                "{file}: {stderr}"
            );
            let mode = std::fs::metadata(dir.path().join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
    }
}

#[test]
fn lost_keys_are_never_regenerated_embedded() {
    lost_keys_are_never_regenerated(false);
}

#[test]
fn lost_keys_are_never_regenerated_dynamodb() {
    lost_keys_are_never_regenerated(true);
}

/// Changes one character of crm-2's sealed number where the store keeps it.
fn damage_crm_2(cli: &Cli, dir: &std::path::Path, dynamodb: bool) {
    let tamper = |sealed: &str| {
        let (head, last) = sealed.split_at(sealed.len() - 1);
        format!("{head}{}", if last == "A" { "B" } else { "A" })
    };
    if !dynamodb {
        let conn = rusqlite::Connection::open(dir.join("cc-callbacks.sqlite3")).unwrap();
        let sealed: String = conn
            .query_row(
                "SELECT sealed FROM number_map WHERE uid_key = 'crm-2'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let changed = conn
            .execute(
                "UPDATE number_map SET sealed = ?1 WHERE uid_key = 'crm-2'",
                [tamper(&sealed)],
            )
            .unwrap();
        assert_eq!(changed, 1);
        return;
    }
    use aws_sdk_dynamodb::types::AttributeValue;
    let table = cli
        .env
        .iter()
        .find(|(k, _)| k == "TABLE_NAME")
        .map(|(_, v)| v.clone())
        .unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let client =
            support::dynamodb_client(&cc_shared::store::dynamo::RoundTripCounter::default());
        let key = std::collections::HashMap::from([
            ("pk".to_string(), AttributeValue::S("UID#crm-2".into())),
            ("sk".to_string(), AttributeValue::S("MAP".into())),
        ]);
        let item = client
            .get_item()
            .table_name(&table)
            .set_key(Some(key.clone()))
            .send()
            .await
            .unwrap()
            .item
            .expect("crm-2's item");
        let sealed = item["number"].as_s().unwrap();
        client
            .update_item()
            .table_name(&table)
            .set_key(Some(key))
            .update_expression("SET #n = :n")
            .expression_attribute_names("#n", "number")
            .expression_attribute_values(":n", AttributeValue::S(tamper(sealed)))
            .send()
            .await
            .unwrap();
    });
}

fn one_damaged_item_stops_nothing_else(dynamodb: bool) {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let cli = cli(dynamodb, dir.path());
    populate(&cli, files.path());
    damage_crm_2(&cli, dir.path(), dynamodb);

    // Export: every other row written, the damaged ID named, exit status 1.
    let out = files.path().join("all.csv");
    let (ok, stdout, stderr) = run(&cli, &["numbers", "export", "--out", out.to_str().unwrap()]);
    assert!(!ok, "an export with a damaged item must fail: {stdout}");
    assert!(stdout.contains("exported 2 mappings"), "{stdout}");
    assert!(stdout.contains("could not be opened: crm-2"), "{stdout}");
    assert!(
        stderr.contains("1 mappings could not be opened"),
        "{stderr}"
    );
    let exported = std::fs::read_to_string(&out).unwrap();
    assert_eq!(exported.lines().count(), 3, "{exported}");
    assert!(
        exported.contains("crm-1") && exported.contains("crm-3") && !exported.contains("crm-2")
    );

    // Rekey: every other row re-encrypted, the damaged ID named, no all-clear.
    let (ok, stdout, stderr) = run(&cli, &["numbers", "add-key"]);
    assert!(ok, "{stdout}{stderr}");
    let (ok, stdout, stderr) = run(&cli, &["numbers", "rekey"]);
    assert!(!ok, "a rekey with a damaged item must fail: {stdout}");
    assert!(
        stdout.contains("3 mappings scanned: 2 re-encrypted"),
        "{stdout}"
    );
    assert!(stdout.contains("could not be opened: crm-2"), "{stdout}");
    assert!(!stdout.contains("every number is sealed"), "{stdout}");
    assert!(stderr.contains("left as they are"), "{stderr}");

    // Erasure by ID needs nothing opened: the mapping and the PIN go; the records (found by
    // the number) are named as not reached, and erasure by number takes them.
    let (ok, stdout, stderr) = run(&cli, &["numbers", "forget", "--uid", "CRM-2"]);
    assert!(!ok, "{stdout}");
    assert!(
        stdout.contains("forgot 1 customers: 1 mappings, 1 PINs, 0 verification records"),
        "{stdout}"
    );
    assert!(
        stdout.contains("verification records not reached: crm-2"),
        "{stdout}"
    );
    assert!(stderr.contains("numbers forget NUMBER"), "{stderr}");
    let (ok, stdout, stderr) = run(&cli, &["numbers", "forget", N2]);
    assert!(ok, "{stdout}{stderr}");

    // What is left is whole again.
    std::fs::remove_file(&out).unwrap();
    let (ok, stdout, stderr) = run(&cli, &["numbers", "export", "--out", out.to_str().unwrap()]);
    assert!(
        ok && stdout.contains("exported 2 mappings"),
        "{stdout}{stderr}"
    );
    let (ok, stdout, stderr) = run(&cli, &["numbers", "rekey"]);
    assert!(
        ok && stdout.contains("every number is sealed under the current version"),
        "{stdout}{stderr}"
    );
    let (ok, stdout, _) = run(&cli, &["numbers", "forget", "--uid", "crm-2"]);
    assert!(
        ok && stdout
            .contains("forgot 0 customers: 0 mappings, 0 PINs, 0 verification records; 1 unknown"),
        "{stdout}"
    );
}

#[test]
fn one_damaged_item_stops_nothing_else_embedded() {
    one_damaged_item_stops_nothing_else(false);
}

#[test]
fn one_damaged_item_stops_nothing_else_dynamodb() {
    one_damaged_item_stops_nothing_else(true);
}

/// `--force` replaces a regular file or a symbolic link (the link, not its target); a FIFO,
/// a socket or a directory is refused and left as it was.
#[cfg(unix)]
#[test]
fn export_force_replaces_only_a_regular_file() {
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let cli = cli(false, dir.path());
    populate(&cli, files.path());

    let fifo = files.path().join("fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let socket = files.path().join("socket");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let directory = files.path().join("directory");
    std::fs::create_dir(&directory).unwrap();
    for (path, kind) in [
        (&fifo, "FIFO"),
        (&socket, "socket"),
        (&directory, "directory"),
    ] {
        let before = std::fs::symlink_metadata(path).unwrap().file_type();
        let (ok, _, stderr) = run(
            &cli,
            &[
                "numbers",
                "export",
                "--out",
                path.to_str().unwrap(),
                "--force",
            ],
        );
        assert!(!ok, "--force replaced a {kind}");
        assert!(
            stderr.contains(&format!("is not a regular file (a {kind})")),
            "{stderr}"
        );
        let after = std::fs::symlink_metadata(path).unwrap().file_type();
        assert_eq!(
            (after.is_fifo(), after.is_socket(), after.is_dir()),
            (before.is_fifo(), before.is_socket(), before.is_dir()),
            "the {kind} was changed"
        );
    }
    // A link is replaced by a new file; what it pointed to is untouched.
    let target = files.path().join("target.txt");
    std::fs::write(&target, "keep me").unwrap();
    let link = files.path().join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (ok, _, stderr) = run(
        &cli,
        &[
            "numbers",
            "export",
            "--out",
            link.to_str().unwrap(),
            "--force",
        ],
    );
    assert!(ok, "{stderr}");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
}

/// The data directory is created 0700 and the store's files 0600; files an earlier release
/// left readable by others are narrowed.
#[cfg(unix)]
#[test]
fn the_embedded_store_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let files = tempfile::tempdir().unwrap();
    let cli = cli(false, &dir);
    populate(&cli, files.path());
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    let store_files: Vec<_> = [
        "cc-callbacks.sqlite3",
        "cc-callbacks.sqlite3-wal",
        "cc-callbacks.sqlite3-shm",
    ]
    .iter()
    .map(|f| dir.join(f))
    .filter(|p| p.exists())
    .collect();
    assert!(!store_files.is_empty());
    for f in &store_files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
        std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (ok, _, stderr) = run(&cli, &["records", "list"]);
    assert!(ok, "{stderr}");
    for f in &store_files {
        assert_eq!(mode(f), 0o600, "{} was not narrowed", f.display());
    }
}

/// `numbers import` reads a pipe once (it needs two passes: the input is spooled).
#[test]
fn numbers_import_reads_a_pipe() {
    let dir = tempfile::tempdir().unwrap();
    let cli = cli(false, dir.path());
    let (ok, stdout, stderr) = cli.run_with_stdin(
        &["numbers", "import", "/dev/stdin"],
        format!("number,uid\n{N1},crm-1\n{N2},crm-2\n").as_bytes(),
    );
    assert!(
        ok && stdout.contains("2 rows: 2 written"),
        "{stdout}{stderr}"
    );
    assert_none_of(&NUMBERS, &stdout, "stdout");
}

/// `forget` counts a customer only where something was erased, and says how many of the given
/// numbers and IDs were unknown.
#[test]
fn forget_counts_only_what_it_erased() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let cli = cli(false, dir.path());
    populate(&cli, files.path());
    let (ok, stdout, _) = run(&cli, &["numbers", "forget", "13922229999"]);
    assert!(
        ok && stdout
            .contains("forgot 0 customers: 0 mappings, 0 PINs, 0 verification records; 1 unknown"),
        "{stdout}"
    );
    let (ok, stdout, _) = run(&cli, &["numbers", "forget", "--uid", "crm-404"]);
    assert!(
        ok && stdout
            .contains("forgot 0 customers: 0 mappings, 0 PINs, 0 verification records; 1 unknown"),
        "{stdout}"
    );
    let (ok, stdout, _) = run(
        &cli,
        &["numbers", "forget", N1, "--uid", "crm-1", "--uid", "crm-3"],
    );
    assert!(
        ok && stdout
            .contains("forgot 2 customers: 2 mappings, 0 PINs, 0 verification records; 0 unknown"),
        "{stdout}"
    );
}
