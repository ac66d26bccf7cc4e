//! Credentials that stop being valid, announced the moment the store commits the change.
//!
//! Refusing a revoked credential on its next request is the store's job (the row is
//! gone, or the user is disabled). What lives longer than a request (an open event
//! stream, a run in flight) must hear about it too, so every operation that ends a
//! credential tells the listeners registered with [`Store::on_revoke`], after its
//! transaction committed. The gateway ends streams and interrupts runs from there; a
//! removed federation peer will be one more variant.

use std::sync::Arc;

use crate::Store;

/// What stopped being valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// The user was disabled or deleted: every credential of theirs, and their runs.
    User { user_id: String },
    /// Every web session of the user ended (a new password); with `tokens`, their API
    /// tokens too (an admin's reset).
    Sessions { user_id: String, tokens: bool },
    /// One API token was revoked.
    ApiToken { token_id: String },
    /// One web session ended (logout).
    WebSession { session_id: String },
}

/// Called, synchronously and after the commit, with each revocation.
pub type RevokeListener = Arc<dyn Fn(&Revoked) + Send + Sync>;

impl Store {
    /// Hear about every credential this store revokes from now on.
    pub fn on_revoke(&self, listener: RevokeListener) {
        crate::db::lock(&self.inner().revoke_listeners).push(listener);
    }

    /// Tell the listeners (call after the revoking transaction committed).
    pub(crate) fn revoked(&self, what: Revoked) {
        // First: no cached answer about a credential outlives its revocation.
        self.inner().hot.accounts.bump();
        let listeners = crate::db::lock(&self.inner().revoke_listeners).clone();
        for listener in listeners {
            listener(&what);
        }
    }
}
