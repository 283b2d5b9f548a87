//! `openapi.yaml` as a checker: every request body a test sends as valid and every answer a
//! handler or the gateway gives in the tests goes through `check_request` / `check_answer`
//! (from `call_mapping`, `call_verify`, `call_token`, `cli::post` and the sample events).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

pub struct Contract {
    /// The document, with `$schema` set so that its schemas compile as JSON Schema 2020-12
    /// (OpenAPI 3.1's dialect); validators point into it with `$ref`.
    doc: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
        let mut doc: Value = serde_norway::from_str(&text).expect("openapi.yaml is YAML");
        doc["$schema"] = "https://json-schema.org/draft/2020-12/schema".into();
        Contract {
            doc,
            validators: Mutex::new(HashMap::new()),
        }
    })
}

/// A JSON pointer's escaping of one token.
fn token(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

impl Contract {
    pub fn document(&self) -> &Value {
        &self.doc
    }

    fn at(&self, pointer: &str) -> &Value {
        self.doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("openapi.yaml has nothing at {pointer}"))
    }

    /// `pointer`, following a `$ref` found there.
    fn follow(&self, pointer: String) -> String {
        match self.at(&pointer).get("$ref").and_then(Value::as_str) {
            Some(r) => r.trim_start_matches('#').to_string(),
            None => pointer,
        }
    }

    fn operation(&self, path: &str) -> String {
        format!("/paths/{}/post", token(path))
    }

    fn validate(&self, schema_pointer: &str, instance: &Value) -> Result<(), String> {
        let cached = self
            .validators
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(schema_pointer)
            .cloned();
        let validator = match cached {
            Some(v) => v,
            None => {
                let mut root = self.doc.clone();
                root["$ref"] = format!("#{schema_pointer}").into();
                let v = std::sync::Arc::new(
                    jsonschema::draft202012::new(&root)
                        .unwrap_or_else(|e| panic!("{schema_pointer}: {e}")),
                );
                self.validators
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(schema_pointer.to_string(), v.clone());
                v
            }
        };
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// A request body a test sends as a valid one fits the operation's request schema.
    pub fn check_request(&self, path: &str, body: &Value) {
        let pointer = format!(
            "{}/requestBody/content/application~1json/schema",
            self.operation(path)
        );
        if let Err(e) = self.validate(&pointer, body) {
            panic!("POST {path}: the request {body} is outside openapi.yaml: {e}");
        }
    }

    /// An answer fits the document: its status is documented for the operation, its body
    /// fits that status's schema, and documented headers it carries have documented values.
    pub fn check_answer(&self, path: &str, status: u16, headers: &http::HeaderMap, body: &str) {
        let responses = format!("{}/responses", self.operation(path));
        let status_pointer = format!("{responses}/{status}");
        assert!(
            self.doc.pointer(&status_pointer).is_some(),
            "POST {path}: status {status} is not in openapi.yaml (body {body})"
        );
        let response = self.follow(status_pointer);
        let value: Value = serde_json::from_str(body)
            .unwrap_or_else(|_| panic!("POST {path} {status}: a body that is not JSON: {body}"));
        let schema = format!("{response}/content/application~1json/schema");
        if let Err(e) = self.validate(&schema, &value) {
            panic!("POST {path} {status}: the answer {body} is outside openapi.yaml: {e}");
        }
        if let Some(ct) = headers.get(http::header::CONTENT_TYPE) {
            assert_eq!(ct, "application/json", "POST {path} {status}");
        }
        let documented = self.at(&response).get("headers").and_then(Value::as_object);
        for (name, spec) in documented.into_iter().flatten() {
            let Some(v) = headers.get(name.as_str()) else {
                continue;
            };
            let header = self.follow(format!("{response}/headers/{}", token(name)));
            let v = Value::String(v.to_str().unwrap().to_string());
            if let Err(e) = self.validate(&format!("{header}/schema"), &v) {
                panic!("POST {path} {status}: header {name}: {v} ({spec}): {e}");
            }
        }
    }
}
