//! JSON text of the messages that leave the gateway, written into a buffer sized for it
//! up front: `serde_json::to_vec` starts at 128 bytes and doubles, so a 1 KiB message
//! costs four reallocations and their copies on every call (counted with DHAT,
//! docs/benchmarks.md "Allocations per call, by site (issue 21 item 5, 2026-12-06, ninth
//! session)"). The size estimate also budgets what is queued for a client (T23).
//!
//! The text is byte for byte what `serde_json::to_writer` writes (compact, keys in the
//! map's order, serde_json's escapes), but strings are scanned eight bytes at a time for
//! the bytes that need an escape (controls, `"`, `\`) instead of one table look-up per
//! byte: serde_json's escaping loop was the relay's largest single cost in instructions
//! (docs/benchmarks.md "Strings written eight bytes at a time (issue 21 item 5,
//! 2026-12-06, tenth session)"). The canonical writer (`canonical`) writes its strings
//! here too.
use serde_json::{Map, Number, Value};

/// The size of `value` as compact JSON, closely enough to budget by and to size a buffer
/// (strings count their bytes plus quotes, escapes not counted; numbers a fixed width of
/// 20, which covers every integer).
pub fn json_size(value: &Value) -> usize {
    match value {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 20,
        Value::String(s) => s.len() + 2,
        Value::Array(items) => 2 + items.iter().map(|v| json_size(v) + 1).sum::<usize>(),
        Value::Object(map) => object_size(map),
    }
}

/// [`json_size`] of an object.
pub fn object_size(map: &Map<String, Value>) -> usize {
    2 + map.iter().map(|(k, v)| k.len() + 4 + json_size(v)).sum::<usize>()
}

/// A buffer for `size_hint` bytes of JSON plus room for a few escapes.
pub(crate) fn buffer(size_hint: usize) -> Vec<u8> {
    Vec::with_capacity(size_hint + size_hint / 16 + 16)
}

/// `value` as compact JSON text, in a buffer sized from the value so that it is written
/// without growing.
pub fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = buffer(json_size(value));
    write_value(value, &mut out);
    out
}

/// The object `map` as compact JSON text (as [`to_vec`]).
pub fn object_to_vec(map: &Map<String, Value>) -> Vec<u8> {
    let mut out = buffer(object_size(map));
    write_object(map, &mut out);
    out
}

/// Appends `value` as compact JSON text to `out`.
pub fn write_value(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Null => out.extend_from_slice(b"null"),
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Number(n) => write_number(n, out),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            write_items(items, out, |item, out| {
                write_value(item, out);
                true
            });
        }
        Value::Object(map) => write_object(map, out),
    }
}

/// Appends the object `map` as compact JSON text to `out`, keys in the map's order.
pub fn write_object(map: &Map<String, Value>, out: &mut Vec<u8>) {
    let members = map.iter().map(|(k, v)| (k.as_str(), v));
    write_members(members, out, |value, out| {
        write_value(value, out);
        true
    });
}

/// Appends the array `items`, each written by `value`; stops, returning false, at the
/// first item `value` refuses (as [`write_members`]).
pub(crate) fn write_items(
    items: &[Value],
    out: &mut Vec<u8>,
    mut value: impl FnMut(&Value, &mut Vec<u8>) -> bool,
) -> bool {
    out.push(b'[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !value(item, out) {
            return false;
        }
    }
    out.push(b']');
    true
}

/// Appends an object of `members`, in the order given, each value written by `value`;
/// stops, returning false, at the first value `value` refuses (the canonical writer
/// leaves uncommon values to the full implementation).
pub(crate) fn write_members<'k, V>(
    members: impl IntoIterator<Item = (&'k str, V)>,
    out: &mut Vec<u8>,
    mut value: impl FnMut(V, &mut Vec<u8>) -> bool,
) -> bool {
    out.push(b'{');
    for (i, (key, member)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(key, out);
        out.push(b':');
        if !value(member, out) {
            return false;
        }
    }
    out.push(b'}');
    true
}

/// Numbers are short: serde_json's own formatting (itoa, ryu) keeps them exactly as it
/// writes them. Writing to a `Vec` cannot fail.
fn write_number(n: &Number, out: &mut Vec<u8>) {
    let _ = serde_json::to_writer(&mut *out, n);
}

/// Whether a string's run of plain bytes ends at `b`: `"`, `\\` or a control byte — the
/// bytes JSON escapes when writing, and the ones that end or interrupt a string when
/// reading.
#[inline]
fn ends_run(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The first position at or after `i` in `bytes` holding a byte that [`ends_run`], or the
/// end. Sixteen bytes at a time: the test of a chunk has no early exit, so the compiler
/// makes it a handful of vector instructions. Shared by the writer ([`write_str`]) and the
/// strict parser's reader.
#[inline]
pub(crate) fn clean_run(bytes: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = bytes.get(i..i + 16).and_then(|c| <&[u8; 16]>::try_from(c).ok()) {
        if chunk.iter().fold(false, |stop, &b| stop | ends_run(b)) {
            break;
        }
        i += 16;
    }
    while let Some(&b) = bytes.get(i) {
        if ends_run(b) {
            break;
        }
        i += 1;
    }
    i
}

/// Appends `s` as a JSON string with serde_json's escapes: the short forms for `\b \t \n
/// \f \r`, `\"` and `\\`, `\u00xx` (lowercase) for the other controls; everything else as is.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.push(b'"');
    // `run` starts the bytes not yet copied; clean runs are copied whole.
    let mut run = 0;
    loop {
        let stop = clean_run(bytes, run);
        out.extend_from_slice(&bytes[run..stop]);
        let Some(&byte) = bytes.get(stop) else { break };
        let short = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            0x09 => b't',
            0x0A => b'n',
            0x0C => b'f',
            0x0D => b'r',
            _ => 0,
        };
        match short {
            0 => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xF)],
            ]),
            c => out.extend_from_slice(&[b'\\', c]),
        }
        run = stop + 1;
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arbitrary::json_value;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn the_size_estimate_covers_the_serialised_size_without_escapes() {
        let v = json!({"jsonrpc": "2.0", "method": "notifications/progress", "params": {"progressToken": "t", "progress": 1, "total": 20, "message": "step 1 of 20", "list": [1, 2, null, true], "big": u64::MAX, "neg": i64::MIN, "f": -1.5e300}});
        let real = serde_json::to_vec(&v).unwrap().len();
        let estimate = json_size(&v);
        assert!(estimate >= real && estimate < real * 2, "{estimate} vs {real}");
    }

    #[test]
    fn the_text_is_serde_jsons_and_fits_the_buffer_it_was_given() {
        let v = json!({"id": 7, "result": {"content": [{"type": "text", "text": "x".repeat(1000)}]}});
        let text = to_vec(&v);
        assert_eq!(text, serde_json::to_vec(&v).unwrap());
        assert!(
            text.capacity() >= text.len() && text.capacity() <= json_size(&v) * 2,
            "{}",
            text.capacity()
        );
        // Escapes beyond the estimate still serialise whole (the buffer grows).
        let quoted = json!({"s": "\"".repeat(500)});
        assert_eq!(to_vec(&quoted), serde_json::to_vec(&quoted).unwrap());
        let Value::Object(map) = &v else { unreachable!() };
        assert_eq!(object_to_vec(map), serde_json::to_vec(map).unwrap());
    }

    /// Every byte that needs an escape, at every position of a word and beside clean runs
    /// of every length, is escaped as serde_json escapes it; nothing else is.
    #[test]
    fn each_escaped_byte_at_each_position_is_escaped_as_serde_json_does() {
        let specials: Vec<char> = (0u8..0x20)
            .map(char::from)
            .chain(['"', '\\', '\u{7f}', 'é', '€', '😀'])
            .collect();
        for special in specials {
            for before in 0..17 {
                for after in [0, 1, 7, 8, 9] {
                    let s = format!("{}{special}{}", "a".repeat(before), "b".repeat(after));
                    let mut out = Vec::new();
                    write_str(&s, &mut out);
                    assert_eq!(out, serde_json::to_vec(&s).unwrap(), "{s:?}");
                }
            }
        }
    }

    proptest! {
        /// Whatever the value, the text is serde_json's, byte for byte.
        #[test]
        fn the_text_matches_serde_json(value in json_value()) {
            prop_assert_eq!(to_vec(&value), serde_json::to_vec(&value).unwrap());
        }
    }
}
