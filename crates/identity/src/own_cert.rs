//! A client's look at its own certificate before it connects (`portcullis connect --cert`):
//! a TLS handshake that fails on the client's certificate tells the client only an alert
//! (`CertificateUnknown`, `DecryptError`), so what can be known locally is checked first, in
//! words — expired or not yet valid (with the time), or issued by no CA of the trust bundle
//! the client was given (`--ca`, usually the same dev CA that the gateway trusts).
use std::{
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use x509_parser::prelude::{FromDer, X509Certificate};

use crate::material::read_certs;

/// What is wrong with the client's own certificate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnCertError {
    #[error("cannot use your certificate `{path}`: {reason}")]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "your certificate `{path}` expired at {at}; the gateway will refuse it. Issue a new one \
         (`portcullis init --renew DIR` for the SVIDs `init` made, or `portcullis ca issue`)"
    )]
    Expired { path: PathBuf, at: String },
    #[error("your certificate `{path}` is not valid before {at} (check this machine's clock, or wait)")]
    NotYetValid { path: PathBuf, at: String },
}

/// A warning about the client's own certificate that need not stop the connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnCertWarning(pub String);

/// Checks the leaf of the PEM chain at `cert` at `now`: its validity window (an error), and,
/// with `ca`, that some certificate of that bundle (or of the chain itself) issued and signed
/// it (a warning: the gateway may trust more CAs than the client's `--ca`).
pub fn check_own_certificate(
    cert: &Path,
    ca: Option<&Path>,
    now: SystemTime,
) -> Result<Option<OwnCertWarning>, OwnCertError> {
    let unreadable = |reason: String| OwnCertError::Unreadable {
        path: cert.to_owned(),
        reason,
    };
    let chain = read_certs(cert).map_err(|e| unreadable(e.to_string()))?;
    let leaf_der = chain
        .first()
        .ok_or_else(|| unreadable("it holds no certificate".into()))?;
    let (_, leaf) = X509Certificate::from_der(leaf_der.as_ref()).map_err(|e| unreadable(e.to_string()))?;
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    let validity = leaf.validity();
    if validity.not_after.timestamp() < now_secs {
        return Err(OwnCertError::Expired {
            path: cert.to_owned(),
            at: rfc3339(validity.not_after.timestamp()),
        });
    }
    if validity.not_before.timestamp() > now_secs {
        return Err(OwnCertError::NotYetValid {
            path: cert.to_owned(),
            at: rfc3339(validity.not_before.timestamp()),
        });
    }
    let Some(ca) = ca else {
        return Ok(None);
    };
    let Ok(bundle) = read_certs(ca) else {
        // `--ca` is read again (and reported) when the TLS client is built.
        return Ok(None);
    };
    let issuers = bundle.iter().chain(chain.iter().skip(1));
    let signed = issuers
        .filter_map(|der| X509Certificate::from_der(der.as_ref()).ok())
        .any(|(_, issuer)| {
            issuer.subject().as_raw() == leaf.issuer().as_raw()
                && leaf.verify_signature(Some(issuer.public_key())).is_ok()
        });
    if signed {
        return Ok(None);
    }
    Ok(Some(OwnCertWarning(format!(
        "your certificate `{}` was issued by `{}`, which is not a CA in `{}` (or a CA of that name with another key: \
         a CA made again by `init --force` or `ca init --force`); unless the gateway trusts that issuer, it will \
         refuse the certificate (\"unknown CA\" / \"certificate unknown\"). Issue a new certificate from the CA the \
         gateway trusts (`portcullis ca issue --dir CA_DIR …`)",
        cert.display(),
        leaf.issuer(),
        ca.display()
    ))))
}

/// `2026-12-05T09:41:03Z` for seconds since the epoch.
fn rfc3339(secs: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{secs} s after 1970"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{DevCa, SpiffeId, TrustDomain};

    fn ca(dir: &Path, name: &str) -> (DevCa, PathBuf) {
        let ca = DevCa::init(&dir.join(name), "example.org".parse::<TrustDomain>().unwrap()).unwrap();
        let bundle = dir.join(format!("{name}.pem"));
        std::fs::write(&bundle, ca.bundle_pem()).unwrap();
        (ca, bundle)
    }

    #[test]
    fn expiry_and_a_foreign_issuer_are_said_in_words() {
        let dir = tempfile::tempdir().unwrap();
        let (ca_a, bundle_a) = ca(dir.path(), "a");
        let (_, bundle_b) = ca(dir.path(), "b");
        let id: SpiffeId = "spiffe://example.org/agent/dev".parse().unwrap();
        let svid = ca_a.issue(&id, Duration::from_secs(3600), &[]).unwrap();
        let cert = dir.path().join("agent.pem");
        std::fs::write(&cert, &svid.cert_pem).unwrap();
        let now = SystemTime::now();
        assert_eq!(check_own_certificate(&cert, Some(&bundle_a), now), Ok(None));
        assert_eq!(check_own_certificate(&cert, None, now), Ok(None));
        let warning = check_own_certificate(&cert, Some(&bundle_b), now).unwrap().unwrap();
        assert!(
            warning.0.contains("is not a CA in") && warning.0.contains("b.pem"),
            "{warning:?}"
        );
        let later = now + Duration::from_secs(7200);
        let expired = check_own_certificate(&cert, Some(&bundle_a), later).unwrap_err();
        let text = expired.to_string();
        assert!(text.contains("expired at 20") && text.contains("agent.pem"), "{text}");
        let earlier = now - Duration::from_secs(7200);
        assert!(matches!(
            check_own_certificate(&cert, None, earlier),
            Err(OwnCertError::NotYetValid { .. })
        ));
    }
}
