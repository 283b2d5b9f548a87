//! The Lambda entry point, in one of two roles (`AGENT_SYNC_ROLE`), each its own function in
//! template.yaml with its own least-privilege policy:
//! - `schedule`: an EventBridge schedule (or `aws lambda invoke`) runs one sync of the default
//!   tenant and every platform tenant with a CEC (`schedule::run`);
//! - `softphone`: API Gateway's `POST /agents/softphone`.

use std::sync::Arc;

use agent_sync::config::{self, Role};
use agent_sync::{handle, init, init_scheduler, run, FUNCTION};
use cc_shared::domain::clock::{Clock, SystemClock};
use cc_shared::resources::Resources;
use lambda_http::lambda_runtime::{self, LambdaEvent};
use lambda_http::Error;
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    cc_shared::logging::init(&[module_path!()]);
    let role = match config::role() {
        Ok(role) => role,
        Err(e) => return Err(cc_shared::web::lambda::init_failed(FUNCTION, e).await),
    };
    match role {
        Role::Schedule => {
            let scheduler =
                match cc_shared::metrics::install(FUNCTION).and_then(|()| Resources::lambda()) {
                    Ok(res) => init_scheduler(&res).await,
                    Err(e) => Err(e),
                };
            let scheduler = match scheduler {
                Ok(s) => Arc::new(s),
                Err(e) => return Err(cc_shared::web::lambda::init_failed(FUNCTION, e).await),
            };
            cc_shared::web::lambda::flush_on_shutdown(FUNCTION);
            lambda_runtime::run(lambda_runtime::service_fn(
                move |event: LambdaEvent<serde_json::Value>| {
                    let s = scheduler.clone();
                    let span = cc_shared::web::lambda::invocation_span(&event.context, "");
                    async move {
                        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
                        let result = run(s, clock).await;
                        cc_shared::metrics::flush();
                        Ok::<_, Error>(serde_json::to_value(result?)?)
                    }
                    .instrument(span)
                },
            ))
            .await
        }
        Role::Softphone => {
            cc_shared::resources::serve(FUNCTION, init, |svc, req| async move {
                handle(&svc, req).await
            })
            .await
        }
    }
}
