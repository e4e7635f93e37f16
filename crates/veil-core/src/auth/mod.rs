//! Internal service tokens.
//!
//! The gateway authenticates public callers and forwards each call with a short-lived
//! EdDSA-signed token whose audience is the target service and which carries the
//! principal, tenant, roles and request id. Internal services accept nothing else:
//! [`InternalAuth`] verifies the token and puts a [`Principal`] into the request
//! extensions; handlers take tenant and roles from there, never from the request body.
//! Service-to-service calls attach their own token with [`BearerMinter`].
//!
//! Tokens are reused by callers for half their lifetime and their verification is
//! cached by receivers (`reuse`, `verified`): an Ed25519 check per call was most of the
//! CPU of a small internal call.

mod claims;
mod interceptor;
mod principal;
mod reuse;
mod verified;

pub use claims::{
    DEFAULT_LEEWAY, DEFAULT_TTL, INTERNAL_TOKEN_TYPE, InternalClaims, MAX_LIFETIME, TokenIssuer,
    TokenVerifier,
};
pub use interceptor::{
    AUTHORIZATION_HEADER, BearerMinter, InternalAuth, REQUEST_ID_HEADER, attach_bearer,
    bearer_token,
};
pub use principal::Principal;

pub use crate::crypto::signing::{
    generate_signing_key, load_signing_key, signing_key_from_base64, signing_key_from_pem,
    signing_key_to_base64, signing_key_to_pem, verifying_key_from_base64, verifying_key_to_base64,
};

use crate::crypto::jws::JwsError;

/// Why an internal token was not minted or not accepted. Never contains token contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// Signature, algorithm, key id, type or shape is wrong.
    #[error("invalid internal token: {0}")]
    Token(#[from] JwsError),
    /// `exp` has passed (beyond the leeway).
    #[error("internal token expired")]
    Expired,
    /// `iat` is in the future (beyond the leeway).
    #[error("internal token issued in the future")]
    NotYetValid,
    /// `exp - iat` is longer than the verifier allows, or not positive.
    #[error("internal token lifetime is not within the allowed maximum")]
    Lifetime,
    /// `aud` is another service.
    #[error("internal token is for another audience")]
    Audience,
    /// No `authorization: Bearer` metadata.
    #[error("missing bearer token")]
    Missing,
    /// The system clock is before 1970.
    #[error("system clock is before the unix epoch")]
    Clock,
}

#[cfg(test)]
mod tests;
