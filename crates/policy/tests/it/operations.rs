//! What operators use: explain, shadow mode, fixtures, reload and the decision record.
use portcullis_core::Tier;
use portcullis_policy::{
    EngineKind, Expect, FixtureCase, Fixtures, PolicyFiles, PolicyStore, Settings, explain, run_fixtures,
};

use crate::support::{call, engine};

#[test]
fn explain_lists_matching_permits_and_forbids() {
    let engine = engine(EngineKind::Cedar, &[], Settings::default());
    let explanation = explain(&*engine, &call("db", "insert", Tier::Write));
    assert!(!explanation.decision.allowed);
    assert_eq!(explanation.permits, ["tier-write"]);
    assert_eq!(explanation.forbids, ["write-needs-approval"]);
    assert_eq!(explanation.decision.messages, ["approval required"]);
    assert_eq!(explanation.input["arguments_sha256"].as_str().map(str::len), Some(64));
    let text = explanation.to_string();
    assert!(
        text.contains("decision: deny") && text.contains("write-needs-approval"),
        "{text}"
    );
}

#[test]
fn explain_works_for_rego_too() {
    let engine = engine(EngineKind::Rego, &[], Settings::default());
    let explanation = explain(&*engine, &call("db", "insert", Tier::Write));
    assert!(!explanation.decision.allowed);
    assert_eq!(explanation.forbids, ["approval required"]);
}

#[test]
fn shadow_decision_is_reported_but_never_enforced() {
    let store = PolicyStore::new(engine(EngineKind::Cedar, &[], Settings::default()));
    let permissive = r#"@id("allow-all") permit (principal, action, resource);"#;
    let shadow = portcullis_policy::CedarEngine::load(
        &[portcullis_policy::PolicySource::new("shadow.cedar", permissive)],
        Settings::default(),
    )
    .unwrap();
    store.set_shadow(Some(std::sync::Arc::new(shadow)));
    let (enforced, shadow) = store.authorize_with_shadow(&call("db", "insert", Tier::Write));
    assert!(enforced.is_err());
    let shadow = shadow.unwrap();
    assert!(shadow.allowed);
    assert_eq!(shadow.reasons, ["allow-all"]);
    store.set_shadow(None);
    assert!(
        store
            .authorize_with_shadow(&call("db", "insert", Tier::Write))
            .1
            .is_none()
    );
}

#[test]
fn fixtures_run_on_both_engines_and_report_mismatches() {
    let fixtures = Fixtures::from_toml(include_str!("../../testdata/fixtures.toml")).unwrap();
    assert_eq!(fixtures.cases.len(), 7);
    for kind in [EngineKind::Cedar, EngineKind::Rego] {
        let engine = engine(kind, &[], Settings::default());
        let report = run_fixtures(&*engine, &fixtures.cases);
        assert!(report.all_passed(), "{kind:?}: {:?}", report.mismatches);
        assert_eq!(report.passed, 7);

        let wrong = FixtureCase {
            name: "write expected to pass".into(),
            request: call("db", "insert", Tier::Write),
            expect: Expect::Allow,
        };
        let report = run_fixtures(&*engine, &[wrong]);
        assert_eq!((report.passed, report.failed), (0, 1));
        assert_eq!(report.mismatches[0].name, "write expected to pass");
        assert!(!report.mismatches[0].reasons.is_empty());
    }
    let json = serde_json::to_string(&fixtures).unwrap();
    assert_eq!(Fixtures::from_json(&json).unwrap(), fixtures);
    assert!(Fixtures::from_json(r#"{"cases":[{"name":"x","expect":"maybe"}]}"#).is_err());
}

#[test]
fn reload_swaps_in_a_valid_set() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiers.rego");
    std::fs::write(&path, portcullis_policy::DEFAULT_REGO_POLICIES).unwrap();
    let files = PolicyFiles {
        engine: EngineKind::Rego,
        patterns: vec![path.display().to_string()],
        settings: Settings::default(),
    };
    let store = PolicyStore::from_files(files).unwrap();
    let write = call("db", "insert", Tier::Write);
    assert!(store.authorize(&write).is_err());
    assert!(!store.reload_from_files().unwrap().changed, "same files, same set");
    std::fs::write(
        &path,
        "package portcullis\nimport rego.v1\nallow if input.tier == \"write\"\n",
    )
    .unwrap();
    let before = store.policy_hash();
    let reloaded = store.reload_from_files().unwrap();
    assert!(reloaded.changed);
    assert_ne!(reloaded.policy_hash, before);
    let permit = store.authorize(&write).unwrap();
    assert_eq!(permit.policy_hash(), reloaded.policy_hash);
}

#[test]
fn every_decision_gets_a_fresh_id_and_names_the_policy_set() {
    let store = PolicyStore::new(engine(EngineKind::Cedar, &[], Settings::default()));
    let request = call("files", "read_file", Tier::Read);
    let a = store.authorize(&request).unwrap();
    let b = store.authorize(&request).unwrap();
    assert_ne!(a.decision_id(), b.decision_id());
    assert_eq!(a.policy_hash(), b.policy_hash());
    assert_eq!(a.reasons(), ["tier-read"]);
}

#[test]
fn policy_hash_ignores_file_names_and_order_but_not_text() {
    use portcullis_policy::{PolicySource, policy_hash};
    let a = PolicySource::new("a.cedar", "permit (principal, action, resource);");
    let b = PolicySource::new("b.cedar", "forbid (principal, action, resource);");
    let renamed = PolicySource::new("z.cedar", a.text.clone());
    let h = policy_hash(EngineKind::Cedar, &[a.clone(), b.clone()]);
    assert_eq!(h, policy_hash(EngineKind::Cedar, &[b.clone(), renamed]));
    assert_ne!(h, policy_hash(EngineKind::Rego, &[a.clone(), b]));
    assert_ne!(h, policy_hash(EngineKind::Cedar, &[a]));
}
