//! Log lines for TLS handshakes the front refused because the client presented no
//! certificate: the client cannot see why (its TLS stack reports only an alert), so the
//! operator must. One line per peer address at most every 10 s, with the count of refusals
//! in between; the address table is bounded. Certificates that were presented and refused
//! are logged by the client verifier (`client_verifier`) with their reason.
use std::{
    collections::HashMap,
    io,
    net::{IpAddr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

/// At most one line per peer address in this period.
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// Addresses remembered at most; beyond it, the quiet ones are forgotten.
const MAX_PEERS: usize = 4096;

/// Whether a failed handshake was refused for want of a client certificate.
pub fn is_missing_client_certificate(error: &io::Error) -> bool {
    error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some_and(|e| matches!(e, rustls::Error::NoCertificatesPresented))
}

/// Rate-limited log of handshakes refused for a missing client certificate.
#[derive(Debug, Default)]
pub struct MissingCertificateLog {
    /// Per address: when it was last logged, and refusals since then not logged.
    peers: Mutex<HashMap<IpAddr, (Instant, u64)>>,
}

impl MissingCertificateLog {
    /// Records a refusal from `remote` at `now`; returns the line to log, if one is due.
    pub fn refused(&self, remote: SocketAddr, now: Instant) -> Option<String> {
        let Ok(mut peers) = self.peers.lock() else {
            return None;
        };
        if peers.len() >= MAX_PEERS {
            peers.retain(|_, (at, _)| now.duration_since(*at) < LOG_EVERY);
            if peers.len() >= MAX_PEERS {
                peers.clear();
            }
        }
        let entry = peers.entry(remote.ip()).or_insert((now, 0));
        let first = entry.1 == 0 && entry.0 == now;
        if first || now.duration_since(entry.0) >= LOG_EVERY {
            let since = std::mem::take(&mut entry.1);
            entry.0 = now;
            let more = if since > 0 {
                format!(
                    " ({since} more from this address in the last {} s)",
                    LOG_EVERY.as_secs()
                )
            } else {
                String::new()
            };
            return Some(format!(
                "refused a TLS connection from {}: the client presented no certificate; mutual TLS needs the \
                 client's SVID (e.g. `portcullis connect URL --cert AGENT.pem --key AGENT.key --ca CA.pem`){more}",
                remote.ip()
            ));
        }
        entry.1 += 1;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_address_per_period_with_the_count_between() {
        let log = MissingCertificateLog::default();
        let t0 = Instant::now();
        let a: SocketAddr = "127.0.0.1:1000".parse().unwrap();
        let a2: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        let b: SocketAddr = "127.0.0.2:1000".parse().unwrap();
        let first = log.refused(a, t0).expect("the first refusal is logged");
        assert!(
            first.contains("127.0.0.1") && first.contains("no certificate"),
            "{first}"
        );
        assert!(
            log.refused(a2, t0 + Duration::from_secs(1)).is_none(),
            "same address, same period"
        );
        assert!(log.refused(a, t0 + Duration::from_secs(2)).is_none());
        assert!(log.refused(b, t0 + Duration::from_secs(2)).is_some(), "another address");
        let next = log.refused(a, t0 + LOG_EVERY).expect("a new period");
        assert!(next.contains("(2 more from this address"), "{next}");
    }

    #[test]
    fn only_a_missing_certificate_is_recognised() {
        let missing = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::NoCertificatesPresented);
        assert!(is_missing_client_certificate(&missing));
        let other = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert!(!is_missing_client_certificate(&other));
        assert!(!is_missing_client_certificate(&io::Error::other("x")));
    }
}
