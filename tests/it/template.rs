//! `template.yaml` and the code agree: the table's key schema and TTL attribute (what
//! `DynamoStore::create_table` builds for DynamoDB Local) and the routes the gateway serves.

use cc_shared::store::dynamo::{PK, SK, TTL_ATTRIBUTE};

fn template() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/template.yaml")).unwrap()
}

/// The lines of the top-level resource `name`.
fn resource(template: &str, name: &str) -> String {
    let start = template
        .find(&format!("\n  {name}:\n"))
        .unwrap_or_else(|| panic!("no resource {name}"));
    template[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| l.is_empty() || l.starts_with("   "))
        .collect::<Vec<_>>()
        .join("\n")
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn table_key_schema_and_ttl_match_the_code() {
    let table = squash(&resource(&template(), "Table"));
    for expected in [
        format!("- AttributeName: {PK} AttributeType: S"),
        format!("- AttributeName: {SK} AttributeType: S"),
        format!("- AttributeName: {PK} KeyType: HASH - AttributeName: {SK} KeyType: RANGE"),
        format!("TimeToLiveSpecification: AttributeName: {TTL_ATTRIBUTE} Enabled: true"),
        "BillingMode: PAY_PER_REQUEST".to_string(),
        format!(
            "- IndexName: {} KeySchema: - AttributeName: gsi1pk KeyType: HASH - AttributeName: gsi1sk KeyType: RANGE Projection: ProjectionType: ALL",
            cc_shared::store::dynamo::GSI_BY_AGENT
        ),
        format!(
            "- IndexName: {} KeySchema: - AttributeName: gsi2pk KeyType: HASH - AttributeName: gsi2sk KeyType: RANGE Projection: ProjectionType: ALL",
            cc_shared::store::dynamo::GSI_BY_TIME
        ),
        "PointInTimeRecoveryEnabled: true".to_string(),
        "SSEEnabled: true".to_string(),
    ] {
        assert!(
            table.contains(&expected),
            "Table lacks `{expected}`:\n{table}"
        );
    }
}

#[test]
fn no_plaintext_secret_in_the_template() {
    let t = template();
    assert!(!t.contains("BEGIN PRIVATE KEY"));
    // A credentials entry would be `sha256:` followed by 64 hex digits.
    for (i, _) in t.match_indices("sha256:") {
        let after = &t[i + 7..];
        let hex = after.bytes().take_while(u8::is_ascii_hexdigit).count();
        assert!(hex < 64, "template.yaml contains a credentials entry");
    }
    let creds = resource(&t, "NumberMappingCredentials");
    assert!(creds.contains("NoEcho: true"), "{creds}");
    assert!(
        !creds.contains("Default:"),
        "credentials must be given at deploy time"
    );
}

/// The number keys are generated secrets; number mapping may read both, identity verification
/// only the index key (it never reads a stored number); each function's IAM key prefixes are
/// the ones its code uses (`NUM#`, `UID#`, `NPIN#`), no longer the plaintext ones.
#[test]
fn number_keys_are_generated_and_given_only_where_needed() {
    let t = template();
    for secret in ["NumberIndexKeySecret", "NumberKeyringSecret"] {
        let r = squash(&resource(&t, secret));
        assert!(r.contains("GenerateSecretString:"), "{secret}: {r}");
        assert!(r.contains("PasswordLength: 64"), "{secret}: {r}");
    }
    let keyring = squash(&resource(&t, "NumberKeyringSecret"));
    assert!(
        keyring.contains(r#"SecretStringTemplate: '{"current": 1}' GenerateStringKey: "1""#),
        "{keyring}"
    );
    // The first version CloudFormation generates is a keyring the code reads.
    let generated = r#"{"current": 1, "1": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab"}"#;
    let text = cc_shared::domain::protect::KeyringText::parse(generated).unwrap();
    assert_eq!(text.current, 1);

    let mapping = squash(&resource(&t, "NumberMappingFunction"));
    for expected in [
        "NUMBER_INDEX_KEY_SECRET_ARN: !Ref NumberIndexKeySecret",
        "NUMBER_KEYRING_SECRET_ARN: !Ref NumberKeyringSecret",
        r#"- "NUM#*" - "UID#*""#,
        "Resource: - !Ref NumberIndexKeySecret - !Ref NumberKeyringSecret",
    ] {
        assert!(
            mapping.contains(expected),
            "number mapping lacks {expected}"
        );
    }
    let identity = squash(&resource(&t, "IdentityVerificationFunction"));
    assert!(identity.contains("NUMBER_INDEX_KEY_SECRET_ARN: !Ref NumberIndexKeySecret"));
    assert!(
        !identity.contains("NumberKeyringSecret"),
        "identity verification must not be able to read the encryption keys"
    );
    assert!(
        identity.contains(r#"- "NPIN#*" - "NUM#*" - "AGENTS""#),
        "{identity}"
    );
    for plaintext_prefix in ["\"PHONE#*\"", "\"PIN#*\""] {
        assert!(
            !t.contains(plaintext_prefix),
            "{plaintext_prefix} is still allowed"
        );
    }
}

/// The operational part of a stage: reserved concurrency and tracing on every function, the
/// three alarms of each function, the API's 5xx rate, the sync's dead-letter queue and its
/// alarm, JSON access logs without query strings or bodies, a dashboard, every alarm on the
/// alarm topic.
#[test]
fn every_function_has_limits_tracing_and_alarms() {
    let t = template();
    let globals = squash(&resource(
        &format!("\n{}", &t[t.find("Globals:").unwrap()..]),
        "Function",
    ));
    assert!(globals.contains("Tracing: Active"), "{globals}");
    // Metrics: the Stage dimension, and no Lambda-side level filter that would drop the EMF
    // lines (they carry no "level"); the functions filter their own lines by LOG_LEVEL.
    assert!(globals.contains("STAGE: !Ref Stage"), "{globals}");
    assert!(globals.contains("LOG_LEVEL: !Ref LogLevel"), "{globals}");
    assert!(globals.contains("ApplicationLogLevel: TRACE"), "{globals}");
    for (short, function) in [
        ("NumberMapping", "NumberMappingFunction"),
        ("IdentityVerification", "IdentityVerificationFunction"),
        ("TokenExchange", "TokenExchangeFunction"),
        ("AgentDirectory", "AgentDirectoryFunction"),
        ("AgentSync", "AgentSyncFunction"),
    ] {
        let f = squash(&resource(&t, function));
        assert!(f.contains("ReservedConcurrentExecutions:"), "{function}");
        for metric in ["Errors", "Throttles", "Duration"] {
            let alarm = squash(&resource(&t, &format!("{short}{metric}Alarm")));
            assert!(alarm.contains(&format!("MetricName: {metric}")), "{alarm}");
            assert!(
                alarm.contains(&format!("Value: !Ref {function}")),
                "{alarm}"
            );
            assert!(alarm.contains("AlarmActions: [!Ref AlarmTopic]"), "{alarm}");
        }
    }
    let sync = squash(&resource(&t, "AgentSyncFunction"));
    assert!(sync.contains("DeadLetterQueue: Type: SQS TargetArn: !GetAtt AgentSyncDeadLetters.Arn"));
    assert!(sync.contains("DeadLetterConfig: Arn: !GetAtt AgentSyncDeadLetters.Arn"));
    let dlq = squash(&resource(&t, "AgentSyncDeadLettersAlarm"));
    assert!(dlq.contains("AgentSyncDeadLetters.QueueName"), "{dlq}");
    let api = squash(&resource(&t, "Api5xxRateAlarm"));
    assert!(
        api.contains("MetricName: 5xx") && api.contains("MetricName: Count"),
        "{api}"
    );

    let http = squash(&resource(&t, "HttpApi"));
    assert!(
        http.contains("DestinationArn: !GetAtt ApiAccessLogs.Arn"),
        "{http}"
    );
    for field in [
        "$context.requestId",
        "$context.status",
        "$context.routeKey",
        "$context.identity.sourceIp",
        "$context.integrationErrorMessage",
    ] {
        assert!(http.contains(field), "access log lacks {field}");
    }
    for never in ["queryString", "$context.path", "$input", "$request"] {
        assert!(!http.contains(never), "access log has {never}");
    }
    assert!(resource(&t, "Dashboard").contains("DashboardBody"));
    let subscription = squash(&resource(&t, "AlarmEmailSubscription"));
    assert!(
        subscription.contains("Condition: HasAlarmEmail"),
        "{subscription}"
    );
}

/// The agent-directory functions can run in the enterprise's VPC (the CEC allowlists the NAT
/// gateway's address); with the parameters empty (the default) they run outside any VPC.
#[test]
fn the_agent_functions_can_be_placed_in_a_vpc() {
    let t = template();
    for function in ["AgentSyncFunction", "AgentDirectoryFunction"] {
        let f = squash(&resource(&t, function));
        assert!(
            f.contains("VpcConfig: !If - InAgentVpc - SubnetIds: !Ref AgentVpcSubnetIds SecurityGroupIds: !Ref AgentVpcSecurityGroupIds - !Ref AWS::NoValue"),
            "{function}: {f}"
        );
        assert!(
            f.contains("CEC_TENANT_SPACE_ID: !Ref CecTenantSpaceId"),
            "{function}"
        );
    }
    for parameter in ["AgentVpcSubnetIds", "AgentVpcSecurityGroupIds"] {
        let p = squash(&resource(&t, parameter));
        assert!(p.contains(r#"Type: CommaDelimitedList Default: """#), "{p}");
    }
}

/// The alarms and the dashboard built on the functions' own metrics name metrics the code
/// emits (`cc_shared::metrics::UNITS`), under the `Function` dimension values the functions
/// use, and the stage's dashboard shows lockouts, the cache hit rate, the sync counts and the
/// unmaskings with their refusals.
#[test]
fn alarms_and_dashboard_use_the_metrics_the_functions_emit() {
    use cc_shared::metrics::{name, NAMESPACE, UNITS};
    let t = template();
    let declared = |metric: &str| UNITS.iter().any(|(n, _)| *n == metric);
    let functions = [
        number_mapping::FUNCTION,
        identity_verification::FUNCTION,
        token_exchange::FUNCTION,
        agent_sync::FUNCTION,
    ];
    for (alarm, metrics) in [
        ("AuthFailureBurstAlarm", vec![name::REQUESTS_AUTH_FAILURE]),
        ("LockoutBurstAlarm", vec![name::LOCKOUTS_STARTED]),
        (
            "TokenUpstreamFailureRateAlarm",
            vec![
                name::UPSTREAM_EXCHANGES,
                name::UPSTREAM_TIMEOUTS,
                name::UPSTREAM_ERRORS,
            ],
        ),
        ("AgentSyncStaleAlarm", vec![name::SYNC_SUCCEEDED]),
        ("UnmaskBurstAlarm", vec![name::NUMBERS_UNMASKED]),
        (
            "UnmaskBudgetRefusalsAlarm",
            vec![name::UNMASK_REQUESTS_REFUSED],
        ),
    ] {
        let a = squash(&resource(&t, alarm));
        assert!(a.contains(&format!("Namespace: {NAMESPACE}")), "{a}");
        assert!(a.contains("AlarmActions: [!Ref AlarmTopic]"), "{a}");
        for m in metrics {
            assert!(a.contains(&format!("MetricName: {m}")), "{alarm} lacks {m}");
        }
        // Every metric and Function value it names exists.
        for word in a.split(' ').collect::<Vec<_>>().windows(2) {
            if word[0] == "MetricName:" {
                assert!(declared(word[1]), "{alarm}: {} is never emitted", word[1]);
            }
        }
        for value in a.split("Name: Function Value: ").skip(1) {
            let f = value.split(' ').next().unwrap();
            assert!(functions.contains(&f), "{alarm}: no function {f}");
        }
    }
    let stale = squash(&resource(&t, "AgentSyncStaleAlarm"));
    assert!(stale.contains("TreatMissingData: breaching"), "{stale}");

    let dashboard = resource(&t, "Dashboard");
    let body = dashboard
        .split_once("DashboardBody: !Sub |")
        .expect("a block DashboardBody")
        .1;
    let body: serde_json::Value = serde_json::from_str(body).expect("the dashboard is JSON");
    let mut ours = Vec::new();
    for widget in body["widgets"].as_array().unwrap() {
        for m in widget["properties"]["metrics"].as_array().unwrap() {
            if m[0] == NAMESPACE {
                let metric = m[1].as_str().unwrap();
                assert!(declared(metric), "dashboard: {metric} is never emitted");
                assert_eq!(m[2], "Function");
                assert!(functions.contains(&m[3].as_str().unwrap()), "{m}");
                ours.push(metric.to_string());
            }
        }
    }
    for shown in [
        name::LOCKOUTS_STARTED,
        name::TOKEN_CACHE_HITS,
        name::TOKEN_CACHE_MISSES,
        name::AGENTS_ADDED,
        name::AGENTS_UPDATED,
        name::AGENTS_DEACTIVATED,
        name::SYNC_FAILURES,
        name::NUMBERS_UNMASKED,
        name::UNMASK_REQUESTS_REFUSED,
    ] {
        assert!(
            ours.iter().any(|m| m == shown),
            "the dashboard lacks {shown}"
        );
    }
}

/// Every scanner finding suppressed in the template says why, next to its resource.
#[test]
fn every_suppressed_finding_has_a_reason() {
    let t = template();
    let lines: Vec<&str> = t.lines().collect();
    let mut skips = 0;
    for (i, line) in lines.iter().enumerate() {
        let l = line.trim();
        if l.starts_with("- id: CKV") {
            skips += 1;
            let next = lines[i + 1].trim();
            assert!(
                next.starts_with("comment: \"") && next.len() > 40,
                "checkov skip without a reason: {l}"
            );
        }
        let rule = l.strip_prefix("- ").unwrap_or("");
        if rule.len() > 5
            && rule.as_bytes()[0].is_ascii_uppercase()
            && rule[1..5].bytes().all(|b| b.is_ascii_digit())
        {
            assert!(
                l.split_once("  # ").is_some_and(|(_, why)| why.len() > 20),
                "cfn-lint ignore without a reason: {l}"
            );
        }
    }
    assert!(
        skips > 0,
        "no checkov suppression found: has the format changed?"
    );
}
