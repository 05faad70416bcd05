//! The policy set in force, hot reload, and shadow evaluation: what the gateway holds.
//!
//! [`PolicyStore`] keeps the current validated engine behind an atomic swap. Every
//! call loads the current engine, evaluates, and checks that the set it evaluated is
//! still the current one (else it evaluates once more on the new set, and denies if
//! the set moved again). A reload builds and validates the new set first; an invalid
//! set is refused with its error and the old one stays in force. A shadow set is
//! evaluated beside the enforced one for logging only.
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::{ArcSwap, ArcSwapOption};

use crate::cedar::CedarEngine;
use crate::decision::{Decision, Deny, Explanation, Permit};
use crate::engine::{Engine, EngineKind, decide, explain};
use crate::error::PolicyError;
use crate::input::Settings;
use crate::rego::RegoEngine;
use crate::request::DecisionRequest;
use crate::sources::{Fingerprint, PolicySource, fingerprint, read_sources};

/// Where a policy set comes from: its language, file globs and decision settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyFiles {
    pub engine: EngineKind,
    /// Glob patterns, e.g. `/etc/portcullis/policies/*.cedar`. Each must match a file.
    pub patterns: Vec<String>,
    pub settings: Settings,
}

/// Builds and validates an engine of `kind` from `sources`.
pub fn load_sources(
    kind: EngineKind,
    sources: &[PolicySource],
    settings: Settings,
) -> Result<Arc<dyn Engine>, PolicyError> {
    Ok(match kind {
        EngineKind::Cedar => Arc::new(CedarEngine::load(sources, settings)?),
        EngineKind::Rego => Arc::new(RegoEngine::load(sources, settings)?),
    })
}

/// Reads the files of `files` and builds and validates their engine.
pub fn load_files(files: &PolicyFiles) -> Result<Arc<dyn Engine>, PolicyError> {
    load_sources(files.engine, &read_sources(&files.patterns)?, files.settings)
}

struct Current {
    engine: Arc<dyn Engine>,
    version: u64,
}

/// The outcome of a successful reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reloaded {
    pub policy_hash: String,
    /// `false` when the new files hash to the set already in force.
    pub changed: bool,
}

/// The current validated policy set, and optionally a shadow set.
pub struct PolicyStore {
    current: ArcSwap<Current>,
    shadow: ArcSwapOption<Current>,
    files: Option<PolicyFiles>,
    versions: AtomicU64,
    reloading: Mutex<()>,
}

impl PolicyStore {
    /// A store enforcing `engine`; [`Self::reload_from_files`] is then unavailable.
    pub fn new(engine: Arc<dyn Engine>) -> Self {
        Self {
            current: ArcSwap::from_pointee(Current { engine, version: 0 }),
            shadow: ArcSwapOption::empty(),
            files: None,
            versions: AtomicU64::new(1),
            reloading: Mutex::new(()),
        }
    }

    /// Loads `files`; the error names the file and policy that failed.
    pub fn from_files(files: PolicyFiles) -> Result<Self, PolicyError> {
        let engine = load_files(&files)?;
        Ok(Self {
            files: Some(files),
            ..Self::new(engine)
        })
    }

    /// Swaps in an already validated engine.
    pub fn replace(&self, engine: Arc<dyn Engine>) {
        let _guard = self.reloading.lock().unwrap_or_else(|p| p.into_inner());
        let version = self.versions.fetch_add(1, Ordering::SeqCst);
        self.current.store(Arc::new(Current { engine, version }));
    }

    /// Re-reads the configured files, validates them and swaps them in. On any error
    /// the set in force stays and the error is returned.
    pub fn reload_from_files(&self) -> Result<Reloaded, PolicyError> {
        let Some(files) = &self.files else {
            return Ok(Reloaded {
                policy_hash: self.policy_hash(),
                changed: false,
            });
        };
        let engine = load_files(files)?;
        let policy_hash = engine.policy_hash().to_owned();
        let changed = policy_hash != self.policy_hash();
        if changed {
            self.replace(engine);
        }
        Ok(Reloaded { policy_hash, changed })
    }

    /// A cheap fingerprint of the configured files (metadata only), for polling.
    pub fn fingerprint(&self) -> Result<Option<Fingerprint>, PolicyError> {
        self.files.as_ref().map(|f| fingerprint(&f.patterns)).transpose()
    }

    /// Sets (or clears) the shadow set: evaluated and logged, never enforced.
    pub fn set_shadow(&self, engine: Option<Arc<dyn Engine>>) {
        self.shadow
            .store(engine.map(|engine| Arc::new(Current { engine, version: 0 })));
    }

    /// The engine in force (e.g. to run fixtures against what the gateway enforces).
    pub fn current_engine(&self) -> Arc<dyn Engine> {
        self.current.load().engine.clone()
    }

    /// The hash of the set in force.
    pub fn policy_hash(&self) -> String {
        self.current.load().engine.policy_hash().to_owned()
    }

    /// Decides `request` on the current set (fail closed). For list filtering use a
    /// [`DecisionRequest::listing`] request and read `allowed`.
    pub fn decide(&self, request: &DecisionRequest) -> Decision {
        let mut last = None;
        for _ in 0..2 {
            let snapshot = self.current.load_full();
            let decision = decide(&*snapshot.engine, request);
            if self.current.load().version == snapshot.version {
                return decision;
            }
            last = Some(decision);
        }
        let mut decision = last.unwrap_or_else(|| decide(&*self.current.load().engine, request));
        decision.allowed = false;
        decision
            .errors
            .push("the policy set changed twice during evaluation; the call is denied, retry it".to_owned());
        decision
    }

    /// The authorise stage: a [`Permit`] or a [`Deny`].
    pub fn authorize(&self, request: &DecisionRequest) -> Result<Permit, Deny> {
        Permit::from_allowed(self.decide(request))
    }

    /// [`Self::authorize`], plus the shadow set's decision (if one is set) for the log.
    pub fn authorize_with_shadow(&self, request: &DecisionRequest) -> (Result<Permit, Deny>, Option<Decision>) {
        let shadow = self.shadow.load_full().map(|s| decide(&*s.engine, request));
        (self.authorize(request), shadow)
    }

    /// Why the current set decides `request` as it does.
    pub fn explain(&self, request: &DecisionRequest) -> Explanation {
        explain(&*self.current.load().engine, request)
    }
}
