//! The number-mapping handler end to end on both backends: round trips, concurrency, logs.

mod support;

use std::collections::HashSet;
use std::sync::Arc;

use cc_shared::store::MappingStore;
use support::{call_mapping, mapping_request, numbers, refs};

#[tokio::test]
async fn known_numbers_cost_one_batch_get_in_either_direction() {
    let (store, counter) = support::dynamo_store().await;
    let svc = support::number_mapping(store);
    for n in [1, 10, 100] {
        let phones = numbers(n, &format!("137{n:03}0"));
        let (status, created) =
            call_mapping(&svc, mapping_request(&refs(&phones), "PhoneToUID")).await;
        assert_eq!(status, 200);

        counter.reset();
        let (_, again) = call_mapping(&svc, mapping_request(&refs(&phones), "PhoneToUID")).await;
        assert_eq!(again.results, created.results);
        assert_eq!(counter.get(), 1, "PhoneToUID of {n} known numbers");

        let uids: Vec<String> = created.results.iter().map(|r| r.value.clone()).collect();
        counter.reset();
        let (_, back) = call_mapping(&svc, mapping_request(&refs(&uids), "UIDToPhone")).await;
        assert_eq!(counter.get(), 1, "UIDToPhone of {n} IDs");
        for (r, phone) in back.results.iter().zip(&phones) {
            assert_eq!(r.value, format!("0086{phone}"));
        }
    }
}

#[tokio::test]
async fn new_numbers_cost_one_read_and_one_transaction_per_50() {
    let (store, counter) = support::dynamo_store().await;
    let svc = support::number_mapping(store.clone());
    for (n, expected) in [(1, 2), (10, 2), (50, 2), (51, 3), (100, 3)] {
        let phones = numbers(n, &format!("138{n:03}0"));
        counter.reset();
        let (status, resp) =
            call_mapping(&svc, mapping_request(&refs(&phones), "PhoneToUID")).await;
        assert_eq!(status, 200);
        assert_eq!(resp.results.len(), n);
        assert_eq!(counter.get(), expected, "PhoneToUID of {n} new numbers");
    }
    // A number created meanwhile by someone else: the failed condition returns its ID, so the
    // request costs the read and the one transaction, no re-read.
    let p = cc_shared::phone::PhoneNormalizer::new("CN", &[]).unwrap();
    let key = p.normalize("13600000000").unwrap();
    let first = store.create_uids(std::slice::from_ref(&key)).await.unwrap();
    counter.reset();
    let second = store.create_uids(std::slice::from_ref(&key)).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        counter.get(),
        1,
        "conflict resolved from the cancellation reason"
    );
}

async fn parallel_requests_for_one_new_number(store: Arc<dyn MappingStore>) {
    let svc = Arc::new(support::number_mapping(store));
    let spellings = [
        "13988888888",
        "+8613988888888",
        "008613988888888",
        "139 8888 8888",
    ];
    let mut tasks = Vec::new();
    for i in 0..48 {
        let svc = svc.clone();
        let number = spellings[i % spellings.len()];
        tasks.push(tokio::spawn(async move {
            call_mapping(&svc, mapping_request(&[number], "PhoneToUID")).await
        }));
    }
    let mut ids = HashSet::new();
    for t in tasks {
        let (status, resp) = t.await.unwrap();
        assert_eq!(status, 200, "{:?}", resp.message);
        ids.insert(resp.results[0].value.clone());
    }
    assert_eq!(ids.len(), 1, "one new number got {} IDs", ids.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_for_one_new_number_yield_one_id_dynamodb() {
    let (store, _) = support::dynamo_store().await;
    parallel_requests_for_one_new_number(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_requests_for_one_new_number_yield_one_id_embedded() {
    let (store, _dir) = support::embedded_store();
    parallel_requests_for_one_new_number(store).await;
}
