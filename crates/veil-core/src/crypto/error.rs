//! The crypto error type.

/// Why a crypto operation failed. Messages never contain key material or plaintext.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Sealed input shorter than nonce + tag.
    #[error("sealed data is too short")]
    Truncated,
    /// Authentication failed: wrong key, wrong associated data, or tampering.
    #[error("decryption failed: wrong key, wrong context or tampered data")]
    Decrypt,
    /// The cipher refused the input (only for inputs beyond AES-GCM's size limit).
    #[error("encryption failed")]
    Encrypt,
    /// Key material of the wrong size.
    #[error("invalid key: expected 32 bytes")]
    KeyLength,
    /// Key material that is not base64.
    #[error("invalid key: not valid base64")]
    KeyEncoding,
    /// A bad entry in a master key configuration; `entry` names it (a line or version).
    #[error("invalid master key entry {entry}: {reason}")]
    KeyEntry {
        /// Which entry, e.g. `line 3` or `version 2`.
        entry: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No master key configured at all.
    #[error("no master key configured")]
    NoMasterKey,
    /// A wrapped key names a master key version the provider does not have.
    #[error("unknown master key version {0}")]
    UnknownKeyVersion(u32),
    /// The key file could not be read.
    #[error("cannot read key file {path}")]
    KeyFile {
        /// The file that was read.
        path: String,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Not a PKCS#8 Ed25519 private key PEM.
    #[error("invalid signing key: expected a pkcs8 ed25519 pem")]
    Pem,
    /// Not a 32-byte Ed25519 public key.
    #[error("invalid public key: expected 32 bytes of an ed25519 point in base64")]
    PublicKey,
    /// A remote key provider failed.
    #[error("key provider error: {0}")]
    Provider(String),
}
