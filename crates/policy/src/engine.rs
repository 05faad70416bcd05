//! The [`Engine`] trait and the fail-closed wrapper every evaluation goes through.
//!
//! An engine only evaluates; [`decide`] turns its answer into a [`Decision`] and
//! is where fail-closed is enforced: the request is normalised, the engine is run
//! under `catch_unwind` and a time bound, and the result is allow only if the engine
//! said allow AND matched a permit AND reported no errors. Nothing is cached:
//! every call runs this afresh.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::decision::{Decision, Deny, Explanation, Permit};
use crate::input::{Input, Settings};
use crate::request::DecisionRequest;

/// Which policy language an engine speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    Cedar,
    Rego,
}

impl EngineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cedar => "cedar",
            Self::Rego => "rego",
        }
    }
}

/// What an engine reports for one input, before the fail-closed rules are applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// The engine's own verdict.
    pub allowed: bool,
    /// Permit policies that matched (on allow at least one; on deny possibly incomplete).
    pub permits: Vec<String>,
    /// Forbid policies that matched (Rego: the deny reasons).
    pub forbids: Vec<String>,
    /// Client-safe deny messages.
    pub messages: Vec<String>,
    /// Errors met while evaluating; any error forces deny.
    pub errors: Vec<String>,
    /// How many policies were evaluated.
    pub considered: usize,
}

/// A loaded, validated policy set in one language. Engines are immutable once built:
/// a new policy set is a new engine, swapped in by [`crate::PolicyStore`].
pub trait Engine: Send + Sync {
    fn kind(&self) -> EngineKind;
    /// SHA-256 over the sorted policy sources this engine was built from.
    fn policy_hash(&self) -> &str;
    fn settings(&self) -> Settings;
    /// Evaluates the request as the gateway does (indexed where the engine indexes).
    fn evaluate(&self, input: &Input) -> Evaluation;
    /// Evaluates every relevant policy on its own, so that `permits` and `forbids` are
    /// complete. Slower; for `policy explain`, never for enforcement.
    fn evaluate_each(&self, input: &Input) -> Evaluation;
}

/// Evaluates `request` on `engine` and applies the fail-closed rules.
pub fn decide(engine: &dyn Engine, request: &DecisionRequest) -> Decision {
    let input = Input::new(request, engine.settings());
    let (evaluation, over_time) = evaluate_bounded(engine, &input, |e, i| e.evaluate(i));
    decision_of(engine, evaluation, over_time)
}

/// [`decide`], then a [`Permit`] for an allowed decision or a [`Deny`].
pub fn authorize(engine: &dyn Engine, request: &DecisionRequest) -> Result<Permit, Deny> {
    Permit::from_allowed(decide(engine, request))
}

/// Why `engine` decides `request` as it does.
pub fn explain(engine: &dyn Engine, request: &DecisionRequest) -> Explanation {
    let input = Input::new(request, engine.settings());
    let (evaluation, over_time) = evaluate_bounded(engine, &input, |e, i| e.evaluate_each(i));
    let (permits, forbids, considered) = (
        evaluation.permits.clone(),
        evaluation.forbids.clone(),
        evaluation.considered,
    );
    let mut decision = decision_of(engine, evaluation, over_time);
    // The enforced decision is the indexed one; a disagreement would be a bug, so deny.
    let enforced = decide(engine, request);
    if enforced.allowed != decision.allowed {
        decision.allowed = false;
        decision
            .errors
            .push("indexed and full evaluation disagree; denying (please report this)".to_owned());
    }
    Explanation {
        decision,
        permits,
        forbids,
        policies_considered: considered,
        input: serde_json::to_value(&input).unwrap_or_default(),
    }
}

/// Runs `run` on `input` under `catch_unwind` and the settings' time bound; the limit
/// comes back too when the evaluation ran over it (an error, so a deny).
fn evaluate_bounded(
    engine: &dyn Engine,
    input: &Input,
    run: impl Fn(&dyn Engine, &Input) -> Evaluation,
) -> (Evaluation, Option<Duration>) {
    let limit = engine.settings().time_limit;
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| run(engine, input)));
    let elapsed = started.elapsed();
    let mut evaluation = outcome.unwrap_or_else(|_| failed("the policy engine panicked".to_owned()));
    if elapsed > limit {
        evaluation.errors.push(over_time(elapsed, limit));
        return (evaluation, Some(limit));
    }
    (evaluation, None)
}

/// The fail-closed rules: allow only if the engine said allow, matched a permit and
/// reported no errors (running over the time limit is one).
fn decision_of(engine: &dyn Engine, evaluation: Evaluation, over_time: Option<Duration>) -> Decision {
    let allowed = evaluation.allowed
        && !evaluation.permits.is_empty()
        && evaluation.forbids.is_empty()
        && evaluation.errors.is_empty();
    Decision {
        allowed,
        decision_id: Decision::new_id(),
        policy_hash: engine.policy_hash().to_owned(),
        reasons: if allowed {
            evaluation.permits
        } else {
            evaluation.forbids
        },
        messages: if allowed { Vec::new() } else { evaluation.messages },
        errors: evaluation.errors,
        time_limit_exceeded_ms: over_time.map(|limit| u64::try_from(limit.as_millis()).unwrap_or(u64::MAX)),
    }
}

fn failed(error: String) -> Evaluation {
    Evaluation {
        errors: vec![error],
        ..Evaluation::default()
    }
}

fn over_time(elapsed: Duration, limit: Duration) -> String {
    format!("policy evaluation took {elapsed:?}, over the limit of {limit:?}; the call is denied")
}
