//! Each spelling a case-insensitive decoder would read otherwise is refused by
//! `Message::parse` as a parse error, before any stage of the gateway sees the message;
//! user data inside `arguments` keeps any spelling that is not a fold of another key.
use portcullis_mcp::{ErrorCode, Limits, Message, ParseError, ReadError, parse_strict};

use crate::go::{self, View};

fn call(params: &str) -> String {
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{params}}}"#)
}

fn folded(first: &str, second: &str) -> ParseError {
    ParseError::FoldedDuplicateKey {
        first: first.into(),
        second: second.into(),
    }
}

fn field(key: &str, field: &str) -> ParseError {
    ParseError::FoldedProtocolKey {
        key: key.into(),
        field: field.into(),
    }
}

fn read(text: &str) -> Result<Message, ReadError> {
    Message::parse(text.as_bytes(), Limits::default())
}

#[test]
fn t22_each_variant_is_refused_as_a_parse_error() {
    let kelvin_key = "\u{212A}ey";
    let cases: Vec<(String, ParseError)> = vec![
        // The tool name: two spellings, in either order, or one that is not `name`.
        (call(r#"{"name":"echo","Name":"wipe"}"#), folded("name", "Name")),
        (call(r#"{"Name":"wipe","name":"echo"}"#), field("Name", "name")),
        (call(r#"{"NAME":"wipe","arguments":{}}"#), field("NAME", "name")),
        // The arguments the policy and the host signature cover, and others.
        (
            call(r#"{"name":"echo","arguments":{"text":"hi"},"Arguments":{"text":"rm -rf /"}}"#),
            folded("arguments", "Arguments"),
        ),
        (call(r#"{"name":"echo","argumentſ":{"text":"rm -rf /"}}"#), field("argumentſ", "arguments")),
        (
            call(r#"{"name":"echo","arguments":{},"argument\u017f":{}}"#),
            folded("arguments", "argumentſ"),
        ),
        // The method and params at the envelope level.
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","Method":"tools/call"}"#.into(),
            folded("method", "Method"),
        ),
        (r#"{"jsonrpc":"2.0","id":1,"METHOD":"tools/call"}"#.into(), field("METHOD", "method")),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","Params":{"name":"wipe"}}"#.into(),
            field("Params", "params"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","paramſ":{"name":"wipe"}}"#.into(),
            field("paramſ", "params"),
        ),
        // `_meta`, and what sits in it.
        (call(r#"{"name":"echo","_meta":{},"_META":{}}"#), folded("_meta", "_META")),
        (call(r#"{"name":"echo","_Meta":{}}"#), field("_Meta", "_meta")),
        (call(r#"{"name":"echo","meta":{}}"#), field("meta", "_meta")),
        (
            call(r#"{"name":"echo","_meta":{"progressTo\u212Aen":1}}"#),
            field("progressTo\u{212A}en", "progressToken"),
        ),
        // Kelvin sign: in user data (only the two-keys rule) and at the params level.
        (
            call(&format!(r#"{{"name":"echo","arguments":{{"key":"a","{kelvin_key}":"b"}}}}"#)),
            folded("key", kelvin_key),
        ),
        (
            call(&format!(r#"{{"name":"echo","arguments":{{"{kelvin_key}":"b","key":"a"}}}}"#)),
            folded(kelvin_key, "key"),
        ),
        (call(r#"{"name":"echo","tas\u212A":{}}"#), field("tas\u{212A}", "task")),
        // Deeper in the arguments, and in arrays.
        (
            call(r#"{"name":"echo","arguments":{"a":[{"path":"/tmp","PATH":"/etc"}]}}"#),
            folded("path", "PATH"),
        ),
        // From servers: results and errors, and completion references.
        (
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"Content":[{"type":"text","text":"x"}]}}"#.into(),
            folded("content", "Content"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"result":{"content":[],"IsError":true}}"#.into(),
            field("IsError", "isError"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-1,"message":"m","Data":{}}}"#.into(),
            field("Data", "data"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","Name":"p"},"argument":{"name":"a","value":"v"}}}"#.into(),
            field("Name", "name"),
        ),
        (
            r#"{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"p"},"argument":{"name":"a","Value":"v"}}}"#.into(),
            field("Value", "value"),
        ),
    ];
    for (text, want) in cases {
        let got = read(&text);
        assert_eq!(got, Err(ReadError::Parse(want.clone())), "{text}");
        let err = got.unwrap_err();
        assert_eq!(err.code(), ErrorCode::ParseError, "{text}");
        let message = err.to_string();
        let keys = match &want {
            ParseError::FoldedDuplicateKey { first, second } => [first, second],
            ParseError::FoldedProtocolKey { key, field } => [key, field],
            _ => unreachable!(),
        };
        for key in keys {
            assert!(message.contains(&format!("`{key}`")), "{message} names {key}");
        }
    }
}

#[test]
fn t22_user_data_and_unknown_fields_keep_their_spelling() {
    let cases = [
        call(r#"{"name":"echo","arguments":{"Name":1,"ARGUMENTS":2,"Method":3}}"#),
        call(r#"{"name":"echo","arguments":{"straße":1,"Path":"/srv","id":2,"İd":3}}"#),
        call(r#"{"name":"echo","nаme":"wipe","x-future":{"Name":1}}"#),
        call(r#"{"name":"echo","_meta":{"io.portcullis/reason":"r","Other":1}}"#),
        r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","extra":true,"X-Trace":"t"}"#.into(),
        r#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"a","inputSchema":{"properties":{"Name":{}}}}]}}"#.into(),
    ];
    for text in cases {
        assert!(read(&text).is_ok(), "{text}: {:?}", read(&text));
    }
}

#[test]
fn t22_generic_json_refuses_folded_duplicates_but_not_field_spellings() {
    let limits = Limits::default();
    assert!(parse_strict(br#"{"Method":"x","Params":{}}"#, limits).is_ok());
    assert_eq!(
        parse_strict(br#"{"manifest":{"Tools":[],"tools":[]}}"#, limits),
        Err(folded("Tools", "tools"))
    );
}

#[test]
fn t22_every_go_fold_orbit_is_a_duplicate() {
    let limits = Limits::default();
    let orbits = go::orbits();
    assert!(orbits.len() > 1000, "the recorded table has every orbit");
    for orbit in orbits {
        for (i, a) in orbit.iter().enumerate() {
            for b in &orbit[i + 1..] {
                let text = format!(r#"{{"x{a}":1,"x{b}":2}}"#);
                let got = parse_strict(text.as_bytes(), limits);
                assert!(
                    matches!(got, Err(ParseError::FoldedDuplicateKey { .. })),
                    "{a:?} (U+{:04X}) ~ {b:?} (U+{:04X}): {got:?}",
                    *a as u32,
                    *b as u32
                );
            }
        }
    }
}

#[test]
fn t22_pairs_that_newer_go_folds_are_duplicates_too() {
    // Unicode 14 added these simple folds; go1.19's tables predate them.
    for (a, b) in [
        ('\u{390}', '\u{1FD3}'),
        ('\u{3B0}', '\u{1FE3}'),
        ('\u{FB05}', '\u{FB06}'),
    ] {
        let text = format!(r#"{{"{a}":1,"{b}":2}}"#);
        assert!(parse_strict(text.as_bytes(), Limits::default()).is_err(), "{a} ~ {b}");
    }
}

#[test]
fn t22_recorded_go_vectors_are_refused_or_read_alike() {
    let mut refused = 0;
    for (input, go) in go::vectors() {
        match read(&input) {
            Ok(msg) => {
                let ours = View::ours(&msg);
                assert_eq!(ours.call(), go.call(), "{input}");
                if go.arguments_impersonate_tool_fields() {
                    // The known limit: a lone `Path` is user data here, `path` to the tool.
                    assert_ne!(ours, go, "{input}");
                } else {
                    assert_eq!(ours, go, "{input}");
                }
            }
            Err(e) => {
                assert_eq!(e.code(), ErrorCode::ParseError, "{input}: {e}");
                refused += 1;
            }
        }
    }
    assert!(refused >= 15, "most recorded vectors are attacks: {refused}");
}
