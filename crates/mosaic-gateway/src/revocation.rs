//! Ending what a revoked credential still holds open.
//!
//! A request is authenticated once, when it arrives; an event stream or a streamed
//! completion then lives for minutes. Every such response takes a [`Watch`] on the
//! credential that opened it, and the store's revocations (see
//! `mosaic_store::Revoked`) cancel the watches they concern at once: disabling or
//! deleting a user, revoking a token, logging out, an admin's password reset.
//!
//! A credential can be revoked between its check and the moment its watch is
//! registered. Each revocation therefore bumps an epoch, and the last revocations are
//! remembered with theirs: a watch for a request authenticated before a revocation of
//! one of its keys starts out cancelled. A request older than everything remembered
//! is treated as revoked (it has to reconnect), which is safe and, at 4,096
//! revocations of memory, never seen in practice.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use mosaic_store::Revoked;
use tokio_util::sync::CancellationToken;

use crate::auth::{Auth, Credential};

/// How many past revocations are kept to close the check-then-watch race.
const REMEMBERED: usize = 4096;

/// What a watch can be cut by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    WebSessionsOf(String),
    TokensOf(String),
    Token(String),
    WebSession(String),
}

fn keys_of(what: &Revoked) -> Vec<Key> {
    match what {
        Revoked::User { user_id } => vec![Key::User(user_id.clone())],
        Revoked::Sessions { user_id, tokens } => {
            let mut keys = vec![Key::WebSessionsOf(user_id.clone())];
            if *tokens {
                keys.push(Key::TokensOf(user_id.clone()));
            }
            keys
        }
        Revoked::ApiToken { token_id } => vec![Key::Token(token_id.clone())],
        Revoked::WebSession { session_id } => vec![Key::WebSession(session_id.clone())],
    }
}

fn keys_of_auth(auth: &Auth) -> Vec<Key> {
    let user = auth.user.id.clone();
    match &auth.credential {
        Credential::Token { token_id, .. } => vec![
            Key::User(user.clone()),
            Key::TokensOf(user),
            Key::Token(token_id.clone()),
        ],
        Credential::Cookie { session_id } => vec![
            Key::User(user.clone()),
            Key::WebSessionsOf(user),
            Key::WebSession(session_id.clone()),
        ],
    }
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    watches: HashMap<Key, HashMap<u64, CancellationToken>>,
    /// The latest revocations, oldest first, with the epoch each one ended.
    recent: VecDeque<(u64, Key)>,
}

/// The open watches of a gateway, by credential.
#[derive(Default)]
pub struct Revocations {
    epoch: AtomicU64,
    registry: Mutex<Registry>,
}

fn lock(m: &Mutex<Registry>) -> std::sync::MutexGuard<'_, Registry> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

impl Revocations {
    /// The epoch to note before a credential is checked against the store.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Cancel every watch the revocation concerns.
    pub fn revoke(&self, what: &Revoked) {
        let keys = keys_of(what);
        let mut reg = lock(&self.registry);
        let epoch = self.epoch.fetch_add(1, Ordering::SeqCst) + 1;
        for key in keys {
            if let Some(watches) = reg.watches.remove(&key) {
                for token in watches.values() {
                    token.cancel();
                }
            }
            if reg.recent.len() == REMEMBERED {
                reg.recent.pop_front();
            }
            reg.recent.push_back((epoch, key));
        }
    }

    /// A watch on the credential of this request, cancelled when it is revoked.
    pub fn watch(self: &Arc<Self>, auth: &Auth) -> Watch {
        let keys = keys_of_auth(auth);
        let token = CancellationToken::new();
        let mut reg = lock(&self.registry);
        let revoked_meanwhile = match reg.recent.front() {
            // Older than what is remembered: nothing proves it still stands.
            Some((oldest, _)) if reg.recent.len() == REMEMBERED && *oldest > auth.epoch => true,
            _ => reg
                .recent
                .iter()
                .rev()
                .take_while(|(epoch, _)| *epoch > auth.epoch)
                .any(|(_, key)| keys.contains(key)),
        };
        if revoked_meanwhile {
            token.cancel();
        }
        reg.next_id += 1;
        let id = reg.next_id;
        for key in &keys {
            reg.watches
                .entry(key.clone())
                .or_default()
                .insert(id, token.clone());
        }
        drop(reg);
        Watch {
            token,
            keys,
            id,
            owner: self.clone(),
        }
    }

    /// Watches registered now (for tests and metrics).
    pub fn open_watches(&self) -> usize {
        let reg = lock(&self.registry);
        let mut ids: Vec<u64> = reg
            .watches
            .values()
            .flat_map(|w| w.keys().copied())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.len()
    }
}

/// Held by a long response for as long as it lives; forgotten when dropped.
pub struct Watch {
    token: CancellationToken,
    keys: Vec<Key>,
    id: u64,
    owner: Arc<Revocations>,
}

impl Watch {
    /// Completes when the credential is revoked.
    pub async fn revoked(&self) {
        self.token.cancelled().await
    }

    pub fn is_revoked(&self) -> bool {
        self.token.is_cancelled()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mut reg = lock(&self.owner.registry);
        for key in &self.keys {
            if let Some(watches) = reg.watches.get_mut(key) {
                watches.remove(&self.id);
                if watches.is_empty() {
                    reg.watches.remove(key);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use mosaic_api::User;
    use mosaic_store::Principal;

    fn auth(user: &str, credential: Credential, epoch: u64) -> Auth {
        Auth {
            user: User {
                id: user.into(),
                username: user.into(),
                display_name: user.into(),
                is_admin: false,
                disabled: false,
                created_at: String::new(),
                updated_at: String::new(),
            },
            principal: Principal::user(user, false),
            credential,
            epoch,
        }
    }

    fn token(id: &str) -> Credential {
        Credential::Token {
            token_id: id.into(),
            scopes: Vec::new(),
        }
    }

    fn cookie(id: &str) -> Credential {
        Credential::Cookie {
            session_id: id.into(),
        }
    }

    #[test]
    fn a_revocation_cancels_exactly_the_watches_it_concerns() {
        let r = Arc::new(Revocations::default());
        let t1 = r.watch(&auth("ana", token("t1"), 0));
        let t2 = r.watch(&auth("ana", token("t2"), 0));
        let c1 = r.watch(&auth("ana", cookie("c1"), 0));
        let bo = r.watch(&auth("bo", token("t3"), 0));
        r.revoke(&Revoked::ApiToken {
            token_id: "t1".into(),
        });
        assert!(t1.is_revoked() && !t2.is_revoked() && !c1.is_revoked());
        r.revoke(&Revoked::Sessions {
            user_id: "ana".into(),
            tokens: false,
        });
        assert!(c1.is_revoked() && !t2.is_revoked());
        r.revoke(&Revoked::User {
            user_id: "ana".into(),
        });
        assert!(t2.is_revoked() && !bo.is_revoked());
    }

    #[test]
    fn a_revocation_between_check_and_watch_still_counts() {
        let r = Arc::new(Revocations::default());
        let checked_at = r.epoch();
        r.revoke(&Revoked::WebSession {
            session_id: "c1".into(),
        });
        assert!(r.watch(&auth("ana", cookie("c1"), checked_at)).is_revoked());
        // Checked after the revocation (the store refused it then): not this watch's concern.
        let later = r.watch(&auth("ana", cookie("c2"), r.epoch()));
        assert!(!later.is_revoked());
    }

    #[test]
    fn dropped_watches_are_forgotten() {
        let r = Arc::new(Revocations::default());
        let w = r.watch(&auth("ana", token("t1"), 0));
        assert_eq!(r.open_watches(), 1);
        drop(w);
        assert_eq!(r.open_watches(), 0);
        assert!(lock(&r.registry).watches.is_empty());
    }

    #[test]
    fn a_request_older_than_what_is_remembered_is_cut() {
        let r = Arc::new(Revocations::default());
        for i in 0..REMEMBERED + 10 {
            r.revoke(&Revoked::ApiToken {
                token_id: format!("x{i}"),
            });
        }
        assert!(r.watch(&auth("ana", token("t1"), 0)).is_revoked());
        assert!(!r.watch(&auth("ana", token("t1"), r.epoch())).is_revoked());
    }
}
