//! The Rego engine (regorus, embedded): same input document, query `data.portcullis.allow`.
//!
//! Policies live in `package portcullis`. The gateway allows only if `allow` is
//! exactly `true` and the optional `deny_reasons` set is empty; its members are the
//! client-safe deny messages. Evaluation runs on a pooled clone of the loaded engine
//! (only the input differs between calls), under regorus' execution timer with the
//! configured time limit and with strict built-in errors, so an error is an error
//! (deny) rather than a silently undefined value. Rego policies are not indexed.
use std::num::NonZeroU32;
use std::sync::Mutex;

use regorus::Value;
use regorus::utils::limits::ExecutionTimerConfig;

use crate::engine::{Engine, EngineKind, Evaluation};
use crate::error::PolicyError;
use crate::input::{Input, Settings};
use crate::sources::{PolicySource, policy_hash};

const ALLOW: &str = "data.portcullis.allow";
const DENY_REASONS: &str = "data.portcullis.deny_reasons";

/// A loaded Rego policy set.
pub struct RegoEngine {
    engine: regorus::Engine,
    /// Prepared clones of `engine`, reused across calls: only the input changes between
    /// evaluations, and regorus clears its evaluation state before each rule.
    pool: Mutex<Vec<regorus::Engine>>,
    has_deny_reasons: bool,
    hash: String,
    settings: Settings,
}

impl RegoEngine {
    /// Loads `sources` and checks that `data.portcullis.allow` is declared and compiles.
    pub fn load(sources: &[PolicySource], settings: Settings) -> Result<Self, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine.set_strict_builtin_errors(true);
        engine.set_execution_timer_config(ExecutionTimerConfig {
            limit: settings.time_limit,
            check_interval: NonZeroU32::MIN.saturating_add(63),
        });
        let mut has_allow = false;
        let mut has_deny_reasons = false;
        for source in sources {
            engine
                .add_policy(source.name.clone(), source.text.clone())
                .map_err(|e| PolicyError::Parse {
                    file: source.name.clone(),
                    message: format!("{e:#}"),
                })?;
            // Rule paths here are relative to the module's package; the package is checked below.
            has_allow |= engine
                .has_declared_rule_rooted_at(&source.name, "allow")
                .unwrap_or(false);
            has_deny_reasons |= engine
                .has_declared_rule_rooted_at(&source.name, "deny_reasons")
                .unwrap_or(false);
        }
        let names = || sources.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ");
        let packages = engine.get_packages().map_err(|e| PolicyError::Parse {
            file: names(),
            message: format!("{e:#}"),
        })?;
        if !has_allow || !packages.iter().any(|p| p == "data.portcullis") {
            return Err(PolicyError::NoAllowRule { file: names() });
        }
        // Compile now, so a broken set is refused at load rather than denied per call.
        let mut probe = engine.clone();
        probe.set_input(Value::new_object());
        for rule in [Some(ALLOW), has_deny_reasons.then_some(DENY_REASONS)]
            .into_iter()
            .flatten()
        {
            probe.eval_rule(rule.to_owned()).map_err(|e| PolicyError::Parse {
                file: names(),
                message: format!("{e:#}"),
            })?;
        }
        Ok(Self {
            pool: Mutex::new(vec![probe]),
            engine,
            has_deny_reasons,
            hash: policy_hash(EngineKind::Rego, sources),
            settings,
        })
    }

    /// The built-in tier policies.
    pub fn defaults(settings: Settings) -> Result<Self, PolicyError> {
        Self::load(&[PolicySource::defaults(EngineKind::Rego)], settings)
    }

    fn run(&self, input: &Input) -> Result<(bool, Vec<String>), String> {
        let document = serde_json::to_value(input).map_err(|e| format!("input does not serialise: {e}"))?;
        let pooled = self.pool.lock().map(|mut pool| pool.pop()).unwrap_or(None);
        let mut engine = pooled.unwrap_or_else(|| self.engine.clone());
        engine.set_input(Value::from(document));
        let outcome = Self::query(&mut engine, self.has_deny_reasons);
        // An engine that failed may hold odd state; only clean ones go back to the pool.
        if outcome.is_ok()
            && let Ok(mut pool) = self.pool.lock()
        {
            pool.push(engine);
        }
        outcome
    }

    fn query(engine: &mut regorus::Engine, has_deny_reasons: bool) -> Result<(bool, Vec<String>), String> {
        let allow = engine.eval_rule(ALLOW.to_owned()).map_err(|e| format!("{e:#}"))?;
        let allowed = allow == Value::Bool(true);
        let mut reasons = Vec::new();
        if has_deny_reasons {
            match engine
                .eval_rule(DENY_REASONS.to_owned())
                .map_err(|e| format!("{e:#}"))?
            {
                Value::Undefined => {}
                Value::Set(set) => {
                    for item in set.iter() {
                        match item {
                            Value::String(s) => reasons.push(s.to_string()),
                            other => return Err(format!("`deny_reasons` holds a non-string `{other}`")),
                        }
                    }
                }
                other => return Err(format!("`deny_reasons` is not a set of strings but `{other}`")),
            }
        }
        Ok((allowed, reasons))
    }
}

impl Engine for RegoEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Rego
    }

    fn policy_hash(&self) -> &str {
        &self.hash
    }

    fn settings(&self) -> Settings {
        self.settings
    }

    fn evaluate(&self, input: &Input) -> Evaluation {
        match self.run(input) {
            Ok((allowed, reasons)) => Evaluation {
                allowed,
                permits: if allowed { vec![ALLOW.to_owned()] } else { Vec::new() },
                messages: reasons.clone(),
                forbids: reasons,
                errors: Vec::new(),
                considered: 1,
            },
            Err(error) => Evaluation {
                errors: vec![format!("rego evaluation failed: {error}")],
                considered: 1,
                ..Evaluation::default()
            },
        }
    }

    fn evaluate_each(&self, input: &Input) -> Evaluation {
        self.evaluate(input)
    }
}
