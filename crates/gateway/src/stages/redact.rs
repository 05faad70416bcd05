//! Optional body capture for the audit log (`[audit] capture_bodies = true`):
//! arguments and results are kept, but every value under a secret-looking key,
//! and every string that looks like a bearer credential, is replaced first (T12).
use serde_json::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Most bytes of one captured body; longer bodies are cut (the hash covers all of it).
pub const MAX_CAPTURE_BYTES: usize = 16 * 1024;

const SECRET_KEYS: [&str; 11] = [
    "password",
    "passwd",
    "secret",
    "token",
    "authorization",
    "api_key",
    "apikey",
    "cookie",
    "credential",
    "private_key",
    "session",
];

/// A copy of `value` with secrets replaced.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let secret = SECRET_KEYS.iter().any(|s| lower.contains(s));
                    (
                        k.clone(),
                        if secret {
                            Value::String(REDACTED.into())
                        } else {
                            redact(v)
                        },
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(redact).collect()),
        Value::String(s) if looks_like_credential(s) => Value::String(REDACTED.into()),
        Value::String(s) => Value::String(redact_text(s)),
        other => other.clone(),
    }
}

/// Tool results often carry JSON as text: redact inside it too. Free text keeps its
/// words, but anything after `Bearer ` is cut out.
fn redact_text(s: &str) -> String {
    let trimmed = s.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(inner) = serde_json::from_str::<Value>(s)
    {
        return redact(&inner).to_string();
    }
    let lower = s.to_ascii_lowercase();
    let mut out = String::with_capacity(s.len());
    let mut rest = 0;
    while let Some(found) = lower[rest..].find("bearer ") {
        let start = rest + found + "bearer ".len();
        let end = s[start..].find(char::is_whitespace).map_or(s.len(), |e| start + e);
        out.push_str(&s[rest..start]);
        out.push_str(REDACTED);
        rest = end;
    }
    out.push_str(&s[rest..]);
    out
}

fn looks_like_credential(s: &str) -> bool {
    let lower = s.trim_start().to_ascii_lowercase();
    lower.starts_with("bearer ") || lower.starts_with("basic ") || lower.starts_with("-----begin")
}

/// The redacted body as compact JSON text, cut at [`MAX_CAPTURE_BYTES`].
pub fn capture(value: &Value) -> String {
    let mut text = redact(value).to_string();
    if text.len() > MAX_CAPTURE_BYTES {
        let mut cut = MAX_CAPTURE_BYTES;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("…[truncated]");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_replaced_everywhere() {
        let body = json!({"q": "visible", "Password": "hunter2", "nested": [{"api_key": 1, "x": "Bearer abc.def"}],
            "headers": {"Authorization": "x", "ok": "fine"}, "pem": "-----BEGIN PRIVATE KEY-----"});
        let out = redact(&body);
        assert_eq!(
            out,
            json!({"q": "visible", "Password": REDACTED, "nested": [{"api_key": REDACTED, "x": REDACTED}],
                "headers": {"Authorization": REDACTED, "ok": "fine"}, "pem": REDACTED})
        );
        assert!(!capture(&body).contains("hunter2"));
    }

    #[test]
    fn json_in_text_and_bearer_tokens_in_prose_are_redacted() {
        let body = json!({"content": [{"type": "text", "text": "{\"password\": \"hunter2\", \"q\": 1}"},
            {"type": "text", "text": "called with Authorization: Bearer abc.def ok"}]});
        let text = capture(&body);
        assert!(!text.contains("hunter2") && !text.contains("abc.def"), "{text}");
        assert!(text.contains("called with") && text.contains(" ok"), "{text}");
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let text = capture(&json!({"a": "é".repeat(MAX_CAPTURE_BYTES)}));
        assert!(text.ends_with("…[truncated]") && text.len() <= MAX_CAPTURE_BYTES + 20);
    }
}
