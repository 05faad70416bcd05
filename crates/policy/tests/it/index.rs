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
