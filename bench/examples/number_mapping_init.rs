//! Where number mapping's init time goes, step by step, against a running DynamoDB Local:
//!
//! ```sh
//! scripts/dynamodb-local start 8000
//! AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:8000 AWS_REGION=us-east-1 \
//!   AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local \
//!   cargo run --release -p cc-bench --example number_mapping_init
//! ```

use std::time::Instant;

use cc_shared::store::dynamo::DynamoStore;

fn main() {
    let start = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let step = |label: &str, t: Instant| {
        println!("{label:32} {:>7.2} ms", t.elapsed().as_secs_f64() * 1e3)
    };
    step("runtime", start);
    rt.block_on(async {
        let t = Instant::now();
        let _phones = cc_shared::config::phone_normalizer().expect("phones");
        step("phone metadata (load + prime)", t);
        let t = Instant::now();
        let sdk = cc_shared::aws::lambda_sdk_config().expect("AWS_REGION");
        step("SDK configuration", t);
        let t = Instant::now();
        let client = cc_shared::store::dynamo::client(&sdk);
        step("DynamoDB client", t);
        let store = DynamoStore::new(client, "init-timing-absent-table");
        let t = Instant::now();
        store.prime("PHONE#").await;
        step("prime (first request)", t);
        let t = Instant::now();
        store.prime("PHONE#").await;
        step("second request", t);
    });
    step("total", start);
}
