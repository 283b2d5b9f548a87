//! What the EMF metrics cost (`cc_shared::metrics`): installing the collector (once, at
//! init) and one number-mapping request's worth of counting and flushing (a request count and
//! latency, three counters, one flush of a JSON document):
//! `cargo run --release -p cc-bench --example emf_metrics`.

use std::hint::black_box;
use std::time::Instant;

use cc_shared::metrics::{self, name, Class};

const ROUNDS: usize = 100_000;

fn main() {
    let t = Instant::now();
    metrics::install("number-mapping").expect("install");
    println!(
        "{:<40} {:>8.1} µs",
        "install (recorder, 34 units, ColdStart)",
        t.elapsed().as_nanos() as f64 / 1000.0
    );

    let mut sink = Vec::with_capacity(4096);
    let mut bytes = 0;
    let t = Instant::now();
    for i in 0..ROUNDS {
        metrics::request(Class::Ok, 1.5 + (i % 7) as f64);
        metrics::count(name::NUMBERS_LOOKED_UP, 2);
        metrics::count(name::IDS_CREATED, 1);
        metrics::count(name::UNKNOWN_IDS, (i % 2) as u64);
        sink.clear();
        metrics::flush_into(&mut sink);
        bytes += black_box(sink.len());
    }
    let ns = t.elapsed().as_nanos() as f64 / ROUNDS as f64;
    println!(
        "{:<40} {:>8.3} µs ({} bytes of EMF per request)",
        "count + latency + 3 counters + flush",
        ns / 1000.0,
        bytes / ROUNDS
    );
    println!("{}", String::from_utf8_lossy(&sink).trim());
}
