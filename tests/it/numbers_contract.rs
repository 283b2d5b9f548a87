//! The bulk contract of the number mapping (`NumbersAdmin`: import, scan, reseal, forget), on
//! both backends, with the keys the CLI would use.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use cc_shared::domain::identity::{Pepper, RecordQuery, VerificationRecord};
use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::domain::uid::Uid;
use cc_shared::store::{Forgotten, ImportOutcome, NumbersAdmin, StoredMapping};
use support::Store;

fn phone(n: &str) -> PhoneKey {
    PhoneNormalizer::new("CN", &[])
        .unwrap()
        .normalize(n)
        .unwrap()
}

/// The mapping of `number` to the imported ID `uid`, sealed as the CLI seals it.
fn mapping(number: &str, uid: &str) -> StoredMapping {
    let keys = support::keys();
    let p = phone(number);
    let uid = Uid::imported(uid).unwrap();
    StoredMapping {
        index: keys.index(&p),
        sealed: keys.seal(&uid, &p).unwrap(),
        uid,
        created_at: 1_790_000_000,
    }
}

/// Every mapping of the store, read through every scan segment: number -> ID.
async fn scan_all(store: &Arc<dyn Store>) -> HashMap<String, String> {
    let keys = support::keys();
    let admin: Arc<dyn NumbersAdmin> = store.clone();
    let segments = admin.scan_segments();
    let mut all = HashMap::new();
    for segment in 0..segments {
        let mut start = None;
        loop {
            let page = admin.scan(segment, segments, start.take()).await.unwrap();
            for m in page.mappings {
                let p = keys.open(&m.uid, &m.sealed).unwrap();
                assert_eq!(keys.index(&p), m.index, "index and sealed number disagree");
                assert!(
                    all.insert(p.as_str().to_string(), m.uid.as_str().to_string())
                        .is_none(),
                    "a mapping scanned twice"
                );
            }
            match page.next {
                Some(n) => start = Some(n),
                None => break,
            }
        }
    }
    all
}

contract!(import_writes_checks_and_is_idempotent, |store: Arc<
    dyn Store,
>| async move {
    let first = vec![
        mapping("13988888888", "CRM-Alice"),
        mapping("13788888888", "crm-bob"),
    ];
    assert_eq!(
        store.import(&first).await.unwrap(),
        [ImportOutcome::Written, ImportOutcome::Written]
    );
    // The same rows again: nothing to do (a re-run after an interruption).
    assert_eq!(
        store.import(&first).await.unwrap(),
        [ImportOutcome::Unchanged, ImportOutcome::Unchanged]
    );
    let conflicts = vec![
        // The number already has another ID.
        mapping("13988888888", "crm-carol"),
        // The ID (in another case) belongs to another number.
        mapping("13688888888", "crm-ALICE"),
        // A good row in the same batch still goes in.
        mapping("13588888888", "crm-dave"),
    ];
    assert_eq!(
        store.import(&conflicts).await.unwrap(),
        [
            ImportOutcome::NumberTaken,
            ImportOutcome::UidTaken,
            ImportOutcome::Written
        ]
    );
    // Looked up as number mapping does: the ID keeps its spelling, matches in any case.
    let index = support::index_of("13988888888");
    let found = store.uids_of(std::slice::from_ref(&index)).await.unwrap();
    assert_eq!(found[&index].as_str(), "CRM-Alice");
    let sealed = store
        .sealed_of(&[Uid::parse("crm-alice").unwrap()])
        .await
        .unwrap();
    let (uid, s) = sealed.into_iter().next().expect("found in another case");
    assert_eq!(
        support::keys().open(&uid, &s).unwrap().as_str(),
        "+8613988888888"
    );
    let all = scan_all(&store).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all["+8613988888888"], "CRM-Alice");
    assert!(
        !all.contains_key("+8613688888888"),
        "a rejected row was written"
    );
});

contract!(
    import_racing_creation_leaves_one_id_per_number,
    |store: Arc<dyn Store>| async move {
        // The gateway creating IDs for numbers an import is loading at the same moment.
        let numbers: Vec<String> = (0..120).map(|i| format!("1391111{i:04}")).collect();
        let rows: Vec<StoredMapping> = numbers
            .iter()
            .enumerate()
            .map(|(i, n)| mapping(n, &format!("crm-{i}")))
            .collect();
        let admin: Arc<dyn NumbersAdmin> = store.clone();
        let importing = tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for chunk in rows.chunks(admin.import_batch().min(40)) {
                outcomes.extend(admin.import(chunk).await.unwrap());
            }
            outcomes
        });
        let (indexes, seal) = support::sealer(&support::refs(&numbers));
        let mut created = HashMap::new();
        for chunk in indexes.chunks(30) {
            created.extend(store.create_uids(chunk, &seal).await.unwrap());
        }
        let outcomes = importing.await.unwrap();
        let all = scan_all(&store).await;
        assert_eq!(all.len(), numbers.len(), "a number without its one mapping");
        let ids: HashSet<&String> = all.values().collect();
        assert_eq!(ids.len(), all.len(), "an ID given to two numbers");
        for ((n, outcome), index) in numbers.iter().zip(&outcomes).zip(&indexes) {
            let stored = &all[phone(n).as_str()];
            // Whoever came first stands; the creation answered what is stored.
            assert_eq!(stored, created[index].as_str());
            match outcome {
                ImportOutcome::Written => assert!(stored.starts_with("crm-")),
                ImportOutcome::NumberTaken => assert!(!stored.starts_with("crm-")),
                other => panic!("unexpected outcome {other:?}"),
            }
        }
    }
);

contract!(
    scan_pages_through_everything,
    |store: Arc<dyn Store>| async move {
        let numbers: Vec<String> = (0..1100).map(|i| format!("1392222{i:04}")).collect();
        let (indexes, seal) = support::sealer(&support::refs(&numbers));
        for chunk in indexes.chunks(100) {
            store.create_uids(chunk, &seal).await.unwrap();
        }
        let all = scan_all(&store).await;
        assert_eq!(all.len(), 1100);
    }
);

contract!(reseal_replaces_only_what_is_unchanged, |store: Arc<
    dyn Store,
>| async move {
    let m = mapping("13988888888", "crm-1");
    store.import(std::slice::from_ref(&m)).await.unwrap();
    let keys = support::keys();
    let p = phone("13988888888");
    let new = keys.seal(&m.uid, &p).unwrap();
    // A stale view (someone changed it meanwhile) replaces nothing.
    let stale = StoredMapping {
        sealed: keys.seal(&m.uid, &p).unwrap(),
        ..m.clone()
    };
    assert_eq!(store.reseal(&[(stale, new.clone())]).await.unwrap(), 0);
    assert_eq!(store.reseal(&[(m.clone(), new.clone())]).await.unwrap(), 1);
    let sealed = store.sealed_of(std::slice::from_ref(&m.uid)).await.unwrap();
    assert_eq!(sealed[&m.uid], new);
});

contract!(
    forget_removes_the_customer_and_is_idempotent,
    |store: Arc<dyn Store>| async move {
        let pepper = Pepper::new(vec![3; 32]).unwrap();
        let p = phone("13988888888");
        let index = support::index_of("13988888888");
        let (indexes, seal) = support::sealer(&["13988888888", "13788888888"]);
        let created = store.create_uids(&indexes, &seal).await.unwrap();
        let uid = created[&index].clone();
        store
            .put_pins(&[
                (index.clone(), pepper.pin_digest(&p, "1234")),
                (indexes[1].clone(), pepper.pin_digest(&p, "1234")),
            ])
            .await
            .unwrap();
        for i in 0..3 {
            let record = VerificationRecord {
                time: 1_790_000_000 + i,
                id: format!("r{i}"),
                number_key: pepper.record_key(&p),
                masked_number: p.masked(),
                agent: "371".into(),
                verify_type_code: "PIN".into(),
                factor: "pin".into(),
                result: 1,
                reason: "ok".into(),
                expires_at: 1_790_000_000 + 86_400,
            };
            store.write_attempt(&record, None).await.unwrap();
        }
        let gone = store
            .forget(&index, None, Some(&pepper.record_key(&p)))
            .await
            .unwrap();
        assert_eq!(
            gone,
            Forgotten {
                mapping: true,
                pin: true,
                records: 3
            }
        );
        assert!(store
            .uids_of(std::slice::from_ref(&index))
            .await
            .unwrap()
            .is_empty());
        assert!(store
            .sealed_of(std::slice::from_ref(&uid))
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.load_customer(&index).await.unwrap(), (None, None));
        let records = store
            .list_records(&RecordQuery {
                number_key: Some(pepper.record_key(&p)),
                limit: 100,
                now: 1_790_000_000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(records.is_empty());
        // The other customer is untouched; forgetting again finds nothing.
        assert_eq!(store.uids_of(&indexes[1..]).await.unwrap().len(), 1);
        assert!(store.load_customer(&indexes[1]).await.unwrap().0.is_some());
        assert_eq!(
            store
                .forget(&index, Some(&uid), Some(&pepper.record_key(&p)))
                .await
                .unwrap(),
            Forgotten::default()
        );
        // A new PhoneToUID gives a new ID.
        let again = store
            .create_uids(std::slice::from_ref(&index), &seal)
            .await
            .unwrap();
        assert_ne!(again[&index], uid);
    }
);
