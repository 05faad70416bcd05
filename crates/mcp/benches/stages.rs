//! Per-call cost of the message stages in this crate, on a `tools/call` request and
//! its result with ~1 KiB of arguments / content (the end-to-end benchmark's payload):
//!
//! - `parse_frame/*`: `Message::parse` — the strict parser in message mode (duplicate
//!   keys refused, also up to letter case; protocol fields spelled exactly; depth and
//!   size limits) plus the envelope check — and `to_bytes` for the way out;
//!   `serde_json` alone as the floor. `request_camel_1kib` has camelCase argument
//!   keys (the common spelling of tool inputs), the case that costs most under key
//!   folding (T22);
//! - `canonical/*`: RFC 8785 canonical form of the arguments and of the result, and
//!   its SHA-256 (the digests the audit record and policy input carry).
//!
//! Run with `cargo bench -p portcullis-mcp`.
#![allow(
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture should abort the run"
)]
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use portcullis_mcp::{
    Limits, Message,
    canonical::{canonical_bytes, canonical_sha256},
    parse_strict,
};
use serde_json::{Value, json};

fn text() -> String {
    (0..1000).map(|i| char::from(b'a' + (i % 26) as u8)).collect()
}

fn request() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 42, "method": "tools/call",
        "params": {"name": "echo", "arguments": {"text": text(), "limit": 100, "flags": [true, false]},
                   "_meta": {"io.portcullis/reason": "benchmark"}}
    }))
    .expect("serialise")
}

/// The same call with camelCase argument keys and a few more of them.
fn request_camel() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 42, "method": "tools/call",
        "params": {"name": "searchFiles", "arguments": {"queryText": text(), "maxResults": 100,
                   "includeHidden": [true, false], "filePattern": "*.rs", "caseSensitive": false,
                   "rootPath": "/srv/data", "followSymlinks": true, "timeoutMs": 5000},
                   "_meta": {"io.portcullis/reason": "benchmark", "progressToken": "p-1"}}
    }))
    .expect("serialise")
}

fn result() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "jsonrpc": "2.0", "id": 42,
        "result": {"content": [{"type": "text", "text": text()}], "isError": false}
    }))
    .expect("serialise")
}

fn parse_frame(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("parse_frame");
    for (name, bytes) in [
        ("request_1kib", request()),
        ("request_camel_1kib", request_camel()),
        ("result_1kib", result()),
    ] {
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(format!("strict/{name}"), |b| {
            b.iter(|| Message::parse(&bytes, limits).expect("message"))
        });
        group.bench_function(format!("serde_json_floor/{name}"), |b| {
            b.iter(|| serde_json::from_slice::<Value>(&bytes).expect("parse"))
        });
        let msg = Message::parse(&bytes, limits).expect("message");
        group.bench_function(format!("to_bytes/{name}"), |b| b.iter(|| msg.to_bytes()));
    }
    group.finish();
}

fn canonical(c: &mut Criterion) {
    let limits = Limits::default();
    let request = parse_strict(&request(), limits).expect("parse");
    let arguments = request.pointer("/params/arguments").cloned().expect("arguments");
    let result = parse_strict(&result(), limits).expect("parse");
    let result = result.get("result").cloned().expect("result");
    let mut group = c.benchmark_group("canonical");
    for (name, value) in [("arguments_1kib", &arguments), ("result_1kib", &result)] {
        group.bench_function(format!("bytes/{name}"), |b| b.iter(|| canonical_bytes(value)));
        group.bench_function(format!("sha256/{name}"), |b| b.iter(|| canonical_sha256(value)));
    }
    group.finish();
}

criterion_group!(benches, parse_frame, canonical);
criterion_main!(benches);
