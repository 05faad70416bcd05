//! T14 property: allow ⇒ some permit matched AND no forbid matched AND no errors,
//! for generated Cedar policy sets (some of which error at runtime) and requests.
//! Policy generators are shared with the index tests.
use portcullis_core::Tier;
use portcullis_policy::{CedarEngine, DecisionRequest, Engine, Input, PolicySource, Settings, decide};
use proptest::prelude::*;

use crate::support::call;

pub const TARGETS: [&str; 4] = ["files/read_file", "files/write_file", "db/query", "db/drop"];
const WORKLOADS: [&str; 2] = ["spiffe://example.org/agent", "spiffe://example.org/ci"];
const SCOPES: [&str; 3] = ["mcp:read-sensitive", "db:read-sensitive", "files:admin"];
const TIERS: [&str; 3] = ["read", "read-sensitive", "write"];

/// One generated policy, as Cedar text.
pub fn policy() -> impl Strategy<Value = String> {
    let effect = prop_oneof![Just("permit"), Just("forbid")];
    let principal = prop_oneof![
        Just("principal".to_owned()),
        prop::sample::select(&WORKLOADS[..]).prop_map(|w| format!("principal in Workload::\"{w}\"")),
        Just("principal in User::\"alice\"".to_owned()),
    ];
    let action = prop_oneof![
        Just("action".to_owned()),
        Just("action == Action::\"tools/call\"".to_owned()),
        Just("action == Action::\"other\"".to_owned()),
    ];
    let resource = prop_oneof![
        Just("resource".to_owned()),
        prop::sample::select(&TARGETS[..]).prop_map(|t| format!("resource == Tool::\"{t}\"")),
        prop::sample::select(&["files", "db", "mail"][..]).prop_map(|s| format!("resource in Server::\"{s}\"")),
        Just("resource is Tool".to_owned()),
    ];
    let condition = prop_oneof![
        Just(String::new()),
        prop::sample::select(&TIERS[..]).prop_map(|t| format!("when {{ resource.tier == \"{t}\" }}")),
        Just("when { context has reason }".to_owned()),
        prop::sample::select(&SCOPES[..]).prop_map(|s| format!("when {{ principal.scopes.contains(\"{s}\") }}")),
        Just("unless { context.approval_present }".to_owned()),
        // Errors (overflow) when time is 2.
        Just("when { context.time * 9223372036854775807 > 1 }".to_owned()),
        // Tier tests first (split by tier at load) or after something that may error (not split).
        prop::sample::select(&TIERS[..])
            .prop_map(|t| format!("when {{ resource.tier == \"{t}\" && context.time * 9223372036854775807 > 1 }}")),
        prop::sample::select(&TIERS[..])
            .prop_map(|t| format!("when {{ context.time * 9223372036854775807 > 1 && resource.tier == \"{t}\" }}")),
        prop::sample::select(&TIERS[..])
            .prop_map(|t| format!("when {{ \"{t}\" == resource.tier && context has reason }}")),
        prop::sample::select(&TIERS[..])
            .prop_map(|t| format!("unless {{ context.approval_present }} when {{ resource.tier == \"{t}\" }}")),
    ];
    (effect, principal, action, resource, condition).prop_map(|(e, p, a, r, c)| format!("{e} ({p}, {a}, {r}) {c};"))
}

/// A set of up to `max` generated policies, one source.
pub fn policy_set(max: usize) -> impl Strategy<Value = PolicySource> {
    prop::collection::vec(policy(), 0..max).prop_map(|ps| PolicySource::new("generated.cedar", ps.join("\n")))
}

/// A generated request to one of the targets.
pub fn request() -> impl Strategy<Value = DecisionRequest> {
    (
        prop::sample::select(&TARGETS[..]),
        prop::sample::select(&[Tier::Read, Tier::ReadSensitive, Tier::Write][..]),
        prop::sample::select(&WORKLOADS[..]),
        any::<bool>(),
        prop::sample::subsequence(&SCOPES[..], 0..=3),
        any::<bool>(),
        any::<bool>(),
        // 0: the overflow conditions evaluate; 2: they error (1 × i64::MAX does not overflow).
        prop::sample::select(&[0i64, 2][..]),
        prop::sample::select(&["tools/call", "completion/complete"][..]),
    )
        .prop_map(
            |(target, tier, workload, user, scopes, reason, approval, time, method)| {
                let (server, name) = target.split_once('/').unwrap();
                let mut r = call(server, name, tier);
                r.principal.workload = workload.to_owned();
                r.principal.user = user.then(|| "alice".to_owned());
                r.principal.scopes = scopes.into_iter().map(str::to_owned).collect();
                r.reason = reason.then(|| "because".to_owned());
                r.approval_present = approval;
                r.time = portcullis_policy::Timestamp::from_unix(time);
                r.method = method.to_owned();
                r
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn t14_allow_implies_permit_matched_no_forbid_no_error(source in policy_set(12), request in request()) {
        let engine = CedarEngine::load(&[source], Settings::default()).unwrap();
        let decision = decide(&engine, &request);
        // Cedar's own diagnostics, policy by policy.
        let each = engine.evaluate_each(&Input::new(&request, Settings::default()));
        if decision.allowed {
            prop_assert!(!each.permits.is_empty());
            prop_assert!(each.forbids.is_empty());
            prop_assert!(each.errors.is_empty());
            prop_assert!(decision.errors.is_empty());
            prop_assert!(!decision.reasons.is_empty());
        }
        // And the converse: a clean permit with no forbid is allowed.
        let clean_permit = !each.permits.is_empty() && each.forbids.is_empty() && each.errors.is_empty();
        prop_assert_eq!(decision.allowed, clean_permit);
    }
}
