//! The identity store contract (PINs, guarded counters, records), on both backends.

use crate::support;

use std::sync::Arc;

use cc_shared::domain::factor::Factor;
use cc_shared::domain::identity::{Counters, Pepper, RecordQuery, VerificationRecord};
use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::store::CountersUpdate;
use support::Store;

const T0: i64 = 1_790_000_000;

fn phone(n: &str) -> PhoneKey {
    PhoneNormalizer::new("CN", &[])
        .unwrap()
        .normalize(n)
        .unwrap()
}

fn pepper() -> Pepper {
    Pepper::new(vec![9; 32]).unwrap()
}

fn record(n: &str, agent: &str, time: i64, reason: &str) -> VerificationRecord {
    let p = phone(n);
    VerificationRecord {
        time,
        id: cc_shared::domain::uid::Uid::generate().unwrap().to_string(),
        number_key: pepper().record_key(&p),
        masked_number: p.masked(),
        agent: agent.into(),
        verify_type_code: "PIN".into(),
        factor: "pin".into(),
        result: 2,
        reason: reason.into(),
        expires_at: time + 86_400,
    }
}

fn query(now: i64) -> RecordQuery {
    RecordQuery {
        limit: 100,
        now,
        ..Default::default()
    }
}

contract!(enrolled_pins_load_with_fresh_counters, |store: Arc<
    dyn Store,
>| async move {
    let p = phone("13988888888");
    let k = support::index_of("13988888888");
    assert_eq!(store.load_customer(&k).await.unwrap(), (None, None));
    let digest = pepper().pin_digest(&p, "1234");
    store
        .put_pins(&[(k.clone(), digest.clone())])
        .await
        .unwrap();
    let (pin, uid) = store.load_customer(&k).await.unwrap();
    let pin = pin.expect("enrolled");
    assert!(pin.digest(Factor::Pin).unwrap().matches(&digest));
    assert_eq!(pin.counters, Counters::default());
    assert_eq!(uid, None);
    // The number-mapping ID comes with the same read.
    let (keys, seal) = support::sealer(&["13988888888"]);
    let created = store.create_uids(&keys, &seal).await.unwrap();
    assert_eq!(
        store.load_customer(&k).await.unwrap().1.as_ref(),
        created.get(&k)
    );
});

contract!(
    counters_update_only_from_the_expected_version,
    |store: Arc<dyn Store>| async move {
        let p = phone("13988888888");
        let k = support::index_of("13988888888");
        store
            .put_pins(&[(k.clone(), pepper().pin_digest(&p, "1234"))])
            .await
            .unwrap();
        let v0 = store.load_customer(&k).await.unwrap().0.unwrap().version;
        let c1 = Counters {
            failures: 1,
            window_start: T0,
            locked_until: 0,
        };
        assert!(store.update_counters(&k, v0, c1).await.unwrap());
        assert!(
            !store
                .update_counters(&k, v0, Counters::default())
                .await
                .unwrap(),
            "stale version"
        );
        let now = store.load_customer(&k).await.unwrap().0.unwrap();
        assert_eq!((now.counters, now.version), (c1, v0 + 1));
        // An unknown customer is never created by an update.
        assert!(!store
            .update_counters(&support::index_of("13700000000"), 0, c1)
            .await
            .unwrap());
        assert_eq!(
            store
                .load_customer(&support::index_of("13700000000"))
                .await
                .unwrap()
                .0,
            None
        );
    }
);

contract!(attempts_with_a_stale_update_write_nothing, |store: Arc<
    dyn Store,
>| async move {
    let p = phone("13988888888");
    let k = support::index_of("13988888888");
    store
        .put_pins(&[(k.clone(), pepper().pin_digest(&p, "1234"))])
        .await
        .unwrap();
    let v = store.load_customer(&k).await.unwrap().0.unwrap().version;
    let locked = Counters {
        failures: 0,
        window_start: 0,
        locked_until: T0 + 900,
    };
    let stale = CountersUpdate {
        number: &k,
        expected_version: v + 7,
        counters: locked,
    };
    let r = record("13988888888", "371", T0, "wrong_pin");
    assert!(!store.write_attempt(&r, Some(stale)).await.unwrap());
    assert!(
        store.list_records(&query(T0)).await.unwrap().is_empty(),
        "record written alone"
    );
    let fresh = CountersUpdate {
        number: &k,
        expected_version: v,
        counters: locked,
    };
    assert!(store.write_attempt(&r, Some(fresh)).await.unwrap());
    assert_eq!(store.list_records(&query(T0)).await.unwrap(), vec![r]);
    assert_eq!(
        store.load_customer(&k).await.unwrap().0.unwrap().counters,
        locked
    );
});

contract!(
    replacing_a_pin_starts_afresh_and_unlock_clears,
    |store: Arc<dyn Store>| async move {
        let p = phone("13988888888");
        let k = support::index_of("13988888888");
        store
            .put_pins(&[(k.clone(), pepper().pin_digest(&p, "1234"))])
            .await
            .unwrap();
        let v = store.load_customer(&k).await.unwrap().0.unwrap().version;
        let locked = Counters {
            failures: 3,
            window_start: T0,
            locked_until: T0 + 900,
        };
        assert!(store.update_counters(&k, v, locked).await.unwrap());
        assert!(store.unlock(&k).await.unwrap());
        let after = store.load_customer(&k).await.unwrap().0.unwrap();
        assert_eq!(after.counters, Counters::default());
        assert!(after.version != v + 1, "unlock bumps the version");
        assert!(!store
            .unlock(&support::index_of("13700000000"))
            .await
            .unwrap());

        let v = after.version;
        assert!(store.update_counters(&k, v, locked).await.unwrap());
        let new_digest = pepper().pin_digest(&p, "9999");
        store
            .put_pins(&[(k.clone(), new_digest.clone())])
            .await
            .unwrap();
        let replaced = store.load_customer(&k).await.unwrap().0.unwrap();
        assert!(replaced.digest(Factor::Pin).unwrap().matches(&new_digest));
        assert_eq!(replaced.counters, Counters::default());
        assert!(
            !store.update_counters(&k, v + 1, locked).await.unwrap(),
            "old version is stale"
        );
    }
);

contract!(
    records_list_newest_first_by_number_agent_and_time,
    |store: Arc<dyn Store>| async move {
        let a1 = record("13988888888", "371", T0, "ok");
        let a2 = record("13788888888", "371", T0 + 10, "wrong_pin");
        let a3 = record("13988888888", "400", T0 + 20, "locked");
        let a4 = record("13988888888", "371", T0 + 30, "ok");
        for r in [&a1, &a2, &a3, &a4] {
            assert!(store.write_attempt(r, None).await.unwrap());
        }
        let now = T0 + 40;
        let all = store.list_records(&query(now)).await.unwrap();
        assert_eq!(all, vec![a4.clone(), a3.clone(), a2.clone(), a1.clone()]);

        let by_number = RecordQuery {
            number_key: Some(a1.number_key.clone()),
            ..query(now)
        };
        assert_eq!(
            store.list_records(&by_number).await.unwrap(),
            vec![a4.clone(), a3.clone(), a1.clone()]
        );

        let by_agent = RecordQuery {
            agent: Some("371".into()),
            ..query(now)
        };
        assert_eq!(
            store.list_records(&by_agent).await.unwrap(),
            vec![a4.clone(), a2.clone(), a1.clone()]
        );

        let both = RecordQuery {
            agent: Some("371".into()),
            ..by_number.clone()
        };
        assert_eq!(
            store.list_records(&both).await.unwrap(),
            vec![a4.clone(), a1.clone()]
        );

        let since = RecordQuery {
            since: Some(T0 + 10),
            ..query(now)
        };
        assert_eq!(
            store.list_records(&since).await.unwrap(),
            vec![a4.clone(), a3.clone(), a2.clone()]
        );

        let limited = RecordQuery {
            limit: 2,
            ..query(now)
        };
        assert_eq!(
            store.list_records(&limited).await.unwrap(),
            vec![a4.clone(), a3.clone()]
        );

        // Expired records are not listed (DynamoDB's TTL deletes them later).
        let later = query(T0 + 86_400 + 15);
        assert_eq!(store.list_records(&later).await.unwrap(), vec![a4, a3]);
    }
);
