//! The number-mapping handler end to end on both backends: round trips, concurrency, logs.

use crate::support;

use std::collections::HashSet;
use std::sync::Arc;

use cc_shared::store::MappingStore;
use support::{call_mapping, mapping_request, numbers, refs};

#[tokio::test]
async fn known_numbers_cost_one_batch_get_and_uids_their_records() {
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
        // At once: the read, the unmasking records (one BatchWriteItem per 25 IDs) and the
        // caller's budget (one conditional UpdateItem).
        assert_eq!(
            counter.get(),
            1 + n.div_ceil(25) as u64 + 1,
            "UIDToPhone of {n} IDs"
        );
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
    let (keys, seal) = support::sealer(&["13600000000"]);
    let key = keys[0].clone();
    let first = store.create_uids(&keys, &seal).await.unwrap();
    counter.reset();
    let second = store.create_uids(&keys, &seal).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        counter.get(),
        1,
        "conflict resolved from the cancellation reason"
    );
    // That number in a batch of 50 new ones: the transaction is cancelled for its sake only;
    // its ID comes back with the cancellation and the 49 others go in one more transaction.
    let mut batch = numbers(49, "1370");
    batch.push("13600000000".into());
    let (batch, seal) = support::sealer(&refs(&batch));
    counter.reset();
    let created = store.create_uids(&batch, &seal).await.unwrap();
    assert_eq!(
        counter.get(),
        2,
        "one cancelled transaction, one that lands"
    );
    assert_eq!(created.len(), 50);
    assert_eq!(created[&key], first[&key]);
}

async fn parallel_requests_for_one_new_number(store: Arc<dyn support::Store>) {
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

/// 20 concurrent PhoneToUID batches of 100, drawn from 300 new numbers so that they overlap
/// heavily: every batch is answered 200, every number has exactly one ID (both directions
/// agree, no orphan item).
const POOL: usize = 300;
const BATCHES: usize = 20;
async fn overlapping_batches_of_new_numbers(
    store: Arc<dyn support::Store>,
    prefix: &str,
) -> Vec<String> {
    let svc = Arc::new(support::number_mapping(store.clone()));
    let pool = numbers(POOL, prefix);
    let mut tasks = Vec::new();
    for b in 0..BATCHES {
        let batch: Vec<String> = (0..100)
            .map(|i| pool[(b * 37 + i * 7) % POOL].clone())
            .collect();
        let svc = svc.clone();
        tasks.push(tokio::spawn(async move {
            let (status, resp) =
                call_mapping(&svc, mapping_request(&refs(&batch), "PhoneToUID")).await;
            (batch, status, resp)
        }));
    }
    let mut id_of: std::collections::HashMap<String, String> = Default::default();
    for t in tasks {
        let (batch, status, resp) = t.await.unwrap();
        assert_eq!(status, 200, "{:?}", resp.message);
        for (number, result) in batch.iter().zip(&resp.results) {
            let previous = id_of.insert(number.clone(), result.value.clone());
            assert!(
                previous.is_none_or(|p| p == result.value),
                "a number was answered with two IDs"
            );
        }
    }
    let ids: HashSet<&String> = id_of.values().collect();
    assert_eq!(ids.len(), id_of.len(), "an ID was given to two numbers");
    id_of.into_values().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_of_new_numbers_all_succeed_dynamodb() {
    let (store, _) = support::dynamo_store().await;
    // Three rounds, each on 300 numbers of its own: contention is worst while DynamoDB Local
    // is still cold, so more than one round makes a regression show every time.
    let mut ids = Vec::new();
    for prefix in ["1391", "1392", "1393"] {
        ids.extend(overlapping_batches_of_new_numbers(store.clone(), prefix).await);
    }
    // Both directions agree and nothing else was written: one NUM# and one UID# item per
    // number.
    let dump = support::dump_dynamo(&store).await;
    assert_eq!(dump.matches("\"NUM#").count(), 3 * POOL);
    assert_eq!(dump.matches("\"UID#").count(), 3 * POOL);
    for id in &ids {
        assert!(
            dump.contains(&format!("UID#{id}")),
            "orphan or missing UID item"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_of_new_numbers_all_succeed_embedded() {
    let (store, _dir) = support::embedded_store();
    overlapping_batches_of_new_numbers(store, "1391").await;
}

/// An empty or blank UIDToPhone entry is no ID: an empty `Value` like any other non-ID, the
/// rest of the batch answered.
#[tokio::test]
async fn blank_uid_entries_get_an_empty_value() {
    let (store, _dir) = support::embedded_store();
    let svc = support::number_mapping(store);
    let (_, created) = call_mapping(&svc, mapping_request(&["13988888888"], "PhoneToUID")).await;
    let uid = created.results[0].value.clone();
    let (status, resp) = call_mapping(
        &svc,
        mapping_request(&["", uid.as_str(), "   ", "\u{3000}"], "UIDToPhone"),
    )
    .await;
    assert_eq!(status, 200, "{:?}", resp.message);
    let values: Vec<&str> = resp.results.iter().map(|r| r.value.as_str()).collect();
    assert_eq!(values, ["", "008613988888888", "", ""]);
}
