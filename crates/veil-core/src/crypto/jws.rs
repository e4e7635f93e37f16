//! Compact JWS (RFC 7515) signed with Ed25519 (`alg: EdDSA`, RFC 8037), and JWKS.
//!
//! Used for internal service tokens and consent receipts. Verification is strict: only
//! EdDSA, a known `kid`, the expected `typ`, canonical base64url, no `crit` extensions,
//! and `verify_strict` (rejects small-order keys and malleable signatures).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

/// The only algorithm produced and accepted.
pub const ALG: &str = "EdDSA";
/// Longest token accepted, to bound the work an unauthenticated caller can cause.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;

/// Why a JWS or JWKS was rejected. Messages never echo the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    /// Not three canonical base64url parts with JSON header, or too long.
    #[error("malformed jws: {0}")]
    Malformed(&'static str),
    /// `alg` is not EdDSA (including `none`).
    #[error("unsupported jws algorithm")]
    Algorithm,
    /// `typ` is not the one this verifier expects.
    #[error("unexpected jws type")]
    Type,
    /// No trusted key has the token's `kid`.
    #[error("unknown jws key id")]
    UnknownKey,
    /// The signature does not verify.
    #[error("invalid jws signature")]
    Signature,
    /// The signed payload is not the expected JSON shape.
    #[error("jws payload does not match the expected claims")]
    Payload,
    /// The payload could not be serialized.
    #[error("cannot encode jws payload")]
    Encode,
    /// A JWKS document that cannot be used.
    #[error("invalid jwks: {0}")]
    Jwks(&'static str),
}

/// The protected header written by [`sign`].
#[derive(Debug, Serialize)]
struct Header<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// The protected header as read by [`verify`]; unknown members are ignored except `crit`.
#[derive(Debug, Deserialize)]
struct ReceivedHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<IgnoredAny>,
}

/// Signs `payload` as a compact JWS with header `{"alg":"EdDSA","kid":..,"typ":..}`.
///
/// `typ` names the kind of token (e.g. `veil-internal+jwt`), so a token of one kind is
/// never accepted as another even if the same key signed both.
pub fn sign<T: Serialize + ?Sized>(
    key: &SigningKey,
    kid: &str,
    typ: &str,
    payload: &T,
) -> Result<String, JwsError> {
    let header =
        serde_json::to_vec(&Header { alg: ALG, kid, typ }).map_err(|_| JwsError::Encode)?;
    let payload = serde_json::to_vec(payload).map_err(|_| JwsError::Encode)?;
    let mut token = String::with_capacity((header.len() + payload.len()) * 4 / 3 + 92);
    URL_SAFE_NO_PAD.encode_string(&header, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
    let signature = key.sign(token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
    Ok(token)
}

/// Verifies a compact JWS against `keys` and returns its payload as `T`
/// (`serde_json::Value` for any JSON).
pub fn verify<T: DeserializeOwned>(token: &str, typ: &str, keys: &KeySet) -> Result<T, JwsError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwsError::Malformed("token too long"));
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwsError::Malformed("expected three parts"));
    };
    let header: ReceivedHeader = serde_json::from_slice(&decode(header_b64)?)
        .map_err(|_| JwsError::Malformed("header is not a json object"))?;
    if header.alg != ALG {
        return Err(JwsError::Algorithm);
    }
    if header.crit.is_some() {
        return Err(JwsError::Malformed("unsupported critical header"));
    }
    if header.typ.as_deref() != Some(typ) {
        return Err(JwsError::Type);
    }
    let kid = header.kid.ok_or(JwsError::UnknownKey)?;
    let key = keys.get(&kid).ok_or(JwsError::UnknownKey)?;
    let signature: [u8; 64] = decode(signature_b64)?
        .try_into()
        .map_err(|_| JwsError::Signature)?;
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    key.verify_strict(signing_input.as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| JwsError::Signature)?;
    serde_json::from_slice(&decode(payload_b64)?).map_err(|_| JwsError::Payload)
}

fn decode(part: &str) -> Result<Vec<u8>, JwsError> {
    if part.is_empty() {
        return Err(JwsError::Malformed("empty part"));
    }
    URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| JwsError::Malformed("part is not canonical base64url"))
}

/// RFC 7638 JWK thumbprint of an Ed25519 public key: a stable `kid` derived from the key.
pub fn jwk_thumbprint(key: &VerifyingKey) -> String {
    // Required members in lexicographic order, no whitespace (RFC 7638 section 3).
    let canonical = format!(
        r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(key.as_bytes())
    );
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// Trusted Ed25519 public keys by `kid`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    keys: BTreeMap<String, VerifyingKey>,
}

impl KeySet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the key for `kid`.
    pub fn insert(&mut self, kid: impl Into<String>, key: VerifyingKey) {
        self.keys.insert(kid.into(), key);
    }

    /// Builder form of [`KeySet::insert`].
    pub fn with(mut self, kid: impl Into<String>, key: VerifyingKey) -> Self {
        self.insert(kid, key);
        self
    }

    /// The key for `kid`.
    pub fn get(&self, kid: &str) -> Option<&VerifyingKey> {
        self.keys.get(kid)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no keys.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The set as a JWKS document (`{"keys":[{"kty":"OKP","crv":"Ed25519",..}]}`).
    pub fn to_jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|(kid, key)| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "x": URL_SAFE_NO_PAD.encode(key.as_bytes()),
                    "kid": kid,
                    "alg": ALG,
                    "use": "sig",
                })
            })
            .collect();
        json!({ "keys": keys })
    }

    /// Reads the Ed25519 keys of a JWKS document; keys of other types are skipped, a
    /// malformed Ed25519 key is an error.
    pub fn from_jwks(jwks: &Value) -> Result<Self, JwsError> {
        let entries = jwks
            .get("keys")
            .and_then(Value::as_array)
            .ok_or(JwsError::Jwks("missing keys array"))?;
        let mut set = Self::new();
        for entry in entries {
            let field = |name: &str| entry.get(name).and_then(Value::as_str);
            if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
                continue;
            }
            let kid = field("kid").ok_or(JwsError::Jwks("key without kid"))?;
            let x = field("x").ok_or(JwsError::Jwks("key without x"))?;
            let bytes: [u8; 32] = URL_SAFE_NO_PAD
                .decode(x)
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .ok_or(JwsError::Jwks("x is not 32 base64url bytes"))?;
            let key = VerifyingKey::from_bytes(&bytes)
                .map_err(|_| JwsError::Jwks("x is not an ed25519 point"))?;
            set.insert(kid, key);
        }
        Ok(set)
    }
}

#[cfg(test)]
#[path = "jws_tests.rs"]
mod tests;
