//! Platform mode end to end: two tenants and the default tenant served at once by the gateway
//! (the very handlers of the Lambda binaries), on the embedded store and on DynamoDB Local.
//! Number mapping is isolated per tenant; a tenant's credential works for its tenant and
//! function only; suspension and revocation take effect (cache time 0 here); no number and no
//! cross-tenant link in a full dump of the store.

use std::collections::HashSet;

use crate::numbers_cli::{dump_table, Cli};
use crate::support;
use support::cli::{post, spawn, Gateway};

use cc_shared::web::auth::basic_header;

const NUMBER: &str = "13912345678";

fn ok(cli: &Cli, args: &[&str]) -> String {
    cli.ok(args)
}

/// A new credential's password.
fn credential(cli: &Cli, user: &str, tenant: &str, function: &str) -> String {
    let out = ok(
        cli,
        &[
            "credentials",
            "new",
            "--user",
            user,
            "--tenant",
            tenant,
            "--function",
            function,
        ],
    );
    out.lines()
        .next()
        .and_then(|l| l.strip_prefix("password (give it to the caller, then forget it): "))
        .unwrap()
        .to_string()
}

/// (status, the Values) of a number-mapping request as `auth`.
fn mapping(gw: &Gateway, auth: &str, numbers: &[&str], mode: &str) -> (u16, Vec<String>) {
    let body = serde_json::json!({"Numbers": numbers, "Mode": mode}).to_string();
    let (status, body) = post(&gw.addr, "/number-mapping", Some(auth), &body);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let values = v["Results"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r["Value"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    (status, values)
}

fn id_of(gw: &Gateway, auth: &str) -> String {
    let (status, values) = mapping(gw, auth, &[NUMBER], "PhoneToUID");
    assert_eq!(status, 200);
    values[0].clone()
}

fn number_of(gw: &Gateway, auth: &str, uid: &str) -> String {
    let (status, values) = mapping(gw, auth, &[uid], "UIDToPhone");
    assert_eq!(status, 200);
    values[0].clone()
}

fn platform_end_to_end(cli: &Cli, dump: &dyn Fn() -> String) -> String {
    ok(cli, &["tenants", "add", "acme"]);
    ok(cli, &["tenants", "add", "globex"]);
    let acme_pw = credential(cli, "tencent", "acme", "number-mapping");
    let globex_pw = credential(cli, "tencent", "globex", "number-mapping");
    let acme_ivr_pw = credential(cli, "huawei", "acme", "identity-verification");

    let mut cmd = cli.cmd();
    cmd.env("TENANT_CACHE_SECONDS", "0");
    let gw = spawn(cmd);
    let default = basic_header("dev", "dev");
    let acme = basic_header("tencent@acme", &acme_pw);
    let globex = basic_header("tencent@globex", &globex_pw);

    // The same number: three unrelated IDs, each stable, each opening only in its tenant.
    let ids = [id_of(&gw, &default), id_of(&gw, &acme), id_of(&gw, &globex)];
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3, "{ids:?}");
    assert_eq!(id_of(&gw, &acme), ids[1]);
    let e164 = "008613912345678";
    assert_eq!(number_of(&gw, &default, &ids[0]), e164);
    assert_eq!(number_of(&gw, &acme, &ids[1]), e164);
    assert_eq!(number_of(&gw, &globex, &ids[2]), e164);
    for (auth, other) in [
        (&acme, &ids[2]),
        (&globex, &ids[1]),
        (&default, &ids[1]),
        (&acme, &ids[0]),
    ] {
        assert_eq!(
            number_of(&gw, auth, other),
            "",
            "an ID resolved in another tenant"
        );
    }

    // A credential authenticates for its tenant and function only.
    for refused in [
        basic_header("tencent@globex", &acme_pw),
        basic_header("tencent@acme", "wrong"),
        basic_header("huawei@acme", &acme_ivr_pw),
        basic_header("tencent@nobody", &acme_pw),
        basic_header("tencent", &acme_pw),
    ] {
        let (status, _) = mapping(&gw, &refused, &[NUMBER], "PhoneToUID");
        assert_eq!(status, 401);
    }

    // Suspension refuses the tenant's callers and keeps its data; the others are untouched.
    ok(cli, &["tenants", "suspend", "acme"]);
    let globex_callers = ok(cli, &["credentials", "list", "--tenant", "globex"]);
    assert!(globex_callers.contains("1 credentials of tenant globex"));
    assert_eq!(mapping(&gw, &acme, &[NUMBER], "PhoneToUID").0, 401);
    assert_eq!(id_of(&gw, &globex), ids[2]);
    ok(cli, &["tenants", "resume", "acme"]);
    assert_eq!(id_of(&gw, &acme), ids[1]);

    ok(
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
    assert_eq!(mapping(&gw, &acme, &[NUMBER], "PhoneToUID").0, 401);
    assert_eq!(id_of(&gw, &default), ids[0]);

    // Offboarding: everything of acme erased, the others untouched, its callers refused.
    let acme_pw = credential(cli, "tencent", "acme", "number-mapping");
    let acme = basic_header("tencent@acme", &acme_pw);
    assert_eq!(id_of(&gw, &acme), ids[1]);
    let before = dump();
    assert!(before.contains("acme"));
    let (removed, _, stderr) = cli.run(&["tenants", "remove", "acme"]);
    assert!(!removed && stderr.contains("add --yes"), "{stderr}");
    let out = ok(cli, &["tenants", "remove", "acme", "--yes"]);
    assert!(
        out.contains("removed tenant acme: 1 mappings, 0 PINs"),
        "{out}"
    );
    assert!(out.contains("2 credentials; its keys are deleted"), "{out}");
    let again = ok(cli, &["tenants", "remove", "acme", "--yes"]);
    assert!(
        again.contains("tenant acme: nothing of it is left"),
        "{again}"
    );
    let after = dump();
    assert!(
        !after.contains("acme"),
        "something of acme is left in the store"
    );
    // (Registry entries print their credentials' map in no fixed order: compared below.)
    let others = |d: &str| -> Vec<String> {
        d.lines()
            .filter(|l| !l.contains("acme") && !l.contains("creds"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        others(&before),
        others(&after),
        "another tenant's item changed"
    );
    let globex_callers = ok(cli, &["credentials", "list", "--tenant", "globex"]);
    assert!(globex_callers.contains("1 credentials of tenant globex"));
    assert_eq!(mapping(&gw, &acme, &[NUMBER], "PhoneToUID").0, 401);
    assert_eq!(id_of(&gw, &globex), ids[2]);
    assert_eq!(id_of(&gw, &default), ids[0]);
    assert_eq!(number_of(&gw, &globex, &ids[2]), e164);
    let log = gw.log.lock().unwrap().clone();
    log
}

/// No number in any spelling, and each tenant's index of the number unrelated to the others'.
fn assert_isolated_at_rest(dump: &str) {
    for spelling in [NUMBER, "8613912345678", "12345678"] {
        assert!(!dump.contains(spelling), "a number is in the store");
    }
    let indexes: HashSet<&str> = dump
        .match_indices("NUM#")
        .map(|(i, _)| &dump[i + 4..(i + 4 + 43).min(dump.len())])
        .collect();
    assert_eq!(indexes.len(), 2, "one number, two tenants: {indexes:?}");
}

/// The embedded store, as rows (its file's bytes are compared by `support::dump_embedded`).
fn rows_embedded(dir: &std::path::Path) -> String {
    let db = rusqlite::Connection::open(dir.join("cc-callbacks.sqlite3")).unwrap();
    let mut out = Vec::new();
    for (table, columns) in [
        (
            "number_map",
            "number_index || ' ' || uid_key || ' ' || sealed",
        ),
        ("tenants", "id || ' ' || keys"),
        (
            "tenant_credentials",
            "tenant || ' ' || function || ' ' || user",
        ),
    ] {
        let mut stmt = db
            .prepare(&format!("SELECT {columns} FROM {table} ORDER BY 1"))
            .unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        out.extend(rows.map(|r| format!("{table}: {}", r.unwrap())));
    }
    out.join("\n")
}

#[test]
fn two_tenants_and_the_default_one_are_served_apart_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env: Vec::new(),
    };
    let dump = || rows_embedded(dir.path());
    let log = platform_end_to_end(&cli, &dump);
    assert!(!log.contains(NUMBER), "a number is in the gateway's log");
    let rows = rows_embedded(dir.path());
    let indexes: Vec<&str> = rows
        .lines()
        .filter_map(|l| l.strip_prefix("number_map: "))
        .map(|l| l.split(' ').next().unwrap())
        .collect();
    // The default tenant's row and globex's, its key under its scope, the indexes unrelated.
    assert_eq!(indexes.len(), 2, "{rows}");
    let globex_index = indexes
        .iter()
        .find_map(|i| i.strip_prefix("T#globex#"))
        .expect("globex's row under its scope");
    let default_index = indexes.iter().find(|i| !i.contains('#')).unwrap();
    assert_ne!(&globex_index, default_index);
    // The file itself, free pages and write-ahead log included.
    let file = support::dump_embedded(dir.path());
    for left in [NUMBER, "8613912345678", "T#acme#"] {
        assert!(!file.contains(left), "{left} is in the store's file");
    }
}

#[test]
fn two_tenants_and_the_default_one_are_served_apart_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    let (cli, table) = Cli::on_new_table(dir.path(), "cc-platform");
    let dump = || dump_table(&table);
    let log = platform_end_to_end(&cli, &dump);
    assert!(!log.contains(NUMBER), "a number is in the gateway's log");
    let dump = dump();
    assert!(
        dump.contains("T#globex#NUM#") && dump.contains("T#globex#UID#"),
        "{dump}"
    );
    assert_isolated_at_rest(&dump);
}

/// `numbers import|export|forget|rekey|add-key --tenant`: a tenant's own IDs onboarded, its
/// mapping exported, its keys rotated and its customers erased, never touching the default
/// tenant's (which may hold the very same IDs).
fn tenant_numbers_end_to_end(cli: &Cli, files: &std::path::Path) {
    ok(cli, &["tenants", "add", "acme"]);
    let password = credential(cli, "tencent", "acme", "number-mapping");
    let acme = basic_header("tencent@acme", &password);
    let default = basic_header("dev", "dev");
    let csv = files.join("ids.csv");
    std::fs::write(&csv, "number,uid\n13911112222,CRM-1\n13933334444,CRM-2\n").unwrap();
    let csv = csv.to_str().unwrap();
    for tenant in [&["--tenant", "acme"][..], &[]] {
        let out = ok(cli, &[&["numbers", "import", csv][..], tenant].concat());
        assert!(out.contains("2 rows: 2 written"), "{out}");
    }
    let export = |name: &str, tenant: &[&str]| {
        let path = files.join(name);
        let path = path.to_str().unwrap().to_string();
        ok(
            cli,
            &[&["numbers", "export", "--out", &path][..], tenant].concat(),
        );
        std::fs::read_to_string(&path).unwrap()
    };
    let acme_rows = export("acme.csv", &["--tenant", "acme"]);
    assert_eq!(acme_rows.lines().count(), 3, "{acme_rows}");
    assert!(acme_rows.contains("+8613911112222,CRM-1"), "{acme_rows}");
    assert_eq!(export("default.csv", &[]).lines().count(), 3);

    let mut cmd = cli.cmd();
    cmd.env("TENANT_CACHE_SECONDS", "0");
    let gw = spawn(cmd);
    let number = |auth: &str, uid: &str| number_of(&gw, auth, uid);
    assert_eq!(number(&acme, "CRM-1"), "008613911112222");

    // The tenant's own key rotation.
    let out = ok(cli, &["numbers", "add-key", "--tenant", "acme"]);
    assert!(out.contains("tenant acme's key version 2 added"), "{out}");
    let out = ok(cli, &["numbers", "rekey", "--tenant", "acme"]);
    assert!(out.contains("2 mappings scanned: 2 re-encrypted"), "{out}");
    let out = ok(cli, &["numbers", "rekey", "--tenant", "acme"]);
    assert!(
        out.contains("every number is sealed under the current version"),
        "{out}"
    );
    assert_eq!(number(&acme, "CRM-2"), "008613933334444");
    drop(gw);

    // The stack's rotation re-wraps the tenants' keys (functions re-read the stack's keys).
    ok(cli, &["numbers", "add-key"]);
    let out = ok(cli, &["numbers", "rekey"]);
    assert!(
        out.contains("1 of 1 tenants' keys re-wrapped under keyring version 2"),
        "{out}"
    );
    let mut cmd = cli.cmd();
    cmd.env("TENANT_CACHE_SECONDS", "0");
    let gw = spawn(cmd);
    assert_eq!(number_of(&gw, &acme, "CRM-1"), "008613911112222");

    let out = ok(
        cli,
        &["numbers", "forget", "--uid", "CRM-1", "--tenant", "acme"],
    );
    assert!(out.contains("forgot 1 customers: 1 mappings"), "{out}");
    assert_eq!(number_of(&gw, &acme, "CRM-1"), "");
    assert_eq!(number_of(&gw, &default, "CRM-1"), "008613911112222");
    assert_eq!(number_of(&gw, &acme, "CRM-2"), "008613933334444");
}

#[test]
fn a_tenants_numbers_are_imported_exported_rotated_and_erased_apart_embedded() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env: Vec::new(),
    };
    tenant_numbers_end_to_end(&cli, files.path());
}

#[test]
fn a_tenants_numbers_are_imported_exported_rotated_and_erased_apart_dynamodb() {
    let dir = tempfile::tempdir().unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cli, _) = Cli::on_new_table(dir.path(), "cc-platform-numbers");
    tenant_numbers_end_to_end(&cli, files.path());
}
