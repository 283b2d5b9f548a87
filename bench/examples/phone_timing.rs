//! How long the phone metadata takes to load and the first and later parses take:
//! `cargo run --release -p cc-bench --example phone_timing`.

use std::time::Instant;

fn main() {
    let t = Instant::now();
    let p = cc_shared::domain::phone::PhoneNormalizer::new("CN", &[]).expect("CN");
    println!("load + prime: {:?}", t.elapsed());
    for (label, n) in [
        ("first", "13900000000"),
        ("second", "13900000001"),
        ("+86", "+8613900000002"),
    ] {
        let t = Instant::now();
        let k = p.normalize(n).expect("number");
        println!("{label}: {:?} -> {}", t.elapsed(), k.masked());
    }
    let t = Instant::now();
    for i in 0..1000 {
        let _ = p.normalize(&format!("139{i:08}"));
    }
    println!("1000 warm parses: {:?}", t.elapsed());
}
