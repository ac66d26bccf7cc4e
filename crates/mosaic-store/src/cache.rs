//! The answers of the reads every request makes (whose credential is this, which
//! providers and routes may it call), kept in memory until what they were read from
//! changes.
//!
//! Each cached answer records the [`Generation`] of its tables as it was *before* the
//! read, and is used only while that generation is still current: a write bumps the
//! generation after its commit, so an answer read before (or during) the write is never
//! used after it. Answers also age out after [`MAX_AGE_MS`], which bounds how long a
//! change made outside this process (another replica, until the scaled tier shares
//! invalidation) can go unseen, and keeps `last_used_at` of tokens refreshed.
//!
//! The generations are per process: the scaled tier must bump them from the shared bus
//! as it does revocations (`docs/architecture.md`, per-replica state).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use crate::db::lock;

/// How long an answer is used at most, whatever happens.
pub(crate) const MAX_AGE_MS: i64 = 30_000;

/// How many answers a cache holds before it starts over (an upper bound on memory, far
/// above the credentials and principals a gateway serves at once).
const CAPACITY: usize = 4096;

/// A counter of committed changes to a group of tables.
#[derive(Default)]
pub(crate) struct Generation(AtomicU64);

impl Generation {
    pub(crate) fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Call after the change committed.
    pub(crate) fn bump(&self) {
        self.0.fetch_add(1, Ordering::AcqRel);
    }
}

struct Entry<V> {
    generation: u64,
    read_at_ms: i64,
    /// After this instant the answer is no longer true by itself (an expiring token).
    valid_until_ms: Option<i64>,
    value: V,
}

/// Answers by key, each valid for one generation.
pub(crate) struct ReadCache<K, V> {
    entries: Mutex<HashMap<K, Entry<V>>>,
}

impl<K, V> Default for ReadCache<K, V> {
    fn default() -> Self {
        ReadCache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> ReadCache<K, V> {
    /// The answer for `key`, if it was read in generation `current` less than
    /// [`MAX_AGE_MS`] ago and has not expired by itself.
    pub(crate) fn get(&self, key: &K, current: u64, now_ms: i64) -> Option<V> {
        let mut entries = lock(&self.entries);
        let entry = entries.get(key)?;
        let fresh = entry.generation == current
            && now_ms - entry.read_at_ms < MAX_AGE_MS
            && entry.valid_until_ms.is_none_or(|until| now_ms < until);
        if fresh {
            Some(entry.value.clone())
        } else {
            entries.remove(key);
            None
        }
    }

    /// Keep an answer read in `generation` (read before the query ran).
    pub(crate) fn put(
        &self,
        key: K,
        generation: u64,
        now_ms: i64,
        valid_until_ms: Option<i64>,
        value: V,
    ) {
        let mut entries = lock(&self.entries);
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                generation,
                read_at_ms: now_ms,
                valid_until_ms,
                value,
            },
        );
    }
}

/// The caches of a store, and the generations they follow.
#[derive(Default)]
pub(crate) struct HotReads {
    /// Users, API tokens and web sessions.
    pub(crate) accounts: Generation,
    /// Providers and routes.
    pub(crate) models: Generation,
    /// By token hash: the token's answer, and when the token expires.
    pub(crate) tokens: ReadCache<String, crate::AuthenticatedToken>,
    /// By cookie hash.
    pub(crate) web_sessions: ReadCache<String, crate::WebSessionAuth>,
    /// By acting principal.
    pub(crate) providers: ReadCache<crate::Principal, Vec<crate::ProviderForCall>>,
    /// By acting principal and route name.
    pub(crate) routes: ReadCache<(crate::Principal, String), mosaic_api::RouteInfo>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_used_only_in_its_generation_and_while_young() {
        let generation = Generation::default();
        let cache: ReadCache<&str, u32> = ReadCache::default();
        let g = generation.current();
        cache.put("k", g, 1_000, None, 7);
        assert_eq!(cache.get(&"k", generation.current(), 1_001), Some(7));
        assert_eq!(
            cache.get(&"k", generation.current(), 1_000 + MAX_AGE_MS),
            None
        );

        cache.put("k", g, 2_000, None, 7);
        generation.bump();
        assert_eq!(cache.get(&"k", generation.current(), 2_001), None);
        // Gone for good, not only hidden: the old generation does not come back.
        assert_eq!(cache.get(&"k", g, 2_001), None);
    }

    #[test]
    fn an_answer_read_before_a_change_is_not_used_after_it() {
        let generation = Generation::default();
        let cache: ReadCache<&str, u32> = ReadCache::default();
        // The reader notes the generation, then the writer commits and bumps, then the
        // reader's (stale) answer arrives and is kept: it must not be served.
        let before = generation.current();
        generation.bump();
        cache.put("k", before, 1_000, None, 1);
        assert_eq!(cache.get(&"k", generation.current(), 1_001), None);
    }

    #[test]
    fn an_answer_that_expires_by_itself_is_not_used_after_that() {
        let cache: ReadCache<&str, u32> = ReadCache::default();
        cache.put("token", 0, 1_000, Some(1_500), 1);
        assert_eq!(cache.get(&"token", 0, 1_499), Some(1));
        assert_eq!(cache.get(&"token", 0, 1_500), None);
    }

    #[test]
    fn a_full_cache_starts_over() {
        let cache: ReadCache<usize, usize> = ReadCache::default();
        for i in 0..CAPACITY + 1 {
            cache.put(i, 0, 0, None, i);
        }
        assert_eq!(cache.get(&CAPACITY, 0, 1), Some(CAPACITY));
        assert_eq!(cache.get(&0, 0, 1), None);
    }
}
