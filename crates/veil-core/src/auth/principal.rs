//! The verified caller of an internal RPC.

use tonic::{Request, Status};

use crate::types::{PrincipalId, RequestId, Role, TenantId};

/// Who is calling, as proven by a verified internal token; [`super::InternalAuth`] puts
/// it into the request extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant, or none for platform-wide and service-wide principals.
    pub tenant: Option<TenantId>,
    /// The principal's id.
    pub principal_id: PrincipalId,
    /// The principal's roles.
    pub roles: Vec<Role>,
    /// The public request this call belongs to.
    pub request_id: RequestId,
}

impl Principal {
    /// The principal of a request that passed [`super::InternalAuth`].
    pub fn from_request<T>(request: &Request<T>) -> Result<&Principal, Status> {
        request
            .extensions()
            .get::<Principal>()
            .ok_or_else(|| Status::unauthenticated("missing or invalid internal token"))
    }

    /// Whether the principal has `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Passes if the principal has at least one of `roles`; otherwise PERMISSION_DENIED
    /// naming the roles that would do. Roles are never implied: list `PlatformAdmin`
    /// where platform admins may act.
    pub fn require_any(&self, roles: &[Role]) -> Result<(), Status> {
        if roles.iter().any(|role| self.has_role(*role)) {
            return Ok(());
        }
        let names: Vec<&str> = roles.iter().map(Role::as_str).collect();
        Err(Status::permission_denied(format!(
            "requires one of the roles: {}",
            names.join(", ")
        )))
    }

    /// The tenant the call acts in; PERMISSION_DENIED for a principal bound to none.
    pub fn tenant(&self) -> Result<TenantId, Status> {
        self.tenant
            .ok_or_else(|| Status::permission_denied("principal is not bound to a tenant"))
    }
}
