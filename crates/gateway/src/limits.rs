//! What one principal may hold and send (T17), and the gateway-wide session cap.
//!
//! * Sessions take a place before anything is started for them ([`Limiter::reserve_session`]):
//!   the place is taken under one lock (in all, and per principal), so concurrent
//!   `initialize` requests cannot overshoot while their handshakes run; dropping the place
//!   (a failed handshake, a cancelled request, a closed or reaped session) gives it back.
//!   A principal's stateless (2026-07-28) session takes a place like a legacy one: it
//!   holds its own upstream connections too.
//! * Requests pass [`Limiter::admit`] before the dispatcher sees them: at most
//!   `max_concurrent_calls` of one principal are answered at once (more are refused at
//!   once, never queued), and a token bucket per principal (`governor`'s GCRA) bounds the
//!   rate. The [`Admitted`] proof holds the concurrency place until the answer is ready.
//!
//! Refusals are logged (a warning at most every 10 s, with the count) and never recorded
//! in the audit log: nothing reached a stage, and a flood must not become durable writes.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use governor::{DefaultKeyedRateLimiter, Quota, clock::Clock};
use portcullis_core::Principal;

use crate::config::{PrincipalLimits, RateLimit};

/// A limit a client reached. Each case answers JSON-RPC `Overloaded` (-32012) and says
/// which setting raises it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitExceeded {
    /// The gateway holds `listen.max_sessions` sessions.
    #[error("the gateway holds its limit of {max} sessions; close idle sessions or raise `listen.max_sessions`")]
    Sessions { max: usize },
    /// The principal holds `limits.max_sessions_per_principal` sessions.
    #[error(
        "you hold your limit of {max} sessions; close sessions you no longer use (HTTP DELETE) or raise `limits.max_sessions_per_principal`"
    )]
    PrincipalSessions { max: usize },
    /// `limits.max_concurrent_calls_per_principal` of the principal's requests are in progress.
    #[error(
        "{max} of your requests are already in progress; wait for their answers or raise `limits.max_concurrent_calls_per_principal`"
    )]
    ConcurrentCalls { max: usize },
    /// The principal's token bucket is empty.
    #[error(
        "you sent more than {per_second} requests a second (burst {burst}); retry in {} ms or raise `limits.calls_per_second_per_principal`",
        retry_after.as_millis().max(1)
    )]
    Rate {
        per_second: u32,
        burst: u32,
        retry_after: Duration,
    },
}

impl LimitExceeded {
    /// 503 when the gateway as a whole is full; 429 when the caller reached its own limit.
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            LimitExceeded::Sessions { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
            LimitExceeded::PrincipalSessions { .. }
            | LimitExceeded::ConcurrentCalls { .. }
            | LimitExceeded::Rate { .. } => http::StatusCode::TOO_MANY_REQUESTS,
        }
    }

    /// When a retry may succeed, for a `Retry-After` header (whole seconds, at least 1).
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            LimitExceeded::Rate { retry_after, .. } => Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            LimitExceeded::Sessions { .. }
            | LimitExceeded::PrincipalSessions { .. }
            | LimitExceeded::ConcurrentCalls { .. } => None,
        }
    }
}

/// The session, concurrency and rate limits of a gateway.
pub(crate) struct Limiter {
    sessions: Arc<Counted>,
    calls: Arc<Counted>,
    rate: Option<(RateLimit, DefaultKeyedRateLimiter<Principal>)>,
    warned: Arc<Warned>,
}

impl Limiter {
    /// Limits of at most `max_sessions` sessions in all, and `limits` per principal.
    pub(crate) fn new(max_sessions: usize, limits: PrincipalLimits) -> Self {
        let warned = Arc::new(Warned::default());
        Self {
            sessions: Arc::new(Counted::new(Some(max_sessions), limits.max_sessions, warned.clone())),
            calls: Arc::new(Counted::new(None, limits.max_concurrent_calls, warned.clone())),
            rate: limits.rate.map(|rate| {
                let quota = Quota::per_second(rate.per_second).allow_burst(rate.burst);
                (rate, DefaultKeyedRateLimiter::hashmap(quota))
            }),
            warned,
        }
    }

    /// A session place for `principal`, given back when dropped.
    pub(crate) fn reserve_session(&self, principal: &Principal) -> Result<SessionPlace, LimitExceeded> {
        let place = self.sessions.take(principal, |all| match all {
            true => LimitExceeded::Sessions {
                max: self.sessions.max_total.unwrap_or_default(),
            },
            false => LimitExceeded::PrincipalSessions {
                max: self.sessions.max_per_principal,
            },
        })?;
        Ok(SessionPlace { _place: place })
    }

    /// Admits one request of `principal`: a concurrency place (held by the proof), then a
    /// token from its bucket. A refused request takes neither.
    pub(crate) fn admit(&self, principal: &Principal) -> Result<Admitted, LimitExceeded> {
        let place = self.calls.take(principal, |_| LimitExceeded::ConcurrentCalls {
            max: self.calls.max_per_principal,
        })?;
        if let Some((rate, limiter)) = &self.rate
            && let Err(not_until) = limiter.check_key(principal)
        {
            let refusal = LimitExceeded::Rate {
                per_second: rate.per_second.get(),
                burst: rate.burst.get(),
                retry_after: not_until.wait_time_from(limiter.clock().now()),
            };
            self.warned.refused(principal, &refusal);
            return Err(refusal);
        }
        Ok(Admitted(place))
    }

    /// Sessions held now (legacy and stateless).
    pub(crate) fn sessions_held(&self) -> usize {
        self.sessions.lock().total
    }

    /// Forgets the rate state of principals whose buckets are full again (keeps memory
    /// bounded by the principals active recently).
    pub(crate) fn prune(&self) {
        if let Some((_, limiter)) = &self.rate {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// A session's place in the session limits; given back when dropped.
pub(crate) struct SessionPlace {
    _place: Place,
}

/// Proof that a request passed its principal's concurrency and rate limits
/// ([`crate::Gateway::admit`]); the dispatcher takes it with the request. It holds one of
/// the principal's concurrent-request places until dropped, when the answer is ready.
pub struct Admitted(Place);

impl Admitted {
    /// Whose request this is.
    pub fn principal(&self) -> &Principal {
        &self.0.principal
    }
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Admitted({})", self.0.principal)
    }
}

/// Places counted in all (when capped) and per principal, under one lock.
struct Counted {
    max_total: Option<usize>,
    max_per_principal: usize,
    counts: Mutex<Counts>,
    warned: Arc<Warned>,
}

#[derive(Default)]
struct Counts {
    total: usize,
    /// Principals holding at least one place (entries go at zero: bounded by the places).
    by_principal: HashMap<Principal, usize>,
}

impl Counted {
    fn new(max_total: Option<usize>, max_per_principal: usize, warned: Arc<Warned>) -> Self {
        Self {
            max_total,
            max_per_principal,
            counts: Mutex::new(Counts::default()),
            warned,
        }
    }

    /// Takes a place for `principal`, or says which cap is reached (`full(true)`: the total).
    fn take(
        self: &Arc<Self>,
        principal: &Principal,
        full: impl FnOnce(bool) -> LimitExceeded,
    ) -> Result<Place, LimitExceeded> {
        let mut counts = self.lock();
        let held = counts.by_principal.get(principal).copied().unwrap_or(0);
        let refusal = if self.max_total.is_some_and(|max| counts.total >= max) {
            Some(full(true))
        } else if held >= self.max_per_principal {
            Some(full(false))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            drop(counts);
            self.warned.refused(principal, &refusal);
            return Err(refusal);
        }
        counts.total += 1;
        // Per call: clone the principal for the map only when it holds nothing yet.
        match counts.by_principal.get_mut(principal) {
            Some(n) => *n += 1,
            None => {
                counts.by_principal.insert(principal.clone(), 1);
            }
        }
        Ok(Place {
            counted: self.clone(),
            principal: principal.clone(),
        })
    }

    fn give_back(&self, principal: &Principal) {
        let mut counts = self.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_principal.get_mut(principal) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.by_principal.remove(principal);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One place in a [`Counted`], given back when dropped.
struct Place {
    counted: Arc<Counted>,
    principal: Principal,
}

impl Drop for Place {
    fn drop(&mut self) {
        self.counted.give_back(&self.principal);
    }
}

/// Refusals are warned about at most every 10 s (with how many there were), so a flood
/// does not flood the log either; the rest are logged at debug.
#[derive(Default)]
struct Warned(Mutex<(Option<Instant>, u64)>);

const WARN_EVERY: Duration = Duration::from_secs(10);

impl Warned {
    fn refused(&self, principal: &Principal, refusal: &LimitExceeded) {
        let mut state = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        state.1 += 1;
        let now = Instant::now();
        if state.0.is_some_and(|at| now.duration_since(at) < WARN_EVERY) {
            tracing::debug!(principal = %principal, "request refused: {refusal}");
            return;
        }
        tracing::warn!(principal = %principal, refused = state.1, "requests refused by a limit: {refusal}");
        *state = (Some(now), 0);
    }
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use super::*;

    fn limits(sessions: usize, calls: usize, rate: Option<(u32, u32)>) -> PrincipalLimits {
        PrincipalLimits {
            max_sessions: sessions,
            max_concurrent_calls: calls,
            rate: rate.map(|(per_second, burst)| RateLimit {
                per_second: NonZeroU32::new(per_second).unwrap(),
                burst: NonZeroU32::new(burst).unwrap(),
            }),
        }
    }

    #[test]
    fn session_places_are_capped_in_all_and_per_principal_and_come_back() {
        let limiter = Limiter::new(3, limits(2, 1, None));
        let (a, b) = (Principal::workload("a"), Principal::workload("b"));
        let a1 = limiter.reserve_session(&a).unwrap();
        let _a2 = limiter.reserve_session(&a).unwrap();
        assert_eq!(
            limiter.reserve_session(&a).err(),
            Some(LimitExceeded::PrincipalSessions { max: 2 })
        );
        let _b1 = limiter.reserve_session(&b).unwrap();
        let full = limiter.reserve_session(&b).err().unwrap();
        assert_eq!(full, LimitExceeded::Sessions { max: 3 });
        assert_eq!(full.http_status(), http::StatusCode::SERVICE_UNAVAILABLE);
        drop(a1);
        assert_eq!(limiter.sessions_held(), 2);
        limiter.reserve_session(&b).unwrap();
    }

    #[test]
    fn concurrent_requests_are_capped_per_principal_only() {
        let limiter = Limiter::new(10, limits(10, 2, None));
        let (a, b) = (Principal::workload("a"), Principal::workload("b"));
        let first = limiter.admit(&a).unwrap();
        let _second = limiter.admit(&a).unwrap();
        let refused = limiter.admit(&a).unwrap_err();
        assert_eq!(refused, LimitExceeded::ConcurrentCalls { max: 2 });
        assert_eq!(refused.http_status(), http::StatusCode::TOO_MANY_REQUESTS);
        assert!(
            refused
                .to_string()
                .contains("limits.max_concurrent_calls_per_principal")
        );
        limiter.admit(&b).unwrap();
        drop(first);
        assert_eq!(limiter.admit(&a).unwrap().principal(), &a);
    }

    #[test]
    fn the_rate_is_a_token_bucket_per_principal() {
        let limiter = Limiter::new(10, limits(10, 100, Some((1, 3))));
        let (a, b) = (Principal::workload("a"), Principal::workload("b"));
        for _ in 0..3 {
            drop(limiter.admit(&a).unwrap());
        }
        let refused = limiter.admit(&a).unwrap_err();
        let LimitExceeded::Rate { retry_after, .. } = refused else {
            panic!("{refused:?}");
        };
        assert!(retry_after <= Duration::from_secs(1), "{retry_after:?}");
        assert_eq!(refused.retry_after_secs(), Some(1));
        assert!(refused.to_string().contains("limits.calls_per_second_per_principal"));
        drop(limiter.admit(&b).unwrap());
        limiter.prune();
    }
}
