//! `[[credentials]]` rules: which calls get a credential, from which source, delivered how.
//! The gateway's config parser builds [`Rule`]s; [`crate::Broker::new`] compiles their globs
//! once and checks their names, and [`crate::Broker::plan`] picks the first rule that
//! matches a call, in config order.
use glob::Pattern;
use portcullis_core::Tier;
use serde::Serialize;

use crate::error::BrokerError;

/// One `[[credentials]]` rule. Empty lists match anything; a rule with `users` never
/// matches a call without a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Stable name, e.g. `sales-read`, recorded in the audit log.
    pub id: String,
    /// The server's exact name.
    pub server: String,
    /// Globs on the call's target (tool name, resource URI, prompt name).
    pub tools: Vec<String>,
    pub tiers: Vec<Tier>,
    /// Globs on the caller's SPIFFE ID.
    pub workloads: Vec<String>,
    /// Globs on the caller's user.
    pub users: Vec<String>,
    /// The name of a configured source.
    pub source: String,
    pub delivery: Delivery,
}

/// How the upstream receives the credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "to", rename_all = "lowercase")]
pub enum Delivery {
    /// HTTP upstreams: one request header, `name: prefix + secret` (e.g. `Authorization: Bearer …`).
    Header { name: String, prefix: String },
    /// stdio upstreams: an environment variable of the child spawned for the call.
    Env { var: String },
}

/// What selects a rule.
#[derive(Debug, Clone, Copy)]
pub struct CallMatch<'a> {
    pub server: &'a str,
    /// Tool name, resource URI or prompt name.
    pub target: &'a str,
    pub tier: Tier,
    pub workload: &'a str,
    pub user: Option<&'a str>,
}

/// Headers the gateway or HTTP itself controls; a credential may not replace them.
const RESERVED_HEADERS: [&str; 8] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "accept",
    "mcp-session-id",
    "mcp-protocol-version",
];

/// A rule with its globs compiled.
#[derive(Debug)]
pub(crate) struct CompiledRule {
    pub rule: Rule,
    tools: Vec<Pattern>,
    workloads: Vec<Pattern>,
    users: Vec<Pattern>,
}

impl CompiledRule {
    pub fn new(rule: Rule) -> Result<Self, BrokerError> {
        let subject = format!("rule `{}`", rule.id);
        if !valid_id(&rule.id) {
            return Err(BrokerError::config(
                subject,
                "id",
                "use 1 to 64 characters of letters, digits, `-`, `_` and `.`",
            ));
        }
        if rule.server.is_empty() {
            return Err(BrokerError::config(
                subject,
                "server",
                "name the server the rule is for",
            ));
        }
        check_delivery(&subject, &rule.delivery)?;
        Ok(Self {
            tools: patterns(&subject, "tools", &rule.tools)?,
            workloads: patterns(&subject, "workloads", &rule.workloads)?,
            users: patterns(&subject, "users", &rule.users)?,
            rule,
        })
    }

    pub fn matches(&self, call: &CallMatch<'_>) -> bool {
        let rule = &self.rule;
        rule.server == call.server
            && any_or_empty(&self.tools, call.target)
            && (rule.tiers.is_empty() || rule.tiers.contains(&call.tier))
            && any_or_empty(&self.workloads, call.workload)
            && (self.users.is_empty() || call.user.is_some_and(|u| self.users.iter().any(|p| p.matches(u))))
    }
}

fn any_or_empty(patterns: &[Pattern], value: &str) -> bool {
    patterns.is_empty() || patterns.iter().any(|p| p.matches(value))
}

fn patterns(subject: &str, key: &'static str, globs: &[String]) -> Result<Vec<Pattern>, BrokerError> {
    globs
        .iter()
        .map(|g| {
            Pattern::new(g).map_err(|e| {
                BrokerError::config(
                    subject,
                    key,
                    format!("`{g}` is not a valid glob ({}); fix the pattern", e.msg),
                )
            })
        })
        .collect()
}

fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_delivery(subject: &str, delivery: &Delivery) -> Result<(), BrokerError> {
    match delivery {
        Delivery::Header { name, prefix } => {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(BrokerError::config(
                    subject,
                    "header",
                    format!("`{name}` is not a valid HTTP header name; use letters, digits and `-`"),
                ));
            }
            if RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                return Err(BrokerError::config(
                    subject,
                    "header",
                    format!("`{name}` is set by the gateway itself; deliver the credential in another header"),
                ));
            }
            if !prefix.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
                return Err(BrokerError::config(
                    subject,
                    "prefix",
                    "the header prefix may hold only printable ASCII and spaces",
                ));
            }
        }
        Delivery::Env { var } => {
            if !valid_env_var(var) {
                return Err(BrokerError::config(
                    subject,
                    "env",
                    format!(
                        "`{var}` is not a valid environment variable name; use letters, digits and `_`, not \
                         starting with a digit"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `[A-Za-z_][A-Za-z0-9_]*`, the portable shell name.
pub(crate) fn valid_env_var(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_var_names() {
        for good in ["A", "_x", "DATABASE_URL", "a1"] {
            assert!(valid_env_var(good), "{good}");
        }
        for bad in ["", "1A", "A-B", "A B", "A=B", "É"] {
            assert!(!valid_env_var(bad), "{bad}");
        }
    }
}
