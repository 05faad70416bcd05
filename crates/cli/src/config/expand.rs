//! `${VAR}` in the values of a server's `env` and `headers`: replaced by the variable of the
//! gateway's own environment when the config is loaded, so a secret can stay out of the
//! file (`env = { API_TOKEN = "${GITHUB_TOKEN}" }`). A variable that is not set is a config
//! error naming it; `$${` is a literal `${`; any other `$` is itself. The expanded value is
//! a secret like the rest of `env` and `headers` (never printed).
use std::collections::BTreeMap;

use portcullis_core::Secret;

/// Expands `text` with `vars`; the error says what to fix.
pub fn expand(text: &str, vars: &BTreeMap<String, Secret<String>>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let Some(end) = tail.find('}') else {
                return Err("has `${` without a closing `}`; write `$${` for a literal `${`".into());
            };
            let name = &tail[..end];
            let valid = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "`${{{name}}}` is not a variable reference (letters, digits and `_`, not starting with a digit); \
                     write `$${{` for a literal `${{`"
                ));
            }
            match vars.get(name) {
                Some(value) => out.push_str(value.expose()),
                None => {
                    return Err(format!(
                        "uses `${{{name}}}`, but the environment variable `{name}` is not set for the gateway; set \
                         it where the gateway (or the desktop host that starts it) runs, or write `$${{` for a \
                         literal `${{`"
                    ));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, Secret<String>> {
        BTreeMap::from([("TOKEN".to_owned(), Secret::new("s3cret".to_owned()))])
    }

    #[test]
    fn variables_are_replaced_and_escapes_kept() {
        let v = vars();
        assert_eq!(expand("Bearer ${TOKEN}", &v).as_deref(), Ok("Bearer s3cret"));
        assert_eq!(expand("${TOKEN}${TOKEN}", &v).as_deref(), Ok("s3crets3cret"));
        assert_eq!(expand("literal $${TOKEN}", &v).as_deref(), Ok("literal ${TOKEN}"));
        assert_eq!(expand("cost $5 and $", &v).as_deref(), Ok("cost $5 and $"));
        assert_eq!(expand("plain", &v).as_deref(), Ok("plain"));
    }

    #[test]
    fn a_missing_or_malformed_reference_is_an_error_naming_it() {
        let v = vars();
        let missing = expand("${NOPE}", &v).unwrap_err();
        assert!(missing.contains("`NOPE` is not set"), "{missing}");
        assert!(expand("${TOKEN", &v).unwrap_err().contains("without a closing"));
        assert!(expand("${1X}", &v).unwrap_err().contains("not a variable reference"));
    }
}
