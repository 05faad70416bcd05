//! SCRAM-SHA-256 password verifiers in PostgreSQL's stored form
//! (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`, RFC 5802 / RFC 7677).
//!
//! `CREATE ROLE … PASSWORD` takes a literal, not a bind parameter, and PostgreSQL may log
//! a failed statement (`log_min_error_statement`) or every DDL statement (`log_statement`).
//! Handing it the verifier instead of the password keeps the plaintext off the wire and
//! out of the server's logs; PostgreSQL stores a verifier as given, and SCRAM, `md5` and
//! `password` authentication all accept it.
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// PostgreSQL's default `scram_iterations`.
pub const ITERATIONS: u32 = 4096;

/// The verifier of `password` with `salt`. The password must already be SASLprep-normal
/// (the broker's are ASCII letters and digits, which are).
pub fn verifier(password: &str, salt: &[u8], iterations: u32) -> String {
    let salted = salted_password(password.as_bytes(), salt, iterations);
    let client_key = hmac(&salted, b"Client Key");
    let stored_key = Sha256::digest(client_key);
    let server_key = hmac(&salted, b"Server Key");
    format!(
        "SCRAM-SHA-256${iterations}:{}${}:{}",
        STANDARD.encode(salt),
        STANDARD.encode(stored_key),
        STANDARD.encode(server_key)
    )
}

/// `Hi(password, salt, i)` of RFC 5802: PBKDF2-HMAC-SHA-256 with a 32-byte output.
fn salted_password(password: &[u8], salt: &[u8], iterations: u32) -> [u8; 32] {
    // The keyed state is computed once and cloned per round (two compressions a round).
    let keyed = keyed(password);
    let mut mac = keyed.clone();
    mac.update(salt);
    mac.update(&1u32.to_be_bytes());
    let mut u: [u8; 32] = mac.finalize().into_bytes().into();
    let mut out = u;
    for _ in 1..iterations {
        let mut mac = keyed.clone();
        mac.update(&u);
        u = mac.finalize().into_bytes().into();
        out.iter_mut().zip(u).for_each(|(o, x)| *o ^= x);
    }
    out
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; hashing an over-long key is its own rule.
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    }
}

#[expect(clippy::panic, reason = "HMAC accepts keys of every length; this cannot happen")]
fn unreachable_hmac() -> ! {
    panic!("HMAC-SHA-256 rejected a key")
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = keyed(key);
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PBKDF2-HMAC-SHA-256 test vectors from RFC 7914, section 11 (the first 32 bytes).
    #[test]
    fn pbkdf2_known_answers() {
        assert_eq!(
            hex::encode(salted_password(b"passwd", b"salt", 1)),
            "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
        );
        assert_eq!(
            hex::encode(salted_password(b"Password", b"NaCl", 80000)),
            "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56"
        );
    }

    /// RFC 7677, section 3: user `user`, password `pencil`, salt `W22ZaJ0SNY7soEsUEjb6gQ==`,
    /// 4096 iterations. The RFC gives the proofs, not the keys; the keys below were computed
    /// independently (Python's `hashlib.pbkdf2_hmac` and `hmac`). The next test checks the
    /// verifier against one PostgreSQL computed itself.
    #[test]
    fn verifier_shape_and_known_answer() {
        let salt = STANDARD.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let v = verifier("pencil", &salt, 4096);
        assert_eq!(
            v,
            "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:\
             wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
        );
    }

    /// The verifier PostgreSQL computes itself for a password, recomputed here from its salt
    /// and iteration count, is the same string. Needs `DATABASE_URL` (skipped without it,
    /// like every PostgreSQL test of the workspace).
    #[tokio::test]
    async fn matches_the_verifier_postgresql_computes() {
        #[expect(
            clippy::disallowed_methods,
            reason = "test setup: CI names its PostgreSQL server in DATABASE_URL"
        )]
        let Ok(url) = std::env::var("DATABASE_URL") else {
            eprintln!("DATABASE_URL is not set: skipping the SCRAM cross-check with PostgreSQL");
            return;
        };
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let role = format!("pc_scram_{}", portcullis_core::CallId::random().as_str());
        let create = format!("SET password_encryption = 'scram-sha-256'; CREATE ROLE \"{role}\" PASSWORD 'pencil'");
        sqlx::raw_sql(sqlx::AssertSqlSafe(create)).execute(&pool).await.unwrap();
        let stored: String = sqlx::query_scalar("SELECT rolpassword FROM pg_authid WHERE rolname = $1")
            .bind(&role)
            .fetch_one(&pool)
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP ROLE \"{role}\"")))
            .execute(&pool)
            .await
            .unwrap();
        // SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>
        let (head, _) = stored
            .split_once('$')
            .map(|(_, rest)| rest.split_once('$').unwrap())
            .unwrap();
        let (iterations, salt) = head.split_once(':').unwrap();
        let salt = STANDARD.decode(salt).unwrap();
        assert_eq!(verifier("pencil", &salt, iterations.parse().unwrap()), stored);
    }
}
