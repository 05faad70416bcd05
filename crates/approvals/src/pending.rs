//! The calls waiting for approval. Each request is opened by the gateway with a fresh id
//! and nonce, collects distinct approvers until it has the number its server and target
//! require (N-of-M), and ends exactly once: granted then consumed by one call, denied,
//! withdrawn by a client that went away, or expired (removed by [`Pending::expire`], which
//! hands it over to be recorded). Bounded by `max_pending`; state
//! changes wake the call that waits on the request.
//!
//! [`Pending`] is the in-memory set of one gateway; the rules of a request's life
//! (`PendingEntry::add_grant`, `PendingEntry::refuse`, …) are shared with the
//! PostgreSQL store replicas use (`crate::store`).
use std::{
    collections::HashMap,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::sync::watch;

use crate::{
    binding::{BINDING_VERSION, Binding},
    error::ApprovalError,
    registry::Approver,
    unix_now,
};

/// How many approvals a server's targets need (`required = 2` for some tools).
#[derive(Debug, Clone)]
pub struct Requirement {
    /// Glob over `<server>/<target>`, e.g. `files/delete_*`.
    pub pattern: glob::Pattern,
    pub required: usize,
}

/// Limits of the pending set.
#[derive(Debug, Clone)]
pub struct PendingSettings {
    /// How long an opened request can be granted and used (seconds).
    pub ttl_secs: u64,
    /// Requests open at once; beyond it calls needing approval are denied.
    pub max_pending: usize,
    /// Approvals needed by target; the largest matching count applies; default 1.
    pub requirements: Vec<Requirement>,
}

impl PendingSettings {
    /// How many approvals a call to `server`/`target` needs.
    pub fn required_for(&self, server: &str, target: &str) -> usize {
        let name = format!("{server}/{target}");
        self.requirements
            .iter()
            .filter(|r| r.pattern.matches(&name))
            .map(|r| r.required)
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// The request opened for `opening` at `now`: a fresh id and nonce (128 random bits
    /// each, lowercase hex, from core's id generator), expiring after the TTL.
    pub(crate) fn new_entry(&self, opening: Opening, now: u64) -> PendingEntry {
        let mut binding = opening.call;
        binding.v = BINDING_VERSION;
        binding.id = portcullis_core::CallId::random().to_string();
        binding.nonce = portcullis_core::CallId::random().to_string();
        binding.expires_at = now + self.ttl_secs;
        PendingEntry {
            required: self.required_for(&binding.server, &binding.target),
            binding,
            grants: Vec::new(),
            state: PendingState::Waiting,
            call_id: opening.call_id,
            tier: opening.tier,
            reason: opening.reason,
            arguments_summary: opening.arguments_summary,
            opened_at: now,
        }
    }
}

impl Default for PendingSettings {
    fn default() -> Self {
        Self {
            ttl_secs: 900,
            max_pending: 1000,
            requirements: Vec::new(),
        }
    }
}

/// Where a request stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingState {
    /// Open: `grants` of `required` approvals so far.
    Waiting,
    /// Enough distinct approvers said yes; one call may use it.
    Granted,
    /// An approver said no.
    Denied { by: String },
}

impl PendingState {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Granted => "granted",
            Self::Denied { .. } => "denied",
        }
    }
}

/// One approval given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub approver: String,
    /// `token` (a signed token with the call), `admin` (the admin API), `admin-token`.
    pub channel: String,
    /// SHA-256 of the approver's signature, when the approval was signed.
    pub signature_sha256: Option<String>,
}

/// A request as listed to approvers.
#[derive(Debug, Clone)]
pub struct PendingEntry {
    pub binding: Binding,
    pub required: usize,
    pub grants: Vec<Grant>,
    pub state: PendingState,
    /// The call's id in the audit log.
    pub call_id: String,
    pub tier: String,
    /// The caller's reason (already redacted and bounded).
    pub reason: Option<String>,
    /// A short, redacted view of the arguments for the approver.
    pub arguments_summary: String,
    pub opened_at: u64,
}

impl PendingEntry {
    /// Whether `approver` may grant the request as it stands (not their own call, not
    /// decided yet): checked before the grant's record is written, so that the common
    /// refusals leave no record. The store checks again when the grant is given.
    pub fn check_grant(&self, approver: &Approver) -> Result<(), ApprovalError> {
        if approver.is_caller_of(&self.binding) {
            return Err(ApprovalError::SelfApproval(approver.name.clone()));
        }
        self.undecided()
    }

    /// Fails unless nobody has decided the request yet.
    pub fn undecided(&self) -> Result<(), ApprovalError> {
        match self.state {
            PendingState::Waiting => Ok(()),
            ref decided => Err(ApprovalError::AlreadyDecided(self.binding.id.clone(), decided.label())),
        }
    }

    /// Adds `approver`'s approval: never to their own call, never to a decided request;
    /// the same approver twice counts once; enough distinct approvers grant it.
    pub(crate) fn add_grant(&mut self, approver: &Approver, grant: Grant) -> Result<(), ApprovalError> {
        self.check_grant(approver)?;
        if !self.grants.iter().any(|g| g.approver == approver.name) {
            self.grants.push(grant);
        }
        if self.grants.len() >= self.required {
            self.state = PendingState::Granted;
        }
        Ok(())
    }

    /// The caller's own confirmation: grants an undecided request outright.
    pub(crate) fn confirm(&mut self, grant: Grant) -> Result<(), ApprovalError> {
        self.undecided()?;
        self.grants.push(grant);
        self.state = PendingState::Granted;
        Ok(())
    }

    /// `by` says no to an undecided request.
    pub(crate) fn refuse(&mut self, by: &str) -> Result<(), ApprovalError> {
        self.undecided()?;
        self.state = PendingState::Denied { by: by.to_owned() };
        Ok(())
    }
}

struct Slot {
    entry: PendingEntry,
    tx: watch::Sender<PendingState>,
}

/// What the gateway knows of a call when it opens a request.
#[derive(Debug, Clone)]
pub struct Opening {
    /// The call's binding; `id`, `nonce` and `expires_at` are filled in by [`Pending::open`].
    pub call: Binding,
    pub call_id: String,
    pub tier: String,
    pub reason: Option<String>,
    pub arguments_summary: String,
}

/// The open requests.
pub struct Pending {
    settings: PendingSettings,
    slots: Mutex<HashMap<String, Slot>>,
    /// No request expires before this (Unix seconds; changed only under the `slots` lock):
    /// [`Pending::expire`], run before every open, looks at the requests only once one may
    /// have expired, so a large pending set costs nothing on each open.
    next_expiry: AtomicU64,
}

/// Sorts requests as they are listed: oldest first, then by id.
pub(crate) fn oldest_first(list: &mut [PendingEntry]) {
    list.sort_by(|a, b| {
        a.opened_at
            .cmp(&b.opened_at)
            .then_with(|| a.binding.id.cmp(&b.binding.id))
    });
}

/// The open, unexpired request `id` of `slots`.
fn live<'a>(slots: &'a mut HashMap<String, Slot>, id: &str) -> Result<&'a mut Slot, ApprovalError> {
    let now = unix_now();
    slots
        .get_mut(id)
        .filter(|s| s.entry.binding.expires_at >= now)
        .ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))
}

impl Slot {
    /// Tells the waiting call when the request's state changed.
    fn publish(&self) {
        if *self.tx.borrow() != self.entry.state {
            self.tx.send_replace(self.entry.state.clone());
        }
    }
}

impl Pending {
    pub fn new(settings: PendingSettings) -> Self {
        Self {
            settings,
            slots: Mutex::new(HashMap::new()),
            next_expiry: AtomicU64::new(u64::MAX),
        }
    }

    pub fn settings(&self) -> &PendingSettings {
        &self.settings
    }

    fn slots(&self) -> MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding the lock cannot leave a slot half-changed (each change is
        // one assignment), so a poisoned lock is still usable.
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How many approvals a call to `server`/`target` needs.
    pub fn required_for(&self, server: &str, target: &str) -> usize {
        self.settings.required_for(server, target)
    }

    /// Opens a request for a call: a fresh id and nonce, expiring after the TTL; refused
    /// when `max_pending` unexpired requests are open. Expired requests count for nothing
    /// but are not removed here: [`Self::expire`] removes them and hands them over, so each
    /// is recorded as expired (the gateway sweeps before opening, which keeps the set within
    /// `max_pending`, and periodically).
    pub fn open(&self, opening: Opening) -> Result<PendingEntry, ApprovalError> {
        self.admit(self.prepare(opening))
    }

    /// The request [`Self::open`] would open, not yet open: nobody can list, grant or deny
    /// it until [`Self::admit`] (the gateway records the request first).
    pub fn prepare(&self, opening: Opening) -> PendingEntry {
        self.settings.new_entry(opening, unix_now())
    }

    /// Opens a prepared request; refused when `max_pending` unexpired requests are open.
    pub fn admit(&self, entry: PendingEntry) -> Result<PendingEntry, ApprovalError> {
        let now = unix_now();
        let mut slots = self.slots();
        let full = slots.len() >= self.settings.max_pending
            && slots.values().filter(|s| s.entry.binding.expires_at >= now).count() >= self.settings.max_pending;
        if full {
            return Err(ApprovalError::QueueFull(self.settings.max_pending));
        }
        self.next_expiry.fetch_min(entry.binding.expires_at, Ordering::Relaxed);
        let (tx, _) = watch::channel(PendingState::Waiting);
        slots.insert(
            entry.binding.id.clone(),
            Slot {
                entry: entry.clone(),
                tx,
            },
        );
        Ok(entry)
    }

    /// The state of request `id`, as it changes; it ends (an error on the receiver) when
    /// the request is consumed or withdrawn.
    pub fn watch(&self, id: &str) -> Result<watch::Receiver<PendingState>, ApprovalError> {
        self.slots()
            .get(id)
            .map(|s| s.tx.subscribe())
            .ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))
    }

    /// The open (unexpired) requests, oldest first.
    pub fn list(&self) -> Vec<PendingEntry> {
        let now = unix_now();
        let mut list: Vec<PendingEntry> = self
            .slots()
            .values()
            .filter(|s| s.entry.binding.expires_at >= now)
            .map(|s| s.entry.clone())
            .collect();
        oldest_first(&mut list);
        list
    }

    /// One open request.
    pub fn get(&self, id: &str) -> Result<PendingEntry, ApprovalError> {
        let now = unix_now();
        self.slots()
            .get(id)
            .filter(|s| s.entry.binding.expires_at >= now)
            .map(|s| s.entry.clone())
            .ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))
    }

    /// Adds `approver`'s approval. The same approver twice counts once; the caller never
    /// approves their own call. Returns the request afterwards.
    pub fn grant(&self, id: &str, approver: &Approver, grant: Grant) -> Result<PendingEntry, ApprovalError> {
        let mut slots = self.slots();
        let slot = live(&mut slots, id)?;
        slot.entry.add_grant(approver, grant)?;
        slot.publish();
        Ok(slot.entry.clone())
    }

    /// The caller's own confirmation (the user answering an elicitation), for tiers the
    /// operator lets users approve: it grants the request outright, whatever `required` is.
    /// Never reachable by an approver's token or the admin API.
    pub fn confirm_by_caller(&self, id: &str, grant: Grant) -> Result<PendingEntry, ApprovalError> {
        let mut slots = self.slots();
        let slot = live(&mut slots, id)?;
        slot.entry.confirm(grant)?;
        slot.publish();
        Ok(slot.entry.clone())
    }

    /// The caller refused its own call (declined the elicitation).
    pub fn refuse_by_caller(&self, id: &str, by: &str) -> Result<(), ApprovalError> {
        let mut slots = self.slots();
        let slot = slots
            .get_mut(id)
            .ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned()))?;
        slot.entry.refuse(by)?;
        slot.publish();
        Ok(())
    }

    /// An approver refuses the request; the waiting call is denied.
    pub fn deny(&self, id: &str, approver: &Approver) -> Result<(), ApprovalError> {
        let mut slots = self.slots();
        let slot = live(&mut slots, id)?;
        slot.entry.refuse(&approver.name)?;
        slot.publish();
        Ok(())
    }

    /// Uses a granted request: it is removed, so its nonce can never count again.
    pub fn consume(&self, id: &str) -> Result<PendingEntry, ApprovalError> {
        let mut slots = self.slots();
        match slots.get(id).map(|s| &s.entry.state) {
            Some(PendingState::Granted) => slots
                .remove(id)
                .map(|s| s.entry)
                .ok_or_else(|| ApprovalError::UnknownRequest(id.to_owned())),
            Some(state) => Err(ApprovalError::AlreadyDecided(id.to_owned(), state.label())),
            None => Err(ApprovalError::UnknownRequest(id.to_owned())),
        }
    }

    /// The granted, unexpired request for the same call as `call` (principal, server,
    /// method, target, arguments and policy), consumed: a client that retries the call after
    /// an approval given through the admin API gets it once.
    pub fn take_granted_for(&self, call: &Binding) -> Option<PendingEntry> {
        let now = unix_now();
        let mut slots = self.slots();
        let id = slots
            .values()
            .find(|s| {
                s.entry.state == PendingState::Granted
                    && s.entry.binding.expires_at >= now
                    && s.entry.binding.check_call_fields(call).is_ok()
            })?
            .entry
            .binding
            .id
            .clone();
        slots.remove(&id).map(|s| s.entry)
    }

    /// Removes a request whose call went away (or was answered otherwise); returns it when
    /// it was still open.
    pub fn withdraw(&self, id: &str) -> Option<PendingEntry> {
        self.slots().remove(id).map(|s| s.entry)
    }

    /// Removes the requests whose TTL ran out before a call used them (waiting, granted
    /// but not used, or denied and never withdrawn) and returns them, oldest first: each is
    /// handed over once, to be recorded as expired. A call still waiting on one hears that
    /// it is gone.
    pub fn expire(&self) -> Vec<PendingEntry> {
        let now = unix_now();
        let mut slots = self.slots();
        if self.next_expiry.load(Ordering::Relaxed) >= now {
            return Vec::new();
        }
        let lapsed: Vec<String> = slots
            .iter()
            .filter(|(_, s)| s.entry.binding.expires_at < now)
            .map(|(id, _)| id.clone())
            .collect();
        let mut expired: Vec<PendingEntry> = lapsed
            .iter()
            .filter_map(|id| slots.remove(id))
            .map(|s| s.entry)
            .collect();
        let next = slots.values().map(|s| s.entry.binding.expires_at).min();
        self.next_expiry.store(next.unwrap_or(u64::MAX), Ordering::Relaxed);
        drop(slots);
        oldest_first(&mut expired);
        expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binding::BindingPrincipal;

    fn opening(target: &str) -> Opening {
        Opening {
            call: Binding {
                v: 0,
                id: String::new(),
                principal: BindingPrincipal {
                    workload: "spiffe://example.org/agent".into(),
                    user: Some("alice".into()),
                },
                server: "files".into(),
                method: "tools/call".into(),
                target: target.into(),
                arguments_sha256: "00".repeat(32),
                policy_sha256: "11".repeat(32),
                nonce: String::new(),
                expires_at: 0,
            },
            call_id: "c".into(),
            tier: "write".into(),
            reason: None,
            arguments_summary: "{}".into(),
        }
    }

    fn approver(name: &str) -> Approver {
        Approver {
            name: name.into(),
            spiffe_id: None,
            user: name.into(),
            key: None,
            revoked: false,
        }
    }

    fn grant(name: &str) -> Grant {
        Grant {
            approver: name.into(),
            channel: "admin".into(),
            signature_sha256: None,
        }
    }

    fn pending(max: usize) -> Pending {
        Pending::new(PendingSettings {
            ttl_secs: 60,
            max_pending: max,
            requirements: vec![Requirement {
                pattern: glob::Pattern::new("files/delete_*").unwrap(),
                required: 2,
            }],
        })
    }

    #[test]
    fn n_of_m_counts_distinct_approvers_and_is_consumed_once() {
        let p = pending(10);
        let b = p.open(opening("delete_all")).unwrap().binding;
        let mut rx = p.watch(&b.id).unwrap();
        assert_eq!(p.get(&b.id).unwrap().required, 2);
        assert_eq!(
            p.grant(&b.id, &approver("bob"), grant("bob")).unwrap().state,
            PendingState::Waiting
        );
        assert_eq!(
            p.grant(&b.id, &approver("bob"), grant("bob")).unwrap().state,
            PendingState::Waiting
        );
        assert!(!rx.has_changed().unwrap());
        assert_eq!(
            p.grant(&b.id, &approver("carol"), grant("carol")).unwrap().state,
            PendingState::Granted
        );
        assert!(rx.has_changed().unwrap());
        assert_eq!(*rx.borrow_and_update(), PendingState::Granted);
        assert_eq!(p.consume(&b.id).unwrap().grants.len(), 2);
        assert!(matches!(p.consume(&b.id), Err(ApprovalError::UnknownRequest(_))));
    }

    #[test]
    fn a_prepared_request_cannot_be_listed_granted_or_denied_until_admitted() {
        let p = pending(1);
        let prepared = p.prepare(opening("delete_all"));
        let id = prepared.binding.id.clone();
        assert_eq!(prepared.required, 2, "what it needs is known before it opens");
        assert!(p.list().is_empty());
        assert!(matches!(p.get(&id), Err(ApprovalError::UnknownRequest(_))));
        assert!(matches!(
            p.grant(&id, &approver("bob"), grant("bob")),
            Err(ApprovalError::UnknownRequest(_))
        ));
        assert!(matches!(
            p.deny(&id, &approver("bob")),
            Err(ApprovalError::UnknownRequest(_))
        ));
        let opened = p.admit(prepared).unwrap();
        assert_eq!(opened.binding.id, id);
        assert_eq!(p.list().len(), 1);
        p.grant(&id, &approver("bob"), grant("bob")).unwrap();
        // Admission counts against the queue like opening.
        assert!(matches!(
            p.admit(p.prepare(opening("other"))),
            Err(ApprovalError::QueueFull(1))
        ));
    }

    #[test]
    fn self_approval_queue_limit_deny_and_race() {
        let p = pending(1);
        let b = p.open(opening("write_file")).unwrap().binding;
        assert_eq!(p.get(&b.id).unwrap().required, 1);
        assert!(matches!(p.open(opening("other")), Err(ApprovalError::QueueFull(1))));
        assert_eq!(
            p.grant(&b.id, &approver("alice"), grant("alice")).unwrap_err(),
            ApprovalError::SelfApproval("alice".into())
        );
        p.deny(&b.id, &approver("bob")).unwrap();
        // Approve after deny: exactly one decision wins.
        assert!(matches!(
            p.grant(&b.id, &approver("carol"), grant("carol")),
            Err(ApprovalError::AlreadyDecided(_, "denied"))
        ));
        assert!(p.take_granted_for(&b).is_none());
        assert!(p.withdraw(&b.id).is_some());
        assert!(p.list().is_empty());
    }

    /// Makes request `id` of `p` lapse (its TTL ran out).
    fn lapse(p: &Pending, id: &str) {
        p.slots().get_mut(id).unwrap().entry.binding.expires_at = 1;
        p.next_expiry.fetch_min(1, Ordering::Relaxed);
    }

    #[test]
    fn a_lapsed_request_is_handed_over_once_and_counts_for_nothing_meanwhile() {
        let p = pending(2);
        let waiting = p.open(opening("write_file")).unwrap().binding;
        let granted = p.open(opening("write_other")).unwrap().binding;
        p.grant(&granted.id, &approver("bob"), grant("bob")).unwrap();
        let rx = p.watch(&waiting.id).unwrap();
        assert!(p.expire().is_empty(), "nothing has lapsed yet");
        lapse(&p, &waiting.id);
        lapse(&p, &granted.id);
        // Lapsed: unlisted, unusable, and no longer taking room — but not dropped unseen.
        assert!(p.list().is_empty());
        assert!(p.take_granted_for(&granted).is_none());
        let third = p.open(opening("write_third")).unwrap().binding;
        let expired = p.expire();
        let ids: Vec<&str> = expired.iter().map(|e| e.binding.id.as_str()).collect();
        assert_eq!(ids.len(), 2);
        assert!(
            ids.contains(&waiting.id.as_str()) && ids.contains(&granted.id.as_str()),
            "{ids:?}"
        );
        assert_eq!(
            expired.iter().find(|e| e.binding.id == granted.id).unwrap().state,
            PendingState::Granted
        );
        assert_eq!(expired[0].call_id, "c", "each names the call it was opened for");
        assert!(p.expire().is_empty(), "handed over once");
        assert!(rx.has_changed().is_err(), "the waiting call hears it is gone");
        assert_eq!(p.list().len(), 1);
        assert_eq!(p.list()[0].binding.id, third.id);
    }

    #[test]
    fn a_retry_takes_the_granted_request_for_the_same_call_only() {
        let p = pending(10);
        let b = p.open(opening("write_file")).unwrap().binding;
        p.grant(&b.id, &approver("bob"), grant("bob")).unwrap();
        let mut other = b.clone();
        other.arguments_sha256 = "22".repeat(32);
        assert!(p.take_granted_for(&other).is_none());
        assert!(p.take_granted_for(&b).is_some());
        assert!(p.take_granted_for(&b).is_none(), "used once");
    }
}
