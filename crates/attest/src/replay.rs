//! The replay cache: remembers each accepted (key id, nonce) until its signature expires.
//!
//! A signed call may be used once. After a signature has verified, the gateway records its
//! (kid, nonce) with the signature's `exp`; a second call with the same pair before `exp` is a
//! replay and is refused. After `exp` the entry is dropped: the signature itself is then
//! refused as expired, so the nonce no longer needs remembering.
//!
//! The cache is bounded. When it is full of unexpired entries it refuses new signatures
//! rather than evicting one (eviction would reopen a replay window): it fails closed. Size it
//! for the peak call rate times the longest allowed validity window.
//!
//! The cache lives in memory and is empty after a restart; the verifier's
//! `issued_not_before` (set to the start time) refuses signatures from before it.
use std::collections::{BTreeSet, HashMap};

/// Why a nonce was not recorded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    #[error("nonce already used with key `{kid}` within its validity window; sign every call with a fresh nonce")]
    Replayed { kid: String },
    #[error(
        "the replay cache is full ({capacity} unexpired signatures); the call is refused rather than risk a replay; \
         retry shortly, shorten signature lifetimes, or raise the cache capacity"
    )]
    Full { capacity: usize },
}

/// A bounded set of (kid, nonce) pairs, each kept until its expiry time.
#[derive(Debug)]
pub struct ReplayCache {
    capacity: usize,
    /// (kid, nonce) → exp.
    seen: HashMap<(String, String), u64>,
    /// (exp, kid, nonce), ordered by expiry so expired entries are pruned from the front.
    by_expiry: BTreeSet<(u64, String, String)>,
}

impl ReplayCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records (kid, nonce) until `exp`, at time `now`. Entries with `exp <= now` are expired
    /// and pruned first.
    pub fn record(&mut self, kid: &str, nonce: &str, exp: u64, now: u64) -> Result<(), ReplayError> {
        self.prune(now);
        let key = (kid.to_owned(), nonce.to_owned());
        if self.seen.contains_key(&key) {
            return Err(ReplayError::Replayed { kid: kid.to_owned() });
        }
        if self.seen.len() >= self.capacity {
            return Err(ReplayError::Full {
                capacity: self.capacity,
            });
        }
        self.by_expiry.insert((exp, key.0.clone(), key.1.clone()));
        self.seen.insert(key, exp);
        Ok(())
    }

    fn prune(&mut self, now: u64) {
        while let Some(first) = self.by_expiry.first() {
            if first.0 > now {
                break;
            }
            if let Some((_, kid, nonce)) = self.by_expiry.pop_first() {
                self.seen.remove(&(kid, nonce));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_use_within_the_window_is_a_replay() {
        let mut cache = ReplayCache::new(10);
        cache.record("k", "n1", 100, 10).unwrap();
        assert_eq!(
            cache.record("k", "n1", 100, 50),
            Err(ReplayError::Replayed { kid: "k".into() })
        );
        // The same nonce under another key is a different signature.
        cache.record("other", "n1", 100, 50).unwrap();
        cache.record("k", "n2", 100, 50).unwrap();
        assert_eq!(cache.len(), 3);
    }

    #[test]
    fn entries_are_dropped_once_expired() {
        let mut cache = ReplayCache::new(10);
        cache.record("k", "n", 100, 10).unwrap();
        cache.record("k", "m", 200, 10).unwrap();
        cache.record("k", "x", 150, 100).unwrap();
        assert_eq!(cache.len(), 2, "the entry expiring at 100 is pruned at 100");
        cache.record("k", "n", 300, 100).unwrap();
        cache.record("k", "y", 400, 250).unwrap();
        assert_eq!(cache.len(), 2, "m and x expired");
    }

    #[test]
    fn full_cache_refuses_instead_of_evicting() {
        let mut cache = ReplayCache::new(2);
        cache.record("k", "a", 100, 0).unwrap();
        cache.record("k", "b", 100, 0).unwrap();
        assert_eq!(cache.record("k", "c", 100, 50), Err(ReplayError::Full { capacity: 2 }));
        // The refused nonce was not recorded, and the old ones are still remembered.
        assert_eq!(
            cache.record("k", "a", 100, 50),
            Err(ReplayError::Replayed { kid: "k".into() })
        );
        // Once the entries expire there is room again.
        cache.record("k", "c", 200, 100).unwrap();
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn zero_capacity_refuses_everything() {
        let mut cache = ReplayCache::new(0);
        assert!(matches!(cache.record("k", "a", 100, 0), Err(ReplayError::Full { .. })));
    }
}
