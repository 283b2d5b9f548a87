//! Every sample event in `events/` goes through its handler and gets the documented answer,
//! so the samples used with `cargo lambda invoke --data-file` and `sam local invoke -e` never
//! go stale. A new event file must be added to `EXPECTED`.

mod support;

use std::collections::BTreeSet;

/// (file, HTTP status, Tencent Code)
const EXPECTED: &[(&str, u16, i32)] = &[
    ("number-mapping-phone-to-uid.json", 200, 0),
    ("number-mapping-uid-to-phone.json", 200, 0),
    ("number-mapping-bad-auth.json", 401, 401),
    ("number-mapping-malformed.json", 400, 400),
];

#[tokio::test]
async fn every_sample_event_gets_its_documented_answer() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("events");
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    let expected: BTreeSet<String> = EXPECTED.iter().map(|(f, _, _)| f.to_string()).collect();
    assert_eq!(files, expected, "events/ and EXPECTED differ");

    let (store, _dir) = support::embedded_store();
    let config = number_mapping::Config {
        credentials: cc_shared::auth::Credentials::dev(),
        phones: cc_shared::phone::PhoneNormalizer::new("CN", &[]).unwrap(),
    };
    let svc = number_mapping::NumberMapping::new(config, store);
    for (file, status, code) in EXPECTED {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        let req = lambda_http::request::from_str(&text)
            .unwrap_or_else(|e| panic!("{file} is not an API Gateway v2 event: {e}"));
        let (got_status, resp) = support::call_mapping(&svc, req).await;
        assert_eq!(got_status, *status, "{file}: {:?}", resp.message);
        assert_eq!(resp.code, *code, "{file}");
        if *code == 0 {
            assert!(!resp.results.is_empty(), "{file}");
        }
    }
}
