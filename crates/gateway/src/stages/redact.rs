//! Optional body capture for the audit log (`[audit] capture_bodies = true`):
//! arguments and results are kept, but every value under a secret-looking key, and every
//! string that looks like a credential — a bearer or basic header, a PEM block, a JWT, a
//! token with a well-known provider prefix (`sk-`, `ghp_`, `xoxb-`, `AKIA…`, …), a long
//! high-entropy token — is replaced first, and passwords in URLs are cut out (T12).
use serde_json::Value;

/// What replaces a redacted value.
pub const REDACTED: &str = "[redacted]";

/// Most bytes of one captured body; longer bodies are cut (the hash covers all of it).
pub const MAX_CAPTURE_BYTES: usize = 16 * 1024;

/// A key containing one of these (lowercased) holds a secret.
const SECRET_KEYS: [&str; 12] = [
    "pass", // password, passwd, passphrase
    "pwd",
    "secret",
    "token",
    "auth", // authorization, auth, oauth
    "api_key",
    "apikey",
    "api-key",
    "cookie",
    "credential",
    "private",
    "session",
];

/// Prefixes of well-known provider tokens.
const TOKEN_PREFIXES: [&str; 22] = [
    "sk-",
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "github_pat_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xoxr-",
    "xapp-",
    "ya29.",
    "npm_",
    "pypi-",
    "hf_",
    "shpat_",
    "AIza",
];

/// Whether a (lowercased) key names a secret: it contains a secret word or ends in `key`
/// (`apiKey`, `secret_key`, `accessKey`).
fn secret_key(lower: &str) -> bool {
    SECRET_KEYS.iter().any(|s| lower.contains(s)) || lower.ends_with("key") || lower.ends_with("keys")
}

/// A copy of `value` with secrets replaced.
pub fn redact(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let secret = secret_key(&k.to_ascii_lowercase());
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
/// words, but anything after `Bearer `, a word that looks like a credential, and the
/// password of a URL (`scheme://user:password@host`) are cut out.
fn redact_text(s: &str) -> String {
    let trimmed = s.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(inner) = serde_json::from_str::<Value>(s)
    {
        return redact(&inner).to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut after_bearer = false;
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let bare = word.trim_matches(|c: char| matches!(c, '"' | '\'' | ',' | ';' | '(' | ')' | '<' | '>'));
        if after_bearer || looks_like_token(bare) {
            out.push_str(REDACTED);
        } else {
            out.push_str(&without_url_password(word));
        }
        after_bearer = bare.eq_ignore_ascii_case("bearer") || bare.eq_ignore_ascii_case("basic");
    }
    out
}

/// `scheme://user:password@host…` with the password replaced.
fn without_url_password(word: &str) -> String {
    let Some(scheme_end) = word.find("://") else {
        return word.to_owned();
    };
    let authority_start = scheme_end + 3;
    let authority_end = word[authority_start..]
        .find(['/', '?', '#'])
        .map_or(word.len(), |e| authority_start + e);
    let authority = &word[authority_start..authority_end];
    let (Some(at), Some(colon)) = (authority.rfind('@'), authority.find(':')) else {
        return word.to_owned();
    };
    if colon > at {
        return word.to_owned();
    }
    let password_start = authority_start + colon + 1;
    let password_end = authority_start + at;
    format!("{}{REDACTED}{}", &word[..password_start], &word[password_end..])
}

fn looks_like_credential(s: &str) -> bool {
    let trimmed = s.trim();
    let lower = trimmed.to_ascii_lowercase();
    lower.starts_with("bearer ")
        || lower.starts_with("basic ")
        || lower.starts_with("-----begin")
        || (!trimmed.contains(char::is_whitespace) && looks_like_token(trimmed))
}

/// One word that looks like a credential: a JWT, a provider token, an AWS access key id,
/// or a long high-entropy string (32+ token characters with upper case, lower case and
/// digits — not a hex digest, which has no upper case).
fn looks_like_token(word: &str) -> bool {
    let token_chars = |w: &str| {
        w.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '_' | '-' | '.'))
    };
    if word.len() < 16 || !token_chars(word) {
        return false;
    }
    let jwt = word.starts_with("eyJ") && word.matches('.').count() == 2;
    let prefixed = TOKEN_PREFIXES.iter().any(|p| word.starts_with(p));
    let aws = (word.starts_with("AKIA") || word.starts_with("ASIA"))
        && word.len() == 20
        && word.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    let entropic = word.len() >= 32
        && word.chars().any(|c| c.is_ascii_uppercase())
        && word.chars().any(|c| c.is_ascii_lowercase())
        && word.chars().any(|c| c.is_ascii_digit());
    jwt || prefixed || aws || entropic
}

/// Longest caller's reason a decision record keeps.
pub const MAX_REASON_BYTES: usize = 1024;

/// A caller's free-text reason as a record keeps it: credentials cut out like captured
/// text, and at most [`MAX_REASON_BYTES`].
pub fn reason(text: &str) -> String {
    cut_at(redact_text(text), MAX_REASON_BYTES)
}

/// `text` cut to at most `max` bytes (at a character boundary), marked when cut.
fn cut_at(mut text: String, max: usize) -> String {
    if text.len() > max {
        text.truncate(text.floor_char_boundary(max));
        text.push_str("…[truncated]");
    }
    text
}

/// The redacted body as compact JSON text, cut at [`MAX_CAPTURE_BYTES`].
pub fn capture(value: &Value) -> String {
    cut_at(redact(value).to_string(), MAX_CAPTURE_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_reason_keeps_its_words_loses_its_credentials_and_is_bounded() {
        assert_eq!(reason("ticket 42: refund"), "ticket 42: refund");
        let kept = reason("retry with Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.abc");
        assert!(!kept.contains("eyJ"), "{kept}");
        let long = reason(&"why ".repeat(1000));
        assert!(long.len() <= MAX_REASON_BYTES + "…[truncated]".len(), "{}", long.len());
        assert!(long.ends_with("[truncated]"));
    }

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
    fn t12_secret_looking_values_are_redacted_under_any_key() {
        let canaries = [
            "sk-proj-4f9aJd8sKq2LmNvB7xYz",
            "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
            "xoxb-2435-98765-AbCdEfGhIjKl",
            "AKIAIOSFODNN7EXAMPLE",
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlX2hlcmU",
            "Zx9Qw3Er7Ty1Ui5Op2As8Df4Gh6Jk0LzXcVbNm",
            "AIzaSyD-1234567890abcdefghijklmnopqrstu",
        ];
        for canary in canaries {
            let body = json!({"q": canary, "list": [format!("use {canary} now")], "note": format!("token: {canary}")});
            let text = capture(&body);
            assert!(!text.contains(canary), "{canary} leaked: {text}");
        }
        let body = json!({"dsn": "postgres://app:hunter2@db.internal:5432/sales", "secretKey": "x", "apiKey": "y",
            "auth": "z", "passphrase": "w", "digest": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "plain": "the quick brown fox", "path": "/srv/data/report.csv"});
        let out = redact(&body);
        assert_eq!(out["dsn"], "postgres://app:[redacted]@db.internal:5432/sales");
        for key in ["secretKey", "apiKey", "auth", "passphrase"] {
            assert_eq!(out[key], REDACTED, "{key}");
        }
        for key in ["digest", "plain", "path"] {
            assert_eq!(out[key], body[key], "{key} is not a secret");
        }
    }

    #[test]
    fn long_bodies_are_cut_on_a_char_boundary() {
        let text = capture(&json!({"a": "é".repeat(MAX_CAPTURE_BYTES)}));
        assert!(text.ends_with("…[truncated]") && text.len() <= MAX_CAPTURE_BYTES + 20);
    }
}
