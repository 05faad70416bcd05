//! Validated names of upstream servers and the namespacing rule built on them.
//!
//! With several servers behind one endpoint, tool and prompt names are shown
//! to clients as `{server}__{name}`. Server names may not contain `_`, so the
//! first `__` always splits a namespaced name unambiguously (T9).
use std::fmt;

use serde::{Deserialize, Serialize};

/// Separator between server name and item name in namespaced tool/prompt names.
pub const NAMESPACE_SEPARATOR: &str = "__";

/// Why a server name was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("server name is empty; give each server a short name such as `files`")]
    Empty,
    #[error("server name `{0}` is longer than 32 characters")]
    TooLong(String),
    #[error("server name `{0}` may contain only lowercase letters, digits and `-`, and must start with a letter")]
    BadCharacter(String),
}

/// The configured name of one upstream server: `[a-z][a-z0-9-]{0,31}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerName(String);

impl ServerName {
    /// Validates `name` against the server-name grammar.
    pub fn new(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name.len() > 32 {
            return Err(NameError::TooLong(name.to_owned()));
        }
        let mut chars = name.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !first_ok || !rest_ok {
            return Err(NameError::BadCharacter(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name a client sees for `item` of this server when namespacing is on.
    pub fn namespaced(&self, item: &str) -> String {
        format!("{}{NAMESPACE_SEPARATOR}{item}", self.0)
    }

    /// The resource URI a client sees for `uri` of this server when namespacing is on.
    pub fn namespaced_uri(&self, uri: &str) -> String {
        format!("{}+{uri}", self.0)
    }
}

impl TryFrom<String> for ServerName {
    type Error = NameError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::new(&value)
    }
}

impl From<ServerName> for String {
    fn from(value: ServerName) -> Self {
        value.0
    }
}

impl fmt::Display for ServerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Splits a namespaced tool/prompt name into `(server, item)`.
pub fn split_namespaced(name: &str) -> Option<(&str, &str)> {
    name.split_once(NAMESPACE_SEPARATOR)
}

/// Splits a namespaced resource URI (`server+uri`) into `(server, uri)`.
pub fn split_namespaced_uri(uri: &str) -> Option<(&str, &str)> {
    uri.split_once('+')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects_names() {
        for ok in ["files", "a", "db-1", "x0"] {
            assert!(ServerName::new(ok).is_ok(), "{ok}");
        }
        let bad = [
            ("", NameError::Empty),
            ("Files", NameError::BadCharacter("Files".into())),
            ("my_db", NameError::BadCharacter("my_db".into())),
            ("1db", NameError::BadCharacter("1db".into())),
            ("a.b", NameError::BadCharacter("a.b".into())),
        ];
        for (input, want) in bad {
            assert_eq!(ServerName::new(input), Err(want));
        }
        assert!(matches!(ServerName::new(&"a".repeat(33)), Err(NameError::TooLong(_))));
    }

    #[test]
    fn namespacing_round_trips_even_with_underscores_in_tool_names() {
        let s = ServerName::new("db").unwrap();
        let n = s.namespaced("run__query_x");
        assert_eq!(n, "db__run__query_x");
        assert_eq!(split_namespaced(&n), Some(("db", "run__query_x")));
        let u = s.namespaced_uri("file:///a+b");
        assert_eq!(split_namespaced_uri(&u), Some(("db", "file:///a+b")));
    }
}
