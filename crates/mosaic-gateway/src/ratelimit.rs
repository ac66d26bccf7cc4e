//! A small fixed-window rate limiter for the endpoints that guess at secrets (login,
//! bootstrap). In memory and per replica: it slows guessing down; it is not a quota.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Keys tracked at most; memory stays bounded whatever the callers send.
const MAX_KEYS: usize = 50_000;

/// Counts attempts per key within a window.
pub struct RateLimiter {
    window: Duration,
    max: u32,
    slots: Mutex<HashMap<String, (Instant, u32)>>,
}

impl RateLimiter {
    pub fn new(max: u32, window: Duration) -> Self {
        RateLimiter {
            window,
            max,
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Count an attempt for `key`; `Err(retry_after)` when over the limit.
    pub fn check(&self, key: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let mut slots = match self.slots.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if slots.len() >= MAX_KEYS {
            let window = self.window;
            slots.retain(|_, (start, _)| now.duration_since(*start) < window);
            if slots.len() >= MAX_KEYS && !slots.contains_key(key) {
                // Under a flood of distinct keys, refuse new ones rather than grow.
                return Err(self.window);
            }
        }
        let slot = slots.entry(key.to_string()).or_insert((now, 0));
        if now.duration_since(slot.0) >= self.window {
            *slot = (now, 0);
        }
        if slot.1 >= self.max {
            return Err(self.window.saturating_sub(now.duration_since(slot.0)));
        }
        slot.1 += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_over_the_limit_are_refused_until_the_window_passes() {
        let limiter = RateLimiter::new(2, Duration::from_millis(50));
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_ok());
        assert!(limiter.check("a").is_err());
        assert!(limiter.check("b").is_ok(), "keys are independent");
        std::thread::sleep(Duration::from_millis(60));
        assert!(limiter.check("a").is_ok());
    }
}
