//! The store contract, run against the embedded backend and DynamoDB Local alike.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;

use cc_shared::domain::phone::{PhoneKey, PhoneNormalizer};
use cc_shared::domain::uid::Uid;
use support::Store;

fn keys(numbers: &[&str]) -> Vec<PhoneKey> {
    let p = PhoneNormalizer::new("CN", &[]).unwrap();
    numbers.iter().map(|n| p.normalize(n).unwrap()).collect()
}

fn many(n: usize) -> Vec<PhoneKey> {
    let numbers: Vec<String> = (0..n).map(|i| format!("1390000{i:04}")).collect();
    keys(&numbers.iter().map(String::as_str).collect::<Vec<_>>())
}

contract!(unknown_numbers_and_ids_are_absent, |store: Arc<
    dyn Store,
>| async move {
    assert!(store
        .uids_of(&keys(&["13988888888"]))
        .await
        .unwrap()
        .is_empty());
    let uid = Uid::generate().unwrap();
    assert!(store.phones_of(&[uid]).await.unwrap().is_empty());
});

contract!(
    created_ids_read_back_both_ways,
    |store: Arc<dyn Store>| async move {
        let phones = keys(&["13988888888", "13788888888", "95588"]);
        let created = store.create_uids(&phones).await.unwrap();
        assert_eq!(created.len(), 3);
        let distinct: HashSet<&Uid> = created.values().collect();
        assert_eq!(distinct.len(), 3, "an ID was given to two numbers");

        assert_eq!(store.uids_of(&phones).await.unwrap(), created);
        let uids: Vec<Uid> = created.values().cloned().collect();
        let back = store.phones_of(&uids).await.unwrap();
        for (phone, uid) in &created {
            assert_eq!(back.get(uid), Some(phone));
        }
    }
);

contract!(creating_again_keeps_the_first_id, |store: Arc<
    dyn Store,
>| async move {
    let phones = keys(&["13988888888"]);
    let first = store.create_uids(&phones).await.unwrap();
    let second = store.create_uids(&phones).await.unwrap();
    assert_eq!(first, second);
    // A batch mixing known and new numbers keeps the known ID and adds the new one.
    let mixed = keys(&["13988888888", "13788888888"]);
    let third = store.create_uids(&mixed).await.unwrap();
    assert_eq!(third[&phones[0]], first[&phones[0]]);
    assert_eq!(third.len(), 2);
});

contract!(duplicates_in_one_batch_get_one_id, |store: Arc<
    dyn Store,
>| async move {
    let phones = keys(&["13988888888", "+8613988888888", "008613988888888"]);
    let created = store.create_uids(&phones).await.unwrap();
    assert_eq!(created.len(), 1);
});

contract!(batches_larger_than_one_transaction, |store: Arc<
    dyn Store,
>| async move {
    let phones = many(100);
    let created = store.create_uids(&phones).await.unwrap();
    assert_eq!(created.len(), 100);
    let distinct: HashSet<&Uid> = created.values().collect();
    assert_eq!(distinct.len(), 100);
    assert_eq!(store.uids_of(&phones).await.unwrap().len(), 100);
    let uids: Vec<Uid> = created.values().cloned().collect();
    assert_eq!(store.phones_of(&uids).await.unwrap().len(), 100);
});

contract!(concurrent_creation_yields_one_id, |store: Arc<
    dyn Store,
>| async move {
    let phones = keys(&["13988888888", "13788888888"]);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        let phones = phones.clone();
        tasks.push(tokio::spawn(
            async move { store.create_uids(&phones).await },
        ));
    }
    let mut seen: Vec<HashSet<Uid>> = vec![HashSet::new(), HashSet::new()];
    for t in tasks {
        let got = t
            .await
            .unwrap()
            .expect("every concurrent creation succeeds");
        for (i, p) in phones.iter().enumerate() {
            seen[i].insert(got[p].clone());
        }
    }
    assert_eq!(seen[0].len(), 1, "one number got several IDs");
    assert_eq!(seen[1].len(), 1, "one number got several IDs");
    assert_ne!(seen[0], seen[1]);
});
