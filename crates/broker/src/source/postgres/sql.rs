//! The SQL text of the `postgres-role` source. `CREATE ROLE`, `GRANT` and `DROP ROLE` take
//! no bind parameters, so their statements are built here, and only from values that
//! cannot break out of their place: role names checked to be `[a-z0-9_]`, schema names
//! quoted as identifiers, a SCRAM verifier (base64 and `$:`) and a timestamp we format.
//! None of these strings is ever logged: the creation statement holds the verifier.
use crate::config::SchemaGrant;

/// The transaction-scoped advisory lock every mint and drop takes first. Concurrent
/// `GRANT`s on one schema or table update the same catalog row, and PostgreSQL answers
/// the loser with "tuple concurrently updated"; the lock queues them instead (across
/// gateway replicas too). The key is arbitrary but fixed: ASCII "pcbroker".
pub const LOCK_KEY: i64 = 0x7063_6272_6f6b_6572;

/// `name` as a double-quoted SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A role name this crate made or checked: `[a-z0-9_]`, so it needs no escaping in an
/// identifier or a string literal.
pub fn is_plain_role_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// One simple-protocol batch (one implicit transaction): create the role and grant it
/// `USAGE` on each schema and the privileges on the schema's tables, nothing else.
///
/// The commit does not wait for the WAL flush (`synchronous_commit = off`, this transaction
/// only): if PostgreSQL crashes before the flush, the role is simply gone and the call's
/// server cannot log in. The drop's commit stays synchronous, so a dropped role stays dropped.
pub fn create_role(
    role: &str,
    verifier: &str,
    valid_until: u64,
    connection_limit: u32,
    grants: &[SchemaGrant],
) -> String {
    let role = quote_ident(role);
    let mut sql = format!(
        "SELECT pg_advisory_xact_lock({LOCK_KEY});\n\
         SET LOCAL synchronous_commit = off;\n\
         CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS \
         CONNECTION LIMIT {connection_limit} PASSWORD '{verifier}' VALID UNTIL '{}';\n",
        timestamp_utc(valid_until)
    );
    for grant in grants {
        let schema = quote_ident(&grant.schema);
        sql.push_str(&format!("GRANT USAGE ON SCHEMA {schema} TO {role};\n"));
        let privileges: Vec<&str> = grant.privileges.iter().map(|p| p.as_sql()).collect();
        sql.push_str(&format!(
            "GRANT {} ON ALL TABLES IN SCHEMA {schema} TO {role};\n",
            privileges.join(", ")
        ));
    }
    sql
}

/// First step of a drop, committed on its own: no new logins from here on. Its commit
/// need not wait for the disk: the drop's synchronous commit right after flushes it too.
pub fn forbid_login(role: &str) -> String {
    format!(
        "SET LOCAL synchronous_commit = off;\nALTER ROLE {} NOLOGIN",
        quote_ident(role)
    )
}

/// Second step, one transaction: end the role's sessions, revoke its grants (`DROP OWNED`
/// also drops anything it created, which it should not have), drop it.
pub fn terminate_and_drop(role: &str) -> String {
    let ident = quote_ident(role);
    format!(
        "SELECT pg_advisory_xact_lock({LOCK_KEY});\n\
         SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE usename = '{role}';\n\
         DROP OWNED BY {ident};\n\
         DROP ROLE {ident};"
    )
}

/// Roles of a prefix with the broker's shape (prefix + 16 of `[a-z0-9]`); `$1` the prefix,
/// `$2` the full length, `$3` where the random part starts (1-based). With `expired`, only
/// those whose `VALID UNTIL` has passed.
pub fn leftover_roles(expired: bool) -> &'static str {
    if expired {
        "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1) AND length(rolname) = $2 \
         AND substr(rolname, $3) ~ '^[a-z0-9]{16}$' AND rolvaliduntil < now() ORDER BY 1"
    } else {
        "SELECT rolname::text FROM pg_roles WHERE starts_with(rolname, $1) AND length(rolname) = $2 \
         AND substr(rolname, $3) ~ '^[a-z0-9]{16}$' ORDER BY 1"
    }
}

/// `YYYY-MM-DD HH:MM:SS+00` for Unix seconds (the proleptic Gregorian calendar, UTC).
pub fn timestamp_utc(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}+00",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Year, month, day of a count of days since 1970-01-01 (Howard Hinnant's `civil_from_days`,
/// for non-negative day counts).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Privilege;

    #[test]
    fn timestamps() {
        // Expected values from `date -u -d @N '+%F %T'`.
        for (unix, text) in [
            (0, "1970-01-01 00:00:00+00"),
            (951_782_400, "2000-02-29 00:00:00+00"),
            (1_770_000_000, "2026-02-02 02:40:00+00"),
            (4_102_444_799, "2099-12-31 23:59:59+00"),
        ] {
            assert_eq!(timestamp_utc(unix), text, "{unix}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("sales"), "\"sales\"");
        assert_eq!(quote_ident("a\"b; DROP"), "\"a\"\"b; DROP\"");
        assert!(is_plain_role_name("pc_0a9z"));
        for bad in ["", "Pc", "a-b", "a\"b", "a'b", &"a".repeat(64)] {
            assert!(!is_plain_role_name(bad), "{bad}");
        }
    }

    #[test]
    fn create_grants_usage_and_the_privileges_only() {
        let sql = create_role(
            "pc_abc",
            "SCRAM-SHA-256$4096:c2FsdA==$a:b",
            0,
            2,
            &[SchemaGrant {
                schema: "sales".into(),
                privileges: vec![Privilege::Select, Privilege::Update],
            }],
        );
        assert!(sql.contains("CREATE ROLE \"pc_abc\" LOGIN NOSUPERUSER"), "{sql}");
        assert!(
            sql.contains(
                "CONNECTION LIMIT 2 PASSWORD 'SCRAM-SHA-256$4096:c2FsdA==$a:b' VALID UNTIL '1970-01-01 00:00:00+00';"
            ),
            "{sql}"
        );
        assert!(sql.contains("GRANT USAGE ON SCHEMA \"sales\" TO \"pc_abc\";"), "{sql}");
        assert!(
            sql.contains("GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA \"sales\" TO \"pc_abc\";"),
            "{sql}"
        );
        assert!(!sql.contains("CREATE ON"), "{sql}");
    }
}
