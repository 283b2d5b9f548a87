//! What number protection costs per number (`domain::protect`): the blind index (HMAC-SHA256),
//! sealing (AES-256-GCM with a fresh random nonce) and opening, and loading the keys:
//! `cargo run --release -p cc-bench --example number_protection`.

use std::hint::black_box;
use std::time::Instant;

use cc_shared::domain::phone::PhoneKey;
use cc_shared::domain::protect::{KeyringText, NumberProtection};
use cc_shared::domain::uid::Uid;

const ROUNDS: usize = 200_000;

fn per_number(label: &str, started: Instant) {
    let ns = started.elapsed().as_nanos() as f64 / ROUNDS as f64;
    println!("{label:<28} {:>8.3} µs per number", ns / 1000.0);
}

fn main() {
    let t = Instant::now();
    let ring = KeyringText::parse(
        r#"{"current": 2, "1": "bench-encryption-key-version-one-0123456789", "2": "bench-encryption-key-version-two-0123456789"}"#,
    )
    .expect("keyring");
    let keys = NumberProtection::from_texts("bench-index-key-0123456789abcdef0123456789", &ring)
        .expect("keys");
    println!(
        "{:<28} {:>8.3} µs",
        "load keys (2 versions)",
        t.elapsed().as_nanos() as f64 / 1000.0
    );

    let phones: Vec<PhoneKey> = (0..1000)
        .map(|i| PhoneKey::from_stored(format!("+86139{i:08}")))
        .collect();
    let uid = Uid::generate().expect("uid");

    let t = Instant::now();
    for i in 0..ROUNDS {
        black_box(keys.index(&phones[i % phones.len()]));
    }
    per_number("index (HMAC-SHA256)", t);

    let t = Instant::now();
    for i in 0..ROUNDS {
        black_box(keys.seal(&uid, &phones[i % phones.len()]).expect("seal"));
    }
    per_number("seal (AES-256-GCM + nonce)", t);

    let sealed: Vec<_> = phones
        .iter()
        .map(|p| keys.seal(&uid, p).expect("seal"))
        .collect();
    let t = Instant::now();
    for i in 0..ROUNDS {
        black_box(keys.open(&uid, &sealed[i % sealed.len()]).expect("open"));
    }
    per_number("open", t);

    // A warm PhoneToUID of 100 known numbers computes 100 indexes; a UIDToPhone of 100 IDs
    // opens 100 numbers; 100 new numbers cost 100 indexes and 100 seals.
    let t = Instant::now();
    for p in &phones[..100] {
        black_box(keys.index(p));
        black_box(keys.seal(&uid, p).expect("seal"));
    }
    println!(
        "{:<28} {:>8.3} µs",
        "100 new numbers (cold cache)",
        t.elapsed().as_nanos() as f64 / 1000.0
    );
}
