//! The embedded Cedar engine (the default): load and validate, then evaluate per call.
//!
//! Loading parses each file, names every policy (its `@id`, or `<file>#policyN`),
//! refuses templates and duplicate ids, validates the whole set against the
//! Portcullis schema in strict mode, and builds the per-target [`index`]. Any
//! problem refuses the whole set, naming the file and the policy.
mod facts;
mod index;

use portcullis_core::Tier;
use std::collections::HashMap;
use std::str::FromStr;

use cedar_policy::{
    Authorizer, Decision as CedarDecision, Effect, PolicyId, PolicySet, Schema, ValidationMode, Validator,
};

use crate::engine::{Engine, EngineKind, Evaluation};
use crate::error::PolicyError;
use crate::input::{Input, Settings};
use crate::sources::{CEDAR_SCHEMA, PolicySource, policy_hash};
use facts::{CedarFacts, Names, TargetKeys};
use index::{PolicyIndex, Selection};

/// Whether evaluation uses the per-target index. `Full` exists for benchmarks and
/// for checking that the index changes nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Indexing {
    #[default]
    ByTarget,
    Full,
}

/// A validated Cedar policy set.
pub struct CedarEngine {
    schema: Schema,
    names: Names,
    index: PolicyIndex,
    authorizer: Authorizer,
    hash: String,
    settings: Settings,
    indexing: Indexing,
}

/// The Portcullis schema, parsed.
pub fn schema() -> Result<Schema, PolicyError> {
    Schema::from_cedarschema_str(CEDAR_SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| PolicyError::Schema(e.to_string()))
}

impl CedarEngine {
    /// Loads, validates and indexes `sources`.
    pub fn load(sources: &[PolicySource], settings: Settings) -> Result<Self, PolicyError> {
        Self::load_with(sources, settings, Indexing::ByTarget)
    }

    /// The built-in tier policies.
    pub fn defaults(settings: Settings) -> Result<Self, PolicyError> {
        Self::load(&[PolicySource::defaults(EngineKind::Cedar)], settings)
    }

    pub fn load_with(sources: &[PolicySource], settings: Settings, indexing: Indexing) -> Result<Self, PolicyError> {
        let schema = schema()?;
        let mut all = PolicySet::new();
        let mut origin: HashMap<String, String> = HashMap::new();
        for source in sources {
            let parsed = PolicySet::from_str(&source.text).map_err(|e| PolicyError::Parse {
                file: source.name.clone(),
                message: e.to_string(),
            })?;
            if let Some(template) = parsed.templates().next() {
                return Err(PolicyError::Template {
                    file: source.name.clone(),
                    policy: template.id().to_string(),
                });
            }
            let mut policies: Vec<_> = parsed.policies().collect();
            policies.sort_by_key(|p| p.id().to_string());
            for policy in policies {
                let id = match policy.annotation("id") {
                    Some(id) => id.to_owned(),
                    None => format!("{}#{}", source.name, policy.id()),
                };
                if let Some(first) = origin.insert(id.clone(), source.name.clone()) {
                    return Err(PolicyError::DuplicateId {
                        policy: id,
                        first,
                        second: source.name.clone(),
                    });
                }
                all.add(policy.new_id(PolicyId::new(&id)))
                    .map_err(|e| PolicyError::Parse {
                        file: source.name.clone(),
                        message: e.to_string(),
                    })?;
            }
        }
        let result = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
        let mut problems = result.validation_errors();
        if let Some(first) = problems.next() {
            let policy = first.policy_id().to_string();
            return Err(PolicyError::Invalid {
                file: origin.get(&policy).cloned().unwrap_or_default(),
                policy,
                message: first.to_string(),
                more: problems.count(),
            });
        }
        let names = Names::new(&schema).map_err(PolicyError::Schema)?;
        Ok(Self {
            schema,
            names,
            index: PolicyIndex::build(all)?,
            authorizer: Authorizer::new(),
            hash: policy_hash(EngineKind::Cedar, sources),
            settings,
            indexing,
        })
    }

    /// How many policies the set holds.
    pub fn policy_count(&self) -> usize {
        self.index.all().set.num_of_policies()
    }

    fn facts(&self, input: &Input, keys: &TargetKeys) -> Result<CedarFacts, Evaluation> {
        CedarFacts::new(input, keys, &self.names, &self.schema, facts::VALIDATE_EVERY_CALL).map_err(|e| Evaluation {
            errors: vec![format!("the request does not fit the Cedar schema: {e}")],
            ..Evaluation::default()
        })
    }

    fn selected(&self, keys: &TargetKeys, tier: Tier) -> &Selection {
        match self.indexing {
            Indexing::ByTarget => self.index.select(&keys.resource, &keys.server, tier),
            Indexing::Full => self.index.all(),
        }
    }

    fn messages(&self, forbids: &[String]) -> Vec<String> {
        let mut messages: Vec<String> = forbids
            .iter()
            .filter_map(|id| self.index.all().set.annotation(&PolicyId::new(id), "reason"))
            .map(str::to_owned)
            .collect();
        messages.sort();
        messages.dedup();
        messages
    }
}

impl Engine for CedarEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Cedar
    }

    fn policy_hash(&self) -> &str {
        &self.hash
    }

    fn settings(&self) -> Settings {
        self.settings
    }

    fn evaluate(&self, input: &Input) -> Evaluation {
        let keys = TargetKeys::of(input, &self.names);
        let selection = self.selected(&keys, input.tier);
        let set = &selection.set;
        // Only unconditional permits (an allow-all set): Cedar would allow with all of them
        // as the reasons and no error, whatever the facts; `explain` still evaluates them.
        if let Some(permits) = &selection.allows_all {
            return Evaluation {
                allowed: true,
                permits: permits.clone(),
                considered: set.num_of_policies(),
                ..Evaluation::default()
            };
        }
        let facts = match self.facts(input, &keys) {
            Ok(facts) => facts,
            Err(failed) => return failed,
        };
        let response = self.authorizer.is_authorized(&facts.request, set, &facts.entities);
        let mut reasons: Vec<String> = response.diagnostics().reason().map(ToString::to_string).collect();
        reasons.sort();
        let errors = response.diagnostics().errors().map(ToString::to_string).collect();
        let allowed = response.decision() == CedarDecision::Allow;
        let (permits, forbids) = if allowed {
            (reasons, Vec::new())
        } else {
            (Vec::new(), reasons)
        };
        Evaluation {
            allowed,
            messages: self.messages(&forbids),
            permits,
            forbids,
            errors,
            considered: set.num_of_policies(),
        }
    }

    fn evaluate_each(&self, input: &Input) -> Evaluation {
        let keys = TargetKeys::of(input, &self.names);
        let facts = match self.facts(input, &keys) {
            Ok(facts) => facts,
            Err(failed) => return failed,
        };
        let set = &self.selected(&keys, input.tier).set;
        let mut evaluation = Evaluation {
            considered: set.num_of_policies(),
            ..Evaluation::default()
        };
        for policy in set.policies() {
            let Ok(alone) = PolicySet::from_policies([policy.clone()]) else {
                evaluation
                    .errors
                    .push(format!("cannot evaluate policy `{}` alone", policy.id()));
                continue;
            };
            let response = self.authorizer.is_authorized(&facts.request, &alone, &facts.entities);
            evaluation
                .errors
                .extend(response.diagnostics().errors().map(ToString::to_string));
            if response.diagnostics().reason().next().is_some() {
                match policy.effect() {
                    Effect::Permit => evaluation.permits.push(policy.id().to_string()),
                    Effect::Forbid => evaluation.forbids.push(policy.id().to_string()),
                }
            }
        }
        evaluation.permits.sort();
        evaluation.forbids.sort();
        evaluation.allowed = !evaluation.permits.is_empty() && evaluation.forbids.is_empty();
        evaluation.messages = self.messages(&evaluation.forbids);
        evaluation
    }
}
