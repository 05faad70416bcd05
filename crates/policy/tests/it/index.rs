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
        let indexed = CedarEngine::load_with(&sources, Settings::default(), Indexing::ByTarget).unwrap();
        let full = CedarEngine::load_with(&sources, Settings::default(), Indexing::Full).unwrap();
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
    let cases = [
        ("files", "t7", 6),    // tool-7 + 5 defaults
        ("files", "other", 5), // no tool or server policy: defaults only
        ("s3", "anything", 6), // server-3 + defaults
        ("s3", "t7", 6),       // Tool::"s3/t7" is not Tool::"files/t7"
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
