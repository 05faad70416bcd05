//! The checks of a `postgres-role` source's config, made once by `Broker::new`: each
//! failure names the source and the key, and none quotes the admin connection string.
use super::session::REUSE_MARGIN;
use crate::config::{Per, PostgresRoleConfig};
use crate::error::BrokerError;

pub(super) fn config(name: &str, config: &PostgresRoleConfig) -> Result<(), BrokerError> {
    let subject = format!("source `{name}`");
    let err = |key, problem: String| BrokerError::config(subject.clone(), key, problem);
    if !valid_prefix(&config.prefix) {
        return Err(err(
            "prefix",
            format!(
                "`{}` is not a valid role prefix; use 1 to 31 characters of a-z, 0-9 and `_`, starting with a \
                     letter or `_`",
                config.prefix
            ),
        ));
    }
    if !(config.connect_url.contains("{user}") && config.connect_url.contains("{password}")) {
        return Err(err(
            "connect_url",
            "the template must contain `{user}` and `{password}`, e.g. \
                 postgres://{user}:{password}@127.0.0.1:5432/app"
                .into(),
        ));
    }
    let min_ttl = match config.per {
        Per::Call => 1,
        Per::Session => REUSE_MARGIN + 1,
    };
    if config.ttl.as_secs() < min_ttl {
        return Err(err(
            "ttl",
            format!(
                "must be at least {min_ttl} s{}",
                if config.per == Per::Session {
                    " for per-session roles (they are reused until 30 s before they expire)"
                } else {
                    ""
                }
            ),
        ));
    }
    if config.connection_limit == 0 {
        return Err(err(
            "connection_limit",
            "must be at least 1 (the server opens a connection with the role)".into(),
        ));
    }
    if config.grants.is_empty() {
        return Err(err(
            "grants",
            "list at least one schema and its privileges; a role without grants is no use".into(),
        ));
    }
    for grant in &config.grants {
        if grant.schema.is_empty() || grant.schema.len() > 63 || grant.schema.contains('\0') {
            return Err(err(
                "grants.schema",
                format!(
                    "`{}` is not a PostgreSQL schema name (1 to 63 bytes)",
                    grant.schema.escape_debug()
                ),
            ));
        }
        if grant.privileges.is_empty() {
            return Err(err(
                "grants.privileges",
                format!(
                    "schema `{}` lists no privilege; give at least one of select, insert, update, delete",
                    grant.schema
                ),
            ));
        }
    }
    Ok(())
}

/// `[a-z_][a-z0-9_]{0,30}`: with 16 random characters, at most 47 of PostgreSQL's 63.
pub(crate) fn valid_prefix(prefix: &str) -> bool {
    let mut bytes = prefix.bytes();
    prefix.len() <= 31
        && bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        for good in ["pc_", "_", "a", "portcullis_sales_0", &"a".repeat(31)] {
            assert!(valid_prefix(good), "{good}");
        }
        for bad in ["", "Pc_", "1pc", "pc-", "pc ", "pç", &"a".repeat(32)] {
            assert!(!valid_prefix(bad), "{bad}");
        }
    }
}
