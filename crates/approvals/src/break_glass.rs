//! Break-glass: an emergency window in which the policy sees `break_glass = true` (the
//! default tier policies then let write calls through without a per-call approval, still
//! needing identity and a reason). A window is requested with a reason and a TTL (capped),
//! becomes active only once two distinct registered approvers approve it, and ends by
//! itself at its TTL or when an approver ends it. Optionally scoped to one workload.
//! Every change is returned to the caller to record; calls made under a window name it.
//!
//! [`BreakGlass`] holds one gateway's windows in memory; the rules of a window's life
//! (`Window::add_approver`, `Window::end`, …) are shared with the PostgreSQL store
//! replicas use (`crate::store`).
use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};

use crate::{error::ApprovalError, registry::Approver, unix_now};

/// Distinct approvers a window needs before it is active.
pub const APPROVERS_NEEDED: usize = 2;

/// Where a window stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowState {
    /// Requested; waiting for approvers.
    Requested,
    /// In force until `until` (Unix seconds).
    Active { until: u64 },
    /// Over: expired, or ended by an approver.
    Ended { at: u64, by: String },
}

impl WindowState {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Requested => "requested",
            Self::Active { .. } => "active",
            Self::Ended { .. } => "ended",
        }
    }
}

/// One break-glass window.
#[derive(Debug, Clone)]
pub struct Window {
    pub id: String,
    pub reason: String,
    pub ttl_secs: u64,
    /// Only calls from this workload see it; `None`: every caller.
    pub workload: Option<String>,
    pub requested_by: String,
    pub requested_at: u64,
    pub approvers: Vec<String>,
    pub state: WindowState,
}

impl Window {
    /// A new request by `requested_by`. A TTL over `max_ttl_secs` is refused (not silently
    /// cut), as is a blank reason.
    pub(crate) fn requested(
        requested_by: &str,
        reason: &str,
        ttl_secs: u64,
        workload: Option<String>,
        max_ttl_secs: u64,
    ) -> Result<Self, ApprovalError> {
        if reason.trim().is_empty() {
            return Err(ApprovalError::Malformed("break-glass needs a reason".into()));
        }
        if ttl_secs == 0 || ttl_secs > max_ttl_secs {
            return Err(ApprovalError::Malformed(format!(
                "break-glass TTL must be between 1 s and {max_ttl_secs} s (`[approvals] break_glass_max_ttl_secs`)"
            )));
        }
        Ok(Self {
            id: portcullis_core::CallId::random().to_string(),
            reason: reason.to_owned(),
            ttl_secs,
            workload,
            requested_by: requested_by.to_owned(),
            requested_at: unix_now(),
            approvers: Vec::new(),
            state: WindowState::Requested,
        })
    }

    /// `approver` approves a requested window at `now`; the second distinct approver
    /// activates it (its TTL runs from then). The same approver twice counts once.
    pub(crate) fn add_approver(&mut self, approver: &Approver, now: u64) -> Result<(), ApprovalError> {
        if self.state != WindowState::Requested {
            return Err(ApprovalError::AlreadyDecided(self.id.clone(), self.state.label()));
        }
        if !self.approvers.contains(&approver.name) {
            self.approvers.push(approver.name.clone());
        }
        if self.approvers.len() >= APPROVERS_NEEDED {
            self.state = WindowState::Active {
                until: now + self.ttl_secs,
            };
        }
        Ok(())
    }

    /// The window as it would be once `approver` approves it at `now` (checked by the same
    /// rules): what the gateway records before the store makes the approval count.
    pub fn approved_by(&self, approver: &Approver, now: u64) -> Result<Window, ApprovalError> {
        let mut after = self.clone();
        after.add_approver(approver, now)?;
        Ok(after)
    }

    /// Ends a window (requested or active) at `now`.
    pub(crate) fn end(&mut self, by: &str, now: u64) -> Result<(), ApprovalError> {
        if let WindowState::Ended { .. } = self.state {
            return Err(ApprovalError::AlreadyDecided(self.id.clone(), "ended"));
        }
        self.state = WindowState::Ended {
            at: now,
            by: by.to_owned(),
        };
        Ok(())
    }
}

/// The windows of this gateway.
pub struct BreakGlass {
    max_ttl_secs: u64,
    windows: Mutex<HashMap<String, Window>>,
}

impl BreakGlass {
    pub fn new(max_ttl_secs: u64) -> Self {
        Self {
            max_ttl_secs,
            windows: Mutex::new(HashMap::new()),
        }
    }

    pub fn max_ttl_secs(&self) -> u64 {
        self.max_ttl_secs
    }

    fn windows(&self) -> MutexGuard<'_, HashMap<String, Window>> {
        // Every change is a single assignment: a poisoned lock holds consistent windows.
        self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens a request. A TTL over the cap is refused (not silently cut), as is a blank reason.
    pub fn request(
        &self,
        requested_by: &str,
        reason: &str,
        ttl_secs: u64,
        workload: Option<String>,
    ) -> Result<Window, ApprovalError> {
        let window = Window::requested(requested_by, reason, ttl_secs, workload, self.max_ttl_secs)?;
        self.windows().insert(window.id.clone(), window.clone());
        Ok(window)
    }

    /// An approver approves a requested window; the second distinct approver activates it
    /// (its TTL runs from then). The same approver twice counts once.
    pub fn approve(&self, id: &str, approver: &Approver, now: u64) -> Result<Window, ApprovalError> {
        let mut windows = self.windows();
        let window = windows
            .get_mut(id)
            .ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))?;
        window.add_approver(approver, now)?;
        Ok(window.clone())
    }

    /// Ends a window (requested or active) now.
    pub fn end(&self, id: &str, by: &str) -> Result<Window, ApprovalError> {
        let mut windows = self.windows();
        let window = windows
            .get_mut(id)
            .ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))?;
        window.end(by, unix_now())?;
        Ok(window.clone())
    }

    /// Ends the windows whose TTL ran out and returns them (to be recorded).
    pub fn expire(&self) -> Vec<Window> {
        let now = unix_now();
        let mut ended = Vec::new();
        for window in self.windows().values_mut() {
            if let WindowState::Active { until } = window.state
                && now >= until
            {
                window.state = WindowState::Ended {
                    at: until,
                    by: "ttl".into(),
                };
                ended.push(window.clone());
            }
        }
        ended
    }

    /// For one call, under one lock: the windows whose TTL ran out (ended now, to be
    /// recorded), and the active window a call from `workload` is under, if any.
    pub fn expire_and_find(&self, workload: &str) -> (Vec<Window>, Option<String>) {
        let now = unix_now();
        let mut windows = self.windows();
        if windows.is_empty() {
            return (Vec::new(), None);
        }
        let mut ended = Vec::new();
        let mut active = None;
        for window in windows.values_mut() {
            if let WindowState::Active { until } = window.state {
                if now >= until {
                    window.state = WindowState::Ended {
                        at: until,
                        by: "ttl".into(),
                    };
                    ended.push(window.clone());
                } else if active.is_none() && window.workload.as_deref().is_none_or(|only| only == workload) {
                    active = Some(window.id.clone());
                }
            }
        }
        (ended, active)
    }

    /// Every window, newest first.
    pub fn list(&self) -> Vec<Window> {
        let mut list: Vec<Window> = self.windows().values().cloned().collect();
        list.sort_by(|a, b| b.requested_at.cmp(&a.requested_at).then_with(|| a.id.cmp(&b.id)));
        list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn approver(name: &str) -> Approver {
        Approver {
            name: name.into(),
            spiffe_id: None,
            user: name.into(),
            key: None,
            revoked: false,
        }
    }

    #[test]
    fn two_distinct_approvers_activate_and_the_ttl_or_an_end_closes() {
        let bg = BreakGlass::new(3600);
        assert!(bg.request("bob", " ", 60, None).is_err(), "a reason is required");
        assert!(bg.request("bob", "outage", 7200, None).is_err(), "over the cap");
        let w = bg
            .request("bob", "outage", 60, Some("spiffe://example.org/agent".into()))
            .unwrap();
        assert_eq!(
            bg.approve(&w.id, &approver("bob"), unix_now()).unwrap().state,
            WindowState::Requested
        );
        assert_eq!(
            bg.approve(&w.id, &approver("bob"), unix_now()).unwrap().state,
            WindowState::Requested
        );
        assert_eq!(
            bg.expire_and_find("spiffe://example.org/agent").1,
            None,
            "one approver is not enough"
        );
        assert!(matches!(
            bg.approve(&w.id, &approver("erin"), unix_now()).unwrap().state,
            WindowState::Active { .. }
        ));
        assert_eq!(bg.expire_and_find("spiffe://example.org/agent").1, Some(w.id.clone()));
        assert_eq!(
            bg.expire_and_find("spiffe://example.org/other").1,
            None,
            "scoped to one workload"
        );
        assert!(bg.expire().is_empty());
        bg.end(&w.id, "erin").unwrap();
        assert_eq!(bg.expire_and_find("spiffe://example.org/agent").1, None);
        assert!(bg.end(&w.id, "erin").is_err());
    }

    #[test]
    fn an_active_window_ends_at_its_ttl() {
        let bg = BreakGlass::new(3600);
        let w = bg.request("bob", "outage", 1, None).unwrap();
        bg.approve(&w.id, &approver("bob"), unix_now()).unwrap();
        bg.approve(&w.id, &approver("erin"), unix_now()).unwrap();
        // Make it due: its end is in the past.
        bg.windows().get_mut(&w.id).unwrap().state = WindowState::Active { until: unix_now() - 1 };
        let (ended, active) = bg.expire_and_find("any");
        assert_eq!(active, None);
        assert_eq!(ended.len(), 1);
        assert!(bg.expire().is_empty(), "ended once");
        assert_eq!(ended[0].state.label(), "ended");
    }
}
