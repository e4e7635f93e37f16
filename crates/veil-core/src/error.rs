//! One mapping from error kinds to gRPC status codes.
//!
//! Handlers return [`ServiceError`]; the conversion into [`tonic::Status`] is the only
//! place that decides codes. Internal errors are logged with their full chain under a
//! reference id and returned opaque, so no detail (or personal data) leaks to callers.

use std::fmt;

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request field is missing or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Field path, e.g. `items[3].value`.
        field: String,
        /// Why it was rejected (never the value).
        reason: String,
    },
    /// The addressed entity does not exist (for this tenant).
    #[error("{0} not found")]
    NotFound(String),
    /// The entity exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The system is not in a state that allows the operation (e.g. a legal hold).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The caller is authenticated but lacks a role.
    #[error("{0}")]
    PermissionDenied(String),
    /// No valid credential.
    #[error("{0}")]
    Unauthenticated(String),
    /// A rate or quota limit was hit.
    #[error("{0}")]
    ResourceExhausted(String),
    /// A dependency (database, broker, another service) is unavailable; retry later.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else; details are logged, never returned.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    /// Shorthand for [`ServiceError::InvalidArgument`].
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Shorthand for an internal error from any error type.
    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        Self::Internal(error.into())
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(error: sqlx::Error) -> Self {
        // Every failed statement a caller sees passes here: a lost connection makes the
        // pools check their other connections before use.
        crate::db::note_failure(&error);
        let unavailable = match &error {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) => true,
            sqlx::Error::Database(db) => db.code().as_deref().is_some_and(is_unavailable),
            _ => false,
        };
        if unavailable {
            tracing::warn!(error = %ErrorChain(&error), "database unavailable");
            return Self::Unavailable("database unavailable".into());
        }
        Self::Internal(error.into())
    }
}

/// SQLSTATEs that say the server cannot serve now, not that the statement is wrong: a
/// connection exception (class 08), insufficient resources (53, e.g. too many
/// connections), a shutdown or terminated backend (57P..), and a write reaching a
/// read-only standby during a failover (25006). Retrying later may succeed.
fn is_unavailable(code: &str) -> bool {
    code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") || code == "25006"
}

impl From<ServiceError> for tonic::Status {
    fn from(error: ServiceError) -> Self {
        use tonic::Status;
        match error {
            ServiceError::InvalidArgument { .. } => Status::invalid_argument(error.to_string()),
            ServiceError::NotFound(_) => Status::not_found(error.to_string()),
            ServiceError::AlreadyExists(_) => Status::already_exists(error.to_string()),
            ServiceError::FailedPrecondition(m) => Status::failed_precondition(m),
            ServiceError::PermissionDenied(m) => Status::permission_denied(m),
            ServiceError::Unauthenticated(m) => Status::unauthenticated(m),
            ServiceError::ResourceExhausted(m) => Status::resource_exhausted(m),
            ServiceError::Unavailable(m) => Status::unavailable(m),
            ServiceError::Internal(inner) => {
                let reference = uuid::Uuid::now_v7();
                tracing::error!(%reference, error = %ErrorChain(inner.as_ref()), "internal error");
                Status::internal(format!("internal error (ref {reference})"))
            }
        }
    }
}

/// Displays an error with its whole `source()` chain on one line.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

/// Result alias for handlers.
pub type ServiceResult<T> = Result<T, ServiceError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_side_outages_are_unavailable_and_statement_errors_are_not() {
        for code in ["08006", "53300", "57P01", "57P02", "57P05", "25006"] {
            assert!(is_unavailable(code), "{code}");
        }
        // Unique violation, statement timeout, syntax error.
        for code in ["23505", "57014", "42601"] {
            assert!(!is_unavailable(code), "{code}");
        }
    }

    #[test]
    fn codes_follow_kinds() {
        let cases: Vec<(ServiceError, tonic::Code)> = vec![
            (
                ServiceError::invalid("text", "empty"),
                tonic::Code::InvalidArgument,
            ),
            (
                ServiceError::NotFound("record".into()),
                tonic::Code::NotFound,
            ),
            (
                ServiceError::AlreadyExists("tenant".into()),
                tonic::Code::AlreadyExists,
            ),
            (
                ServiceError::FailedPrecondition("hold".into()),
                tonic::Code::FailedPrecondition,
            ),
            (
                ServiceError::PermissionDenied("no".into()),
                tonic::Code::PermissionDenied,
            ),
            (
                ServiceError::Unauthenticated("no".into()),
                tonic::Code::Unauthenticated,
            ),
            (
                ServiceError::ResourceExhausted("slow".into()),
                tonic::Code::ResourceExhausted,
            ),
            (
                ServiceError::Unavailable("db".into()),
                tonic::Code::Unavailable,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(tonic::Status::from(error).code(), code);
        }
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status = tonic::Status::from(ServiceError::invalid("items[2].value", "empty"));
        assert_eq!(status.message(), "invalid items[2].value: empty");
    }

    #[test]
    fn internal_errors_are_opaque() {
        let error = anyhow::anyhow!("secret detail alice@example.com").context("outer");
        let status = tonic::Status::from(ServiceError::Internal(error));
        assert_eq!(status.code(), tonic::Code::Internal);
        assert!(!status.message().contains("alice"));
        assert!(status.message().starts_with("internal error (ref "));
    }
}
