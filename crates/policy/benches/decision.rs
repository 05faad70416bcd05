//! Cost of one authorisation decision (the authorise stage of the pipeline), from a
//! `DecisionRequest` to a `Decision`, with 10 and 1,000 policies in the set:
//! Cedar indexed (what the gateway runs), Cedar unindexed, and Rego.
//!
//! Each set is the 5 default tier policies plus tool-specific forbids spread over
//! 50 servers × 20 tools; the request targets a tool that has one such policy.
#![allow(
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture should abort the run"
)]
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use portcullis_core::{ServerName, Tier};
use portcullis_policy::{
    CedarEngine, DecisionRequest, Engine, EngineKind, Indexing, Input, PolicySource, PrincipalFacts, RegoEngine,
    Settings, Timestamp, decide,
};

const SIZES: [usize; 2] = [10, 1000];
const DEFAULTS: usize = 5;

fn tool(n: usize) -> (String, String) {
    (format!("s{}", n % 50), format!("t{}", n / 50))
}

fn cedar_sources(total: usize) -> Vec<PolicySource> {
    let mut text = String::new();
    for n in 0..total - DEFAULTS {
        let (server, name) = tool(n);
        text.push_str(&format!(
            "@id(\"p{n}\") forbid (principal, action, resource == Tool::\"{server}/{name}\") \
             when {{ context.break_glass || context.session_labels.contains(\"untrusted\") }};\n"
        ));
    }
    vec![
        PolicySource::defaults(EngineKind::Cedar),
        PolicySource::new("bench.cedar", text),
    ]
}

fn rego_sources(total: usize) -> Vec<PolicySource> {
    let mut text = String::from("package portcullis\nimport rego.v1\n");
    for n in 0..total - DEFAULTS {
        let (server, name) = tool(n);
        text.push_str(&format!(
            "deny_reasons contains \"p{n}\" if {{\n input.target.id == \"{server}/{name}\"\n input.break_glass\n}}\n"
        ));
    }
    vec![
        PolicySource::defaults(EngineKind::Rego),
        PolicySource::new("bench.rego", text),
    ]
}

fn request() -> DecisionRequest {
    let (server, name) = tool(3);
    let mut principal = PrincipalFacts::workload("spiffe://example.org/agent");
    principal.user = Some("alice".into());
    principal.scopes = vec!["mcp:read".into()];
    let server = ServerName::new(&server).expect("valid server name");
    let mut r = DecisionRequest::call(
        principal,
        server,
        "tools/call",
        name,
        Tier::Read,
        Timestamp::from_unix(1_777_627_800),
    );
    r.reason = Some("benchmark".into());
    // About 1 KiB of arguments.
    r.arguments = serde_json::json!({"path": "/srv/data/report.csv", "filter": "x".repeat(960), "limit": 100}).into();
    r
}

fn decisions(c: &mut Criterion) {
    let request = request();
    let mut group = c.benchmark_group("decision");
    for size in SIZES {
        let engines: [(&str, Box<dyn Engine>); 3] = [
            ("cedar_indexed", Box::new(load_cedar(size, Indexing::ByTarget))),
            ("cedar_unindexed", Box::new(load_cedar(size, Indexing::Full))),
            ("rego", Box::new(load_rego(size))),
        ];
        for (name, engine) in &engines {
            assert!(
                decide(&**engine, &request).allowed,
                "{name}/{size} must allow the bench request"
            );
            group.bench_with_input(BenchmarkId::new(*name, size), &request, |b, r| {
                b.iter(|| decide(&**engine, r))
            });
        }
    }
    group.finish();
    // Breakdown: the engine alone, on an already normalised input.
    let input = Input::new(&request, Settings::default());
    let cedar = load_cedar(10, Indexing::ByTarget);
    c.bench_function("engine_only/cedar_indexed/10", |b| b.iter(|| cedar.evaluate(&input)));
    let rego = load_rego(10);
    c.bench_function("engine_only/rego/10", |b| b.iter(|| rego.evaluate(&input)));
    c.bench_function("input_normalisation_1kib_args", |b| {
        b.iter(|| Input::new(&request, Settings::default()))
    });
}

fn load_cedar(size: usize, indexing: Indexing) -> CedarEngine {
    CedarEngine::load_with(&cedar_sources(size), Settings::default(), indexing).expect("bench policies load")
}

fn load_rego(size: usize) -> RegoEngine {
    RegoEngine::load(&rego_sources(size), Settings::default()).expect("bench policies load")
}

criterion_group!(benches, decisions);
criterion_main!(benches);
