//! JSON text of the messages that leave the gateway, written into a buffer sized for it
//! up front: `serde_json::to_vec` starts at 128 bytes and doubles, so a 1 KiB message
//! costs four reallocations and their copies on every call (counted with DHAT,
//! docs/benchmarks.md "Allocations per call, by site (issue 21 item 5, 2026-12-06, ninth
//! session)"). The size estimate also budgets what is queued for a client (T23).
use serde::Serialize;
use serde_json::{Map, Value};

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

/// `value` as compact JSON text, in a buffer of `size_hint` bytes (plus room for a few
/// escapes) so that it is written without growing. Serialising a `Value` (or a map of
/// them) cannot fail: keys are strings and numbers finite.
pub fn to_vec_sized<T: Serialize + ?Sized>(value: &T, size_hint: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size_hint + size_hint / 16 + 16);
    let _ = serde_json::to_writer(&mut out, value);
    out
}

/// [`to_vec_sized`] with the size estimated from the value.
pub fn to_vec(value: &Value) -> Vec<u8> {
    to_vec_sized(value, json_size(value))
}

#[cfg(test)]
mod tests {
    use super::*;
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
    }
}
