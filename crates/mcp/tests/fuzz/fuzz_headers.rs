//! Harness `fuzz_headers`: the 2026-07-28 request header checks (`Mcp-Method`,
//! `Mcp-Name`, the `=?base64?…?=` sentinel) against the body. Properties: nothing panics
//! on any header values and bodies; headers built consistently from a body are accepted,
//! in plain or sentinel form; and changing one of them (another method, another name,
//! a missing header, a broken sentinel) is refused whenever the body's method needs it.
//! Seeds: message bodies in `testdata/fuzz-seeds/headers/`.
use base64::Engine;
use portcullis_mcp::headers::{HeaderError, check_request_headers, decode_header_value};
use portcullis_mcp::{Limits, Message, MethodClass};
use proptest::prelude::*;

use crate::mutate;

fn b64(text: &str) -> String {
    format!("=?base64?{}?=", base64::engine::general_purpose::STANDARD.encode(text))
}

/// The body value `Mcp-Name` must carry, if the method needs one.
fn body_name(msg: &Message) -> Option<&str> {
    let method = msg.method().unwrap_or_default();
    match MethodClass::of(method) {
        MethodClass::CallTool | MethodClass::GetPrompt => Some(msg.param_str("name").unwrap_or_default()),
        _ if method == "resources/read" => Some(msg.param_str("uri").unwrap_or_default()),
        _ => None,
    }
}

/// Headers a careful client builds: the sentinel when the name is not plain visible
/// ASCII or could be read as a sentinel itself, or when `encode` asks for it.
fn consistent(msg: &Message, encode: bool) -> (String, Option<String>) {
    let method = msg.method().unwrap_or_default().to_owned();
    let name = body_name(msg).map(|name| {
        let plain = name.bytes().all(|b| (0x20..0x7f).contains(&b)) && !name.starts_with("=?base64?");
        if plain && !encode { name.to_owned() } else { b64(name) }
    });
    (method, name)
}

/// One change to a header, as a load balancer or an attacker might make it.
#[derive(Debug, Clone)]
enum Change {
    Method(String),
    DropMethod,
    Name(String),
    DropName,
    BreakSentinel,
}

fn change() -> impl Strategy<Value = Change> {
    let text = prop_oneof![
        prop::sample::select(vec![
            "tools/call",
            "tools/list",
            "prompts/get",
            "resources/read",
            "ping",
            "x",
            ""
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}",
    ];
    prop_oneof![
        text.clone().prop_map(Change::Method),
        Just(Change::DropMethod),
        text.prop_map(Change::Name),
        Just(Change::DropName),
        Just(Change::BreakSentinel),
    ]
}

/// Checks the consistent headers of `msg`, then one changed, and asserts the outcomes.
fn check_body(msg: &Message, encode: bool, change: &Change) {
    let (method, name) = consistent(msg, encode);
    assert_eq!(
        check_request_headers(msg, Some(&method), name.as_deref()),
        Ok(()),
        "consistent headers refused: {method:?} {name:?}"
    );
    let needs_name = name.is_some();
    let (mut m, mut n) = (Some(method.clone()), name.clone());
    let refused = match change {
        Change::Method(other) => {
            m = Some(other.clone());
            other != &method
        }
        Change::DropMethod => {
            m = None;
            true
        }
        Change::Name(other) => {
            n = Some(other.clone());
            let decoded = decode_header_value(other, "Mcp-Name");
            needs_name && decoded.as_deref().ok() != body_name(msg)
        }
        Change::DropName => {
            n = None;
            needs_name
        }
        Change::BreakSentinel => {
            n = Some("=?base64?!?=".to_owned());
            needs_name
        }
    };
    let result = check_request_headers(msg, m.as_deref(), n.as_deref());
    assert_eq!(
        result.is_err(),
        refused,
        "{change:?} on {method:?} {name:?}: {result:?}"
    );
    if let Err(HeaderError::BadEncoding(header)) = result {
        assert_eq!(header, "Mcp-Name");
    }
}

#[test]
fn fuzz_headers_replays_its_seed_corpus() {
    let changes = [
        Change::Method("tools/list".into()),
        Change::DropMethod,
        Change::Name("other".into()),
        Change::DropName,
        Change::BreakSentinel,
    ];
    let mut named = 0;
    for (name, bytes) in mutate::seeds("headers") {
        let msg = Message::parse(&bytes, Limits::default()).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        named += usize::from(body_name(&msg).is_some());
        for change in &changes {
            for encode in [false, true] {
                check_body(&msg, encode, change);
            }
        }
    }
    assert!(named >= 5, "too few seeds whose method needs `Mcp-Name`");
}

proptest! {
    #[test]
    fn fuzz_headers_consistent_then_one_changed(
        bytes in mutate::mutated(mutate::seeds("headers")),
        encode in any::<bool>(),
        change in change(),
    ) {
        if let Ok(msg) = Message::parse(&bytes, Limits::default()) {
            check_body(&msg, encode, &change);
        }
    }

    #[test]
    fn fuzz_headers_any_values_never_panic(
        bytes in mutate::mutated(mutate::seeds("headers")),
        method in proptest::option::of("\\PC{0,16}|tools/call|resources/read"),
        name in proptest::option::of("\\PC{0,16}|=\\?base64\\?[A-Za-z0-9+/=!]{0,12}\\?="),
    ) {
        if let Ok(msg) = Message::parse(&bytes, Limits::default()) {
            let _ = check_request_headers(&msg, method.as_deref(), name.as_deref());
        }
        if let Some(name) = &name {
            let _ = decode_header_value(name, "Mcp-Name");
        }
    }
}
