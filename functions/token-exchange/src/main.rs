//! The Lambda entry point: resources and the function built once, at init.

use token_exchange::{handle, init, FUNCTION};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    cc_shared::logging::init(&[module_path!()]);
    cc_shared::resources::serve(
        FUNCTION,
        init,
        |svc, req| async move { handle(&svc, req).await },
    )
    .await
}
