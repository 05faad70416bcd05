//! The SPIRE switch of the config file: `source = "files" | "workload-api"` in
//! `[listen.tls]` and in an upstream's `tls` table, and the one SPIFFE Workload API
//! socket they share (`workload_api_socket`, default: `SPIFFE_ENDPOINT_SOCKET`).
//! The socket is only named here; `run` connects to it before serving.
use std::time::Duration;

use portcullis_identity::{WorkloadApi, WorkloadApiSettings};

use super::problems::{Checked, Problems};

/// How long `run` waits for the agent's first SVID unless `workload_api_timeout_secs` says.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);

/// The environment variable SPIFFE defines for the Workload API address.
pub const ENDPOINT_ENV: &str = "SPIFFE_ENDPOINT_SOCKET";

/// Where a TLS table takes its certificates and bundles from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Files,
    WorkloadApi,
}

/// Parses `source` (absent: files).
pub fn source(text: Option<&str>, key: &str, p: &mut Problems) -> Checked<Source> {
    match text.unwrap_or("files") {
        "files" => Ok(Source::Files),
        "workload-api" => Ok(Source::WorkloadApi),
        other => Err(p.add(
            key,
            format!("unknown source `{other}`; use \"files\" or \"workload-api\" (a SPIRE agent's socket)"),
        )),
    }
}

/// Notes each of `given` (key, present) that a table taking its material from the
/// Workload API names nonetheless.
pub fn refuse_files(table: &str, given: &[(&str, bool)], p: &mut Problems) -> Checked<()> {
    let mut all = Ok(());
    for (name, _) in given.iter().filter(|(_, present)| *present) {
        all = Err(p.add(
            format!("{table}.{name}"),
            "must be absent with source = \"workload-api\": the SPIFFE Workload API supplies the SVID and the \
             trust bundles; remove it, or use source = \"files\"",
        ));
    }
    all
}

/// The Workload API the config uses, and which tables take material from it.
#[derive(Debug, Clone)]
pub struct WorkloadApiUse {
    pub api: WorkloadApi,
    pub used_by: Vec<String>,
    pub startup_timeout: Duration,
}

/// Collects the tables that use the Workload API; they must all name one socket.
#[derive(Debug, Default)]
pub struct WorkloadApiSlot {
    env_socket: Option<String>,
    used: Option<WorkloadApiUse>,
}

impl WorkloadApiSlot {
    /// `env_socket`: the value of `SPIFFE_ENDPOINT_SOCKET`, the default address.
    pub fn new(env_socket: Option<String>) -> Self {
        Self { env_socket, used: None }
    }

    /// The Workload API for `table`, at `socket` (default: the one an earlier table
    /// uses, else `SPIFFE_ENDPOINT_SOCKET`).
    pub fn use_for(
        &mut self,
        table: &str,
        socket: Option<&str>,
        timeout_secs: Option<u64>,
        p: &mut Problems,
    ) -> Checked<WorkloadApi> {
        let key = format!("{table}.workload_api_socket");
        // Default: the socket an earlier table named, else the environment's.
        let earlier = self.used.as_ref().map(|used| used.api.endpoint().to_owned());
        let endpoint = socket
            .map(str::to_owned)
            .or(earlier)
            .or_else(|| self.env_socket.clone())
            .ok_or_else(|| {
                p.add(
                    &key,
                    format!(
                        "source = \"workload-api\" needs the agent's socket: set `workload_api_socket` \
                         (e.g. \"unix:///run/spire/agent.sock\") or the {ENDPOINT_ENV} environment variable"
                    ),
                )
            });
        let timeout_ok = p.check(
            timeout_secs != Some(0),
            format!("{table}.workload_api_timeout_secs"),
            "must be greater than 0",
        );
        let endpoint = endpoint?;
        timeout_ok?;
        if let Some(used) = &mut self.used {
            if used.api.endpoint() != endpoint {
                return Err(p.add(
                    &key,
                    format!(
                        "`{endpoint}` differs from `{}` used by {}; the gateway takes its SVID from one Workload API",
                        used.api.endpoint(),
                        used.used_by.join(", ")
                    ),
                ));
            }
            used.used_by.push(table.to_owned());
            return Ok(used.api.clone());
        }
        let startup_timeout = timeout_secs.map_or(DEFAULT_STARTUP_TIMEOUT, Duration::from_secs);
        let api = p.take(
            &key,
            WorkloadApi::new(WorkloadApiSettings {
                endpoint,
                startup_timeout,
            }),
        )?;
        self.used = Some(WorkloadApiUse {
            api: api.clone(),
            used_by: vec![table.to_owned()],
            startup_timeout,
        });
        Ok(api)
    }

    pub fn into_use(self) -> Option<WorkloadApiUse> {
        self.used
    }
}
