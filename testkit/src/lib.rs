//! Fakes of the vendors we call (Alibaba's Fuyun IdP, Huawei CEC), strict about their documented
//! contracts, for the tests and the benchmark harness. Not part of any Lambda binary.

pub mod fake_cec;
pub mod fake_idp;

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
