//! A JSON-RPC message kept raw, with read-only views of the parts routing needs.
//!
//! The relay never re-types a message: it keeps the parsed `Value` and forwards
//! it. The only rewrites are the documented ones (request ids, namespaced
//! names, bridging `_meta`), done in place on the raw value.
//!
//! A message read with [`Message::parse_forwardable`] also keeps the bytes it came in,
//! while they say exactly what its value says: it goes on the wire as those bytes with
//! only its id written anew (a relayed call's request and answer change nothing else),
//! not serialised again. Every other change through the accessors below drops them.
use std::ops::Range;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::{
    ErrorCode, Limits, ParseError,
    strict::{WireText, parse_message, parse_message_on_wire},
};

/// What shape of JSON-RPC message this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Notification,
    Response,
}

/// Why a value is not a usable JSON-RPC 2.0 message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("a JSON-RPC message must be an object; batches (arrays) are not supported")]
    NotAnObject,
    #[error("`jsonrpc` must be \"2.0\"")]
    BadVersion,
    #[error("`method` must be a string")]
    BadMethod,
    #[error("`id` must be a string or an integer")]
    BadId,
    #[error("a response needs exactly one of `result` or `error`")]
    BadResponse,
    #[error("`params` must be an object")]
    BadParams,
}

/// Why bytes from a client or a server are not a usable message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// Not strict JSON, or keys that a case-insensitive decoder would read otherwise.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// JSON, but not a JSON-RPC 2.0 message.
    #[error(transparent)]
    Envelope(#[from] MessageError),
}

impl ReadError {
    /// The JSON-RPC error code of the answer: a parse error, or an invalid request.
    pub fn code(&self) -> ErrorCode {
        match self {
            ReadError::Parse(_) => ErrorCode::ParseError,
            ReadError::Envelope(_) => ErrorCode::InvalidRequest,
        }
    }
}

/// Most keys an object may have for [`field`] to scan it rather than hash the key.
const SCANNED_KEYS: usize = 8;

/// `map[key]`. The protocol's objects (envelope, `params`, `_meta`, `result`) have a few
/// keys each, and comparing those is cheaper than hashing `key` with serde_json's map
/// hasher (SipHash), which the message accessors did about 30 times per relayed call
/// (docs/benchmarks.md "Instructions per call, counted (issue 21 item 5, 2026-12-06,
/// tenth session)"). Larger objects are looked up by hash.
pub fn field<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    if map.len() <= SCANNED_KEYS {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

/// [`field`], for changing the value in place.
pub fn field_mut<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Value> {
    if map.len() <= SCANNED_KEYS {
        map.iter_mut().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get_mut(key)
    }
}

/// One JSON-RPC message, as received.
#[derive(Clone)]
pub struct Message {
    obj: Map<String, Value>,
    kind: MessageKind,
    /// The bytes it was read from, while `obj` says exactly what they say (but the id).
    wire: Option<Wire>,
}

/// A message's bytes as received, and where its id lies in them.
#[derive(Clone)]
struct Wire {
    bytes: Bytes,
    id: Option<Range<usize>>,
}

/// Two messages are equal when they say the same; how they were read does not matter.
impl PartialEq for Message {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.obj == other.obj
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Message")
            .field("obj", &self.obj)
            .field("kind", &self.kind)
            .field("forwardable", &self.wire.is_some())
            .finish()
    }
}

impl Message {
    /// Reads one message from a client or a server: the strict parser in its message
    /// mode ([`parse_message`]: duplicate keys, also up to letter case, protocol fields
    /// spelled exactly, depth and size), then the envelope check. Every front and every
    /// upstream reader takes wire bytes through here.
    pub fn parse(bytes: &[u8], limits: Limits) -> Result<Self, ReadError> {
        Ok(Self::from_value(parse_message(bytes, limits)?)?)
    }

    /// [`Message::parse`], keeping `bytes` to forward when writing the value out again
    /// would give the same text (no float or wide integer, no line breaks; see the
    /// module's doc). For the relayed path: a client's request, a server's answer.
    pub fn parse_forwardable(bytes: Bytes, limits: Limits) -> Result<Self, ReadError> {
        let (value, text) = parse_message_on_wire(&bytes, limits)?;
        let mut msg = Self::from_value(value)?;
        if let WireText { exact: true, id } = text {
            msg.wire = Some(Wire { bytes, id });
        }
        Ok(msg)
    }

    /// Whether the message still goes on the wire as the bytes it was read from.
    pub fn is_forwarded_as_read(&self) -> bool {
        self.wire.is_some()
    }

    /// Checks the JSON-RPC envelope of `value` and classifies it. For values the gateway
    /// builds itself; bytes from outside go through [`Message::parse`].
    pub fn from_value(value: Value) -> Result<Self, MessageError> {
        let Value::Object(obj) = value else {
            return Err(MessageError::NotAnObject);
        };
        if field(&obj, "jsonrpc").and_then(Value::as_str) != Some("2.0") {
            return Err(MessageError::BadVersion);
        }
        let id_ok = match field(&obj, "id") {
            None => true,
            Some(Value::String(_)) => true,
            Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
            // A null id is only legal on error responses that could not be attributed.
            Some(Value::Null) => field(&obj, "error").is_some(),
            Some(_) => false,
        };
        if !id_ok {
            return Err(MessageError::BadId);
        }
        if matches!(field(&obj, "params"), Some(p) if !p.is_object() && !p.is_array()) {
            return Err(MessageError::BadParams);
        }
        let kind = match (field(&obj, "method"), field(&obj, "id").is_some()) {
            (Some(Value::String(_)), true) => MessageKind::Request,
            (Some(Value::String(_)), false) => MessageKind::Notification,
            (Some(_), _) => return Err(MessageError::BadMethod),
            (None, _) => {
                if field(&obj, "result").is_some() == field(&obj, "error").is_some() {
                    return Err(MessageError::BadResponse);
                }
                MessageKind::Response
            }
        };
        Ok(Self { obj, kind, wire: None })
    }

    pub fn kind(&self) -> MessageKind {
        self.kind
    }

    pub fn method(&self) -> Option<&str> {
        field(&self.obj, "method").and_then(Value::as_str)
    }

    pub fn id(&self) -> Option<&Value> {
        field(&self.obj, "id")
    }

    pub fn params(&self) -> Option<&Map<String, Value>> {
        field(&self.obj, "params").and_then(Value::as_object)
    }

    /// `params` as the raw JSON value (object or array), e.g. to hash it as sent.
    pub fn params_value(&self) -> Option<&Value> {
        field(&self.obj, "params")
    }

    pub fn params_mut(&mut self) -> Option<&mut Map<String, Value>> {
        self.wire = None;
        field_mut(&mut self.obj, "params").and_then(Value::as_object_mut)
    }

    /// Runs `f` on `params`, creating it as an empty object when absent.
    pub fn with_params<R>(&mut self, f: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
        self.wire = None;
        if let Some(Value::Object(map)) = field_mut(&mut self.obj, "params") {
            return f(map);
        }
        let slot = self.obj.entry("params").or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(map) = slot {
            return f(map);
        }
        let mut map = Map::new();
        let out = f(&mut map);
        *slot = Value::Object(map);
        out
    }

    /// The parameter `key`, such as `arguments`.
    pub fn param(&self, key: &str) -> Option<&Value> {
        field(self.params()?, key)
    }

    /// A string parameter such as `name` or `uri`.
    pub fn param_str(&self, key: &str) -> Option<&str> {
        field(self.params()?, key)?.as_str()
    }

    /// The request's `_meta` object, if any.
    pub fn meta(&self) -> Option<&Map<String, Value>> {
        field(self.params()?, "_meta")?.as_object()
    }

    pub fn result(&self) -> Option<&Value> {
        field(&self.obj, "result")
    }

    pub fn result_mut(&mut self) -> Option<&mut Value> {
        self.wire = None;
        field_mut(&mut self.obj, "result")
    }

    pub fn error(&self) -> Option<&Value> {
        field(&self.obj, "error")
    }

    /// Replaces the id (requests and responses) and returns the old one. The bytes kept
    /// to forward stay: the id is written anew in its place ([`Message::to_bytes`]).
    pub fn replace_id(&mut self, id: Value) -> Option<Value> {
        match field_mut(&mut self.obj, "id") {
            Some(slot) => Some(std::mem::replace(slot, id)),
            None => {
                self.wire = None;
                self.obj.insert("id".to_owned(), id)
            }
        }
    }

    /// The top-level object, for in-place rewrites.
    pub fn object_mut(&mut self) -> &mut Map<String, Value> {
        self.wire = None;
        &mut self.obj
    }

    pub fn into_value(self) -> Value {
        Value::Object(self.obj)
    }

    /// The message as JSON text (for logs of protocol metadata; never of call bodies).
    pub fn as_value_string(&self) -> String {
        String::from_utf8_lossy(&self.to_bytes()).into_owned()
    }

    /// The message as it goes on the wire: the bytes it was read from with its current
    /// id in place of the one it came with, or else its value written out.
    pub fn to_bytes(&self) -> Vec<u8> {
        let Some(Wire { bytes, id: span }) = &self.wire else {
            return crate::encode::object_to_vec(&self.obj);
        };
        match (span, self.id()) {
            (Some(span), Some(id)) => {
                let (before, after) = (&bytes[..span.start], &bytes[span.end..]);
                let mut out = Vec::with_capacity(bytes.len() + 24);
                out.extend_from_slice(before);
                crate::encode::write_value(id, &mut out);
                out.extend_from_slice(after);
                out
            }
            (None, None) => bytes.to_vec(),
            // An id added or removed without the accessors: write the value.
            _ => crate::encode::object_to_vec(&self.obj),
        }
    }
}

fn build(value: Value, kind: MessageKind) -> Message {
    match value {
        Value::Object(obj) => Message { obj, kind, wire: None },
        _ => Message {
            obj: Map::new(),
            kind,
            wire: None,
        },
    }
}

/// Builds a request message.
pub fn request(id: Value, method: &str, params: Value) -> Message {
    build(
        serde_json::json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}),
        MessageKind::Request,
    )
}

/// Builds a notification message.
pub fn notification(method: &str, params: Value) -> Message {
    build(
        serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params}),
        MessageKind::Notification,
    )
}

/// A response the gateway built itself as a value (an error, a refusal); such a value is
/// always an object with `jsonrpc`, `id` and `result` or `error`.
pub fn built_response(value: Value) -> Message {
    build(value, MessageKind::Response)
}

/// Builds an error response ([`crate::error_response`]) without data.
pub fn error(id: Option<&Value>, code: ErrorCode, message: &str) -> Message {
    built_response(crate::error_response(id, code, message, None))
}

/// Builds a success response.
pub fn response(id: Value, result: Value) -> Message {
    build(
        serde_json::json!({"jsonrpc": "2.0", "id": id, "result": result}),
        MessageKind::Response,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_envelopes() {
        let cases = [
            (json!({"jsonrpc":"2.0","id":1,"method":"x"}), Ok(MessageKind::Request)),
            (
                json!({"jsonrpc":"2.0","id":"a","method":"x","params":{}}),
                Ok(MessageKind::Request),
            ),
            (json!({"jsonrpc":"2.0","method":"n"}), Ok(MessageKind::Notification)),
            (json!({"jsonrpc":"2.0","id":1,"result":{}}), Ok(MessageKind::Response)),
            (
                json!({"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"m"}}),
                Ok(MessageKind::Response),
            ),
            (json!([1]), Err(MessageError::NotAnObject)),
            (json!({"id":1,"method":"x"}), Err(MessageError::BadVersion)),
            (json!({"jsonrpc":"2.0","id":1.5,"method":"x"}), Err(MessageError::BadId)),
            (
                json!({"jsonrpc":"2.0","id":null,"method":"x"}),
                Err(MessageError::BadId),
            ),
            (json!({"jsonrpc":"2.0","id":1,"method":7}), Err(MessageError::BadMethod)),
            (json!({"jsonrpc":"2.0","id":1}), Err(MessageError::BadResponse)),
            (
                json!({"jsonrpc":"2.0","id":1,"result":1,"error":{}}),
                Err(MessageError::BadResponse),
            ),
            (
                json!({"jsonrpc":"2.0","id":1,"method":"x","params":3}),
                Err(MessageError::BadParams),
            ),
        ];
        for (value, want) in cases {
            let got = Message::from_value(value.clone()).map(|m| m.kind());
            assert_eq!(got, want, "{value}");
        }
    }

    #[test]
    fn rewrites_keep_unknown_fields() {
        let v = json!({"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"t","x-future":{"a":[1]}},"extra":true});
        let mut m = Message::from_value(v).unwrap();
        assert_eq!(m.replace_id(json!("g-1")), Some(json!(7)));
        m.params_mut().unwrap().insert("name".into(), json!("u"));
        assert_eq!(
            m.into_value(),
            json!({"jsonrpc":"2.0","id":"g-1","method":"tools/call","params":{"name":"u","x-future":{"a":[1]}},"extra":true})
        );
    }

    #[test]
    fn a_forwardable_message_goes_out_as_it_came_with_its_new_id() {
        let limits = Limits::default();
        // `\u0041` and the spaces show that the bytes themselves are forwarded.
        let text =
            r#"{"jsonrpc":"2.0", "id": "c-1","method":"tools/call","params":{"name":"\u0041","arguments":{"n":-3}}}"#;
        let mut msg = Message::parse_forwardable(Bytes::from(text), limits).unwrap();
        assert!(msg.is_forwarded_as_read());
        assert_eq!(msg.to_bytes(), text.as_bytes());
        assert_eq!(msg.replace_id(json!(17)), Some(json!("c-1")));
        assert!(msg.is_forwarded_as_read());
        let want = text.replace(r#""c-1""#, "17");
        assert_eq!(String::from_utf8(msg.to_bytes()).unwrap(), want);
        assert_eq!(Message::parse(want.as_bytes(), limits).unwrap(), msg);
        // Any other change writes the value out.
        msg.params_mut().unwrap().insert("name".into(), json!("B"));
        assert!(!msg.is_forwarded_as_read());
        assert_eq!(msg.to_bytes(), crate::encode::object_to_vec(&msg.obj));
    }

    #[test]
    fn bytes_that_would_be_written_otherwise_are_not_kept() {
        let limits = Limits::default();
        for (text, kept) in [
            (
                r#"{"jsonrpc":"2.0","method":"n","params":{"a":[1,-2,18446744073709551615]}}"#,
                true,
            ),
            (r#"{"jsonrpc":"2.0","method":"n","params":{"t":0.5}}"#, false),
            (r#"{"jsonrpc":"2.0","method":"n","params":{"t":1e2}}"#, false),
            (r#"{"jsonrpc":"2.0","method":"n","params":{"t":-0}}"#, false),
            (
                r#"{"jsonrpc":"2.0","method":"n","params":{"t":18446744073709551616}}"#,
                false,
            ),
            ("{\"jsonrpc\":\"2.0\",\n\"method\":\"n\"}", false),
            ("{\"jsonrpc\":\"2.0\",\t\"method\":\"n\"}\r", false),
        ] {
            let msg = Message::parse_forwardable(Bytes::from(text), limits).unwrap();
            assert_eq!(msg.is_forwarded_as_read(), kept, "{text}");
            assert!(!msg.to_bytes().contains(&b'\n'), "{text}");
            assert_eq!(Message::parse(&msg.to_bytes(), limits).unwrap(), msg, "{text}");
        }
        // A notification has no id to splice; one given an id is written out.
        let mut note = Message::parse_forwardable(Bytes::from(r#"{"jsonrpc":"2.0","method":"n"}"#), limits).unwrap();
        assert_eq!(note.to_bytes(), br#"{"jsonrpc":"2.0","method":"n"}"#);
        note.replace_id(json!(1));
        assert!(!note.is_forwarded_as_read());
        assert_eq!(note.to_bytes(), br#"{"jsonrpc":"2.0","method":"n","id":1}"#);
        let mut answer =
            Message::parse_forwardable(Bytes::from(r#"{"jsonrpc":"2.0","id":9,"result":{}}"#), limits).unwrap();
        answer.result_mut();
        assert!(!answer.is_forwarded_as_read());
        answer.object_mut();
        let mut answer =
            Message::parse_forwardable(Bytes::from(r#"{"jsonrpc":"2.0","id":9,"result":{}}"#), limits).unwrap();
        answer.object_mut();
        assert!(!answer.is_forwarded_as_read());
    }
}
