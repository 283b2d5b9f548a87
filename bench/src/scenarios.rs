//! The measured scenarios: each function's configuration, its events and the check of each
//! answer, and the budget it is held to.

use bytes::Bytes;

use crate::seeding::Seed;

/// The functions' names, from the one list (`cc_callbacks::functions`).
pub(crate) fn functions() -> impl Iterator<Item = &'static str> {
    cc_callbacks::functions::FUNCTIONS.iter().map(|f| f.name)
}
pub(crate) const PEPPER: &str = "bench-pepper-of-at-least-32-bytes-long";
/// The number keys of the benchmark (`NUMBER_INDEX_KEY`, `NUMBER_KEYRING`).
pub(crate) const INDEX_KEY: &str = "bench-number-index-key-0123456789abcdef";
pub(crate) const KEYRING: &str =
    r#"{"current":1,"1":"bench-number-encryption-key-v1-0123456789abcdef"}"#;

/// The keys as the functions read them from those variables.
pub(crate) fn keys() -> Result<cc_shared::domain::protect::NumberProtection, String> {
    let ring =
        cc_shared::domain::protect::KeyringText::parse(KEYRING).map_err(|e| e.to_string())?;
    cc_shared::domain::protect::NumberProtection::from_texts(INDEX_KEY, &ring)
        .map_err(|e| e.to_string())
}
pub(crate) const DEV_ENTRY: &str =
    "dev:sha256:ef260e9aa3c673af240d17a2660480361a8e081d1ffeca2a5ed0e3219fc18567";

/// Platform mode's tenant of the benchmark, and its caller (for number mapping and identity
/// verification).
pub(crate) const TENANT: &str = "bench";
pub(crate) const TENANT_USER: &str = "tencent";
pub(crate) const TENANT_PASSWORD: &str = "bench-tenant-password-0123456789";

/// An API Gateway HTTP API (v2) event, from the default tenant's `dev` caller.
pub(crate) fn http_event(path: &str, body: &str) -> Bytes {
    http_event_as(path, body, "Basic ZGV2OmRldg==")
}

/// An API Gateway HTTP API (v2) event with this `Authorization` header.
pub(crate) fn http_event_as(path: &str, body: &str, authorization: &str) -> Bytes {
    let event = serde_json::json!({
        "version": "2.0", "routeKey": format!("POST {path}"), "rawPath": path,
        "rawQueryString": "",
        "headers": {"authorization": authorization, "content-type": "application/json"},
        "requestContext": {"accountId": "123456789012", "apiId": "bench", "domainName": "bench",
            "domainPrefix": "bench", "http": {"method": "POST", "path": path,
            "protocol": "HTTP/1.1", "sourceIp": "127.0.0.1", "userAgent": "cc-bench"},
            "requestId": "bench", "routeKey": format!("POST {path}"), "stage": "$default",
            "time": "21/Nov/2026:00:00:00 +0000", "timeEpoch": 0},
        "body": body, "isBase64Encoded": false
    });
    Bytes::from(event.to_string())
}

/// Checks a function's answer (its JSON output).
pub(crate) type Check = Box<dyn Fn(&serde_json::Value) -> Result<(), String>>;

/// One measured scenario.
pub(crate) struct Scenario {
    pub(crate) function: &'static str,
    pub(crate) name: String,
    pub(crate) env: Vec<(String, String)>,
    /// The event of invocation `i`.
    pub(crate) event: Box<dyn Fn(usize) -> Bytes>,
    /// Checks an answer (the function's JSON output).
    pub(crate) check: Check,
    /// Round trips per warm invocation the budget allows, if it sets one.
    pub(crate) rt_budget: Option<f64>,
    /// The raw BatchGetItem floor to compare warm latency with.
    pub(crate) floor: Option<FloorSpec>,
    /// Whether this scenario's configuration stands for its function in the cold-start series.
    pub(crate) cold_starts: bool,
}

/// The keys (partition keys, sort key `MAP`) and attribute of a scenario's floor read, and
/// how many items the scenario writes at the same time (UIDToPhone's unmasking records, with
/// the caller's budget counter updated by as many).
pub(crate) struct FloorSpec {
    pub(crate) pks: Vec<String>,
    pub(crate) attr: &'static str,
    pub(crate) writes: usize,
}

pub(crate) fn http_ok(v: &serde_json::Value) -> Result<serde_json::Value, String> {
    let status = v["statusCode"].as_u64().unwrap_or(0);
    let body: serde_json::Value = serde_json::from_str(v["body"].as_str().unwrap_or("null"))
        .map_err(|_| format!("not an HTTP answer: {v}"))?;
    if status != 200 {
        return Err(format!("HTTP {status}: {body}"));
    }
    Ok(body)
}

/// The environment every function gets, and every scenario.
pub(crate) fn all(seed: &Seed) -> (Vec<(String, String)>, Vec<Scenario>) {
    let Seed {
        proxy,
        table,
        numbers,
        uid_list,
        phone_pks,
        tenant_phone_pks,
        cec,
        idp,
        keys_pair,
        ..
    } = seed;
    let base_env: Vec<(String, String)> = [
        ("TABLE_NAME", table.as_str()),
        ("AWS_ENDPOINT_URL_DYNAMODB", proxy.url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "local"),
        ("AWS_SECRET_ACCESS_KEY", "local"),
        ("LOG_LEVEL", "info"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mapping_ok = |v: &serde_json::Value| -> Result<(), String> {
        let body = http_ok(v)?;
        match body["Code"].as_i64() {
            Some(0)
                if body["Results"].as_array().is_some_and(|r| {
                    r.iter()
                        .all(|x| x["Value"].as_str().is_some_and(|s| !s.is_empty()))
                }) =>
            {
                Ok(())
            }
            _ => Err(format!("unexpected answer {body}")),
        }
    };

    let mut scenarios: Vec<Scenario> = Vec::new();
    for (n, prime) in [(1, true), (10, true), (100, true), (10, false)] {
        let body = serde_json::json!({"Numbers": &numbers[..n], "Mode": "PhoneToUID"}).to_string();
        scenarios.push(Scenario {
            function: "number-mapping",
            name: format!(
                "PhoneToUID, {n} known{}",
                if prime { "" } else { " (no priming at init)" }
            ),
            env: env(&[
                ("NUMBER_MAPPING_CREDENTIALS", DEV_ENTRY),
                ("NUMBER_INDEX_KEY", INDEX_KEY),
                ("NUMBER_KEYRING", KEYRING),
                ("DYNAMODB_PRIME", if prime { "true" } else { "false" }),
            ]),
            event: Box::new(move |_| http_event("/number-mapping", &body)),
            check: Box::new(mapping_ok),
            rt_budget: Some(1.0),
            floor: Some(FloorSpec {
                pks: phone_pks[..n].to_vec(),
                attr: "uid",
                writes: 0,
            }),
            cold_starts: n == 1,
        });
    }
    // Platform mode: the same read for a tenant's caller (its registry entry read and its keys
    // unwrapped on the first invocation, then cached).
    for n in [1, 10] {
        let body = serde_json::json!({"Numbers": &numbers[..n], "Mode": "PhoneToUID"}).to_string();
        let auth =
            cc_shared::web::auth::basic_header(&format!("{TENANT_USER}@{TENANT}"), TENANT_PASSWORD);
        scenarios.push(Scenario {
            function: "number-mapping",
            name: format!("tenant PhoneToUID, {n} known"),
            env: env(&[
                ("NUMBER_MAPPING_CREDENTIALS", DEV_ENTRY),
                ("NUMBER_INDEX_KEY", INDEX_KEY),
                ("NUMBER_KEYRING", KEYRING),
            ]),
            event: Box::new(move |_| http_event_as("/number-mapping", &body, &auth)),
            check: Box::new(mapping_ok),
            rt_budget: Some(1.0),
            floor: Some(FloorSpec {
                pks: tenant_phone_pks[..n].to_vec(),
                attr: "uid",
                writes: 0,
            }),
            cold_starts: false,
        });
    }
    scenarios.push(Scenario {
        function: "number-mapping",
        name: "PhoneToUID, 10 new".into(),
        env: env(&[
            ("NUMBER_MAPPING_CREDENTIALS", DEV_ENTRY),
            ("NUMBER_INDEX_KEY", INDEX_KEY),
            ("NUMBER_KEYRING", KEYRING),
        ]),
        event: Box::new(|i| {
            let fresh: Vec<String> = (0..10)
                .map(|j| format!("1{:010}", 5_000_000_000u64 + (i * 10 + j) as u64))
                .collect();
            http_event(
                "/number-mapping",
                &serde_json::json!({"Numbers": fresh, "Mode": "PhoneToUID"}).to_string(),
            )
        }),
        check: Box::new(mapping_ok),
        rt_budget: Some(1.0 + (10f64 / 50.0).ceil()),
        floor: None,
        cold_starts: false,
    });
    {
        let body =
            serde_json::json!({"Numbers": &uid_list[..10], "Mode": "UIDToPhone"}).to_string();
        scenarios.push(Scenario {
            function: "number-mapping",
            name: "UIDToPhone, 10 IDs".into(),
            env: env(&[
                ("NUMBER_MAPPING_CREDENTIALS", DEV_ENTRY),
                ("NUMBER_INDEX_KEY", INDEX_KEY),
                ("NUMBER_KEYRING", KEYRING),
                // The budget counted as in production, set above what the run asks.
                ("UNMASK_MAX_PER_MINUTE", "1000000"),
            ]),
            event: Box::new(move |_| http_event("/number-mapping", &body)),
            check: Box::new(mapping_ok),
            // At once: the read, the unmasking records of the 10 IDs (one BatchWriteItem)
            // and the caller's budget (one conditional UpdateItem).
            rt_budget: Some(3.0),
            floor: Some(FloorSpec {
                pks: uid_list[..10].iter().map(|u| format!("UID#{u}")).collect(),
                attr: "number",
                writes: 10,
            }),
            cold_starts: false,
        });
    }
    // The right PIN, for the default tenant's caller and (platform mode: its registry entry
    // read and its lookup keys unwrapped on the first invocation, then cached) a tenant's.
    let tenant_auth =
        cc_shared::web::auth::basic_header(&format!("{TENANT_USER}@{TENANT}"), TENANT_PASSWORD);
    for (name, auth) in [
        ("verify, right PIN", None),
        ("tenant verify, right PIN", Some(tenant_auth.clone())),
    ] {
        let body = serde_json::json!({"calldata": {"verifyServiceNo": numbers[0], "verifyWorkNo": "1002", "verifyCode": "2468"}}).to_string();
        scenarios.push(Scenario {
            function: "identity-verification",
            name: name.into(),
            env: env(&[
                ("IDENTITY_VERIFY_CREDENTIALS", DEV_ENTRY),
                ("IDENTITY_PIN_PEPPER", PEPPER),
                ("NUMBER_INDEX_KEY", INDEX_KEY),
            ]),
            cold_starts: auth.is_none(),
            event: Box::new(move |_| match &auth {
                None => http_event("/identity/verify", &body),
                Some(auth) => http_event_as("/identity/verify", &body, auth),
            }),
            check: Box::new(|v| {
                let body = http_ok(v)?;
                (body["calldata"]["data"]["verifyResult"] == 1)
                    .then_some(())
                    .ok_or(format!("{body}"))
            }),
            rt_budget: None,
            floor: None,
        });
    }
    // A mode other than the PIN (IDENTITY_MODES): the ID number's last six, X typed as `*`.
    {
        let body = serde_json::json!({"calldata": {"verifyServiceNo": numbers[0], "verifyWorkNo": "1002", "verifyCode": "31002*", "verifyTypeCode": "IDCARD"}}).to_string();
        scenarios.push(Scenario {
            function: "identity-verification",
            name: "verify, right ID digits (mode id_last6)".into(),
            env: env(&[
                ("IDENTITY_VERIFY_CREDENTIALS", DEV_ENTRY),
                ("IDENTITY_PIN_PEPPER", PEPPER),
                ("NUMBER_INDEX_KEY", INDEX_KEY),
                ("IDENTITY_MODES", "PIN=pin,IDCARD=id_last6"),
            ]),
            cold_starts: false,
            event: Box::new(move |_| http_event("/identity/verify", &body)),
            check: Box::new(|v| {
                let body = http_ok(v)?;
                (body["calldata"]["data"]["verifyResult"] == 1)
                    .then_some(())
                    .ok_or(format!("{body}"))
            }),
            rt_budget: Some(3.0),
            floor: None,
        });
    }
    // JWT mode for the default tenant's caller and (platform mode: the tenant's own AICCS app
    // built from its settings on the first invocation, then cached) a tenant's.
    for (name, auth) in [
        ("JWT mode (first upstream, then cached)", None),
        (
            "tenant JWT mode (first upstream, then cached)",
            Some(tenant_auth.clone()),
        ),
    ] {
        let body = serde_json::json!({"mode": "jwt", "accountName": "agent007"}).to_string();
        scenarios.push(Scenario {
            function: "token-exchange",
            name: name.into(),
            env: env(&[
                ("TOKEN_EXCHANGE_CREDENTIALS", DEV_ENTRY),
                ("FUYUN_TOKEN_URL", idp.url.as_str()),
                ("FUYUN_CLIENT_ID", testkit::fake_idp::CLIENT_ID),
                ("FUYUN_CLIENT_SECRET", testkit::fake_idp::CLIENT_SECRET),
                ("FUYUN_SCOPE", testkit::fake_idp::SCOPE),
                ("FUYUN_REDIRECT_URL", testkit::fake_idp::REDIRECT_URL),
                ("FUYUN_ISSUER", testkit::fake_idp::ISSUER),
                ("FUYUN_PRIVATE_KEY", keys_pair.private_base64.as_str()),
                ("NUMBER_INDEX_KEY", INDEX_KEY),
            ]),
            cold_starts: auth.is_none(),
            event: Box::new(move |_| match &auth {
                None => http_event("/token-exchange", &body),
                Some(auth) => http_event_as("/token-exchange", &body, auth),
            }),
            check: Box::new(|v| {
                let body = http_ok(v)?;
                body["access_token"]
                    .is_string()
                    .then_some(())
                    .ok_or(format!("{body}"))
            }),
            rt_budget: None,
            floor: None,
        });
    }
    let cec_env = env(&[
        ("AGENT_DIRECTORY_CREDENTIALS", DEV_ENTRY),
        ("CEC_BASE_URL", cec.base_url.as_str()),
        ("CEC_AGENT_INFO_PATH", testkit::fake_cec::AGENTS_PATH),
        ("CEC_APP_KEY", testkit::fake_cec::APP_KEY),
        ("CEC_APP_SECRET", testkit::fake_cec::APP_SECRET),
        ("NUMBER_INDEX_KEY", INDEX_KEY),
    ]);
    // The softphone for the default tenant's caller and a tenant's (its own directory and
    // CEC, the client built from its settings on the first invocation).
    for (name, auth) in [
        ("softphone details (live from the CEC)", None),
        (
            "tenant softphone details (its own CEC)",
            Some(tenant_auth.clone()),
        ),
    ] {
        scenarios.push(Scenario {
            function: "agent-sync",
            name: name.into(),
            env: [cec_env.clone(), env(&[("AGENT_SYNC_ROLE", "softphone")])].concat(),
            cold_starts: auth.is_none(),
            event: Box::new(move |_| {
                let body = r#"{"account":"alice"}"#;
                match &auth {
                    None => http_event("/agents/softphone", body),
                    Some(auth) => http_event_as("/agents/softphone", body, auth),
                }
            }),
            check: Box::new(|v| {
                let body = http_ok(v)?;
                (body["workNo"] == "1002")
                    .then_some(())
                    .ok_or(format!("{body}"))
            }),
            rt_budget: None,
            floor: None,
        });
    }
    scenarios.push(Scenario {
        function: "agent-sync",
        name: "scheduled sync, nothing changed (default tenant and one tenant)".into(),
        env: [cec_env, env(&[("AGENT_SYNC_ROLE", "schedule")])].concat(),
        event: Box::new(|_| {
            Bytes::from_static(
                br#"{"detail-type":"Scheduled Event","source":"aws.scheduler","detail":{}}"#,
            )
        }),
        check: Box::new(|v| {
            (v["default"]["unchanged"] == 3
                && v["default"]["added"] == 0
                && v["tenants_synced"] == 1)
                .then_some(())
                .ok_or(format!("{v}"))
        }),
        rt_budget: None,
        floor: None,
        cold_starts: true,
    });

    (base_env, scenarios)
}
