//! The per-target index of Cedar policies: an index built at load, never a cache.
//!
//! Each policy lands in one partition by the resource constraint of its scope:
//! - `resource == Tool::"db/query"` (or `in`/`is … in` that entity): the target partition `Tool::"db/query"`;
//! - `resource in Server::"db"` (`==`, `is … in` alike): the server partition `Server::"db"`;
//! - no resource constraint, or only `resource is Tool`: the unconstrained partition.
//!
//! At load we build one `PolicySet` per target key (its own partition + its server's +
//! the unconstrained one), one per server key (server + unconstrained) and the
//! unconstrained set. A request for `Tool::"db/query"` then evaluates only the set for
//! its key. That gives the same decision and errors as the whole set, because a policy
//! in any other partition has a scope that cannot hold for this resource: the resource's
//! only ancestor is its server, and Cedar checks the scope before the conditions, so
//! such a policy can neither match nor error. Nothing about a request is remembered:
//! every call is evaluated afresh on the selected set.
//!
//! Cost: unconstrained and server policies are copied into each target set, and each key has
//! one set per tier, so memory grows with 3 × (targets named in policies) × (unconstrained +
//! that server's policies).
//!
//! Each key's set is further split by the target's tier. A policy whose first condition is a
//! `when` that begins with `resource.tier == "<tier>"` (either way round) is left out of the
//! other tiers' sets: Cedar evaluates the scope (which cannot error), then that conjunct first,
//! and `resource.tier` is always present (every target entity carries it), so for a target of
//! another tier the policy is false without evaluating the rest and without error — leaving it
//! out changes neither the decision nor the errors. A guard anywhere else is not used (an
//! earlier conjunct could error, and that error must still deny).
//!
//! Each prebuilt set also records, at load, whether it holds only unconditional permits
//! (`permit (principal, action, resource);` with no `when`/`unless`), as an allow-all set
//! does. Such a set allows every request with all of its policies as the reasons and can
//! raise no error, so the engine decides it without building the request's facts.
use std::collections::HashMap;

use cedar_policy::{ActionConstraint, Effect, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint};
use portcullis_core::Tier;
use serde_json::Value;

use crate::error::PolicyError;

/// The partitions and the prebuilt sets for every key.
#[derive(Debug)]
pub(crate) struct PolicyIndex {
    all: Selection,
    unconstrained: Tiered,
    by_server: HashMap<EntityUid, Tiered>,
    by_target: HashMap<EntityUid, Tiered>,
}

/// One key's prebuilt set for each tier of target: read, read-sensitive, write.
#[derive(Debug)]
struct Tiered {
    by_tier: [Selection; 3],
}

/// A policy with the tier its first test confines it to (see [`tier_guard`]).
struct Guarded {
    policy: Policy,
    tier: Option<String>,
}

impl Guarded {
    fn new(policy: &Policy) -> Self {
        Self {
            tier: tier_guard(policy),
            policy: policy.clone(),
        }
    }

    fn applies_to(&self, tier: Tier) -> bool {
        self.tier.as_deref().is_none_or(|guard| guard == tier.as_str())
    }
}

impl Tiered {
    fn get(&self, tier: Tier) -> &Selection {
        let [read, read_sensitive, write] = &self.by_tier;
        match tier {
            Tier::Read => read,
            Tier::ReadSensitive => read_sensitive,
            Tier::Write => write,
        }
    }
}

/// One prebuilt set and what is known about it at load.
#[derive(Debug)]
pub(crate) struct Selection {
    pub(crate) set: PolicySet,
    /// The sorted ids of its policies when the set is not empty and every policy in it is an
    /// unconditional permit: then every request is allowed, with these as the reasons.
    pub(crate) allows_all: Option<Vec<String>>,
}

impl Selection {
    fn new(set: PolicySet) -> Self {
        let allows_all = (set.num_of_policies() > 0 && set.policies().all(is_unconditional_permit)).then(|| {
            let mut ids: Vec<String> = set.policies().map(|p| p.id().to_string()).collect();
            ids.sort();
            ids
        });
        Self { set, allows_all }
    }
}

/// `permit (principal, action, resource);`: no scope constraint and no `when`/`unless`.
fn is_unconditional_permit(policy: &Policy) -> bool {
    policy.effect() == Effect::Permit
        && matches!(policy.principal_constraint(), PrincipalConstraint::Any)
        && matches!(policy.action_constraint(), ActionConstraint::Any)
        && matches!(policy.resource_constraint(), ResourceConstraint::Any)
        && !policy.has_non_scope_constraint()
}

/// The tier a policy is confined to: its first condition is a `when` whose body begins (its
/// leftmost `&&` operand) with `resource.tier == "<tier>"` or `"<tier>" == resource.tier`.
/// `Some` of a string that names no tier means the policy applies to no target at all.
fn tier_guard(policy: &Policy) -> Option<String> {
    let est = policy.to_json().ok()?;
    let first = est.get("conditions")?.as_array()?.first()?;
    if first.get("kind")?.as_str()? != "when" {
        return None;
    }
    let mut leftmost = first.get("body")?;
    while let Some(and) = leftmost.get("&&") {
        leftmost = and.get("left")?;
    }
    let eq = leftmost.get("==")?;
    let (left, right) = (eq.get("left")?, eq.get("right")?);
    let is_resource_tier = |e: &Value| {
        e.get(".").is_some_and(|dot| {
            dot.get("attr").and_then(Value::as_str) == Some("tier")
                && dot.get("left").and_then(|l| l.get("Var")).and_then(Value::as_str) == Some("resource")
        })
    };
    let literal = |e: &Value| e.get("Value").and_then(Value::as_str).map(str::to_owned);
    if is_resource_tier(left) {
        literal(right)
    } else if is_resource_tier(right) {
        literal(left)
    } else {
        None
    }
}

enum Key {
    Unconstrained,
    Server(EntityUid),
    Target(EntityUid),
}

fn key_of(policy: &Policy) -> Key {
    let uid = match policy.resource_constraint() {
        ResourceConstraint::Any | ResourceConstraint::Is(_) => return Key::Unconstrained,
        ResourceConstraint::Eq(uid) | ResourceConstraint::In(uid) | ResourceConstraint::IsIn(_, uid) => uid,
    };
    if uid.type_name().to_string() == "Server" {
        Key::Server(uid)
    } else {
        Key::Target(uid)
    }
}

/// The server a target id `<server>/<name>` belongs to.
fn server_of(target: &EntityUid) -> Option<EntityUid> {
    let id = target.id().unescaped();
    let (server, _) = id.split_once('/')?;
    format!("Server::\"{server}\"").parse().ok()
}

impl PolicyIndex {
    pub(crate) fn build(all: PolicySet) -> Result<Self, PolicyError> {
        let mut unconstrained = Vec::new();
        let mut servers: HashMap<EntityUid, Vec<Guarded>> = HashMap::new();
        let mut targets: HashMap<EntityUid, Vec<Guarded>> = HashMap::new();
        for policy in all.policies() {
            let guarded = Guarded::new(policy);
            match key_of(policy) {
                Key::Unconstrained => unconstrained.push(guarded),
                Key::Server(uid) => servers.entry(uid).or_default().push(guarded),
                Key::Target(uid) => targets.entry(uid).or_default().push(guarded),
            }
        }
        let set = |parts: &[&[Guarded]]| -> Result<Tiered, PolicyError> {
            let for_tier = |tier: Tier| -> Result<Selection, PolicyError> {
                let policies = parts.iter().flat_map(|part| part.iter());
                PolicySet::from_policies(policies.filter(|g| g.applies_to(tier)).map(|g| g.policy.clone()))
                    .map(Selection::new)
                    .map_err(|e| PolicyError::Parse {
                        file: "(index)".to_owned(),
                        message: e.to_string(),
                    })
            };
            Ok(Tiered {
                by_tier: [
                    for_tier(Tier::Read)?,
                    for_tier(Tier::ReadSensitive)?,
                    for_tier(Tier::Write)?,
                ],
            })
        };
        let mut by_target = HashMap::with_capacity(targets.len());
        for (uid, own) in &targets {
            let server = server_of(uid).and_then(|s| servers.get(&s)).map(Vec::as_slice);
            by_target.insert(uid.clone(), set(&[own, server.unwrap_or(&[]), &unconstrained])?);
        }
        let mut by_server = HashMap::with_capacity(servers.len());
        for (uid, own) in &servers {
            by_server.insert(uid.clone(), set(&[own, &unconstrained])?);
        }
        Ok(Self {
            unconstrained: set(&[&unconstrained])?,
            all: Selection::new(all),
            by_server,
            by_target,
        })
    }

    /// The set to evaluate for `resource` (of `tier`) on `server`.
    pub(crate) fn select(&self, resource: &EntityUid, server: &EntityUid, tier: Tier) -> &Selection {
        self.by_target
            .get(resource)
            .or_else(|| self.by_server.get(server))
            .unwrap_or(&self.unconstrained)
            .get(tier)
    }

    /// The whole validated set.
    pub(crate) fn all(&self) -> &Selection {
        &self.all
    }
}
