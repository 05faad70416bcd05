//! The credential broker: least-privilege scope, the stage after authorise and approvals
//! and before forward. A call that a `[[credentials]]` rule names gets a credential minted
//! for it alone, after the policy decision, bound to that call and short-lived; a call no
//! rule names gets nothing. The crate depends on no other stage crate.
//!
//! - [`Broker::plan`]: which rule applies to a call (first match in config order) and what
//!   its credential would be — the [`Plan`] the policy input and the audit record see,
//!   never a secret.
//! - [`Broker::mint`]: the call's [`Lease`] from the rule's source; fails closed.
//! - Sources ([`SourceKind`]): `postgres-role` (a dynamic role per call or per session),
//!   `jwt` (signed per call, served in [`Broker::jwks`]), `token-exchange` (RFC 8693 of the
//!   caller's bearer token), `secret` (a static secret read at every mint).
//! - [`Broker::sweep`] and [`Broker::end_session`]: nothing outlives its call, session or TTL.
//!
//! The design is in `docs/broker.md`.
#![forbid(unsafe_code)]

mod config;
mod error;
mod lease;
mod rule;
mod source;

use std::collections::HashMap;

use portcullis_core::Secret;
use serde::Serialize;

pub use config::{
    DEFAULT_CONNECTION_LIMIT, JwtConfig, Per, PostgresRoleConfig, Privilege, SchemaGrant, SecretConfig, SecretFrom,
    SourceConfig, SourceKind, TokenExchangeConfig,
};
pub use error::BrokerError;
pub use lease::Lease;
use rule::CompiledRule;
pub use rule::{CallMatch, Delivery, Rule};
use source::Source;

/// The broker: built once at start, shared by every call.
pub struct Broker {
    rules: Vec<CompiledRule>,
    rule_index: HashMap<String, usize>,
    sources: HashMap<String, Source>,
}

/// Which leftover roles [`Broker::sweep`] drops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// At start: every role of each `postgres-role` source's prefix (a previous run's).
    Start,
    /// Periodically: those past their `VALID UNTIL` that this broker does not hold.
    Expired,
}

/// What the policy and the audit record learn before minting: never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub rule: String,
    pub source: String,
    /// `postgres-role`, `jwt`, `token-exchange` or `secret`.
    pub kind: &'static str,
    /// What the credential allows, in words: `SELECT on schema sales (role per call)`, the
    /// JWT's or exchanged token's scope, where a static secret comes from.
    pub scope: String,
    pub delivery: Delivery,
}

/// The call a credential is minted for.
#[derive(Debug, Clone, Copy)]
pub struct CallFacts<'a> {
    pub workload: &'a str,
    pub user: Option<&'a str>,
    pub server: &'a str,
    pub target: &'a str,
    pub decision_id: &'a str,
    /// SHA-256 of the canonical arguments, lowercase hex.
    pub arguments_sha256: &'a str,
    pub session: &'a str,
    /// The caller's bearer token, for `token-exchange`.
    pub bearer: Option<&'a Secret<String>>,
}

impl Broker {
    /// Checks and builds the rules and sources: ids unique, every rule names a configured
    /// source, globs, prefixes, delivery names and endpoints valid. Connects to nothing.
    pub fn new(rules: Vec<Rule>, sources: Vec<SourceConfig>) -> Result<Self, BrokerError> {
        let mut built = HashMap::new();
        let mut prefixes: HashMap<String, String> = HashMap::new();
        for config in sources {
            let name = config.name.clone();
            let source = Source::build(config)?;
            if let Source::PostgresRole(pg) = &source
                && let Some(other) = prefixes.insert(pg.prefix().to_owned(), name.clone())
            {
                return Err(BrokerError::config(
                    format!("source `{name}`"),
                    "prefix",
                    format!(
                        "source `{other}` uses prefix `{}` too; give each source its own (the sweeper drops every \
                         role of a prefix)",
                        pg.prefix()
                    ),
                ));
            }
            if built.insert(name.clone(), source).is_some() {
                return Err(BrokerError::config(
                    format!("source `{name}`"),
                    "name",
                    "two sources have this name; rename one",
                ));
            }
        }
        let mut compiled = Vec::with_capacity(rules.len());
        let mut rule_index = HashMap::new();
        for rule in rules {
            let rule = CompiledRule::new(rule)?;
            let id = rule.rule.id.clone();
            if !built.contains_key(&rule.rule.source) {
                return Err(BrokerError::config(
                    format!("rule `{id}`"),
                    "source",
                    format!(
                        "no credential source is named `{}`; define it or fix the name",
                        rule.rule.source
                    ),
                ));
            }
            if rule_index.insert(id.clone(), compiled.len()).is_some() {
                return Err(BrokerError::config(
                    format!("rule `{id}`"),
                    "id",
                    "two rules have this id; rename one",
                ));
            }
            compiled.push(rule);
        }
        Ok(Self {
            rules: compiled,
            rule_index,
            sources: built,
        })
    }

    /// The rule that applies to a call, if any: first match in config order.
    pub fn plan(&self, call: &CallMatch<'_>) -> Option<Plan> {
        let rule = &self.rules.iter().find(|r| r.matches(call))?.rule;
        let source = self.sources.get(&rule.source)?;
        Some(Plan {
            rule: rule.id.clone(),
            source: rule.source.clone(),
            kind: source.kind(),
            scope: source.scope(call),
            delivery: rule.delivery.clone(),
        })
    }

    /// Mints the call's credential (after the policy decision). Fails closed: an error
    /// means the call must be denied.
    pub async fn mint(&self, plan: &Plan, call: &CallFacts<'_>) -> Result<Lease, BrokerError> {
        let mismatch = |problem: String| BrokerError::PlanMismatch {
            rule: plan.rule.clone(),
            problem,
        };
        let rule = self
            .rule_index
            .get(&plan.rule)
            .and_then(|&i| self.rules.get(i))
            .map(|r| &r.rule)
            .ok_or_else(|| mismatch("this broker has no such rule".into()))?;
        if rule.server != call.server {
            return Err(mismatch(format!(
                "the rule is for server `{}`, the call for `{}`",
                rule.server, call.server
            )));
        }
        if rule.source != plan.source {
            return Err(mismatch(format!(
                "the rule's source is `{}`, the plan's `{}`",
                rule.source, plan.source
            )));
        }
        let source = self
            .sources
            .get(&rule.source)
            .ok_or_else(|| mismatch(format!("no source `{}`", rule.source)))?;
        let minted = source.mint(rule, call).await?;
        let lease = Lease {
            grant_id: minted.grant_id,
            rule: rule.id.clone(),
            source: rule.source.clone(),
            kind: source.kind(),
            scope: plan.scope.clone(),
            expires_at: minted.expires_at,
            delivery: rule.delivery.clone(),
            secret: minted.secret,
            owned: minted.owned,
        };
        // Checked after the lease exists, so a per-call role is dropped with it on failure.
        check_deliverable(&lease)?;
        tracing::debug!(
            grant_id = %lease.grant_id, rule = %lease.rule, source = %lease.source, kind = lease.kind,
            expires_at = lease.expires_at, "credential minted"
        );
        Ok(lease)
    }

    /// Drops leftover roles of every `postgres-role` source (see [`Sweep`]); roles this
    /// broker holds are never dropped. Returns how many roles were dropped. Every source is
    /// swept; if one fails, the first failure is returned (the others' drops stand).
    pub async fn sweep(&self, when: Sweep) -> Result<usize, BrokerError> {
        let mut dropped = 0;
        let mut first_error = None;
        for source in self.sources.values() {
            if let Source::PostgresRole(pg) = source {
                match pg.sweep(when == Sweep::Expired).await {
                    Ok(n) => dropped += n,
                    Err(e) => {
                        tracing::warn!(source = %pg.name(), error = %e, "sweeping leftover roles failed");
                        first_error.get_or_insert(e);
                    }
                }
            }
        }
        if dropped > 0 {
            tracing::info!(dropped, ?when, "leftover postgres roles dropped");
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(dropped),
        }
    }

    /// Releases the per-session credentials of a session that ended (failures are logged;
    /// the sweeper drops what remains once it expires).
    pub async fn end_session(&self, session: &str) {
        for source in self.sources.values() {
            if let Source::PostgresRole(pg) = source {
                pg.end_session(session).await;
            }
        }
    }

    /// The JSON Web Key Set of every `jwt` source's signing key.
    pub fn jwks(&self) -> serde_json::Value {
        let mut keys: Vec<(&String, serde_json::Value)> = self
            .sources
            .iter()
            .filter_map(|(name, s)| match s {
                Source::Jwt(jwt) => Some((name, jwt.jwk())),
                _ => None,
            })
            .collect();
        keys.sort_by(|a, b| a.0.cmp(b.0));
        serde_json::json!({ "keys": keys.into_iter().map(|(_, k)| k).collect::<Vec<_>>() })
    }

    /// No rules: no call gets a credential.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// The secret can travel the way the rule delivers it: a header value is visible ASCII and
/// spaces (no CR/LF to split headers); an environment value has no NUL.
fn check_deliverable(lease: &Lease) -> Result<(), BrokerError> {
    let value = lease.secret.expose();
    let ok = match &lease.delivery {
        Delivery::Header { .. } => value.bytes().all(|b| b == b' ' || b == b'\t' || b.is_ascii_graphic()),
        Delivery::Env { .. } => !value.contains('\0'),
    };
    if ok {
        Ok(())
    } else {
        Err(BrokerError::unavailable(
            &lease.source,
            format!(
                "its credential cannot be delivered as {} (forbidden characters); fix the secret",
                match &lease.delivery {
                    Delivery::Header { .. } => "an HTTP header value",
                    Delivery::Env { .. } => "an environment variable",
                }
            ),
        ))
    }
}
