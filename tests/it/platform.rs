//! Platform mode end to end: two tenants and the default tenant served at once by the gateway
//! (the very handlers of the Lambda binaries), on the embedded store and on DynamoDB Local.
//! Number mapping and identity verification are isolated per tenant (IDs, PINs, lockout,
//! records); a tenant's credential works for its tenant and function only; suspension and
//! revocation take effect (cache time 0 here); no number and no cross-tenant link in a full
//! dump of the store.

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
pub(crate) fn credential(cli: &Cli, user: &str, tenant: &str, function: &str) -> String {
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
pub(crate) fn mapping(
    gw: &Gateway,
    auth: &str,
    numbers: &[&str],
    mode: &str,
) -> (u16, Vec<String>) {
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

/// (verifyResult, verifyReturn1, verifyReturn3) of an identity verification as `auth`.
fn verify(gw: &Gateway, auth: &str, pin: &str) -> (u64, String, String) {
    let body = serde_json::json!({"calldata": {"verifyServiceNo": NUMBER, "verifyWorkNo": "371",
                                  "verifyCode": pin, "verifyTypeCode": "PIN"}});
    let (status, body) = post(&gw.addr, "/identity/verify", Some(auth), &body.to_string());
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let data = &v["calldata"]["data"];
    (
        data["verifyResult"].as_u64().unwrap(),
        data["verifyReturn1"].as_str().unwrap().to_string(),
        data["verifyReturn3"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// `pins import` of one row for NUMBER, in `tenant` (None: the default tenant).
fn enrol(cli: &Cli, pin: &str, tenant: Option<&str>) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pins.csv");
    std::fs::write(&file, format!("number,pin\n{NUMBER},{pin}\n")).unwrap();
    let mut args = vec!["pins", "import", file.to_str().unwrap()];
    args.extend(tenant.iter().flat_map(|t| ["--tenant", *t]));
    assert!(ok(cli, &args).contains("enrolled 1 PINs"));
}

/// `records list --number NUMBER` of `tenant` (None: the default tenant): the reasons.
fn reasons(cli: &Cli, tenant: Option<&str>) -> Vec<String> {
    let mut args = vec!["records", "list", "--number", NUMBER, "--json"];
    args.extend(tenant.iter().flat_map(|t| ["--tenant", *t]));
    let records: serde_json::Value = serde_json::from_str(&ok(cli, &args)).unwrap();
    let mut reasons: Vec<String> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_string())
        .collect();
    reasons.reverse();
    reasons
}

/// Identity verification of one customer under three tenants: each its own PIN, lockout and
/// records, each answered with its own tenant's ID of the customer.
fn identity_apart(cli: &Cli, gw: &Gateway, ids: &[String; 3], acme_ivr_pw: &str) {
    let globex_ivr_pw = credential(cli, "huawei", "globex", "identity-verification");
    let default = basic_header("dev", "dev");
    let acme = basic_header("huawei@acme", acme_ivr_pw);
    let globex = basic_header("huawei@globex", &globex_ivr_pw);
    // The same PIN for the default tenant and globex, another for acme.
    enrol(cli, "1234", None);
    enrol(cli, "1234", Some("globex"));
    enrol(cli, "5678", Some("acme"));
    let ok_as = |uid: &String| (1, "ok".to_string(), uid.clone());
    assert_eq!(verify(gw, &default, "1234"), ok_as(&ids[0]));
    assert_eq!(verify(gw, &acme, "5678"), ok_as(&ids[1]));
    assert_eq!(verify(gw, &globex, "1234"), ok_as(&ids[2]));
    assert_eq!(verify(gw, &acme, "1234").1, "wrong_pin");
    assert_eq!(verify(gw, &default, "5678").1, "wrong_pin");

    // acme's customer locked out: in acme only.
    while verify(gw, &acme, "0000").1 != "locked" {}
    assert_eq!(verify(gw, &acme, "5678").1, "locked");
    assert_eq!(verify(gw, &default, "1234").1, "ok");
    assert_eq!(verify(gw, &globex, "1234").1, "ok");
    let (unlocked, _, stderr) = cli.run(&["pins", "unlock", NUMBER, "--tenant", "nobody"]);
    assert!(!unlocked && stderr.contains("no tenant nobody"), "{stderr}");
    ok(cli, &["pins", "unlock", NUMBER, "--tenant", "acme"]);
    assert_eq!(verify(gw, &acme, "5678"), ok_as(&ids[1]));

    // Each tenant's records are its own.
    assert_eq!(reasons(cli, None), ["ok", "wrong_pin", "ok"]);
    assert_eq!(reasons(cli, Some("globex")), ["ok", "ok"]);
    let acme_reasons = reasons(cli, Some("acme"));
    assert_eq!(acme_reasons.first().map(String::as_str), Some("ok"));
    assert_eq!(acme_reasons.last().map(String::as_str), Some("ok"));
    assert!(
        acme_reasons.iter().any(|r| r == "locked"),
        "{acme_reasons:?} {}",
        ok(cli, &["records", "list", "--tenant", "acme"])
    );

    // A credential is its tenant's and its function's only.
    for refused in [
        basic_header("huawei@globex", acme_ivr_pw),
        basic_header("huawei", acme_ivr_pw),
        basic_header("huawei@acme", "wrong"),
    ] {
        let body = serde_json::json!({"calldata": {"verifyServiceNo": NUMBER,
                                      "verifyWorkNo": "371", "verifyCode": "5678"}});
        let (status, _) = post(
            &gw.addr,
            "/identity/verify",
            Some(&refused),
            &body.to_string(),
        );
        assert_eq!(status, 401);
    }
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

    identity_apart(cli, &gw, &ids, &acme_ivr_pw);

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
    assert!(globex_callers.contains("2 credentials of tenant globex"));
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
        out.contains("removed tenant acme: 1 mappings, 1 PINs, "),
        "{out}"
    );
    assert!(!out.contains(" 0 verification records"), "{out}");
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
    assert!(globex_callers.contains("2 credentials of tenant globex"));
    assert_eq!(mapping(&gw, &acme, &[NUMBER], "PhoneToUID").0, 401);
    assert_eq!(id_of(&gw, &globex), ids[2]);
    assert_eq!(id_of(&gw, &default), ids[0]);
    assert_eq!(number_of(&gw, &globex, &ids[2]), e164);
    assert_eq!(reasons(cli, Some("globex")), ["ok", "ok"]);
    let (listed, _, stderr) = cli.run(&["records", "list", "--tenant", "acme"]);
    assert!(!listed && stderr.contains("no tenant acme"), "{stderr}");
    let log = gw.log.lock().unwrap().clone();
    log
}

/// The PIN digests in a dump (`"digest": S("<hex>")` of a PIN's item or row).
fn pin_digests(dump: &str) -> Vec<&str> {
    const MARK: &str = "\"digest\": S(\"";
    dump.lines()
        .filter(|l| l.contains("NPIN#") || l.starts_with("pins: "))
        .flat_map(|l| {
            l.match_indices(MARK)
                .map(move |(i, _)| &l[i + MARK.len()..i + MARK.len() + 64])
        })
        .collect()
}

/// No number in any spelling, each tenant's index of the number unrelated to the others', and
/// the same PIN of the same customer under two tenants two unrelated digests.
fn assert_isolated_at_rest(dump: &str) {
    for spelling in [NUMBER, "8613912345678", "12345678"] {
        assert!(!dump.contains(spelling), "a number is in the store");
    }
    let digests = pin_digests(dump);
    assert_eq!(digests.len(), 2, "the default tenant's PIN and globex's");
    assert_ne!(digests[0], digests[1], "one PIN, two tenants, one digest");
    let indexes: HashSet<&str> = dump
        .match_indices("NUM#")
        // (a verification record's key is VNUM#)
        .filter(|(i, _)| !dump[..*i].ends_with('V'))
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
        ("tenants", "id || ' ' || keys || ' ' || lookup"),
        (
            "pins",
            "number_index || ' \"digest\": S(\"' || digest || '\")'",
        ),
        (
            "verification_records",
            "number_key || ' ' || id || ' ' || reason",
        ),
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
    let digests = pin_digests(&rows);
    assert_eq!(digests.len(), 2, "{rows}");
    assert_ne!(digests[0], digests[1], "one PIN, two tenants, one digest");
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
