//! Plain words for TLS failures seen by a client of an HTTPS server (the `connect` bridge
//! talking to a gateway, the gateway talking to an upstream): rustls reports an alert the
//! server sent (`CertificateUnknown`, `DecryptError`, `UnknownCA`, …) or its own refusal of
//! the server's certificate, which say little to a user. [`explain`] finds the rustls error
//! in an error's chain of causes and says what most likely went wrong and what to do.
use rustls::{AlertDescription, CertificateError};

/// The rustls error somewhere in `e`'s chain of causes, if any. (`io::Error` hides the
/// error it wraps from `source()`; it is looked for inside each `io::Error` too.)
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(current) = cause {
        if let Some(found) = current.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        if let Some(found) = current
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        {
            return Some(found);
        }
        cause = current.source();
    }
    None
}

/// What a TLS failure in `e` means, in words, when it is one.
pub fn explain(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    words(rustls_error(e)?)
}

/// The words for one rustls error (`None`: nothing more to say than its own text).
pub fn words(error: &rustls::Error) -> Option<String> {
    let text = match error {
        rustls::Error::AlertReceived(alert) => match alert {
            AlertDescription::CertificateRequired | AlertDescription::NoCertificate => {
                "the server requires a client certificate and this client sent none: give --cert and --key (an SVID \
                 the server trusts)"
            }
            AlertDescription::CertificateExpired => {
                "the server refused this client's certificate as expired: issue a new one (`portcullis init --renew \
                 DIR` or `portcullis ca issue`)"
            }
            AlertDescription::UnknownCA => {
                "the server does not trust the CA that issued this client's certificate: issue the certificate from \
                 a CA in the server's client trust bundle (its `client_ca`)"
            }
            AlertDescription::BadCertificate
            | AlertDescription::CertificateUnknown
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::CertificateRevoked
            | AlertDescription::AccessDenied => {
                "the server refused this client's certificate (expired, issued by a CA it does not trust, or an SVID \
                 outside its trust domains); the server's log names the reason"
            }
            AlertDescription::DecryptError => {
                "the server could not verify a signature of this client (DecryptError): its certificate was issued \
                 by a CA the server does not trust (often a CA of the right name made again, with another key), or \
                 --cert and --key do not belong together; the server's log names the reason"
            }
            AlertDescription::HandshakeFailure => {
                "the server ended the TLS handshake (HandshakeFailure): no common protocol version or cipher suite, \
                 or a client certificate it requires is missing"
            }
            AlertDescription::ProtocolVersion => "the server speaks no TLS version this client does (TLS 1.2 or 1.3)",
            _ => return None,
        },
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the server's certificate has expired: the server must renew it"
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the server's certificate is not valid yet: check both machines' clocks"
            }
            CertificateError::UnknownIssuer => {
                "the server's certificate was not issued by a CA in the trust bundle this client was given (--ca): \
                 pass the bundle of the server's CA"
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "the server's certificate does not name the host in the URL: use the host name (or IP) it was issued \
                 for, or check it by SPIFFE ID (--server-spiffe-id)"
            }
            CertificateError::BadSignature | CertificateError::BadEncoding => {
                "the server's certificate is malformed or badly signed"
            }
            _ => "the server's certificate was refused; see the reason above",
        },
        rustls::Error::NoCertificatesPresented => "the server presented no certificate",
        rustls::Error::InconsistentKeys(_) => {
            "the private key (--key) is not the key of the certificate (--cert): give the key file issued together \
             with that certificate"
        }
        _ => return None,
    };
    Some(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alerts_and_refusals_are_found_in_the_chain_and_put_in_words() {
        let wrapped = std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            rustls::Error::AlertReceived(AlertDescription::DecryptError),
        );
        let said = explain(&wrapped).unwrap();
        assert!(said.contains("--cert and --key do not belong together"), "{said}");
        assert!(said.contains("a CA the server does not trust"), "{said}");
        let unknown_ca = rustls::Error::AlertReceived(AlertDescription::UnknownCA);
        assert!(explain(&unknown_ca).unwrap().contains("client_ca"));
        let expired = rustls::Error::AlertReceived(AlertDescription::CertificateExpired);
        assert!(explain(&expired).unwrap().contains("expired"));
        let server = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(explain(&server).unwrap().contains("--ca"));
        let mismatch = rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch);
        assert!(explain(&mismatch).unwrap().contains("not the key of the certificate"));
        assert_eq!(explain(&std::io::Error::other("refused")), None);
    }
}
