//! HTTP Basic authentication against `user:sha256:<hex>` entries.
//!
//! Only SHA-256 digests of passwords are configured, so no plaintext password sits in the
//! template or the function's environment; several entries may be valid at once for rotation.
//! Every entry is compared, in constant time, whatever the outcome.

use base64::Engine;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

use crate::config::ConfigError;

#[derive(Clone)]
struct Entry {
    user_digest: [u8; 32],
    password_digest: [u8; 32],
}

#[derive(Clone)]
pub struct Credentials {
    entries: Vec<Entry>,
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

impl Credentials {
    /// Parses a comma-separated list of `user:sha256:<64 lowercase hex>` entries.
    /// `name` is the environment variable, for the error message.
    pub fn parse(name: &'static str, value: &str) -> Result<Self, ConfigError> {
        let mut entries = Vec::new();
        for (i, raw) in value.split(',').map(str::trim).enumerate() {
            if raw.is_empty() {
                continue;
            }
            let invalid = |reason: &str| ConfigError::Invalid {
                name,
                reason: format!("entry {}: {reason}", i + 1),
            };
            let mut parts = raw.splitn(3, ':');
            let (Some(user), Some(scheme), Some(hex_digest)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(invalid("expected user:sha256:<hex digest>"));
            };
            if user.is_empty() {
                return Err(invalid("the user name is empty"));
            }
            if scheme != "sha256" {
                return Err(invalid("the scheme must be 'sha256'"));
            }
            if hex_digest.len() != 64
                || !hex_digest
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return Err(invalid("the digest must be 64 lowercase hex characters"));
            }
            let mut password_digest = [0u8; 32];
            hex::decode_to_slice(hex_digest, &mut password_digest)
                .map_err(|_| invalid("the digest is not hex"))?;
            entries.push(Entry {
                user_digest: sha256(user.as_bytes()),
                password_digest,
            });
        }
        if entries.is_empty() {
            return Err(ConfigError::Invalid {
                name,
                reason: "no credential entries".into(),
            });
        }
        Ok(Credentials { entries })
    }

    /// From the environment variable `name`, else `fallback` (the gateway's `dev:dev`), else a
    /// configuration error naming the variable.
    pub fn from_env(
        name: &'static str,
        fallback: Option<Credentials>,
    ) -> Result<Self, ConfigError> {
        match (crate::config::optional(name), fallback) {
            (Some(v), _) => Credentials::parse(name, &v),
            (None, Some(dev)) => Ok(dev),
            (None, None) => Err(ConfigError::Missing(name)),
        }
    }

    /// The local development credentials `dev:dev` (the gateway on loopback only).
    pub fn dev() -> Self {
        Credentials {
            entries: vec![Entry {
                user_digest: sha256(b"dev"),
                password_digest: sha256(b"dev"),
            }],
        }
    }

    /// The user name of a request whose `Authorization` header matches an entry.
    pub fn verify(&self, authorization: Option<&http::HeaderValue>) -> Option<String> {
        let (user, password) = decode_basic(authorization?)?;
        self.verify_pair(&user, &password).then_some(user)
    }

    /// Whether `user` and `password` match an entry.
    pub fn verify_pair(&self, user: &str, password: &str) -> bool {
        let user_digest = sha256(user.as_bytes());
        let password_digest = sha256(password.as_bytes());
        let mut ok = Choice::from(0);
        for e in &self.entries {
            ok |= e.user_digest.ct_eq(&user_digest) & e.password_digest.ct_eq(&password_digest);
        }
        bool::from(ok)
    }
}

/// The user name and password of a BasicAuth header.
pub fn decode_basic(header: &http::HeaderValue) -> Option<(String, String)> {
    let value = header.to_str().ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// A new random password (32 URL-safe characters, 192 bits) and its credentials entry.
pub fn generate_entry(user: &str) -> Result<(String, String), crate::domain::uid::RandomError> {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).map_err(|e| crate::domain::uid::RandomError::new(e.to_string()))?;
    let password = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let entry = entry_for(user, &password);
    Ok((password, entry))
}

/// The credentials entry for a user and password.
pub fn entry_for(user: &str, password: &str) -> String {
    format!("{user}:sha256:{}", hex::encode(sha256(password.as_bytes())))
}

/// The `Authorization` header value for a user and password (tests, examples).
pub fn basic_header(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).unwrap()
    }

    #[test]
    fn accepts_any_configured_entry_and_rejects_the_rest() {
        let creds = Credentials::parse(
            "X",
            &format!(
                "{},{}",
                entry_for("tencent", "old"),
                entry_for("tencent", "new")
            ),
        )
        .unwrap();
        for pw in ["old", "new"] {
            let h = header(&basic_header("tencent", pw));
            assert_eq!(creds.verify(Some(&h)).as_deref(), Some("tencent"));
        }
        for (u, pw) in [
            ("tencent", "wrong"),
            ("other", "new"),
            ("", ""),
            ("tencent", ""),
        ] {
            assert_eq!(creds.verify(Some(&header(&basic_header(u, pw)))), None);
        }
        assert_eq!(creds.verify(None), None);
        assert_eq!(creds.verify(Some(&header("Bearer abc"))), None);
        assert_eq!(creds.verify(Some(&header("Basic !!!"))), None);
        // The scheme is case-insensitive (RFC 7617).
        let lower = basic_header("tencent", "new").replacen("Basic", "basic", 1);
        assert!(creds.verify(Some(&header(&lower))).is_some());
    }

    #[test]
    fn passwords_may_contain_colons() {
        let creds = Credentials::parse("X", &entry_for("u", "a:b:c")).unwrap();
        assert!(creds
            .verify(Some(&header(&basic_header("u", "a:b:c"))))
            .is_some());
    }

    #[test]
    fn malformed_entries_fail_naming_the_variable() {
        for bad in [
            "",
            "user",
            "user:md5:abcd",
            ":sha256:".to_string().as_str(),
            &format!("u:sha256:{}", "A".repeat(64)),
            &format!("u:sha256:{}", "a".repeat(63)),
        ] {
            let err = Credentials::parse("NUMBER_MAPPING_CREDENTIALS", bad)
                .err()
                .unwrap_or_else(|| panic!("accepted {bad:?}"));
            assert!(err.to_string().contains("NUMBER_MAPPING_CREDENTIALS"));
        }
    }

    #[test]
    fn generated_entries_verify() {
        let (pw, entry) = generate_entry("ops").unwrap();
        assert_eq!(pw.len(), 32);
        let creds = Credentials::parse("X", &entry).unwrap();
        assert!(creds
            .verify(Some(&header(&basic_header("ops", &pw))))
            .is_some());
        assert!(!entry.contains(&pw));
    }
}
