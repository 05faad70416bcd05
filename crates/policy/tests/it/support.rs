//! Shared helpers: requests in each tier and engines of either language.
use std::sync::Arc;

use portcullis_core::{ServerName, Tier};
use portcullis_policy::{
    CedarEngine, DecisionRequest, Engine, EngineKind, PolicySource, PrincipalFacts, RegoEngine, Settings, Timestamp,
};

pub const WORKLOAD: &str = "spiffe://example.org/agent";

pub fn server(name: &str) -> ServerName {
    ServerName::new(name).unwrap()
}

/// An identified call to `server/target` in `tier`, with a reason.
pub fn call(server_name: &str, target: &str, tier: Tier) -> DecisionRequest {
    let mut principal = PrincipalFacts::workload(WORKLOAD);
    principal.user = Some("alice".into());
    let mut request = DecisionRequest::call(
        principal,
        server(server_name),
        "tools/call",
        target,
        tier,
        Timestamp::from_unix(1_777_627_800),
    );
    request.reason = Some("ticket 42".into());
    request.arguments = serde_json::json!({"path": "/srv/a.txt", "limit": 10}).into();
    request
}

/// Loads `extra` policies (in the engine's language) after the default tier policies.
pub fn engine(kind: EngineKind, extra: &[&str], settings: Settings) -> Arc<dyn Engine> {
    let mut sources = vec![PolicySource::defaults(kind)];
    for (n, text) in extra.iter().enumerate() {
        sources.push(PolicySource::new(format!("extra-{n}"), *text));
    }
    match kind {
        EngineKind::Cedar => Arc::new(CedarEngine::load(&sources, settings).unwrap()),
        EngineKind::Rego => Arc::new(RegoEngine::load(&sources, settings).unwrap()),
    }
}
