//! Splits number mapping's warm latency for one known number, in one process, against a
//! running DynamoDB Local: a raw BatchGetItem from a hand-built client (the benchmark's
//! floor), the same from the client the function builds (`sdk_config`), the store's
//! `uids_of`, and the whole handler, with and without the JSON logger.
//!
//! ```sh
//! scripts/dynamodb-local start 8000
//! AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_REGION=us-east-1 \
//!   AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
//!   cargo run --release -p cc-bench --example number_mapping_warm_split > /dev/null
//! ```
//! Results go to stderr (stdout takes the logger's lines).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use cc_shared::domain::phone::PhoneNormalizer;
use cc_shared::store::dynamo::DynamoStore;
use cc_shared::store::MappingStore;
use cc_shared::web::auth::{basic_header, entry_for, Credentials};
use lambda_http::Body;
use number_mapping::{handle, Config, NumberMapping};

const PER_ROUND: usize = 100;

async fn time<F, Fut>(samples: &mut Vec<Duration>, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    for _ in 0..PER_ROUND {
        let t = Instant::now();
        f().await;
        samples.push(t.elapsed());
    }
}

fn p50(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let multi = args.iter().any(|a| a == "--multi-thread");
    // `--rounds N` (default 20): comparing two counts under `perf stat -e instructions:u`
    // gives the instructions of one round, start-up excluded.
    let rounds = args
        .iter()
        .position(|a| a == "--rounds")
        .and_then(|i| args.get(i + 1))
        .map_or(20, |n| n.parse().expect("--rounds takes a number"));
    let rt = if multi {
        tokio::runtime::Builder::new_multi_thread()
    } else {
        tokio::runtime::Builder::new_current_thread()
    }
    .enable_all()
    .build()
    .expect("runtime");
    rt.block_on(run(multi, rounds));
}

async fn run(multi: bool, rounds: usize) {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").expect("AWS_ENDPOINT_URL_DYNAMODB");
    let manual = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::Config::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .http_client(cc_shared::aws::sdk_http_client())
            .endpoint_url(&endpoint)
            .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
                "local", "local", None, None, "split",
            ))
            .build(),
    );
    let from_env = cc_shared::store::dynamo::lambda_client().expect("AWS_REGION");
    let table = format!("warm-split-{}", std::process::id());
    let store = Arc::new(DynamoStore::new(from_env.clone(), table.clone()));
    store.create_table().await.expect("table");
    let phones = PhoneNormalizer::new("CN", &[]).expect("CN");
    let phone = phones.normalize("13900000001").expect("number");
    let protection = cc_shared::domain::protect::NumberProtection::generate().expect("keys");
    let key = protection.index(&phone);
    let sealing = protection.clone();
    let seal: cc_shared::store::Sealer = Arc::new(move |_, uid| {
        sealing
            .seal(uid, &phone)
            .map_err(|e| cc_shared::store::StoreError::Failed(e.to_string()))
    });
    store
        .create_uids(std::slice::from_ref(&key), &seal)
        .await
        .expect("seed");

    let request_items = KeysAndAttributes::builder()
        .keys(HashMap::from([
            (
                "pk".to_string(),
                AttributeValue::S(format!("NUM#{}", key.as_str())),
            ),
            ("sk".to_string(), AttributeValue::S("MAP".into())),
        ]))
        .consistent_read(true)
        .projection_expression("#pk, #v")
        .expression_attribute_names("#pk", "pk")
        .expression_attribute_names("#v", "uid")
        .build()
        .expect("keys");
    let svc = NumberMapping::new(
        Config {
            credentials: Credentials::parse("T", &entry_for("tencent", "pw")).expect("creds"),
            phones,
            store_budget: cc_shared::web::StoreBudget::from_millis(3000),
            unmask_ttl_days: 180,
            unmask_budget: Some(number_mapping::config::MAX_UNMASK_MAX_PER_MINUTE),
        },
        cc_shared::number_keys::LiveKeys::fixed(protection),
        store.clone(),
        store.clone(),
    );
    let auth = basic_header("tencent", "pw");
    let request = || {
        http::Request::builder()
            .method("POST")
            .uri("/number-mapping")
            .header("authorization", auth.clone())
            .header("content-type", "application/json")
            .body(Body::Text(
                r#"{"Numbers":["13900000001"],"Mode":"PhoneToUID"}"#.into(),
            ))
            .expect("request")
    };

    let names = [
        "raw, hand-built client",
        "raw, sdk_config client",
        "store uids_of",
        "handler",
        "handler + logger",
    ];
    let mut samples: Vec<Vec<Duration>> = vec![Vec::new(); names.len()];
    for round in 0..=rounds {
        if round == rounds / 2 {
            // From here on the logger is installed; only the last column measures it.
            cc_shared::logging::init(&["number_mapping"]);
        }
        for (i, s) in samples.iter_mut().enumerate() {
            let logged = i == 4;
            if logged != (round > rounds / 2) && i >= 3 {
                continue;
            }
            match i {
                0 | 1 => {
                    let c = if i == 0 { &manual } else { &from_env };
                    time(s, || async {
                        let out = c
                            .batch_get_item()
                            .request_items(&table, request_items.clone())
                            .send()
                            .await
                            .expect("batch get");
                        assert_eq!(out.responses.map(|r| r[&table].len()), Some(1));
                    })
                    .await
                }
                2 => {
                    time(s, || async {
                        assert_eq!(
                            store
                                .uids_of(std::slice::from_ref(&key))
                                .await
                                .expect("uids")
                                .len(),
                            1
                        );
                    })
                    .await
                }
                _ => {
                    time(s, || async {
                        assert_eq!(handle(&svc, request()).await.status(), 200);
                    })
                    .await
                }
            }
        }
        if round == 0 {
            samples.iter_mut().for_each(Vec::clear); // warm-up round
        }
    }
    eprintln!(
        "runtime: {}",
        if multi {
            "multi-thread"
        } else {
            "current-thread"
        }
    );
    for (name, s) in names.iter().zip(samples) {
        let n = s.len();
        eprintln!(
            "{name:28} p50 {:>8.1} µs  (n={n})",
            p50(s).as_secs_f64() * 1e6
        );
    }
    let _ = from_env.delete_table().table_name(&table).send().await;
}
