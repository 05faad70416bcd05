//! Who holds a file audit log: the one-line note a gateway process (`run`, `stdio`, `demo`)
//! leaves in the log directory's lock file while it holds it
//! (`portcullis_audit::LogOptions::lock_note`), and the words for a user whose process was
//! refused the lock. `stdio` reads it to find the relay socket of the `stdio` process that
//! holds the log (docs/stdio-sharing.md); every other command turns it into a message that
//! says what holds the log and what to do.
use std::path::{Path, PathBuf};

use portcullis_audit::{AuditError, StoreError};
use serde::{Deserialize, Serialize};

/// The note: which process holds the log and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockNote {
    pub pid: u32,
    /// The subcommand: `run`, `stdio` or `demo`.
    pub command: String,
    /// The config file it was started with (absolute).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<PathBuf>,
    /// `run`: the front's URL, as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `stdio`: the Unix socket where it takes the sessions of other `stdio` processes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relay: Option<PathBuf>,
}

impl LockNote {
    /// A note for this process running `command` with `config`.
    pub fn new(command: &str, config: Option<&Path>) -> Self {
        Self {
            pid: std::process::id(),
            command: command.to_owned(),
            config: config.map(absolute),
            url: None,
            relay: None,
        }
    }

    /// The one line written into the lock file.
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A note read back from a lock file; `None` for anything else (an older version's
    /// empty lock file, or a note being written right now).
    pub fn parse(line: &str) -> Option<Self> {
        serde_json::from_str(line).ok()
    }

    /// "`portcullis run` (pid 41, config /x/portcullis.toml, front https://…)".
    pub fn describe(&self) -> String {
        let mut parts = vec![format!("pid {}", self.pid)];
        if let Some(config) = &self.config {
            parts.push(format!("config {}", config.display()));
        }
        if let Some(url) = &self.url {
            parts.push(format!("front {url}"));
        }
        format!("`portcullis {}` ({})", self.command, parts.join(", "))
    }
}

/// `path` made absolute against the current directory (unchanged if that fails).
pub fn absolute(path: &Path) -> PathBuf {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_owned())
}

/// The file audit log directory and the holder's note, when `error` is "the log is locked".
pub fn locked(error: &anyhow::Error) -> Option<(PathBuf, Option<String>)> {
    error
        .chain()
        .find_map(|cause| match cause.downcast_ref::<AuditError>() {
            Some(AuditError::Open(StoreError::Locked { dir, holder })) => Some((dir.clone(), holder.clone())),
            _ => match cause.downcast_ref::<StoreError>() {
                Some(StoreError::Locked { dir, holder }) => Some((dir.clone(), holder.clone())),
                _ => None,
            },
        })
}

/// What a process that wanted the log at `dir` should be told when `holder` has it.
pub fn refusal(dir: &Path, holder: Option<&str>) -> String {
    let note = holder.and_then(LockNote::parse);
    let what = match &note {
        Some(note) => note.describe(),
        None => "another process (it left no note: an older portcullis, or one still starting)".to_owned(),
    };
    let advice = match note.as_ref().map(|n| n.command.as_str()) {
        Some("run") => {
            let url = note
                .as_ref()
                .and_then(|n| n.url.clone())
                .unwrap_or_else(|| "https://HOST:PORT/mcp".into());
            let flags = note
                .as_ref()
                .and_then(|n| n.config.as_deref())
                .and_then(init_svid_flags)
                .unwrap_or_else(|| "--cert AGENT.pem --key AGENT.key --ca CA.pem".to_owned());
            format!(
                "a `run` gateway takes no stdio sessions: point the host at it with `portcullis connect {url} \
                 {flags}` (see docs/troubleshooting.md), or stop it first"
            )
        }
        Some("stdio") => "it is a `portcullis stdio` started by a desktop host; its relay socket did not \
                          answer: quit that host (or end that process), then try again"
            .to_owned(),
        _ => "stop that process, or give this config its own `[audit] path` (one writer per file log; \
              replicas share a PostgreSQL log)"
            .to_owned(),
    };
    format!("the audit log at {} is held by {what}; {advice}", dir.display())
}

/// `--cert … --key … --ca …` of the agent SVID `portcullis init` wrote beside `config`, if
/// it is there.
fn init_svid_flags(config: &Path) -> Option<String> {
    let pki = config.parent()?.join("pki");
    let (cert, key, ca) = (pki.join("agent.pem"), pki.join("agent.key"), pki.join("ca/ca.pem"));
    (cert.is_file() && key.is_file() && ca.is_file()).then(|| {
        format!(
            "--cert {} --key {} --ca {}",
            cert.display(),
            key.display(),
            ca.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_note_round_trips_and_names_the_holder() {
        let mut note = LockNote::new("run", None);
        note.url = Some("https://127.0.0.1:8080/mcp".into());
        let line = note.to_line();
        assert!(!line.contains('\n'));
        assert_eq!(LockNote::parse(&line), Some(note.clone()));
        let text = refusal(Path::new("/d/audit"), Some(&line));
        assert!(text.contains("/d/audit"), "{text}");
        assert!(text.contains("`portcullis run`"), "{text}");
        assert!(text.contains("portcullis connect https://127.0.0.1:8080/mcp"), "{text}");
    }

    #[test]
    fn no_note_still_says_what_to_do() {
        let text = refusal(Path::new("/d/audit"), None);
        assert!(text.contains("another process"), "{text}");
        assert!(text.contains("[audit] path"), "{text}");
        assert_eq!(LockNote::parse("garbage"), None);
    }
}
