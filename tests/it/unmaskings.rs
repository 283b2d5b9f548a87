//! Every unmasking recorded (README "Privacy"): the store's records on both backends, then
//! through the gateway and the CLI: one record per ID asked of UIDToPhone, with the caller,
//! the request's ID and source, never a number; `unmaskings list` by ID, number, caller and
//! time; a tenant's apart and erased with it; `numbers forget` leaves them; no record, no
//! number.

use std::sync::Arc;

use crate::numbers_cli::{on_backend, Cli};
use crate::support;
use support::cli::{post, spawn, Gateway};

use cc_shared::domain::unmasking::Unmasking;
use cc_shared::web::auth::basic_header;

const NUMBER: &str = "13912345678";
const OTHER: &str = "13912345679";

fn record(uid: &str, time: i64, caller: &str) -> Unmasking {
    Unmasking {
        time,
        id: format!("{time:012}-{uid}-{caller}"),
        uid: uid.into(),
        caller: caller.into(),
        request_id: format!("req-{time}"),
        source_ip: "203.0.113.7".into(),
        expires_at: time + 1000,
    }
}

crate::contract!(unmaskings_are_found_by_id_and_by_time, |store: Arc<
    dyn support::Store,
>| async move {
    let (a, b) = ("aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb");
    store
        .put_unmaskings(&[
            record(a, 100, "tencent"),
            record(b, 100, "tencent"),
            record(a, 200, "other"),
            record(a, 300, "tencent"),
        ])
        .await
        .unwrap();
    let times = |v: Vec<Unmasking>| v.iter().map(|r| r.time).collect::<Vec<_>>();
    // One ID's, newest first, in the range, none expired at `now`.
    assert_eq!(
        times(
            store
                .unmaskings_of(a, 0, i64::MAX / 2, 0, 10)
                .await
                .unwrap()
        ),
        [300, 200, 100]
    );
    assert_eq!(
        times(store.unmaskings_of(a, 150, 250, 0, 10).await.unwrap()),
        [200]
    );
    assert_eq!(
        times(
            store
                .unmaskings_of(a, 0, i64::MAX / 2, 1150, 10)
                .await
                .unwrap()
        ),
        [300, 200],
        "the record of time 100 expired at 1100"
    );
    assert_eq!(
        times(store.unmaskings_of(a, 0, i64::MAX / 2, 0, 1).await.unwrap()),
        [300]
    );
    let upper = a.to_ascii_uppercase();
    assert_eq!(
        store
            .unmaskings_of(&upper, 0, 1000, 0, 10)
            .await
            .unwrap()
            .len(),
        3
    );
    // By time, every ID; by caller.
    let all = store
        .unmaskings_between(None, 0, 1000, 0, 10)
        .await
        .unwrap();
    assert_eq!(times(all.clone()), [300, 200, 100, 100]);
    assert_eq!(all[0], record(a, 300, "tencent"));
    let other = store
        .unmaskings_between(Some("other"), 0, 1000, 0, 10)
        .await
        .unwrap();
    assert_eq!(other, [record(a, 200, "other")]);
    assert!(store
        .unmaskings_between(None, 301, 1000, 0, 10)
        .await
        .unwrap()
        .is_empty());
});

/// The IDs of NUMBER and OTHER as `auth` (PhoneToUID).
fn ids(gw: &Gateway, auth: &str) -> Vec<String> {
    let (status, values) = crate::platform::mapping(gw, auth, &[NUMBER, OTHER], "PhoneToUID");
    assert_eq!(status, 200);
    values
}

/// (status, Values) of UIDToPhone of `uids` as `auth`.
fn unmask(addr: &str, auth: &str, uids: &[&str]) -> (u16, serde_json::Value) {
    let body = serde_json::json!({"Numbers": uids, "Mode": "UIDToPhone"}).to_string();
    let (status, body) = post(addr, "/number-mapping", Some(auth), &body);
    (status, serde_json::from_str(&body).unwrap())
}

fn listed(cli: &Cli, args: &[&str]) -> Vec<serde_json::Value> {
    let mut all = vec!["unmaskings", "list", "--json"];
    all.extend(args);
    let out = cli.ok(&all);
    serde_json::from_str::<serde_json::Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn unmaskings_end_to_end(cli: &Cli, dump: &dyn Fn() -> String) {
    cli.ok(&["tenants", "add", "acme"]);
    let acme_pw = crate::platform::credential(cli, "tencent", "acme", "number-mapping");
    let mut cmd = cli.cmd();
    cmd.env("TENANT_CACHE_SECONDS", "0");
    let gw = spawn(cmd);
    let dev = basic_header("dev", "dev");
    let acme = basic_header("tencent@acme", &acme_pw);
    let id = ids(&gw, &dev);
    // Nothing is recorded for PhoneToUID.
    assert!(listed(cli, &[]).is_empty());
    let unknown = "0123456789abcdef";
    let (status, answer) = unmask(&gw.addr, &dev, &[&id[0], &id[1], unknown, "not an id"]);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["Results"][2]["Value"], "");
    // One record per ID asked (found or not), by caller and request, from the client.
    let all = listed(cli, &[]);
    assert_eq!(all.len(), 3, "{all:?}");
    for r in &all {
        assert_eq!(r["caller"], "dev");
        assert_eq!(r["source_ip"], "127.0.0.1");
        assert!(
            r["request_id"].as_str().is_some_and(|s| !s.is_empty()),
            "{r}"
        );
    }
    let one_request = all
        .iter()
        .map(|r| r["request_id"].clone())
        .collect::<Vec<_>>();
    assert!(
        one_request.windows(2).all(|w| w[0] == w[1]),
        "one request, one ID"
    );
    assert_eq!(listed(cli, &["--uid", &id[0]]).len(), 1);
    assert_eq!(listed(cli, &["--number", "+86 139 1234 5678"]).len(), 1);
    assert_eq!(listed(cli, &["--caller", "dev"]).len(), 3);
    assert!(listed(cli, &["--caller", "nobody"]).is_empty());
    assert!(listed(cli, &["--since", "2999-01-01T00:00:00Z"]).is_empty());
    assert!(
        listed(cli, &["--number", "13900000000"]).is_empty(),
        "never mapped"
    );

    // A tenant's unmaskings are its own.
    let acme_id = ids(&gw, &acme);
    let (status, _) = unmask(&gw.addr, &acme, &[&acme_id[0]]);
    assert_eq!(status, 200);
    let theirs = listed(cli, &["--tenant", "acme"]);
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["caller"], "tencent@acme");
    assert_eq!(
        listed(cli, &[]).len(),
        3,
        "the default tenant's list is unchanged"
    );
    assert_eq!(
        listed(cli, &["--tenant", "acme", "--number", NUMBER]).len(),
        1
    );

    // `numbers forget` leaves the records (they hold no number: the evidence of processing).
    cli.ok(&["numbers", "forget", NUMBER]);
    assert_eq!(listed(cli, &["--uid", &id[0]]).len(), 1);
    let stored = dump();
    for spelling in [NUMBER, OTHER, "8613912345678", "8613912345679"] {
        assert!(!stored.contains(spelling), "a number is in the store");
    }
    // `tenants remove` erases the tenant's.
    cli.ok(&["tenants", "remove", "acme", "--yes"]);
    assert!(
        !dump().contains("tencent@acme"),
        "the tenant's records are left"
    );
    assert_eq!(listed(cli, &[]).len(), 3);
    let log = gw.log.lock().unwrap().clone();
    assert!(!log.contains(&NUMBER[3..]) && !log.contains(&OTHER[3..]));
    drop(gw);
}

#[test]
fn every_unmasking_is_recorded_embedded() {
    on_backend(false, "cc-unmask", unmaskings_end_to_end);
}

#[test]
fn every_unmasking_is_recorded_dynamodb() {
    on_backend(true, "cc-unmask", unmaskings_end_to_end);
}

/// No record, no number: when the record cannot be written, or the caller's budget cannot be
/// counted (the store refuses it: here a trigger in the embedded store's file on either
/// table), UIDToPhone answers Tencent's error and no number; once it can, the same request is
/// answered.
#[test]
fn a_record_or_count_that_cannot_be_written_lets_no_number_out() {
    on_backend(false, "cc-unmask", |cli, _| {
        let gw = spawn(cli.cmd());
        let dev = basic_header("dev", "dev");
        let id = ids(&gw, &dev);
        let db = rusqlite::Connection::open(cli.dir.join("cc-callbacks.sqlite3")).unwrap();
        for table in ["unmaskings", "unmask_budget"] {
            db.execute_batch(&format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'no'); END;"
            ))
            .unwrap();
            let (status, answer) = unmask(&gw.addr, &dev, &[&id[0]]);
            assert!(status >= 500, "{table}: {answer}");
            assert_eq!(answer["Code"].as_u64(), Some(u64::from(status)), "{answer}");
            assert!(!answer.to_string().contains(&NUMBER[3..]), "{answer}");
            db.execute_batch("DROP TRIGGER refuse;").unwrap();
            let (status, answer) = unmask(&gw.addr, &dev, &[&id[0]]);
            assert_eq!(status, 200, "{answer}");
            assert!(answer.to_string().contains(&NUMBER[3..]), "{answer}");
        }
        drop(gw);
    });
}

crate::contract!(
    a_budget_is_taken_atomically_per_caller_and_minute,
    |store: Arc<dyn support::Store>| async move {
        use cc_shared::domain::unmasking::BudgetTake;
        let now = 1_800_000_000;
        // 32 concurrent takes of one ID each against a budget of 10: exactly 10 fit.
        let takes = (0..32).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .take_unmask_budget(&BudgetTake::at(now, "tencent", 1, 10))
                    .await
                    .unwrap()
            })
        });
        let mut taken = 0;
        for t in takes {
            taken += usize::from(t.await.unwrap());
        }
        assert_eq!(taken, 10);
        // Another caller, and the next minute, have their own.
        let take = |caller: &str, at: i64, n: u32| BudgetTake::at(at, caller, n, 10);
        assert!(store
            .take_unmask_budget(&take("other", now, 10))
            .await
            .unwrap());
        assert!(!store
            .take_unmask_budget(&take("other", now, 1))
            .await
            .unwrap());
        assert!(store
            .take_unmask_budget(&take("tencent", now + 60, 7))
            .await
            .unwrap());
        // A take that does not fit adds nothing: the rest still does.
        assert!(!store
            .take_unmask_budget(&take("tencent", now + 60, 4))
            .await
            .unwrap());
        assert!(store
            .take_unmask_budget(&take("tencent", now + 60, 3))
            .await
            .unwrap());
        // More than the whole budget never fits.
        assert!(!store
            .take_unmask_budget(&take("new", now, 11))
            .await
            .unwrap());
        assert!(store
            .take_unmask_budget(&take("new", now, 10))
            .await
            .unwrap());
    }
);

/// The budget across two gateways sharing one store (README "Privacy"): 32 concurrent
/// clients of one caller, half on each, ask one ID each, twice: exactly the budget is
/// answered, the rest get Tencent's `{"Code": 429}` with no number; the caller's budget is its
/// own (another caller is answered); PhoneToUID is never limited; every ID asked is recorded.
fn budget_across_gateways(cli: &Cli, _dump: &dyn Fn() -> String) {
    const LIMIT: usize = 20;
    // A fresh caller for each attempt: an attempt that straddles a minute is run again by a
    // caller whose budget nothing has touched.
    let callers: Vec<(String, String)> = (0..4)
        .map(|i| (format!("tencent{i}"), format!("password-{i}-0123456789")))
        .collect();
    let entries: Vec<String> = callers
        .iter()
        .map(|(u, p)| cc_shared::web::auth::entry_for(u, p))
        .collect();
    let gateway = || {
        let mut cmd = cli.cmd();
        cmd.env("NUMBER_MAPPING_CREDENTIALS", entries.join(","))
            .env("UNMASK_MAX_PER_MINUTE", LIMIT.to_string());
        spawn(cmd)
    };
    let gateways = [gateway(), gateway()];
    let auth = |i: usize| basic_header(&callers[i].0, &callers[i].1);
    let id = ids(&gateways[0], &auth(3))[0].clone();
    let minute = || cc_shared::domain::clock::now_epoch() / 60;
    let mut attempt = 0;
    let (answered, refused) = loop {
        let start = minute();
        let (answered, refused) = std::thread::scope(|s| {
            let clients: Vec<_> = (0..32)
                .map(|c| {
                    let (addr, auth, id) = (&gateways[c % 2].addr, auth(attempt), &id);
                    s.spawn(move || {
                        (0..2)
                            .map(|_| unmask(addr, &auth, &[id]))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            let mut answered = 0;
            let mut refused = 0;
            for answer in clients.into_iter().flat_map(|c| c.join().unwrap()) {
                match answer {
                    (200, body) => {
                        assert!(body.to_string().contains(&NUMBER[3..]), "{body}");
                        answered += 1;
                    }
                    (429, body) => {
                        assert_eq!(body["Code"], 429, "{body}");
                        assert!(!body.to_string().contains(&NUMBER[3..]), "{body}");
                        refused += 1;
                    }
                    other => panic!("unexpected answer {other:?}"),
                }
            }
            (answered, refused)
        });
        attempt += 1;
        if minute() == start || attempt == 3 {
            break (answered, refused);
        }
    };
    assert_eq!(
        (answered, refused),
        (LIMIT, 64 - LIMIT),
        "attempts: {attempt}"
    );
    // Its budget spent, the caller is still answered PhoneToUID; another caller UIDToPhone.
    let (status, _) =
        crate::platform::mapping(&gateways[1], &auth(attempt - 1), &[NUMBER], "PhoneToUID");
    assert_eq!(status, 200);
    let (status, _) = unmask(&gateways[1].addr, &auth(3), &[&id]);
    assert_eq!(status, 200);
    // Every ID asked was recorded, refused or not.
    let caller = &callers[attempt - 1].0;
    assert_eq!(listed(cli, &["--caller", caller]).len(), 64);
    for gw in &gateways {
        assert!(
            gw.logs("unmasking budget spent"),
            "{}",
            gw.log.lock().unwrap()
        );
        assert!(!gw.log.lock().unwrap().contains(&NUMBER[3..]));
    }
}

#[test]
fn the_budget_holds_across_two_gateways_embedded() {
    on_backend(false, "cc-unmask-budget", budget_across_gateways);
}

#[test]
fn the_budget_holds_across_two_gateways_dynamodb() {
    on_backend(true, "cc-unmask-budget", budget_across_gateways);
}
