//! T14 (policy engine fails open): errors, panics, bad files, stale sets and missing
//! facts must all end in deny, with the error recorded.
use std::sync::{Arc, OnceLock, Weak};

use portcullis_core::Tier;
use portcullis_policy::{
    CedarEngine, EngineKind, Evaluation, Input, PolicyError, PolicyFiles, PolicySource, PolicyStore, RegoEngine,
    Settings, authorize, decide,
};

use crate::support::{call, engine};

#[test]
fn t14_cedar_permit_that_errors_at_runtime_denies_with_errors() {
    // Overflows for any time after the epoch; the tier permit alone would allow.
    let overflow = r#"@id("overflowing") permit (principal, action, resource)
        when { context.time * 9223372036854775807 > 0 };"#;
    let store = PolicyStore::new(engine(EngineKind::Cedar, &[overflow], Settings::default()));
    let deny = store.authorize(&call("files", "read_file", Tier::Read)).unwrap_err();
    assert!(
        deny.errors().iter().any(|e| e.contains("overflowing")),
        "{:?}",
        deny.errors()
    );
    assert!(deny.client_message().contains(deny.decision_id()));
    assert!(
        !deny.client_message().contains("9223372036854775807"),
        "no policy text to the client"
    );
}

#[test]
fn t14_cedar_forbid_that_errors_does_not_fail_open() {
    // Cedar skips a forbid that errors; the permit would then win. We deny.
    let overflow = r#"@id("broken-forbid") forbid (principal, action, resource)
        when { context.time * 9223372036854775807 > 0 };"#;
    let engine = engine(EngineKind::Cedar, &[overflow], Settings::default());
    let decision = decide(&*engine, &call("files", "read_file", Tier::Read));
    assert!(!decision.allowed);
    assert!(decision.errors.iter().any(|e| e.contains("broken-forbid")));
}

#[test]
fn t14_rego_policy_that_errors_denies() {
    let failing = "package portcullis\nimport rego.v1\nallow if to_number(input.target.name) > 0\n";
    let engine = engine(EngineKind::Rego, &[failing], Settings::default());
    let decision = decide(&*engine, &call("files", "read_file", Tier::Read));
    assert!(!decision.allowed);
    assert!(!decision.errors.is_empty(), "{decision:?}");
}

#[test]
fn t14_missing_attributes_deny() {
    // Rego: a fact the input does not have is undefined, never true.
    let rego = "package portcullis\nimport rego.v1\nallow if input.principal.claims.department == \"eng\"\n";
    let rego = engine(EngineKind::Rego, &[rego], Settings::default());
    let mut request = call("files", "read_file", Tier::Write);
    assert!(!decide(&*rego, &request).allowed);
    // Cedar: reading a claim or optional fact without checking for it is refused at load.
    for unguarded in [
        r#"@id("u1") permit (principal, action, resource) when { principal.getTag("department") == "eng" };"#,
        r#"@id("u2") permit (principal, action, resource) when { context.reason == "audit" };"#,
    ] {
        let error = CedarEngine::load(&[PolicySource::new("unguarded.cedar", unguarded)], Settings::default());
        let error = error.err().unwrap().to_string();
        assert!(error.contains("unable to guarantee safety of access"), "{error}");
    }
    // A guarded read of an absent claim does not match.
    let cedar = r#"@id("eng-writes") permit (principal, action, resource)
        when { principal.hasTag("department") && principal.getTag("department") == "eng" };"#;
    let cedar = engine(EngineKind::Cedar, &[cedar], Settings::default());
    request.approval_present = true;
    request.principal.claims.insert("department".into(), "eng".into());
    assert!(decide(&*cedar, &request).allowed);
    request.principal.claims.clear();
    request.tier = Tier::ReadSensitive;
    assert!(!decide(&*cedar, &request).allowed);
    // A request without a required fact does not even parse.
    let mut json = serde_json::to_value(call("files", "read_file", Tier::Read)).unwrap();
    json.as_object_mut().unwrap().remove("tier");
    assert!(serde_json::from_value::<portcullis_policy::DecisionRequest>(json).is_err());
}

#[test]
fn t14_corrupt_policy_file_is_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, name, text) in [
        (
            EngineKind::Cedar,
            "corrupt.cedar",
            "permit (principal, action, resource) when { ;",
        ),
        (EngineKind::Rego, "corrupt.rego", "package portcullis\nallow if {{{\n"),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let files = PolicyFiles {
            engine: kind,
            patterns: vec![path.display().to_string()],
            settings: Settings::default(),
        };
        let error = PolicyStore::from_files(files).err().unwrap();
        assert!(matches!(error, PolicyError::Parse { .. }), "{error}");
        assert!(error.to_string().contains(name), "{error}");
    }
}

#[test]
fn t14_policy_outside_the_schema_is_refused_naming_file_and_policy() {
    let bad = PolicySource::new(
        "team.cedar",
        r#"@id("by-department") permit (principal, action, resource) when { principal.department == "eng" };"#,
    );
    let error = CedarEngine::load(&[bad], Settings::default()).err().unwrap();
    let text = error.to_string();
    assert!(matches!(error, PolicyError::Invalid { .. }), "{text}");
    assert!(text.contains("team.cedar") && text.contains("by-department"), "{text}");
}

#[test]
fn t14_rego_without_allow_rule_is_refused() {
    let source = PolicySource::new("other.rego", "package elsewhere\nimport rego.v1\nallow := true\n");
    let error = RegoEngine::load(&[source], Settings::default()).err().unwrap();
    assert!(error.to_string().contains("other.rego"), "{error}");
}

#[test]
fn t14_corrupt_file_at_reload_is_refused_and_old_set_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiers.cedar");
    std::fs::write(&path, portcullis_policy::DEFAULT_CEDAR_POLICIES).unwrap();
    let files = PolicyFiles {
        engine: EngineKind::Cedar,
        patterns: vec![format!("{}/*.cedar", dir.path().display())],
        settings: Settings::default(),
    };
    let store = PolicyStore::from_files(files).unwrap();
    let before = store.policy_hash();
    let fingerprint = store.fingerprint().unwrap();
    std::fs::write(&path, "forbid (principal, action, resource) when { nonsense };").unwrap();
    assert_ne!(store.fingerprint().unwrap(), fingerprint);
    let error = store.reload_from_files().unwrap_err();
    assert!(error.to_string().contains("tiers.cedar"), "{error}");
    assert_eq!(store.policy_hash(), before);
    assert!(
        store.authorize(&call("files", "read_file", Tier::Read)).is_ok(),
        "old set in force"
    );
}

/// An engine that misbehaves in a chosen way.
struct Faulty(Fault);
enum Fault {
    Panic,
    AllowWithError,
    AllowWithoutPermit,
}

impl portcullis_policy::Engine for Faulty {
    fn kind(&self) -> EngineKind {
        EngineKind::Cedar
    }
    fn policy_hash(&self) -> &str {
        "faulty"
    }
    fn settings(&self) -> Settings {
        Settings::default()
    }
    fn evaluate(&self, _: &Input) -> Evaluation {
        let permits = vec!["p".to_owned()];
        match self.0 {
            Fault::Panic => panic!("engine bug"),
            Fault::AllowWithError => Evaluation {
                allowed: true,
                permits,
                errors: vec!["boom".into()],
                ..Evaluation::default()
            },
            Fault::AllowWithoutPermit => Evaluation {
                allowed: true,
                ..Evaluation::default()
            },
        }
    }
    fn evaluate_each(&self, input: &Input) -> Evaluation {
        self.evaluate(input)
    }
}

#[test]
fn t14_engine_panic_or_inconsistent_answer_denies() {
    for fault in [Fault::Panic, Fault::AllowWithError, Fault::AllowWithoutPermit] {
        let deny = authorize(&Faulty(fault), &call("files", "read_file", Tier::Read)).unwrap_err();
        assert_eq!(deny.policy_hash(), "faulty");
    }
    let deny = authorize(&Faulty(Fault::Panic), &call("files", "read_file", Tier::Read)).unwrap_err();
    assert!(deny.errors().iter().any(|e| e.contains("panicked")));
}

/// Allows everything, but replaces the store's set while evaluating, `swaps` times in a row.
struct Swapping {
    store: OnceLock<Weak<PolicyStore>>,
    swaps: std::sync::atomic::AtomicUsize,
}

impl portcullis_policy::Engine for Swapping {
    fn kind(&self) -> EngineKind {
        EngineKind::Cedar
    }
    fn policy_hash(&self) -> &str {
        "swapping"
    }
    fn settings(&self) -> Settings {
        Settings::default()
    }
    fn evaluate(&self, _: &Input) -> Evaluation {
        let left = self.swaps.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.swaps.store(left - 1, std::sync::atomic::Ordering::SeqCst);
            if let Some(store) = self.store.get().and_then(Weak::upgrade) {
                let same = store.current_engine();
                store.replace(same);
            }
        }
        Evaluation {
            allowed: true,
            permits: vec!["all".into()],
            ..Evaluation::default()
        }
    }
    fn evaluate_each(&self, input: &Input) -> Evaluation {
        self.evaluate(input)
    }
}

#[test]
fn t14_decision_on_a_replaced_set_is_retried_then_denied() {
    for (swaps, allowed) in [(0, true), (1, true), (2, false)] {
        let engine = Arc::new(Swapping {
            store: OnceLock::new(),
            swaps: swaps.into(),
        });
        let store = Arc::new(PolicyStore::new(engine.clone()));
        engine.store.set(Arc::downgrade(&store)).unwrap();
        let decision = store.decide(&call("files", "read_file", Tier::Read));
        assert_eq!(decision.allowed, allowed, "swaps {swaps}: {decision:?}");
    }
}
