//! One conformance suite for every engine, run on the default tier policies.
//!
//! Each case is a function of a [`Flavour`] (an engine kind plus the few extra
//! policies the suite needs, written in that language); `suite!` instantiates
//! every case for Cedar and for Rego.
use portcullis_core::Tier;
use portcullis_policy::{CredentialFact, EngineKind, PolicyStore, Settings, TargetKind, authorize, decide};

use crate::support::{call, engine, server};

pub struct Flavour {
    pub kind: EngineKind,
    /// Forbids `files/read_file` with the message "tool disabled".
    pub forbid_read_file: &'static str,
    /// Allows the unknown method `completion/complete` to identified callers.
    pub allow_completion: &'static str,
    /// Forbids calls to tools with a `hidden-instruction` finding, and unsigned write calls.
    pub attested_only: &'static str,
    /// Forbids calls whose credential would come from source `legacy`, and `secret`
    /// credentials for anything but `read` calls.
    pub credential_guard: &'static str,
}

pub const CEDAR: Flavour = Flavour {
    kind: EngineKind::Cedar,
    forbid_read_file: r#"@id("no-read-file") @reason("tool disabled")
        forbid (principal, action, resource == Tool::"files/read_file");"#,
    allow_completion: r#"@id("allow-completion")
        permit (principal, action == Action::"other", resource)
        when { context.method == "completion/complete" && !principal.anonymous };"#,
    attested_only: r#"@id("no-flagged-tools") @reason("tool flagged by the scanner")
        forbid (principal, action, resource) when { context.tool_findings.contains("hidden-instruction") };
        @id("write-needs-signature") @reason("write calls must be signed")
        forbid (principal, action, resource) when { resource.tier == "write" && !context.call_signed };"#,
    credential_guard: r#"@id("no-legacy") @reason("legacy credentials retired")
        forbid (principal, action, resource) when { context has credential && context.credential.source == "legacy" };
        @id("secrets-read-only") @reason("static secrets only for reads")
        forbid (principal, action, resource)
        when { context has credential && context.credential.kind == "secret" && resource.tier != "read" };"#,
};

pub const REGO: Flavour = Flavour {
    kind: EngineKind::Rego,
    forbid_read_file: "package portcullis\nimport rego.v1\n\
        deny_reasons contains \"tool disabled\" if input.target.id == \"files/read_file\"\n",
    allow_completion: "package portcullis\nimport rego.v1\n\
        allow if {\n input.method == \"completion/complete\"\n input.principal.anonymous == false\n}\n",
    attested_only: "package portcullis\nimport rego.v1\n\
        deny_reasons contains \"tool flagged by the scanner\" if \"hidden-instruction\" in input.tool_findings\n\
        deny_reasons contains \"write calls must be signed\" if {\n input.tier == \"write\"\n not input.call_signed\n}\n",
    credential_guard: "package portcullis\nimport rego.v1\n\
        deny_reasons contains \"legacy credentials retired\" if input.credential.source == \"legacy\"\n\
        deny_reasons contains \"static secrets only for reads\" if {\n input.credential.kind == \"secret\"\n input.tier != \"read\"\n}\n",
};

fn defaults(f: &Flavour) -> PolicyStore {
    PolicyStore::new(engine(f.kind, &[], Settings::default()))
}

pub fn read_with_identity_and_reason_is_allowed(f: &Flavour) {
    let store = defaults(f);
    let permit = store.authorize(&call("files", "read_file", Tier::Read)).unwrap();
    assert_eq!(permit.decision_id().len(), 32);
    assert_eq!(permit.policy_hash(), store.policy_hash());
    for method in ["resources/read", "prompts/get"] {
        let mut request = call("files", "x", Tier::Read);
        request.method = method.into();
        assert!(store.decide(&request).allowed, "{method}");
    }
}

pub fn read_without_reason_is_denied(f: &Flavour) {
    let store = defaults(f);
    for reason in [None, Some("   ".to_owned())] {
        let mut request = call("files", "read_file", Tier::Read);
        request.reason = reason;
        let deny = store.authorize(&request).unwrap_err();
        assert!(
            deny.client_message().contains("a reason is required"),
            "{}",
            deny.client_message()
        );
        assert!(deny.errors().is_empty());
    }
}

pub fn require_reason_off_allows_read_without_reason(f: &Flavour) {
    let settings = Settings {
        require_reason: false,
        ..Settings::default()
    };
    let engine = engine(f.kind, &[], settings);
    let mut request = call("files", "read_file", Tier::Read);
    request.reason = None;
    assert!(decide(&*engine, &request).allowed);
}

pub fn anonymous_caller_is_denied(f: &Flavour) {
    let mut request = call("files", "read_file", Tier::Read);
    request.principal.anonymous = true;
    assert!(!defaults(f).decide(&request).allowed);
}

pub fn read_sensitive_needs_a_scope(f: &Flavour) {
    let store = defaults(f);
    let mut request = call("db", "query", Tier::ReadSensitive);
    assert!(!store.decide(&request).allowed, "no scope");
    request.principal.scopes = vec!["files:read-sensitive".into(), "mcp:read".into()];
    assert!(!store.decide(&request).allowed, "another server's scope");
    request.principal.scopes = vec!["db:read-sensitive".into()];
    assert!(store.decide(&request).allowed, "server scope");
    request.principal.scopes = vec!["mcp:read-sensitive".into()];
    assert!(store.decide(&request).allowed, "global scope");
}

pub fn write_is_denied_until_approved(f: &Flavour) {
    let store = defaults(f);
    let mut request = call("db", "drop_table", Tier::Write);
    let deny = store.authorize(&request).unwrap_err();
    assert_eq!(deny.client_message(), "call denied by policy: approval required");
    assert!(!deny.reasons().is_empty());
    request.approval_present = true;
    assert!(store.authorize(&request).is_ok());
}

pub fn unknown_method_is_denied_unless_allowed(f: &Flavour) {
    let mut request = call("files", "complete", Tier::Read);
    request.method = "completion/complete".into();
    assert!(!defaults(f).decide(&request).allowed);
    let allowing = PolicyStore::new(engine(f.kind, &[f.allow_completion], Settings::default()));
    assert!(allowing.decide(&request).allowed);
    request.method = "sampling/createMessage".into();
    assert!(!allowing.decide(&request).allowed);
}

pub fn forbid_beats_permit(f: &Flavour) {
    let store = PolicyStore::new(engine(f.kind, &[f.forbid_read_file], Settings::default()));
    let deny = store.authorize(&call("files", "read_file", Tier::Read)).unwrap_err();
    assert_eq!(deny.client_message(), "call denied by policy: tool disabled");
    assert!(store.decide(&call("files", "list_dir", Tier::Read)).allowed);
}

pub fn listing_shows_what_the_caller_may_use(f: &Flavour) {
    let store = defaults(f);
    let principal = call("db", "x", Tier::Read).principal;
    let time = call("db", "x", Tier::Read).time;
    let listing = |target: &str, tier| {
        portcullis_policy::DecisionRequest::listing(
            principal.clone(),
            server("db"),
            TargetKind::Tool,
            target,
            tier,
            time,
        )
    };
    assert!(
        store.decide(&listing("search", Tier::Read)).allowed,
        "read listed without a reason"
    );
    assert!(
        store.decide(&listing("insert", Tier::Write)).allowed,
        "write listed: approval is per call"
    );
    assert!(
        !store.decide(&listing("query", Tier::ReadSensitive)).allowed,
        "no scope, not listed"
    );
    let mut scoped = listing("query", Tier::ReadSensitive);
    scoped.principal.scopes = vec!["db:read-sensitive".into()];
    assert!(store.decide(&scoped).allowed);
}

pub fn attestation_facts_reach_the_policy(f: &Flavour) {
    let store = PolicyStore::new(engine(f.kind, &[f.attested_only], Settings::default()));
    assert!(store.decide(&call("files", "read_file", Tier::Read)).allowed);
    let mut flagged = call("files", "read_file", Tier::Read);
    flagged.tool_findings = vec!["invisible-character".into(), "hidden-instruction".into()];
    let deny = store.authorize(&flagged).unwrap_err();
    assert!(
        deny.client_message().contains("flagged by the scanner"),
        "{}",
        deny.client_message()
    );
    let mut approved_write = call("files", "write_file", Tier::Write);
    approved_write.approval_present = true;
    let deny = store.authorize(&approved_write).unwrap_err();
    assert!(
        deny.client_message().contains("must be signed"),
        "{}",
        deny.client_message()
    );
    approved_write.call_signed = true;
    assert!(store.decide(&approved_write).allowed);
}

/// `context.credential` / `input.credential`: the credential the broker would mint.
pub fn credential_facts_reach_the_policy(f: &Flavour) {
    let store = PolicyStore::new(engine(f.kind, &[f.credential_guard], Settings::default()));
    let with = |source: &str, kind: &str, tier: Tier| {
        let mut request = call("files", "read_file", tier);
        if tier == Tier::ReadSensitive {
            request.principal.scopes = vec!["files:read-sensitive".into()];
        }
        request.credential = Some(CredentialFact {
            rule: "r1".into(),
            source: source.into(),
            kind: kind.into(),
            scope: "SELECT on schema sales".into(),
        });
        request
    };
    assert!(
        store.authorize(&call("files", "read_file", Tier::Read)).is_ok(),
        "no credential"
    );
    assert!(store.authorize(&with("sales_db", "postgres-role", Tier::Read)).is_ok());
    let legacy = store.authorize(&with("legacy", "jwt", Tier::Read)).unwrap_err();
    assert!(
        legacy.client_message().contains("legacy credentials retired"),
        "{}",
        legacy.client_message()
    );
    assert!(store.authorize(&with("vault", "secret", Tier::Read)).is_ok());
    let sensitive = with("vault", "secret", Tier::ReadSensitive);
    assert!(store.authorize(&sensitive).is_err(), "secret for a read-sensitive call");
    let minted = with("sales_db", "postgres-role", Tier::ReadSensitive);
    assert!(store.authorize(&minted).is_ok(), "{:?}", store.decide(&minted));
}

pub fn zero_time_limit_denies(f: &Flavour) {
    let settings = Settings {
        time_limit: std::time::Duration::ZERO,
        ..Settings::default()
    };
    let engine = engine(f.kind, &[], settings);
    let deny = authorize(&*engine, &call("files", "read_file", Tier::Read)).unwrap_err();
    assert!(!deny.errors().is_empty());
    assert!(deny.client_message().contains("could not be evaluated"));
    assert!(
        deny.client_message().contains("within its time limit of 0 ms"),
        "the client is told the evaluation ran out of time: {}",
        deny.client_message()
    );
}

macro_rules! suite {
    ($module:ident, $flavour:expr, [$($case:ident),* $(,)?]) => {
        mod $module {
            $(#[test] fn $case() { super::$case(&$flavour) })*
        }
    };
}

macro_rules! every_engine {
    ($($case:ident),* $(,)?) => {
        suite!(cedar, super::CEDAR, [$($case),*]);
        suite!(rego, super::REGO, [$($case),*]);
    };
}

every_engine!(
    read_with_identity_and_reason_is_allowed,
    attestation_facts_reach_the_policy,
    credential_facts_reach_the_policy,
    read_without_reason_is_denied,
    require_reason_off_allows_read_without_reason,
    anonymous_caller_is_denied,
    read_sensitive_needs_a_scope,
    write_is_denied_until_approved,
    unknown_method_is_denied_unless_allowed,
    forbid_beats_permit,
    listing_shows_what_the_caller_may_use,
    zero_time_limit_denies,
);
