//! The process's open-file limit (`RLIMIT_NOFILE`, T17), set once at the start of
//! `portcullis run` and `portcullis stdio`: the soft limit is raised to the hard limit
//! (many systems start processes at 1024, which a few hundred connections and their
//! sessions' children exhaust), and the HTTP front's connection cap is lowered when the
//! limit still cannot hold it, so connections are refused by the cap (fairly, per peer)
//! rather than by `accept` failing for everyone once descriptors run out.
use portcullis_identity::ServeLimits;

/// A connection needs one descriptor; the rest of the limit is kept for everything else
/// (sessions' children and their pipes, upstream connections, audit files): the cap may
/// use at most half of it.
const SHARE_FOR_CONNECTIONS: u64 = 2;

/// Raises the soft open-file limit to the hard one and returns it (`None` where the
/// platform has no such limit or it cannot be read; logged, never fatal).
pub fn raise() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => {
            tracing::debug!("open-file limit (RLIMIT_NOFILE soft): {limit}");
            Some(limit)
        }
        Err(e) => {
            tracing::warn!("cannot raise the open-file limit (RLIMIT_NOFILE): {e}; keeping the current one");
            rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, _)| soft)
        }
    }
}

/// `limits` with its connection caps lowered to what `open_files` can hold, and the
/// warning to log when they had to be.
pub fn fit(limits: ServeLimits, open_files: u64) -> (ServeLimits, Option<String>) {
    let room = usize::try_from(open_files / SHARE_FOR_CONNECTIONS)
        .unwrap_or(usize::MAX)
        .max(1);
    if limits.max_connections <= room {
        return (limits, None);
    }
    let fitted = ServeLimits {
        max_connections: room,
        // Still a quarter at most for one address, or one peer could take the lowered cap.
        max_connections_per_peer: limits.max_connections_per_peer.min((room / 4).max(1)),
        ..limits
    };
    let warning = format!(
        "listen.max_connections = {} needs more open files than the limit of {open_files} allows; serving at most {room} connections ({} per address). Raise the hard limit (`ulimit -Hn`, systemd `LimitNOFILE=`) or lower `listen.max_connections`",
        limits.max_connections, fitted.max_connections_per_peer
    );
    (fitted, Some(warning))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_is_lowered_only_when_the_limit_cannot_hold_it() {
        let limits = ServeLimits {
            max_connections: 4096,
            max_connections_per_peer: 256,
            ..ServeLimits::default()
        };
        assert_eq!(fit(limits, 1 << 20), (limits, None));
        let (fitted, warning) = fit(limits, 1024);
        assert_eq!((fitted.max_connections, fitted.max_connections_per_peer), (512, 128));
        assert!(warning.unwrap().contains("listen.max_connections"));
        let (fitted, _) = fit(limits, 256);
        assert_eq!((fitted.max_connections, fitted.max_connections_per_peer), (128, 32));
    }

    #[test]
    fn the_soft_limit_ends_at_the_hard_one() {
        let raised = raise().expect("Linux has RLIMIT_NOFILE");
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, raised);
        assert!(raised <= hard, "{raised} > {hard}");
    }
}
