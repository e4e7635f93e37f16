//! The key that signs deletion certificates, and its public half for verifiers.

use ed25519_dalek::{SigningKey, VerifyingKey};
use veil_core::config::{AuthSettings, ConfigError};
use veil_core::crypto::jws::{self, JwsError};

use crate::settings::RetentionSettings;

/// JWS `typ` of deletion certificates, so no other Veil token is ever accepted as one.
pub const CERTIFICATE_TYPE: &str = "veil-deletion-certificate+jws";

/// The certificate signing key.
pub struct CertificateKeys {
    signing: SigningKey,
    kid: String,
    /// True when the internal-token key signs because no certificate key is configured.
    pub borrowed_auth_key: bool,
}

impl std::fmt::Debug for CertificateKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateKeys")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl CertificateKeys {
    /// The configured certificate key, or (development) the internal-token key.
    pub fn from_settings(
        service: &RetentionSettings,
        auth: &AuthSettings,
    ) -> Result<Self, ConfigError> {
        let seed = service.certificate_signing_key.expose();
        if seed.is_empty() {
            let signing = veil_core::auth::signing_key_from_base64(auth.signing_key.expose())
                .map_err(|_| ConfigError::invalid("auth.signing_key", "is not usable"))?;
            return Ok(Self {
                signing,
                kid: auth.key_id.clone(),
                borrowed_auth_key: true,
            });
        }
        let signing = veil_core::auth::signing_key_from_base64(seed).map_err(|_| {
            ConfigError::invalid(
                "service.certificate_signing_key",
                "must be a base64 32-byte ed25519 seed",
            )
        })?;
        let kid = if service.certificate_key_id.is_empty() {
            jws::jwk_thumbprint(&signing.verifying_key())
        } else {
            service.certificate_key_id.clone()
        };
        Ok(Self {
            signing,
            kid,
            borrowed_auth_key: false,
        })
    }

    /// A key for tests and tools.
    pub fn from_signing_key(signing: SigningKey, kid: impl Into<String>) -> Self {
        Self {
            signing,
            kid: kid.into(),
            borrowed_auth_key: false,
        }
    }

    /// Key id of new certificates.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key verifiers check certificates with.
    pub fn public_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Signs the certificate document; the JWS payload is exactly its canonical JSON.
    pub fn sign<T: serde::Serialize>(&self, document: &T) -> Result<String, JwsError> {
        jws::sign(&self.signing, &self.kid, CERTIFICATE_TYPE, document)
    }
}
