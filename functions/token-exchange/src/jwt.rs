//! The RS256 JWT that stands for an agent in JWT mode.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivateKeyDer;
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

/// The JOSE header of every token: RS256, as the vendor's demo signs.
const HEADER: &str = r#"{"typ":"JWT","alg":"RS256"}"#;

/// A parsed RSA private key, ready to sign (parsed and checked once, at init).
pub struct PrivateKey(RsaKeyPair);

pub struct Signer {
    key: RsaKeyPair,
    rng: SystemRandom,
    header_b64: String,
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
/// string of Alibaba's Java demo (whitespace ignored). `ring` checks the key's consistency
/// here, so a broken key fails at init.
pub fn parse_private_key(text: &str) -> Result<PrivateKey, KeyError> {
    let text = text.trim();
    let der = if text.starts_with("-----BEGIN") {
        PrivateKeyDer::from_pem_slice(text.as_bytes())
            .map_err(|_| KeyError("not a private key in PEM".into()))?
    } else {
        let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
        let der = STANDARD
            .decode(compact.as_bytes())
            .map_err(|_| KeyError("neither PEM nor base64 PKCS#8 DER".into()))?;
        PrivateKeyDer::Pkcs8(der.into())
    };
    let pair = match &der {
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        _ => return Err(KeyError("not an RSA private key (PKCS#1 or PKCS#8)".into())),
    }
    .map_err(|e| KeyError(format!("not a usable RSA private key: {e}")))?;
    Ok(PrivateKey(pair))
}

impl Signer {
    /// `exp_millis`: put `exp` in milliseconds (some of the vendor's pages say so) instead of
    /// RFC 7519's seconds. Signs once to prove the key works (at init, not on a call).
    pub fn new(
        key: PrivateKey,
        issuer: String,
        ttl_seconds: i64,
        exp_millis: bool,
    ) -> Result<Self, KeyError> {
        let signer = Signer {
            key: key.0,
            rng: SystemRandom::new(),
            header_b64: URL_SAFE_NO_PAD.encode(HEADER),
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
        // JWS compact serialization (RFC 7515): base64url(header).base64url(claims).base64url(sig).
        let claims = serde_json::to_vec(&claims)
            .map_err(|_| KeyError("claims could not be serialized".into()))?;
        let mut jwt = String::with_capacity(1024);
        jwt.push_str(&self.header_b64);
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(claims, &mut jwt);
        let mut signature = vec![0; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, jwt.as_bytes(), &mut signature)
            .map_err(|_| KeyError("signing failed".into()))?;
        jwt.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut jwt);
        Ok((jwt, jti))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RSAPrivateKey (PKCS#1) inside a PKCS#8 PrivateKeyInfo: its last element.
    fn pkcs1_of(pkcs8: &[u8]) -> Vec<u8> {
        // (tag, header length, content length) of the DER element at `at`.
        let element = |at: usize| -> (u8, usize, usize) {
            let first = pkcs8[at + 1] as usize;
            if first < 0x80 {
                (pkcs8[at], 2, first)
            } else {
                let n = first & 0x7f;
                let len = pkcs8[at + 2..at + 2 + n]
                    .iter()
                    .fold(0usize, |acc, b| acc << 8 | *b as usize);
                (pkcs8[at], 2 + n, len)
            }
        };
        let (_, outer_header, _) = element(0);
        let mut at = outer_header;
        for _ in 0..2 {
            let (_, h, l) = element(at); // version, AlgorithmIdentifier
            at += h + l;
        }
        let (tag, h, l) = element(at);
        assert_eq!(tag, 0x04, "privateKey OCTET STRING");
        pkcs8[at + h..at + h + l].to_vec()
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn claims_of(jwt: &str) -> serde_json::Value {
        let parts: Vec<&str> = jwt.split('.').collect();
        assert_eq!(parts.len(), 3, "{jwt}");
        assert_eq!(URL_SAFE_NO_PAD.decode(parts[0]).unwrap(), HEADER.as_bytes());
        assert_eq!(
            URL_SAFE_NO_PAD.decode(parts[2]).unwrap().len(),
            256,
            "2048-bit signature"
        );
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap()
    }

    #[test]
    fn every_key_form_of_the_vendor_docs_signs() {
        let keys = testkit::fake_idp::KeyPair::generate();
        let pkcs8 = STANDARD.decode(&keys.private_base64).unwrap();
        for text in [
            keys.private_base64.clone(),
            keys.private_pem.clone(),
            pem("RSA PRIVATE KEY", &pkcs1_of(&pkcs8)),
        ] {
            let key = parse_private_key(&text).unwrap();
            let signer = Signer::new(key, "crm".into(), 300, false).unwrap();
            let (jwt, jti) = signer.sign("agent-7", 1_700_000_000).unwrap();
            let claims = claims_of(&jwt);
            assert_eq!(claims["iss"], "crm");
            assert_eq!(claims["user_name"], "agent-7");
            assert_eq!(claims["exp"], 1_700_000_300);
            assert_eq!(claims["jti"], jti.as_str());
        }
    }

    #[test]
    fn broken_keys_are_refused_without_echoing_them() {
        let keys = testkit::fake_idp::KeyPair::generate();
        let truncated = &keys.private_base64[..keys.private_base64.len() / 2];
        for text in [
            "not a key",
            truncated,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        ] {
            let Err(e) = parse_private_key(text) else {
                panic!("accepted a broken key");
            };
            assert!(!e.to_string().contains("AAAA"), "{e}");
            assert!(!e.to_string().contains(&truncated[..16]), "{e}");
        }
    }
}
