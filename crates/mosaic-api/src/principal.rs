//! Who is acting. Every store operation and every run takes one; it lives in the
//! contract crate so that every crate can name it without depending on the store.
//!
//! Only a local user exists today. A remote user of a peer gateway, whose visibility
//! comes from grants rather than ownership, is to be a second variant: nothing here
//! answers "which local user is this" for every principal, so such a variant cannot be
//! taken for a local user by accident ([`Principal::local_user`] says `None`), and the
//! store's visibility mechanism matches on the variants without a wildcard.

/// The acting party of an operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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

    /// The local user this principal is, if it is one.
    pub fn local_user(&self) -> Option<&str> {
        match self {
            Principal::User { user_id, .. } => Some(user_id),
        }
    }

    /// Whether the principal holds gateway-wide admin rights.
    pub fn is_admin(&self) -> bool {
        match self {
            Principal::User { is_admin, .. } => *is_admin,
        }
    }
}
