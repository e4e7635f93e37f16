//! Delivery of one-time verification codes to the data subject.
//!
//! Veil does not know how to reach a subject (it keeps no e-mail or phone in clear), so
//! by default the code is returned once in `SubmitRequestResponse.challenge` and the
//! caller (the chatbot, the tenant's web form) delivers it over a channel that proves
//! identity. A deployment that can reach subjects itself plugs in its own [`Notifier`]:
//!
//! ```ignore
//! struct Mailer { smtp: SmtpClient, directory: Directory }
//!
//! #[tonic::async_trait]
//! impl Notifier for Mailer {
//!     async fn deliver(&self, code: &CodeDelivery<'_>) -> Result<bool, ServiceError> {
//!         // The tenant's own directory maps the subject_ref to a verified address.
//!         let address = self.directory.email_of(code.tenant, code.subject_ref).await?;
//!         self.smtp.send(address, code.locale, code.code, code.expires_at).await?;
//!         Ok(true)
//!     }
//! }
//! ```
//!
//! and puts it in `Retention::notifier` at build time. A delivery error never fails the
//! request; the code is returned in the response either way, so a caller can always
//! deliver it (or ignore it when the notifier already did).

use time::OffsetDateTime;
use uuid::Uuid;
use veil_core::error::ServiceError;
use veil_core::types::{SubjectRef, TenantId};

/// What a notifier gets for one code. `code` is a secret: never log it.
pub struct CodeDelivery<'a> {
    pub tenant: TenantId,
    pub request_id: Uuid,
    pub subject_ref: &'a SubjectRef,
    /// BCP 47 locale of the request, for the message's language.
    pub locale: &'a str,
    pub code: &'a str,
    pub expires_at: OffsetDateTime,
}

/// Sends verification codes to data subjects.
#[tonic::async_trait]
pub trait Notifier: Send + Sync {
    /// Delivers one code; `Ok(true)` when it went out, `Ok(false)` when this notifier
    /// leaves delivery to the caller.
    async fn deliver(&self, delivery: &CodeDelivery<'_>) -> Result<bool, ServiceError>;
}

/// The default: delivers nothing; the caller delivers the code from the response.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoopNotifier;

#[tonic::async_trait]
impl Notifier for NoopNotifier {
    async fn deliver(&self, _delivery: &CodeDelivery<'_>) -> Result<bool, ServiceError> {
        Ok(false)
    }
}
