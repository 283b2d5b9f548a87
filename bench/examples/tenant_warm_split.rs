//! Compares the CPU of a warm number-mapping request of the default tenant with one of a
//! tenant (platform mode), in one process, against a running DynamoDB Local: the handler
//! alone, PhoneToUID of one known number, alternating rounds of each.
//!
//! ```sh
//! scripts/dynamodb-local start 8000
//! AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_REGION=us-east-1 \
//!   AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
//!   cargo run --release -p cc-bench --example tenant_warm_split [-- --logger > /dev/null]
//! ```

use std::sync::Arc;
use std::time::Duration;

use cc_shared::domain::phone::PhoneNormalizer;
use cc_shared::domain::tenant::{password_digest, Tenant, TenantCredential, TenantId, TenantKeys};
use cc_shared::resources::StoreSet;
use cc_shared::store::dynamo::DynamoStore;
use cc_shared::store::{MappingStore, TenantLookup, TenantRegistry};
use cc_shared::web::auth::{basic_header, entry_for, Credentials};
use cc_shared::web::tenancy::Tenancy;
use lambda_http::Body;
use number_mapping::{handle, Config, NumberMapping};

const PER_ROUND: usize = 200;
const ROUNDS: usize = 10;

/// CPU time of every thread of this process so far (`/proc/self/task/*/schedstat`).
fn cpu() -> Duration {
    let mut ns = 0u64;
    for task in std::fs::read_dir("/proc/self/task").expect("/proc") {
        let path = task.expect("task").path().join("schedstat");
        if let Ok(s) = std::fs::read_to_string(path) {
            ns += s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    Duration::from_nanos(ns)
}

fn seal_for(
    protection: cc_shared::domain::protect::NumberProtection,
    phone: cc_shared::domain::phone::PhoneKey,
) -> cc_shared::store::Sealer {
    Arc::new(move |_, uid| {
        protection
            .seal(uid, &phone)
            .map_err(|e| cc_shared::store::StoreError::Failed(e.to_string()))
    })
}

fn main() {
    // `--logger`: with the JSON logger installed, as in Lambda (its lines go to stdout).
    if std::env::args().any(|a| a == "--logger") {
        cc_shared::logging::init(&["number_mapping"]);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let client = cc_shared::store::dynamo::lambda_client().expect("AWS_REGION");
    let table = format!("tenant-split-{}", std::process::id());
    let store = Arc::new(DynamoStore::new(client, table));
    store.create_table().await.expect("table");
    let phones = PhoneNormalizer::new("CN", &[]).expect("CN");
    let phone = phones.normalize("13900000001").expect("number");
    let stack = cc_shared::domain::protect::NumberProtection::generate().expect("keys");
    store
        .create_uids(
            &[stack.index(&phone)],
            &seal_for(stack.clone(), phone.clone()),
        )
        .await
        .expect("seed");

    let acme = TenantId::parse("acme").expect("id");
    let keys = TenantKeys::generate().expect("tenant keys");
    store
        .add_tenant(&Tenant::new(acme.clone(), String::new(), 0, &keys, &stack).expect("wrap"))
        .await
        .expect("tenant");
    let credential = TenantCredential {
        user: "tencent".into(),
        function: "number-mapping".into(),
        digest: password_digest("tenant-pw"),
        created_at: 0,
    };
    store
        .add_credential(&acme, &credential)
        .await
        .expect("credential");
    let tenant_protection = keys.protection().expect("protection");
    store
        .for_tenant(&acme)
        .create_uids(
            &[tenant_protection.index(&phone)],
            &seal_for(tenant_protection, phone.clone()),
        )
        .await
        .expect("seed tenant");

    let lookup: Arc<dyn TenantLookup> = store.clone();
    let svc = NumberMapping::new(
        Config {
            credentials: Credentials::parse("T", &entry_for("tencent", "pw")).expect("creds"),
            phones,
            store_budget: cc_shared::web::StoreBudget::from_millis(3000),
            unmask_ttl_days: 180,
            unmask_budget: Some(number_mapping::config::MAX_UNMASK_MAX_PER_MINUTE),
        },
        cc_shared::number_keys::LiveKeys::fixed(stack),
        store.clone(),
        store.clone(),
    )
    .serving_tenants(
        Tenancy::new("number-mapping", lookup, Duration::from_secs(3600)),
        StoreSet::Dynamo(store.clone()),
    );
    let request = |auth: &str| {
        http::Request::builder()
            .method("POST")
            .uri("/number-mapping")
            .header("authorization", auth)
            .header("content-type", "application/json")
            .body(Body::Text(
                r#"{"Numbers":["13900000001"],"Mode":"PhoneToUID"}"#.into(),
            ))
            .expect("request")
    };
    let callers = [
        ("default tenant", basic_header("tencent", "pw")),
        ("tenant acme", basic_header("tencent@acme", "tenant-pw")),
    ];
    let mut totals = [Duration::ZERO; 2];
    for round in 0..=ROUNDS {
        for (i, (_, auth)) in callers.iter().enumerate() {
            let start = cpu();
            for _ in 0..PER_ROUND {
                assert_eq!(handle(&svc, request(auth)).await.status(), 200);
            }
            if round > 0 {
                totals[i] += cpu() - start; // round 0 warms up
            }
        }
    }
    for ((name, _), total) in callers.iter().zip(totals) {
        let per = total / (ROUNDS * PER_ROUND) as u32;
        eprintln!("{name}: {} µs of CPU per request", per.as_micros());
    }
}
