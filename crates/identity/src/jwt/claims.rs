//! Claim checks of a bearer token whose signature has already been verified: issuer,
//! audience (strict, T1), expiry and not-before with bounded skew, subject and scopes.
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{Map, Value};

use super::error::JwtError;
use super::settings::JwtSettings;

/// The user behind a validated bearer token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UserIdentity {
    /// `sub`
    pub subject: String,
    /// `iss`
    pub issuer: String,
    /// From the `scope` string (space separated) and/or the `scp` array, de-duplicated.
    pub scopes: Vec<String>,
    /// Every claim, for policy.
    pub claims: Map<String, Value>,
}

impl UserIdentity {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

pub(crate) fn check_claims(
    claims: Map<String, Value>,
    settings: &JwtSettings,
    now: SystemTime,
) -> Result<UserIdentity, JwtError> {
    let issuer = match claims.get("iss") {
        Some(Value::String(iss)) if *iss == settings.issuer => iss.clone(),
        _ => return Err(JwtError::WrongIssuer),
    };
    check_audience(claims.get("aud"), &settings.audience)?;
    check_times(&claims, settings.leeway, now)?;
    let subject = match claims.get("sub") {
        Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
        _ => return Err(JwtError::BadClaim { claim: "sub" }),
    };
    let scopes = scopes(&claims)?;
    Ok(UserIdentity {
        subject,
        issuer,
        scopes,
        claims,
    })
}

/// `aud` must be exactly the resource URI, or an array of exactly one element equal to
/// it. An array with more members is refused even if one matches: such a token is also
/// good at another service, which could replay it here (T1).
fn check_audience(aud: Option<&Value>, audience: &str) -> Result<(), JwtError> {
    match aud {
        None => Err(JwtError::MissingAudience),
        Some(Value::String(a)) if a == audience => Ok(()),
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(a)] if a == audience => Ok(()),
            [] => Err(JwtError::MissingAudience),
            _ => Err(JwtError::WrongAudience),
        },
        Some(_) => Err(JwtError::WrongAudience),
    }
}

fn check_times(claims: &Map<String, Value>, leeway: Duration, now: SystemTime) -> Result<(), JwtError> {
    let now = now.duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
    let leeway = leeway.as_secs_f64();
    let exp = match claims.get("exp") {
        Some(Value::Number(n)) => n.as_f64().ok_or(JwtError::MissingExpiry)?,
        _ => return Err(JwtError::MissingExpiry),
    };
    // RFC 7519 §4.1.4: the token must not be accepted on or after `exp`.
    if now >= exp + leeway {
        return Err(JwtError::Expired);
    }
    match claims.get("nbf") {
        None => {}
        Some(Value::Number(n)) => {
            let nbf = n.as_f64().ok_or(JwtError::BadClaim { claim: "nbf" })?;
            if now + leeway < nbf {
                return Err(JwtError::NotYetValid);
            }
        }
        Some(_) => return Err(JwtError::BadClaim { claim: "nbf" }),
    }
    Ok(())
}

fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, JwtError> {
    let mut scopes: Vec<String> = Vec::new();
    let mut add = |s: &str| {
        if !s.is_empty() && !scopes.iter().any(|have| have == s) {
            scopes.push(s.to_string());
        }
    };
    match claims.get("scope") {
        None => {}
        Some(Value::String(s)) => s.split_ascii_whitespace().for_each(&mut add),
        Some(_) => return Err(JwtError::BadClaim { claim: "scope" }),
    }
    match claims.get("scp") {
        None => {}
        Some(Value::String(s)) => s.split_ascii_whitespace().for_each(&mut add),
        Some(Value::Array(items)) => {
            for item in items {
                let Value::String(s) = item else {
                    return Err(JwtError::BadClaim { claim: "scp" });
                };
                add(s);
            }
        }
        Some(_) => return Err(JwtError::BadClaim { claim: "scp" }),
    }
    Ok(scopes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const AUD: &str = "https://gw.example.com/mcp";

    #[test]
    fn audience_rule_is_exact() {
        let cases = [
            (Some(json!(AUD)), Ok(())),
            (Some(json!([AUD])), Ok(())),
            (None, Err(JwtError::MissingAudience)),
            (Some(json!([])), Err(JwtError::MissingAudience)),
            (Some(json!("https://other.example.com")), Err(JwtError::WrongAudience)),
            (
                Some(json!([AUD, "https://other.example.com"])),
                Err(JwtError::WrongAudience),
            ),
            (Some(json!(42)), Err(JwtError::WrongAudience)),
        ];
        for (aud, want) in cases {
            assert_eq!(check_audience(aud.as_ref(), AUD), want, "aud {aud:?}");
        }
    }

    #[test]
    fn scopes_merge_scope_and_scp() {
        let claims = json!({"scope": "a b  a", "scp": ["b", "c"]});
        let Value::Object(map) = claims else { unreachable!() };
        assert_eq!(scopes(&map).unwrap(), vec!["a", "b", "c"]);
        let Value::Object(bad) = json!({"scp": [1]}) else {
            unreachable!()
        };
        assert_eq!(scopes(&bad), Err(JwtError::BadClaim { claim: "scp" }));
    }

    #[test]
    fn leeway_bounds_exp_and_nbf() {
        let t = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
        let Value::Object(claims) = json!({"exp": 1000, "nbf": 900}) else {
            unreachable!()
        };
        let leeway = Duration::from_secs(60);
        assert_eq!(check_times(&claims, leeway, t(1059)), Ok(()));
        assert_eq!(check_times(&claims, leeway, t(1060)), Err(JwtError::Expired));
        assert_eq!(check_times(&claims, leeway, t(840)), Ok(()));
        assert_eq!(check_times(&claims, leeway, t(839)), Err(JwtError::NotYetValid));
    }
}
