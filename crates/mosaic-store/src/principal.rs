//! Who is acting. Every store operation takes one.

/// The acting party of a store operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A local user, authenticated by the gateway.
    User { user_id: String, is_admin: bool },
}

impl Principal {
    pub fn user(user_id: impl Into<String>, is_admin: bool) -> Self {
        Principal::User {
            user_id: user_id.into(),
            is_admin,
        }
    }

    /// The local user this principal acts as.
    pub fn user_id(&self) -> &str {
        match self {
            Principal::User { user_id, .. } => user_id,
        }
    }

    /// Whether the principal holds gateway-wide admin rights.
    pub fn is_admin(&self) -> bool {
        match self {
            Principal::User { is_admin, .. } => *is_admin,
        }
    }
}
