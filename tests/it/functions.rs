//! The one list of the functions (`cc_callbacks::functions::FUNCTIONS`) against every file that
//! names them again for a tool of its own: a function missing from one of them fails here, not
//! in production. Adding a function: its folder, its entry in the list, and what this names.

use cc_callbacks::functions::{log_targets, FUNCTIONS};

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// template.yaml: for each function, the Lambda function whose API route is its route builds
/// its binary and reads its credentials variable; and no route is left over.
#[test]
fn template_yaml_serves_each_function_at_its_route() {
    let template = read("template.yaml");
    let blocks: Vec<&str> = template
        .split("    Type: AWS::Serverless::Function\n")
        .skip(1)
        .collect();
    for f in FUNCTIONS {
        let path = format!("Path: {}\n", f.route);
        let block = blocks
            .iter()
            .find(|b| b.contains(&path))
            .unwrap_or_else(|| panic!("template.yaml has no function at {}", f.route));
        assert!(
            block.contains(&format!("Binary: {}\n", f.name)),
            "the function at {} in template.yaml does not build the {} binary",
            f.route,
            f.name
        );
        assert!(
            block.contains(&format!("{}: ", f.credentials_var)),
            "the function at {} in template.yaml does not set {}",
            f.route,
            f.credentials_var
        );
    }
    assert_eq!(
        template.matches("Type: HttpApi\n").count(),
        FUNCTIONS.len(),
        "template.yaml has routes the list does not"
    );
}

/// events/: at least one sample event per route, and every API event is for a route.
#[test]
fn events_have_a_sample_for_each_route() {
    let dir = format!("{}/events", env!("CARGO_MANIFEST_DIR"));
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        let event: serde_json::Value = serde_json::from_str(&text).unwrap();
        // HTTP API events name their route (`rawPath` carries the stage too: `/dev/...`).
        if let Some(route) = event["routeKey"].as_str() {
            paths.push(route.trim_start_matches("POST ").to_string());
        }
    }
    for f in FUNCTIONS {
        assert!(
            paths.iter().any(|p| p == f.route),
            "events/ has no sample event for {} ({})",
            f.name,
            f.route
        );
    }
    for p in &paths {
        assert!(
            FUNCTIONS.iter().any(|f| f.route == p),
            "a sample event in events/ is for {p}, which no function serves"
        );
    }
}

/// schemathesis.toml: every operation it configures is a route.
#[test]
fn schemathesis_toml_names_only_routes() {
    let config = read("schemathesis.toml");
    for line in config.lines().filter(|l| l.starts_with("include-path")) {
        let path = line.split('"').nth(1).unwrap();
        assert!(
            FUNCTIONS.iter().any(|f| f.route == path),
            "schemathesis.toml configures {path}, which no function serves"
        );
    }
}

/// The README's function table: one row per function, with its name and route.
#[test]
fn the_readme_table_lists_each_function() {
    let readme = read("README.md");
    let rows: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("| function | called by | path |"))
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .collect();
    assert_eq!(rows.len(), FUNCTIONS.len(), "{rows:?}");
    for (f, row) in FUNCTIONS.iter().zip(&rows) {
        assert!(
            row.starts_with(&format!("| `{}` |", f.name))
                && row.contains(&format!("`POST {}`", f.route)),
            "README row {row:?} is not {} at {}",
            f.name,
            f.route
        );
    }
}

/// Every function's request lines pass the gateway's log filter at the default level.
#[test]
fn the_log_filter_passes_each_functions_lines() {
    let filter = cc_shared::logging::filter(&log_targets());
    for f in FUNCTIONS {
        let target = format!("{}::handler", f.log_target());
        assert!(
            filter.would_enable(&target, &tracing::Level::INFO),
            "the log filter drops {target}'s info lines"
        );
    }
    assert!(!filter.would_enable("aws_smithy_runtime", &tracing::Level::INFO));
}

/// `cc-callbacks functions` lists the functions, one name a line (what `cc-bench` and
/// `scripts/build-arm64` read).
#[test]
fn the_functions_command_lists_each_name() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cc-callbacks"))
        .args(["functions", "--names"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let names: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let expected: Vec<String> = FUNCTIONS.iter().map(|f| f.name.to_string()).collect();
    assert_eq!(names, expected);
}
