//! Where an object sits in an MCP message, and the protocol field names at that place (T22).
//!
//! A case-insensitive decoder (Go's `encoding/json`) reads `"Name"` as the field `name`
//! even when no `name` key is there. So in the objects whose keys are protocol fields —
//! the JSON-RPC envelope, `params`, `result`, `error`, a completion's `ref` and `argument`,
//! and `_meta` — a key that is not a field name but folds onto one is refused. Keys inside
//! `arguments` and other user data are free; there only the rule of
//! [`crate::fold`] (no two keys fold equal) applies.
//!
//! The field lists are the union over the protocol revisions the gateway speaks
//! (2024-11-05 … 2026-07-28) and over methods: a spelling that folds onto any of them is
//! refused, whichever method the message names. The match also ignores `_` and `-`, as
//! Go's `encoding/json/v2` does for case-insensitive names, so `meta` cannot stand in for
//! `_meta` either.
use std::{collections::HashMap, sync::OnceLock};

use crate::fold;

/// The place of an object in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Level {
    /// Free-form JSON (tool arguments, manifests, receipts): no field names.
    Data,
    Envelope,
    Params,
    Result,
    Error,
    /// `params.ref` of `completion/complete`.
    Ref,
    /// `params.argument` of `completion/complete`.
    Argument,
    /// `_meta` of params or of a result.
    Meta,
}

/// Declares each level's field names once: as a list (for the loose index and the tests)
/// and as a `match` (the exact check on every key, which the compiler makes a jump on
/// length and a comparison or two).
macro_rules! protocol_fields {
    ($($level:ident: $list:ident = [$($field:literal),* $(,)?];)*) => {
        $(const $list: &[&str] = &[$($field),*];)*

        /// Every level that has field names.
        const ALL: &[Level] = &[$(Level::$level),*];

        impl Level {
            /// The protocol field names of this place, sorted.
            pub(crate) fn fields(self) -> &'static [&'static str] {
                match self {
                    Level::Data => &[],
                    $(Level::$level => $list,)*
                }
            }

            /// Whether `key` is one of this place's field names, spelled exactly.
            pub(crate) fn is_field(self, key: &str) -> bool {
                match self {
                    Level::Data => false,
                    $(Level::$level => matches!(key, $($field)|*),)*
                }
            }
        }
    };
}

protocol_fields! {
    Envelope: ENVELOPE = ["error", "id", "jsonrpc", "method", "params", "result"];
    Params: PARAMS = [
        "_meta", "argument", "arguments", "capabilities", "clientInfo", "context", "createdAt",
        "cursor", "data", "elicitationId", "includeContext", "inputResponses", "lastUpdatedAt",
        "level", "logger", "maxTokens", "message", "messages", "metadata", "mode",
        "modelPreferences", "name", "pollInterval", "progress", "progressToken", "protocolVersion",
        "reason", "ref", "requestId", "requestState", "requestedSchema", "status", "statusMessage",
        "stopSequences", "systemPrompt", "task", "taskId", "temperature", "toolChoice", "tools",
        "total", "ttl", "uri", "url",
    ];
    Result: RESULT = [
        "_meta", "action", "cacheScope", "capabilities", "completion", "content", "contents",
        "description", "inputRequests", "instructions", "isError", "messages", "model",
        "nextCursor", "prompts", "protocolVersion", "requestState", "resourceTemplates",
        "resources", "resultType", "role", "roots", "serverInfo", "status", "stopReason",
        "structuredContent", "supportedVersions", "task", "taskId", "tasks", "tools", "ttlMs",
    ];
    Error: ERROR = ["code", "data", "message"];
    Ref: REF = ["name", "type", "uri"];
    Argument: ARGUMENT = ["name", "value"];
    Meta: META = [
        "io.modelcontextprotocol/clientCapabilities", "io.modelcontextprotocol/clientInfo",
        "io.modelcontextprotocol/protocolVersion", "io.modelcontextprotocol/related-task",
        "io.modelcontextprotocol/serverInfo", "progressToken",
    ];
}

impl Level {
    /// The place of the value under `key` (an exact field name, or free data).
    pub(crate) fn child(self, key: &str) -> Level {
        if self == Level::Data {
            return Level::Data;
        }
        match (self, key) {
            (Level::Envelope, "params") => Level::Params,
            (Level::Envelope, "result") => Level::Result,
            (Level::Envelope, "error") => Level::Error,
            (Level::Params, "ref") => Level::Ref,
            (Level::Params, "argument") => Level::Argument,
            (Level::Params | Level::Result, "_meta") => Level::Meta,
            _ => Level::Data,
        }
    }

    /// The protocol field that `key` stands in for without being it, if any. `folded` is
    /// the key's fold when it needed one (a key without one is its own fold).
    pub(crate) fn impersonated(self, key: &str, folded: Option<&str>) -> Option<&'static str> {
        if self == Level::Data || self.is_field(key) {
            return None;
        }
        // Off the common path: a key that is not a field name of its place. Most such
        // keys (`io.portcullis/reason`) differ from every field in length already.
        let folded = folded.unwrap_or(key);
        let length = folded.chars().filter(kept).count();
        let index = LooseIndex::get();
        if length >= 64 || index.lengths[self as usize] & (1 << length) == 0 {
            return None;
        }
        index.fields.get(&(self, loose(folded))).copied()
    }
}

/// Every field by its loose form, and per level the lengths of those forms (bit `n` set
/// for a form of `n` characters), built once.
struct LooseIndex {
    fields: HashMap<(Level, String), &'static str>,
    lengths: [u64; ALL.len() + 1],
}

impl LooseIndex {
    fn get() -> &'static LooseIndex {
        static INDEX: OnceLock<LooseIndex> = OnceLock::new();
        INDEX.get_or_init(|| {
            let mut index = LooseIndex {
                fields: HashMap::new(),
                lengths: [0; ALL.len() + 1],
            };
            for &level in ALL {
                for &field in level.fields() {
                    let form = loose(&fold::fold(field));
                    index.lengths[level as usize] |= 1 << form.chars().count();
                    index.fields.insert((level, form), field);
                }
            }
            index
        })
    }
}

fn kept(c: &char) -> bool {
    *c != '_' && *c != '-'
}

/// A folded key without `_` and `-`: what Go's `encoding/json/v2` compares when it
/// matches names case-insensitively.
fn loose(folded: &str) -> String {
    folded.chars().filter(kept).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_lists_are_sorted_and_no_two_fields_fold_alike() {
        for level in ALL {
            let fields = level.fields();
            assert!(fields.windows(2).all(|w| w[0] < w[1]), "{level:?} is not sorted");
            for (i, a) in fields.iter().enumerate() {
                assert_eq!(level.impersonated(a, None), None, "{a} is a field of {level:?}");
                for b in &fields[i + 1..] {
                    assert_ne!(
                        loose(&fold::fold(a)),
                        loose(&fold::fold(b)),
                        "{a} and {b} of {level:?} fold alike"
                    );
                }
            }
        }
    }

    #[test]
    fn spellings_that_stand_in_for_a_field() {
        let cases: &[(Level, &str, Option<&str>)] = &[
            (Level::Envelope, "Method", Some("method")),
            (Level::Envelope, "JSONRPC", Some("jsonrpc")),
            (Level::Envelope, "paramſ", Some("params")),
            (Level::Envelope, "extra", None),
            (Level::Params, "Name", Some("name")),
            (Level::Params, "argumentſ", Some("arguments")),
            (Level::Params, "tas\u{212A}", Some("task")),
            (Level::Params, "meta", Some("_meta")),
            (Level::Params, "protocol_version", Some("protocolVersion")),
            (Level::Params, "x-future", None),
            (Level::Error, "Code", Some("code")),
            (Level::Ref, "URI", Some("uri")),
            (Level::Argument, "Value", Some("value")),
            (Level::Result, "IsError", Some("isError")),
            (Level::Meta, "ProgressToken", Some("progressToken")),
            (Level::Meta, "io.portcullis/reason", None),
            (Level::Data, "Name", None),
        ];
        for (level, key, want) in cases {
            let folded = fold::needs_fold(key).then(|| fold::fold(key));
            assert_eq!(level.impersonated(key, folded.as_deref()), *want, "{level:?} {key}");
        }
    }
}
