//! Cryptographic building blocks: secret keys, the AES-256-GCM record envelope, key
//! wrapping and the master-key provider, deterministic tokens and subject refs, and
//! compact JWS with Ed25519.
//!
//! Everything here is pure and synchronous except [`KeyProvider`], whose later
//! implementations (cloud KMS, HashiCorp Vault transit) talk to a remote service.

mod envelope;
mod error;
pub mod jws;
mod keys;
mod provider;
pub mod signing;
mod token;
mod wrap;

pub use envelope::{Aad, DataCipher, NONCE_LEN, SEAL_OVERHEAD, TAG_LEN, open, seal};
pub use error::CryptoError;
pub use keys::{DataKey, KeyBytes};
pub use provider::{KeyProvider, LocalKeyProvider, MasterWrappedKey, parse_key_file};
pub use token::{
    PEER_KEY_LABEL, PSEUDONYM_KEY_LABEL, TOKEN_KEY_LABEL, TOKEN_PREFIX, constant_time_eq,
    derive_key, keyed_digest, peer_ref, subject_ref, token_for, token_matches,
};
pub use wrap::{KeyPurpose, WrapContext, WrappedKey, unwrap_key, wrap_key};
