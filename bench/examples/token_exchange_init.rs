//! Where token-exchange's init time goes:
//! `FUYUN_PRIVATE_KEY="$(cat key.pem)" cargo run --release -p cc-bench --example token_exchange_init`.

use std::time::{Duration, Instant};

fn main() {
    let pem = std::env::var("FUYUN_PRIVATE_KEY").expect("FUYUN_PRIVATE_KEY");
    let t = Instant::now();
    let key = token_exchange::jwt::parse_private_key(&pem).expect("key");
    println!("parse PEM: {:?}", t.elapsed());
    let t = Instant::now();
    let signer = token_exchange::jwt::Signer::new(key, "iss".into(), 300, false).expect("signer");
    println!("Signer::new (one signature): {:?}", t.elapsed());
    let t = Instant::now();
    signer.sign("agent", 0).expect("sign");
    println!("one more signature: {:?}", t.elapsed());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let t = Instant::now();
        let _client = cc_shared::upstream::UpstreamClient::new(
            "U",
            "x",
            Duration::from_secs(1),
            Duration::from_secs(1),
            1024,
        )
        .expect("client");
        println!("upstream client (native roots): {:?}", t.elapsed());
        let t = Instant::now();
        let sdk = cc_shared::aws::lambda_sdk_config().expect("AWS_REGION");
        println!("SDK configuration: {:?}", t.elapsed());
        let t = Instant::now();
        let _c = cc_shared::store::dynamo::client(&sdk);
        println!("DynamoDB client: {:?}", t.elapsed());
    });
}
