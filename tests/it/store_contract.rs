//! The store contract, run against the embedded backend and DynamoDB Local alike.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;

use cc_shared::domain::phone::PhoneNormalizer;
use cc_shared::domain::protect::NumberIndex;
use cc_shared::domain::uid::Uid;
use cc_shared::store::Sealer;
use support::Store;

/// The indexes of `numbers`, and the sealer the handler would give the store for them.
fn keys(numbers: &[&str]) -> (Vec<NumberIndex>, Sealer) {
    support::sealer(numbers)
}

fn many(n: usize) -> (Vec<NumberIndex>, Sealer) {
    let numbers: Vec<String> = (0..n).map(|i| format!("1390000{i:04}")).collect();
    keys(&numbers.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The numbers (E.164) of `uids` read back and opened with the tests' keys.
async fn numbers_of(
    store: &Arc<dyn Store>,
    uids: &[Uid],
) -> std::collections::HashMap<Uid, String> {
    let keys = support::keys();
    store
        .sealed_of(uids)
        .await
        .unwrap()
        .into_iter()
        .map(|(uid, sealed)| {
            let phone = keys.open(&uid, &sealed).expect("a stored number opens");
            (uid, phone.as_str().to_string())
        })
        .collect()
}

fn e164(n: &str) -> String {
    PhoneNormalizer::new("CN", &[])
        .unwrap()
        .normalize(n)
        .unwrap()
        .as_str()
        .to_string()
}

contract!(unknown_numbers_and_ids_are_absent, |store: Arc<
    dyn Store,
>| async move {
    let (numbers, _) = keys(&["13988888888"]);
    assert!(store.uids_of(&numbers).await.unwrap().is_empty());
    let uid = Uid::generate().unwrap();
    assert!(store.sealed_of(&[uid]).await.unwrap().is_empty());
});

contract!(
    created_ids_read_back_both_ways,
    |store: Arc<dyn Store>| async move {
        let given = ["13988888888", "13788888888", "95588"];
        let (numbers, seal) = keys(&given);
        let created = store.create_uids(&numbers, &seal).await.unwrap();
        assert_eq!(created.len(), 3);
        let distinct: HashSet<&Uid> = created.values().collect();
        assert_eq!(distinct.len(), 3, "an ID was given to two numbers");

        assert_eq!(store.uids_of(&numbers).await.unwrap(), created);
        let uids: Vec<Uid> = created.values().cloned().collect();
        let back = numbers_of(&store, &uids).await;
        for (n, index) in given.iter().zip(&numbers) {
            assert_eq!(back.get(&created[index]), Some(&e164(n)));
        }
    }
);

contract!(creating_again_keeps_the_first_id, |store: Arc<
    dyn Store,
>| async move {
    let (numbers, seal) = keys(&["13988888888"]);
    let first = store.create_uids(&numbers, &seal).await.unwrap();
    let second = store.create_uids(&numbers, &seal).await.unwrap();
    assert_eq!(first, second);
    // A batch mixing known and new numbers keeps the known ID and adds the new one.
    let (mixed, seal) = keys(&["13988888888", "13788888888"]);
    let third = store.create_uids(&mixed, &seal).await.unwrap();
    assert_eq!(third[&numbers[0]], first[&numbers[0]]);
    assert_eq!(third.len(), 2);
});

contract!(duplicates_in_one_batch_get_one_id, |store: Arc<
    dyn Store,
>| async move {
    let (numbers, seal) = keys(&["13988888888", "+8613988888888", "008613988888888"]);
    let created = store.create_uids(&numbers, &seal).await.unwrap();
    assert_eq!(created.len(), 1);
});

contract!(batches_larger_than_one_transaction, |store: Arc<
    dyn Store,
>| async move {
    let (numbers, seal) = many(100);
    let created = store.create_uids(&numbers, &seal).await.unwrap();
    assert_eq!(created.len(), 100);
    let distinct: HashSet<&Uid> = created.values().collect();
    assert_eq!(distinct.len(), 100);
    assert_eq!(store.uids_of(&numbers).await.unwrap().len(), 100);
    let uids: Vec<Uid> = created.values().cloned().collect();
    assert_eq!(numbers_of(&store, &uids).await.len(), 100);
});

contract!(concurrent_creation_yields_one_id, |store: Arc<
    dyn Store,
>| async move {
    let (phones, seal) = keys(&["13988888888", "13788888888"]);
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        let (phones, seal) = (phones.clone(), seal.clone());
        tasks.push(tokio::spawn(async move {
            store.create_uids(&phones, &seal).await
        }));
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
