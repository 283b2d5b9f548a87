//! AWS: the SDK configuration every client shares (region, credentials, endpoints, and the
//! bounds on every call), and Secrets Manager reads at init. Secret values are never logged.

use crate::config::{self, ConfigError};

/// The AWS SDK configuration from the standard environment and profiles (region, credentials,
/// endpoints such as `AWS_ENDPOINT_URL_DYNAMODB`) for the CLI and the local gateway, loaded once
/// and shared by every client. The Lambda binaries use `lambda_sdk_config`.
#[cfg(any(feature = "secrets", feature = "dynamodb"))]
pub async fn sdk_config() -> Result<aws_config::SdkConfig, ConfigError> {
    let limits = AwsLimits::from_env()?;
    Ok(aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(sdk_http_client())
        .timeout_config(limits.timeout_config())
        .retry_config(limits.retry_config())
        .load()
        .await)
}

/// Bounds on every AWS call (DynamoDB, Secrets Manager), read once at init: a dependency that
/// stalls (regional incidents show up as hanging connections, not refusals) costs at most
/// `max_attempts` attempts of `attempt` each, and never more than `operation` in all. Each
/// handler also bounds its request's store work as a whole (`store::StoreBudget`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AwsLimits {
    /// TCP and TLS connection set-up (`AWS_CONNECT_TIMEOUT_MS`, default 1000).
    pub connect: std::time::Duration,
    /// One HTTP attempt, connection included (`AWS_ATTEMPT_TIMEOUT_MS`, default 1000):
    /// DynamoDB answers in milliseconds, a second is a stall.
    pub attempt: std::time::Duration,
    /// Attempts per call, the first included (`AWS_MAX_ATTEMPTS`, default 3), with the SDK's
    /// standard retry policy (exponential backoff with jitter, retryable errors only).
    pub max_attempts: u32,
    /// One call, retries included (`AWS_OPERATION_TIMEOUT_MS`, default 3000).
    pub operation: std::time::Duration,
}

impl AwsLimits {
    pub fn from_env() -> Result<AwsLimits, ConfigError> {
        let ms = |name, default, max| -> Result<std::time::Duration, ConfigError> {
            Ok(std::time::Duration::from_millis(config::number(
                name,
                default,
                10..=max,
            )?))
        };
        Ok(AwsLimits {
            connect: ms("AWS_CONNECT_TIMEOUT_MS", 1000, 30_000)?,
            attempt: ms("AWS_ATTEMPT_TIMEOUT_MS", 1000, 30_000)?,
            max_attempts: config::number("AWS_MAX_ATTEMPTS", 3, 1..=10)?,
            operation: ms("AWS_OPERATION_TIMEOUT_MS", 3000, 60_000)?,
        })
    }

    #[cfg(any(feature = "secrets", feature = "dynamodb"))]
    pub fn timeout_config(&self) -> aws_config::timeout::TimeoutConfig {
        aws_config::timeout::TimeoutConfig::builder()
            .connect_timeout(self.connect)
            .operation_attempt_timeout(self.attempt)
            .operation_timeout(self.operation)
            .build()
    }

    #[cfg(any(feature = "secrets", feature = "dynamodb"))]
    pub fn retry_config(&self) -> aws_config::retry::RetryConfig {
        aws_config::retry::RetryConfig::standard().with_max_attempts(self.max_attempts)
    }
}

/// The SDK configuration of a Lambda function, from what Lambda puts in its environment: the
/// region (`AWS_REGION`), the execution role's credentials (`AWS_ACCESS_KEY_ID`,
/// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) and endpoint overrides
/// (`AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`, as for DynamoDB Local). aws-config's
/// default chain finds the same credentials first in Lambda, but also builds an STS client and
/// its HTTPS connector, looks for profile files and links SSO, STS, IMDS and ECS code: about a
/// quarter of number mapping's init instructions and ~1 MB of each binary (bench/notes.md).
/// The CLI and the local gateway, run by people with profiles, keep `sdk_config`.
#[cfg(any(feature = "secrets", feature = "dynamodb"))]
pub fn lambda_sdk_config() -> Result<aws_config::SdkConfig, ConfigError> {
    let region = config::optional("AWS_REGION")
        .or_else(|| config::optional("AWS_DEFAULT_REGION"))
        .ok_or(ConfigError::Missing("AWS_REGION"))?;
    let credentials = aws_config::environment::EnvironmentVariableCredentialsProvider::new();
    let limits = AwsLimits::from_env()?;
    let mut builder = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new(region))
        .credentials_provider(
            aws_credential_types::provider::SharedCredentialsProvider::new(credentials),
        )
        .http_client(sdk_http_client())
        .timeout_config(limits.timeout_config())
        .retry_config(limits.retry_config())
        .service_config(EnvEndpoints);
    if let Some(url) = config::optional("AWS_ENDPOINT_URL") {
        builder = builder.endpoint_url(url);
    }
    Ok(builder.build())
}

/// Service-specific settings from the environment only, as the SDK names them: asked for
/// `AWS_ENDPOINT_URL` by DynamoDB, answers `AWS_ENDPOINT_URL_DYNAMODB` if set.
#[cfg(any(feature = "secrets", feature = "dynamodb"))]
#[derive(Debug)]
struct EnvEndpoints;

#[cfg(any(feature = "secrets", feature = "dynamodb"))]
impl aws_types::service_config::LoadServiceConfig for EnvEndpoints {
    fn load_config(&self, key: aws_types::service_config::ServiceConfigKey<'_>) -> Option<String> {
        let service = key.service_id().to_uppercase().replace(' ', "_");
        std::env::var(format!("{}_{service}", key.env()))
            .ok()
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }
}

/// The SDK's own hyper/rustls client with the system's root certificates, on `ring` rather
/// than the SDK's default aws-lc: the same TLS stack as the vendor client (`upstream`), and
/// no aws-lc in the binaries (~1.5 MB smaller; see bench/notes.md). Every SDK client of the
/// bundle, tests and benchmark included, is built with it: the SDK crates are compiled
/// without a default HTTPS client.
#[cfg(any(feature = "secrets", feature = "dynamodb"))]
pub fn sdk_http_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};
    aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// Reads a secret's string value from AWS Secrets Manager.
#[cfg(feature = "secrets")]
pub async fn secret_string(
    sdk: &aws_config::SdkConfig,
    variable: &'static str,
    arn: &str,
) -> Result<String, ConfigError> {
    let client = aws_sdk_secretsmanager::Client::new(sdk);
    let out = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| ConfigError::Invalid {
            name: variable,
            reason: format!(
                "the secret could not be read: {}",
                aws_sdk_secretsmanager::error::DisplayErrorContext(&e)
            ),
        })?;
    out.secret_string.ok_or_else(|| ConfigError::Invalid {
        name: variable,
        reason: "the secret has no string value".into(),
    })
}

/// The string value of the secret named by the variable `arn_var`, when that variable is set
/// (None otherwise: the caller falls back to its local settings), read with `sdk`. A caller
/// without an SDK configuration loads one first when a secret is configured (as the local
/// gateway does), so that the Lambda binaries never link aws-config's default chain.
#[cfg(feature = "secrets")]
pub async fn configured_secret(
    sdk: Option<&aws_config::SdkConfig>,
    arn_var: &'static str,
) -> Result<Option<String>, ConfigError> {
    let Some(arn) = config::optional(arn_var) else {
        return Ok(None);
    };
    let Some(sdk) = sdk else {
        return Err(ConfigError::Invalid {
            name: arn_var,
            reason: "set, but no AWS configuration was loaded to read it".into(),
        });
    };
    Ok(Some(secret_string(sdk, arn_var, &arn).await?))
}
