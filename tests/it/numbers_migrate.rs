//! `cc-callbacks numbers migrate`: a store written by the release before number protection
//! (numbers in the clear) is refused until converted, converted in place (idempotent, and a
//! re-run after more old items converts only those), and then served as before.

use crate::numbers_cli::{assert_none_of, mapping, verify, Cli};
use crate::support;

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use cc_shared::domain::identity::Pepper;
use cc_shared::domain::phone::PhoneKey;

const X: &str = "13922220001";
const Y: &str = "13922220002";
const Z: &str = "13922220003";
const UID_X: &str = "0a1b2c3d4e5f6g7h";
const UID_Y: &str = "1a1b2c3d4e5f6g7h";
const UID_Z: &str = "2a1b2c3d4e5f6g7h";
const PEPPER: &str = "a-migration-test-pepper-of-32-bytes";

fn e164(n: &str) -> String {
    format!("+86{n}")
}

fn digest(n: &str, pin: &str) -> String {
    Pepper::new(PEPPER.as_bytes().to_vec())
        .unwrap()
        .pin_digest(&PhoneKey::from_stored(e164(n)), pin)
        .to_hex()
}

fn env(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env = vec![("IDENTITY_PIN_PEPPER".to_string(), PEPPER.to_string())];
    env.extend(extra.iter().cloned());
    env
}

/// After the conversion: the gateway serves the old IDs both ways and the old PIN.
fn served_as_before(cli: &Cli) {
    let gw = support::cli::spawn(cli.cmd());
    assert_eq!(mapping(&gw.addr, &[X, Y], "PhoneToUID"), [UID_X, UID_Y]);
    assert_eq!(
        mapping(&gw.addr, &[UID_X, UID_Y], "UIDToPhone"),
        [format!("0086{X}"), format!("0086{Y}")]
    );
    assert_eq!(verify(&gw.addr, X, "2468")["verifyResult"], 1);
    let log = gw.log.lock().unwrap().clone();
    assert_none_of(&[X, Y, Z], &log, "the gateway's log");
}

#[test]
fn an_embedded_store_of_the_old_layout_is_refused_then_converted() {
    let dir = tempfile::tempdir().unwrap();
    cc_shared::store::embedded::create_layout_1(dir.path()).unwrap();
    {
        let db = rusqlite::Connection::open(dir.path().join("cc-callbacks.sqlite3")).unwrap();
        for (n, uid) in [(X, UID_X), (Y, UID_Y)] {
            db.execute(
                "INSERT INTO number_map (phone, uid, created_at) VALUES (?1, ?2, 1790000000)",
                (e164(n), uid),
            )
            .unwrap();
        }
        db.execute(
            "INSERT INTO pins VALUES (?1, ?2, 2, 1790000000, 0, 7)",
            (e164(X), digest(X, "2468")),
        )
        .unwrap();
    }
    // What the old release left: the numbers in the clear (the dump check can see them).
    let before = support::dump_embedded(dir.path());
    assert!(before.contains(&e164(X)), "the old layout was not written");

    let cli = Cli {
        dir: dir.path().to_path_buf(),
        env: env(&[]),
    };
    // Any command meeting the old layout stops, saying what to run.
    let (ok, _, stderr) = cli.run(&["records", "list"]);
    assert!(!ok, "the old layout was opened");
    assert!(
        stderr.contains("layout 1") && stderr.contains("cc-callbacks numbers migrate"),
        "{stderr}"
    );
    let (ok, stdout, stderr) = cli.run(&["numbers", "migrate"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("converted 2 mappings and 1 PINs"),
        "{stdout}"
    );
    let (ok, stdout, stderr) = cli.run(&["numbers", "migrate"]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("converted 0 mappings and 0 PINs"),
        "{stdout}"
    );
    // Free pages and the WAL were cleared: no trace of the old rows.
    assert_none_of(
        &[X, Y],
        &support::dump_embedded(dir.path()),
        "the converted store",
    );
    served_as_before(&cli);
    assert_none_of(&[X, Y], &support::dump_embedded(dir.path()), "the store");

    // A layout newer than this release is refused too.
    {
        let db = rusqlite::Connection::open(dir.path().join("cc-callbacks.sqlite3")).unwrap();
        db.pragma_update(None, "user_version", 9).unwrap();
    }
    let (ok, _, stderr) = cli.run(&["records", "list"]);
    assert!(!ok && stderr.contains("layout 9, newer"), "{stderr}");
}

fn item(pairs: &[(&str, &str)], numbers: &[(&str, &str)]) -> HashMap<String, AttributeValue> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), AttributeValue::S(v.to_string())))
        .chain(
            numbers
                .iter()
                .map(|(k, v)| (k.to_string(), AttributeValue::N(v.to_string()))),
        )
        .collect()
}

/// The items the old release wrote for one mapping.
fn old_mapping(n: &str, uid: &str) -> Vec<HashMap<String, AttributeValue>> {
    vec![
        item(
            &[
                ("pk", &format!("PHONE#{}", e164(n))),
                ("sk", "MAP"),
                ("uid", uid),
            ],
            &[("created_at", "1790000000")],
        ),
        item(
            &[
                ("pk", &format!("UID#{uid}")),
                ("sk", "MAP"),
                ("phone", &e164(n)),
            ],
            &[("created_at", "1790000000")],
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dynamodb_table_of_the_old_layout_is_converted_item_by_item() {
    let (store, _) = support::dynamo_store().await;
    let table = store.table().to_string();
    let put = |items: Vec<HashMap<String, AttributeValue>>| {
        let store = store.clone();
        async move {
            for i in items {
                store
                    .client()
                    .put_item()
                    .table_name(store.table())
                    .set_item(Some(i))
                    .send()
                    .await
                    .unwrap();
            }
        }
    };
    let mut old = old_mapping(X, UID_X);
    old.extend(old_mapping(Y, UID_Y));
    old.push(item(
        &[
            ("pk", &format!("PIN#{}", e164(X))),
            ("sk", "PIN"),
            ("digest", &digest(X, "2468")),
        ],
        &[
            ("failures", "2"),
            ("window_start", "1790000000"),
            ("locked_until", "0"),
            ("version", "7"),
        ],
    ));
    put(old).await;
    let data = tempfile::tempdir().unwrap();
    let cli = Cli {
        dir: data.path().to_path_buf(),
        env: env(&support::dynamodb_cli_env(&table)),
    };
    // This release already gave Z an ID before Z's old mapping was converted: the newer
    // mapping stands (one ID per number), the old one is removed.
    let gw = support::cli::spawn(cli.cmd());
    let z_now = mapping(&gw.addr, &[Z], "PhoneToUID");
    drop(gw);
    put(old_mapping(Z, UID_Z)).await;

    let run = |args: &'static [&'static str]| {
        let cli = Cli {
            dir: cli.dir.clone(),
            env: cli.env.clone(),
        };
        tokio::task::spawn_blocking(move || cli.run(args))
    };
    let (ok, stdout, stderr) = run(&["numbers", "migrate"]).await.unwrap();
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("converted 2 mappings and 1 PINs; 1 old mappings superseded"),
        "{stdout}"
    );
    // Resumable: items the old release wrote after a first run are all a re-run converts.
    put(old_mapping("13922220004", "3a1b2c3d4e5f6g7h")).await;
    let (ok, stdout, stderr) = run(&["numbers", "migrate"]).await.unwrap();
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("converted 1 mappings and 0 PINs"),
        "{stdout}"
    );
    let (_, stdout, _) = run(&["numbers", "migrate"]).await.unwrap();
    assert!(
        stdout.contains("converted 0 mappings and 0 PINs"),
        "{stdout}"
    );

    let dump = support::dump_dynamo(&store).await;
    assert_none_of(&[X, Y, Z, "13922220004"], &dump, "the converted table");
    assert!(!dump.contains(UID_Z), "the superseded ID is still stored");
    let cli2 = Cli {
        dir: cli.dir.clone(),
        env: cli.env.clone(),
    };
    tokio::task::spawn_blocking(move || {
        served_as_before(&cli2);
        let gw = support::cli::spawn(cli2.cmd());
        assert_eq!(mapping(&gw.addr, &[Z], "PhoneToUID"), z_now);
    })
    .await
    .unwrap();
}
