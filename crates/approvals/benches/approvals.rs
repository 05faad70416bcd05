//! Per-call cost of the approvals stage on the gateway, and the memory of held requests:
//!
//! - `redeem_one_token`: what a write call with a pre-signed token adds — parse the token,
//!   find its request, check the binding against the call, Ed25519 `verify_strict`, grant
//!   and consume (the host's signing is not the gateway's cost and is done in setup);
//! - `open_request_with_10k_held`: opening (and withdrawing) one request while 10,000 are
//!   held, the cost of a full-ish pending set;
//! - before the timings: the resident memory 10,000 held requests take (from
//!   `/proc/self/statm`, Linux only), printed per request.
//!
//! Run with `cargo bench -p portcullis-approvals --bench approvals`.
#![allow(
    clippy::expect_used,
    reason = "benchmark setup: a broken fixture should abort the run"
)]
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use ed25519_dalek::SigningKey;
use portcullis_approvals::{
    Approver, Approvers, Binding, BindingPrincipal, Grant, Opening, Pending, PendingSettings, token, unix_now,
};

fn call() -> Binding {
    Binding {
        v: 0,
        id: String::new(),
        principal: BindingPrincipal {
            workload: "spiffe://example.org/agent".into(),
            user: Some("alice".into()),
        },
        server: "files".into(),
        method: "tools/call".into(),
        target: "write_file".into(),
        arguments_sha256: "ab".repeat(32),
        policy_sha256: "cd".repeat(32),
        nonce: String::new(),
        expires_at: 0,
    }
}

fn opening(n: usize) -> Opening {
    Opening {
        call: call(),
        call_id: format!("{n:032x}"),
        tier: "write".into(),
        reason: Some("rotate the deploy key".into()),
        arguments_summary: r#"{"path":"/srv/app/config.toml","content":"…"}"#.into(),
    }
}

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn bench(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[3; 32]);
    let kid = "00000000000000b0";
    let approvers = Approvers::new(vec![Approver {
        name: "bob".into(),
        spiffe_id: None,
        user: "bob".into(),
        key: Some((kid.into(), key.verifying_key())),
        revoked: false,
    }]);
    let settings = PendingSettings {
        max_pending: 20_000,
        ..PendingSettings::default()
    };

    let held = Pending::new(settings.clone());
    let before = resident_bytes();
    for n in 0..10_000 {
        held.open(opening(n)).expect("room for 10,000");
    }
    if let (Some(before), Some(after)) = (before, resident_bytes()) {
        let grown = after.saturating_sub(before);
        println!(
            "10,000 held approval requests: +{:.1} MiB resident ({} bytes each)",
            grown as f64 / 1_048_576.0,
            grown / 10_000
        );
    }

    let pending = Pending::new(settings);
    c.bench_function("redeem_one_token", |b| {
        b.iter_batched(
            || {
                let binding = pending.open(opening(0)).expect("room").binding;
                token::sign(&binding, &key, kid)
            },
            |text| {
                let token = token::Token::parse(&text).expect("token");
                let entry = pending.get(&token.binding.id).expect("open");
                entry.binding.check_call_fields(&call()).expect("same call");
                let approver = approvers.verify(&token, &entry.binding, unix_now()).expect("valid");
                let grant = Grant {
                    approver: approver.name.clone(),
                    channel: "token".into(),
                    signature_sha256: Some(token.signature_sha256()),
                };
                pending.grant(&entry.binding.id, approver, grant).expect("granted");
                pending.consume(&entry.binding.id).expect("used once")
            },
            BatchSize::SmallInput,
        );
    });
    c.bench_function("open_request_with_10k_held", |b| {
        b.iter(|| {
            let id = held.open(opening(1)).expect("room").binding.id;
            held.withdraw(&id)
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
