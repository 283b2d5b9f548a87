//! The RS256 JWT that stands for an agent in JWT mode.

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

/// Why a private key was refused (never contains the key).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    user_name: &'a str,
    exp: i64,
    jti: &'a str,
}

pub struct Signer {
    key: EncodingKey,
    issuer: String,
    ttl_seconds: i64,
    exp_millis: bool,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// Parses an RSA private key given as PEM (PKCS#1 or PKCS#8) or as the base64 PKCS#8 DER
/// string of Alibaba's Java demo (whitespace ignored).
pub fn parse_private_key(text: &str) -> Result<EncodingKey, KeyError> {
    let text = text.trim();
    let pem = if text.starts_with("-----BEGIN") {
        text.to_string()
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| KeyError("neither PEM nor base64 PKCS#8 DER".into()))?;
        let body = base64::engine::general_purpose::STANDARD.encode(der);
        let lines: Vec<&str> = body
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap_or_default())
            .collect();
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        )
    };
    EncodingKey::from_rsa_pem(pem.as_bytes())
        .map_err(|_| KeyError("not an RSA private key in PEM or PKCS#8 DER".into()))
}

impl Signer {
    /// `exp_millis`: put `exp` in milliseconds (some of the vendor's pages say so) instead of
    /// RFC 7519's seconds. Signs once to prove the key works (at init, not on a call).
    pub fn new(
        key: EncodingKey,
        issuer: String,
        ttl_seconds: i64,
        exp_millis: bool,
    ) -> Result<Self, KeyError> {
        let signer = Signer {
            key,
            issuer,
            ttl_seconds,
            exp_millis,
        };
        signer
            .sign("key-check", 0)
            .map_err(|_| KeyError("the key cannot sign RS256 JWTs".into()))?;
        Ok(signer)
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// A JWT for `account` at `now` (epoch seconds), and its `jti`.
    pub fn sign(&self, account: &str, now: i64) -> Result<(String, String), KeyError> {
        let jti = uuid::Uuid::new_v4().to_string();
        let exp_seconds = now + self.ttl_seconds;
        let exp = if self.exp_millis {
            exp_seconds * 1000
        } else {
            exp_seconds
        };
        let claims = Claims {
            iss: &self.issuer,
            user_name: account,
            exp,
            jti: &jti,
        };
        let jwt = jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &self.key)
            .map_err(|e| KeyError(format!("signing failed: {}", e.kind_name())))?;
        Ok((jwt, jti))
    }
}

trait KindName {
    fn kind_name(&self) -> &'static str;
}

impl KindName for jsonwebtoken::errors::Error {
    fn kind_name(&self) -> &'static str {
        match self.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidRsaKey(_) => "invalid RSA key",
            jsonwebtoken::errors::ErrorKind::InvalidKeyFormat => "invalid key format",
            _ => "error",
        }
    }
}
