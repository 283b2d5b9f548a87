//! Fakes of the vendors we call (Alibaba's Fuyun IdP, Huawei CEC), strict about their documented
//! contracts, for the tests and the benchmark harness. Not part of any Lambda binary.

pub mod fake_cec;
pub mod fake_idp;
pub mod fake_lambda;
pub mod fault_proxy;
pub mod runtime_api;

/// Serves `answer` over HTTP/1.1 on an ephemeral loopback port (the fake vendor servers);
/// returns `http://127.0.0.1:<port>`.
pub async fn serve_loopback<F, Fut>(answer: F) -> String
where
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = http::Response<http_body_util::Full<bytes::Bytes>>>
        + Send
        + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let answer = std::sync::Arc::new(answer);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let answer = answer.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let answer = answer.clone();
                    async move { Ok::<_, std::convert::Infallible>(answer(req).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    base
}

/// A fake AWS Secrets Manager (AWS JSON 1.1 protocol, signed requests only) serving `secrets`
/// by id (ARN): `GetSecretValue`, and `PutSecretValue` with a `SecretString` and a
/// `ClientRequestToken` (the new value becomes current; a token already used is idempotent with
/// the same value and `ResourceExistsException` with another, as documented); unknown ids get
/// `ResourceNotFoundException`, anything else `InvalidRequestException`. Returns the endpoint
/// URL, for `AWS_ENDPOINT_URL_SECRETS_MANAGER` or an SDK config's `endpoint_url`.
pub async fn fake_secrets_manager(secrets: Vec<(String, String)>) -> String {
    let secrets = std::sync::Arc::new(std::sync::Mutex::new(secrets));
    // (secret id, ClientRequestToken) -> the value stored under it.
    let versions = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashMap::<
        (String, String),
        String,
    >::new()));
    serve_loopback(move |req: http::Request<hyper::body::Incoming>| {
        let secrets = secrets.clone();
        let versions = versions.clone();
        async move {
            use http_body_util::BodyExt;
            let target = req
                .headers()
                .get("x-amz-target")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let signed = req.headers().contains_key("authorization");
            let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
            let answer = |status: u16, json: serde_json::Value| {
                http::Response::builder()
                    .status(status)
                    .header("content-type", "application/x-amz-json-1.1")
                    .body(http_body_util::Full::new(bytes::Bytes::from(json.to_string())))
                    .unwrap()
            };
            let request = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
            let id = request["SecretId"].as_str().unwrap_or_default().to_string();
            let put = target == "secretsmanager.PutSecretValue";
            let new_value = request["SecretString"].as_str().filter(|v| !v.is_empty());
            // 32 to 64 characters; the SDK generates one when the caller gives none.
            let token = request["ClientRequestToken"]
                .as_str()
                .filter(|t| (32..=64).contains(&t.len()))
                .map(str::to_string);
            if !signed
                || !(target == "secretsmanager.GetSecretValue"
                    || put && new_value.is_some() && token.is_some())
            {
                return answer(400, serde_json::json!({"__type": "InvalidRequestException"}));
            }
            let mut secrets = secrets.lock().unwrap();
            match secrets.iter_mut().find(|(arn, _)| *arn == id) {
                Some((arn, value)) if put => {
                    let new_value = new_value.unwrap_or_default().to_string();
                    let key = (id.clone(), token.unwrap_or_default());
                    let mut versions = versions.lock().unwrap();
                    match versions.get(&key) {
                        Some(stored) if *stored != new_value => {
                            return answer(
                                400,
                                serde_json::json!({"__type": "ResourceExistsException",
                                    "message": "You can't modify an existing version, you can only create a new version."}),
                            );
                        }
                        // The same request again: nothing new.
                        Some(_) => {}
                        None => {
                            versions.insert(key, new_value.clone());
                            *value = new_value;
                        }
                    }
                    answer(
                        200,
                        serde_json::json!({"ARN": arn, "Name": "secret", "VersionId": "v2",
                                           "VersionStages": ["AWSCURRENT"]}),
                    )
                }
                Some((arn, value)) => answer(
                    200,
                    serde_json::json!({"ARN": arn, "Name": "secret", "SecretString": value,
                                       "VersionId": "v1", "CreatedDate": 1.79e9}),
                ),
                None => answer(
                    400,
                    serde_json::json!({"__type": "ResourceNotFoundException",
                                       "message": "Secrets Manager can't find the specified secret."}),
                ),
            }
        }
    })
    .await
}
