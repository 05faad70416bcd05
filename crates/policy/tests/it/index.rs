//! The per-target index decides exactly as the whole set does, and selects only the
//! partitions a request can touch.
use portcullis_core::Tier;
use portcullis_policy::{CedarEngine, EngineKind, Indexing, PolicySource, Settings, decide, explain};
use proptest::prelude::*;

use crate::properties::{policy_set, request};
use crate::support::call;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn indexed_evaluation_equals_evaluating_the_whole_set(source in policy_set(40), request in request()) {
        let sources = [source];
        // The property is about decisions: a debug build on a loaded machine may take longer
        // than the default 100 ms limit, which would deny one side only.
        let settings = Settings { time_limit: std::time::Duration::from_secs(60), ..Settings::default() };
        let indexed = CedarEngine::load_with(&sources, settings, Indexing::ByTarget).unwrap();
        let full = CedarEngine::load_with(&sources, settings, Indexing::Full).unwrap();
        let (a, b) = (decide(&indexed, &request), decide(&full, &request));
        prop_assert_eq!(a.allowed, b.allowed);
        prop_assert_eq!(a.reasons, b.reasons);
        prop_assert_eq!(a.messages, b.messages);
        let (mut ea, mut eb) = (a.errors, b.errors);
        ea.sort();
        eb.sort();
        prop_assert_eq!(ea, eb);
    }
}

/// 100 tool policies, 20 server policies and the 5 default tier policies.
fn large_set() -> Vec<PolicySource> {
    let mut text = String::new();
    for n in 0..100 {
        text.push_str(&format!(
            "@id(\"tool-{n}\") forbid (principal, action, resource == Tool::\"files/t{n}\") when {{ context.break_glass }};\n"
        ));
    }
    for n in 0..20 {
        text.push_str(&format!(
            "@id(\"server-{n}\") forbid (principal, action, resource in Server::\"s{n}\") when {{ context.break_glass }};\n"
        ));
    }
    vec![
        PolicySource::defaults(EngineKind::Cedar),
        PolicySource::new("large.cedar", text),
    ]
}

#[test]
fn index_selects_target_server_and_unconstrained_partitions() {
    let engine = CedarEngine::load(&large_set(), Settings::default()).unwrap();
    assert_eq!(engine.policy_count(), 125);
    // Of the 5 defaults, a read target sees 2: `tier-read` and `reason-required` (the other
    // three test `resource.tier` first, for another tier).
    let cases = [
        ("files", "t7", 3),    // tool-7 + 2 defaults
        ("files", "other", 2), // no tool or server policy: defaults only
        ("s3", "anything", 3), // server-3 + defaults
        ("s3", "t7", 3),       // Tool::"s3/t7" is not Tool::"files/t7"
    ];
    for (server, tool, want) in cases {
        let explanation = explain(&engine, &call(server, tool, Tier::Read));
        assert_eq!(explanation.policies_considered, want, "{server}/{tool}");
        assert!(explanation.decision.allowed, "{server}/{tool}");
    }
    let mut glass = call("files", "t7", Tier::Read);
    glass.break_glass = true;
    let decision = decide(&engine, &glass);
    assert!(!decision.allowed);
    assert_eq!(decision.reasons, ["tool-7"]);
    glass.target = "t8".into();
    assert_eq!(decide(&engine, &glass).reasons, ["tool-8"]);
}

/// A set of only unconditional permits is decided without building the request's facts
/// (the index records it at load): the decision must be Cedar's own — allow, every such
/// permit as a reason, no error — and anything else in the set (a forbid, a scoped or
/// conditional permit) must still be evaluated.
#[test]
fn unconditional_permits_decide_as_cedar_does() {
    let load = |text: &str| CedarEngine::load(&[PolicySource::new("set.cedar", text)], Settings::default()).unwrap();
    let allow_all =
        load("@id(\"b\") permit (principal, action, resource);\n@id(\"a\") permit (principal, action, resource);");
    let request = call("db", "query", Tier::Write);
    let decision = decide(&allow_all, &request);
    assert!(decision.allowed);
    assert_eq!(decision.reasons, ["a", "b"]);
    assert!(decision.errors.is_empty());
    // `explain` evaluates every policy through Cedar and checks the enforced decision agrees.
    let explanation = explain(&allow_all, &request);
    assert_eq!(explanation.permits, ["a", "b"]);
    assert_eq!(explanation.decision.allowed, decision.allowed);
    assert_eq!(explanation.decision.reasons, decision.reasons);
    assert_eq!(explanation.policies_considered, 2);

    let with_forbid = load(
        "@id(\"all\") permit (principal, action, resource);\n\
         @id(\"no-query\") forbid (principal, action, resource == Tool::\"db/query\");",
    );
    let denied = decide(&with_forbid, &request);
    assert!(!denied.allowed, "a forbid beside an allow-all permit still applies");
    assert_eq!(denied.reasons, ["no-query"]);
    assert!(decide(&with_forbid, &call("db", "other", Tier::Write)).allowed);

    let scoped = load("@id(\"only-db\") permit (principal, action, resource in Server::\"db\");");
    assert!(decide(&scoped, &request).allowed);
    assert!(
        !decide(&scoped, &call("files", "read", Tier::Read)).allowed,
        "a scoped permit is not allow-all"
    );

    let conditional = load("@id(\"glass\") permit (principal, action, resource) when { context.break_glass };");
    assert!(
        !decide(&conditional, &request).allowed,
        "a conditional permit is not allow-all"
    );
    let mut glass = request.clone();
    glass.break_glass = true;
    assert!(decide(&conditional, &glass).allowed);
}

/// The tier split: a policy whose first condition begins with `resource.tier == "<t>"` is
/// evaluated only for targets of tier `<t>`; a guard anywhere else is not trusted, because an
/// earlier conjunct may error and that error must still deny.
#[test]
fn tier_guarded_policies_are_evaluated_only_for_their_tier() {
    let text = "@id(\"first\") forbid (principal, action, resource) when { resource.tier == \"write\" && context.break_glass };\n\
                @id(\"flipped\") forbid (principal, action, resource) when { \"write\" == resource.tier };\n\
                @id(\"second\") forbid (principal, action, resource) when { context.break_glass && resource.tier == \"write\" };\n\
                @id(\"after-unless\") forbid (principal, action, resource) unless { context.listing } when { resource.tier == \"write\" };\n\
                @id(\"nested\") forbid (principal, action, resource) when { (resource.tier == \"write\" && context.listing) && context.break_glass };\n\
                @id(\"other-tier\") forbid (principal, action, resource) when { resource.tier == \"gold\" };\n\
                @id(\"all\") permit (principal, action, resource);";
    let engine = CedarEngine::load(&[PolicySource::new("tiers.cedar", text)], Settings::default()).unwrap();
    // A read target: the guarded policies (first, flipped, nested, other-tier) are left out.
    let read = explain(&engine, &call("db", "query", Tier::Read));
    assert_eq!(read.policies_considered, 3, "second, after-unless, all");
    assert!(read.decision.allowed);
    // A write target: every policy whose guard names `write` is evaluated; `gold` never is.
    let write = explain(&engine, &call("db", "query", Tier::Write));
    assert_eq!(write.policies_considered, 6);
    assert!(!write.decision.allowed);
    assert_eq!(write.forbids, ["after-unless", "flipped"]);
}

/// An error in a conjunct before a tier test still denies a target of another tier: such a
/// policy is not split by tier.
#[test]
fn an_error_before_the_tier_test_still_denies() {
    let text = "@id(\"overflow-first\") forbid (principal, action, resource) when { context.time * 9223372036854775807 > 1 && resource.tier == \"write\" };\n\
                @id(\"all\") permit (principal, action, resource);";
    let engine = CedarEngine::load(&[PolicySource::new("errors.cedar", text)], Settings::default()).unwrap();
    let mut request = call("db", "query", Tier::Read);
    request.time = portcullis_policy::Timestamp::from_unix(2);
    let decision = decide(&engine, &request);
    assert!(!decision.allowed, "the overflow is an error, and errors deny");
    assert!(!decision.errors.is_empty());
}
