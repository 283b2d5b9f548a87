//! `cc-callbacks tenants ...` and `credentials ... --tenant` through the real binary, on the
//! embedded store and on DynamoDB Local: what is printed, what is refused, and that no
//! password, digest or key is ever printed or (the password) stored.

use crate::numbers_cli::{dump_table, Cli};
use crate::support;

fn ok(cli: &Cli, args: &[&str]) -> String {
    cli.ok(args)
}

fn refused(cli: &Cli, args: &[&str], why: &str) {
    let (ok, stdout, stderr) = cli.run(args);
    assert!(!ok, "`{}` succeeded:\n{stdout}", args.join(" "));
    assert!(
        stderr.contains(why),
        "`{}`: {why:?} not in:\n{stderr}",
        args.join(" ")
    );
}

/// The tenants scenario; returns the passwords it was given.
fn tenants_end_to_end(cli: &Cli) -> Vec<String> {
    let out = ok(cli, &["tenants", "add", "acme", "--name", "Acme Ltd."]);
    assert!(out.contains("added tenant acme"), "{out}");
    ok(cli, &["tenants", "add", "globex"]);
    refused(
        cli,
        &["tenants", "add", "acme"],
        "tenant acme exists already",
    );
    for bad in ["Acme", "1acme", "ac_me", ""] {
        refused(cli, &["tenants", "add", bad], "a tenant ID");
    }

    let mut passwords = Vec::new();
    for (user, function) in [
        ("tencent", "number-mapping"),
        ("tencent-2", "number-mapping"),
        ("huawei", "identity-verification"),
    ] {
        let out = ok(
            cli,
            &[
                "credentials",
                "new",
                "--user",
                user,
                "--tenant",
                "acme",
                "--function",
                function,
            ],
        );
        let first = out.lines().next().unwrap();
        let password = first
            .strip_prefix("password (give it to the caller, then forget it): ")
            .unwrap_or_else(|| panic!("first line: {first}"));
        assert_eq!(password.len(), 32);
        assert!(out.contains(&format!("{user}@acme")), "{out}");
        passwords.push(password.to_string());
    }
    for (user, tenant, function, why) in [
        (
            "tencent",
            "acme",
            "number-mapping",
            "has a credential tencent for number-mapping already",
        ),
        ("x", "nobody", "number-mapping", "no tenant nobody"),
        (
            "x",
            "acme",
            "fax",
            "--function must be one of: number-mapping",
        ),
        ("a@b", "acme", "number-mapping", "--user"),
    ] {
        let args = [
            "credentials",
            "new",
            "--user",
            user,
            "--tenant",
            tenant,
            "--function",
            function,
        ];
        refused(cli, &args, why);
    }

    let listed = ok(cli, &["credentials", "list", "--tenant", "acme"]);
    for line in [
        "tencent@acme",
        "tencent-2@acme",
        "huawei@acme",
        "3 credentials of tenant acme",
    ] {
        assert!(listed.contains(line), "{line} not in:\n{listed}");
    }
    let listed = ok(cli, &["credentials", "list", "--tenant", "globex"]);
    assert!(
        listed.contains("0 credentials of tenant globex"),
        "{listed}"
    );

    ok(cli, &["tenants", "suspend", "acme"]);
    refused(cli, &["tenants", "suspend", "nobody"], "no tenant nobody");
    let json: serde_json::Value =
        serde_json::from_str(&ok(cli, &["tenants", "list", "--json"])).unwrap();
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["id"], "acme");
    assert_eq!(rows[0]["name"], "Acme Ltd.");
    assert_eq!(rows[0]["suspended"], true);
    assert_eq!(rows[0]["credentials"], 3);
    assert_eq!(rows[1]["id"], "globex");
    assert_eq!(rows[1]["suspended"], false);
    ok(cli, &["tenants", "resume", "acme"]);
    let table = ok(cli, &["tenants", "list"]);
    assert!(table.contains("2 tenants"), "{table}");
    assert!(!table.contains("yes"), "acme still suspended:\n{table}");

    let out = ok(
        cli,
        &[
            "credentials",
            "revoke",
            "--user",
            "tencent",
            "--tenant",
            "acme",
        ],
    );
    assert!(
        out.contains("revoked 1 credentials of tencent@acme"),
        "{out}"
    );
    refused(
        cli,
        &[
            "credentials",
            "revoke",
            "--user",
            "tencent",
            "--tenant",
            "acme",
        ],
        "has no credential tencent",
    );
    passwords
}

fn assert_no_secret(text: &str, passwords: &[String], what: &str) {
    for p in passwords {
        assert!(!text.contains(p.as_str()), "a password is in {what}");
    }
}

#[test]
fn tenants_and_their_credentials_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env: Vec::new(),
    };
    let passwords = tenants_end_to_end(&cli);
    let dump = support::dump_embedded(dir.path());
    assert!(dump.contains("acme"), "the dump is empty");
    assert_no_secret(&dump, &passwords, "the embedded store");
}

#[test]
fn tenants_and_their_credentials_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    let (cli, table) = Cli::on_new_table(dir.path(), "cc-tenants");
    let passwords = tenants_end_to_end(&cli);
    let dump = dump_table(&table);
    assert!(dump.contains("TENANTS"), "the dump is empty");
    assert_no_secret(&dump, &passwords, "the DynamoDB table");
}

/// A tenant registered before identity verification served tenants (no lookup keys): the
/// commands that need them say what to run, and `numbers rekey` wraps them once, on both
/// backends' code paths (here the embedded store, the registry's column emptied by hand).
#[test]
fn numbers_rekey_wraps_the_lookup_keys_of_an_older_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env: Vec::new(),
    };
    ok(&cli, &["tenants", "add", "acme"]);
    let csv = tempfile::tempdir().unwrap();
    let pins = csv.path().join("pins.csv");
    std::fs::write(&pins, "number,pin\n13912345678,2468\n").unwrap();
    let import = ["pins", "import", pins.to_str().unwrap(), "--tenant", "acme"];
    {
        let db = rusqlite::Connection::open(dir.path().join("cc-callbacks.sqlite3")).unwrap();
        db.execute("UPDATE tenants SET lookup = ''", []).unwrap();
    }
    refused(&cli, &import, "run `cc-callbacks numbers rekey` once");
    // Identity verification answers the tenant's caller `unavailable` meanwhile.
    let out = ok(
        &cli,
        &[
            "credentials",
            "new",
            "--user",
            "huawei",
            "--tenant",
            "acme",
            "--function",
            "identity-verification",
        ],
    );
    let password = out
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("password (give it to the caller, then forget it): "))
        .unwrap()
        .to_string();
    let mut cmd = cli.cmd();
    cmd.env("TENANT_CACHE_SECONDS", "0");
    let gw = support::cli::spawn(cmd);
    let verify = || {
        let body = r#"{"calldata":{"verifyServiceNo":"13912345678","verifyWorkNo":"371","verifyCode":"2468"}}"#;
        let auth = cc_shared::web::auth::basic_header("huawei@acme", &password);
        let (status, body) = support::cli::post(&gw.addr, "/identity/verify", Some(&auth), body);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["calldata"]["data"]["verifyReturn1"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(verify(), "unavailable");
    refused(
        &cli,
        &["records", "list", "--tenant", "acme"],
        "has no lookup keys",
    );
    let out = ok(&cli, &["numbers", "rekey"]);
    assert!(out.contains("1 of 1 tenants' keys re-wrapped"), "{out}");
    assert!(ok(&cli, &import).contains("enrolled 1 PINs"));
    assert_eq!(verify(), "ok");
    let again = ok(&cli, &["numbers", "rekey"]);
    assert!(again.contains("0 of 1 tenants' keys re-wrapped"), "{again}");
}
