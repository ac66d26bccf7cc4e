//! The acting principal as the store needs it: [`Principal`] itself lives in
//! `mosaic-api` (re-exported from this crate), so every crate can name it without the
//! store.

pub use mosaic_api::Principal;

use crate::{Result, StoreError};

/// The local user `p` is, for what only a local user does or has (their sessions,
/// tokens, preferences, personal items); `Forbidden` for any other principal.
pub(crate) fn local_user(p: &Principal) -> Result<&str> {
    p.local_user()
        .ok_or_else(|| StoreError::Forbidden("only a local user may do this".into()))
}
