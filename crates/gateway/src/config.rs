//! Validated settings the gateway runs on. The CLI turns the TOML file into
//! these; nothing in this crate reads files or the environment.
use std::{collections::BTreeMap, net::SocketAddr, num::NonZeroU32, path::PathBuf, sync::Arc, time::Duration};

use portcullis_attest::{FilePinError, FilePins, PinnedManifest, ScanConfig, SignatureBatcher, Verifier};
use portcullis_core::{Principal, Secret, ServerName, Tier};
use portcullis_identity::{
    ServeLimits, SvidPolicy,
    jwt::{JwtValidator, ProtectedResource},
};
use portcullis_mcp::Limits;

/// Everything the gateway needs to run.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    pub listen: ListenConfig,
    pub servers: Vec<ServerConfig>,
    pub limits: Limits,
    /// What one principal may hold and send (T17), on both fronts.
    pub principal_limits: PrincipalLimits,
    /// Principal of the stdio front (nothing is assumed from being local).
    pub stdio_principal: Principal,
    /// Principal given to HTTP callers until the identity stage authenticates them.
    pub anonymous_principal: Principal,
    /// Signed calls, signed results, pinned servers and tool scanning (pillar 3).
    pub attest: AttestConfig,
    /// Who approves calls the policy allows only with an approval, and how calls wait.
    pub approvals: ApprovalsConfig,
    /// Per-call credentials (`[broker]`, `[[credentials]]`, pillar 4).
    pub credentials: CredentialsConfig,
}

/// The credential broker and how often it sweeps leftovers. Without a broker (no
/// `[[credentials]]` rule) servers get no per-call credential, only their static `env`
/// or `headers`.
#[derive(Clone)]
pub struct CredentialsConfig {
    pub broker: Option<Arc<portcullis_broker::Broker>>,
    /// How often expired leftovers (database roles past their TTL) are dropped.
    pub sweep_interval: Duration,
}

impl Default for CredentialsConfig {
    fn default() -> Self {
        Self {
            broker: None,
            sweep_interval: Duration::from_secs(60),
        }
    }
}

impl std::fmt::Debug for CredentialsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsConfig")
            .field("broker", &self.broker.as_ref().map(|_| "configured"))
            .field("sweep_interval", &self.sweep_interval)
            .finish()
    }
}

/// The approvals settings (`[approvals]`): registered approvers, how long a call waits,
/// how long a request stays open, how many may be open, and N-of-M requirements.
#[derive(Debug, Clone)]
pub struct ApprovalsConfig {
    pub approvers: portcullis_approvals::Approvers,
    pub pending: portcullis_approvals::PendingSettings,
    /// How long a call needing approval is held for an answer (0: refused at once).
    pub wait: Duration,
    /// The longest break-glass window an approver may request.
    pub break_glass_max_ttl: Duration,
    /// Tiers whose calls the calling user may approve themselves when their client can
    /// answer an elicitation (2025-11-25 `elicitation/create`, form mode).
    pub user_may_approve: Vec<Tier>,
    /// The approvals state shared by replicas (PostgreSQL, opened by the CLI when
    /// `[audit] postgres` is set); `None`: kept in this gateway's memory.
    pub shared: Option<portcullis_approvals::ApprovalStore>,
}

impl Default for ApprovalsConfig {
    fn default() -> Self {
        Self {
            approvers: portcullis_approvals::Approvers::default(),
            pending: portcullis_approvals::PendingSettings::default(),
            wait: Duration::from_secs(120),
            break_glass_max_ttl: Duration::from_secs(3600),
            user_may_approve: Vec::new(),
            shared: None,
        }
    }
}

/// The attestation settings: host keys, the result-signing key, server manifests, scanning.
#[derive(Debug, Clone, Default)]
pub struct AttestConfig {
    /// Verifies host call signatures against every registered host key. `None`: no host keys.
    pub verifier: Option<Arc<Verifier>>,
    /// Verifies together the signatures of calls that reach the attest stage at once
    /// (`[attestation] batch_verify`); `None`: each signature is verified alone.
    pub batcher: Option<Arc<SignatureBatcher>>,
    /// Principals that must sign every `tools/call`. A principal without a user stands for
    /// every user of that workload.
    pub required_signers: Vec<Principal>,
    /// Signs a receipt into every released result; `None`: results are not signed.
    pub receipts: Option<Arc<ReceiptKey>>,
    /// Verified manifests by server: transport and tool pins.
    pub manifests: BTreeMap<ServerName, Arc<PinnedManifest>>,
    /// How tool definitions are scanned.
    pub scan: ScanPolicy,
}

/// The gateway's result-signing key and its key id. `Debug` never prints the key.
pub struct ReceiptKey {
    pub key: ed25519_dalek::SigningKey,
    pub kid: String,
    /// Batch receipts (the record's inclusion under its audit batch's seal) where the seal
    /// was made with this same key — the audit log's key, the default; else, and when
    /// `false` (`attestation.receipts = "signed"`), a signature per result.
    pub batch: bool,
}

impl std::fmt::Debug for ReceiptKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptKey {{ kid: {}, key: <redacted> }}", self.kid)
    }
}

/// What happens to a tool whose definition the scanner flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScanMode {
    /// Hidden from listings and its calls denied (default).
    #[default]
    Block,
    /// Recorded in the audit log and logged, but the tool stays usable.
    Flag,
    /// Not scanned.
    Off,
}

/// Scanning mode and limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScanPolicy {
    pub mode: ScanMode,
    pub limits: ScanConfig,
}

/// The Streamable HTTP front.
#[derive(Debug, Clone)]
pub struct ListenConfig {
    /// Where the front listens; `None` disables it.
    pub http: Option<SocketAddr>,
    /// Accepted `Host` header names (without port). DNS-rebinding guard (T6).
    pub allowed_hosts: Vec<String>,
    /// Accepted `Origin` values (`scheme://host[:port]`); `*` port wildcard allowed as `:*`.
    pub allowed_origins: Vec<String>,
    /// Idle legacy sessions are closed after this long.
    pub session_idle_timeout: Duration,
    /// At most this many sessions at once, legacy and stateless (new ones are refused: T17).
    pub max_sessions: usize,
    /// Connection caps, TLS handshake, request head and keep-alive timeouts (T17 slowloris).
    pub connections: ServeLimits,
    /// A POST body must arrive in full within this (T17 slowloris).
    pub body_timeout: Duration,
    /// How HTTP callers are identified.
    pub auth: HttpAuth,
}

/// What one principal (a workload, and with a token its user) may hold and send at once
/// (T17). Sessions are counted when opened; requests on both fronts (and `initialize` on
/// the HTTP front) pass the concurrency and rate limits first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrincipalLimits {
    /// Sessions one principal may hold: its legacy sessions and its stateless one.
    pub max_sessions: usize,
    /// Requests of one principal being answered at once; more are refused, never queued.
    pub max_concurrent_calls: usize,
    /// Requests per second, with a burst (a token bucket); `None`: no rate limit.
    pub rate: Option<RateLimit>,
}

/// A token bucket: `per_second` tokens a second, holding at most `burst`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    pub per_second: NonZeroU32,
    pub burst: NonZeroU32,
}

/// Sessions and concurrent requests capped per principal (each session may hold its own
/// children, each request an upstream call); no rate limit unless one is configured: the
/// concurrency cap already bounds what one principal holds, and a sound default rate
/// depends on the workload.
impl Default for PrincipalLimits {
    fn default() -> Self {
        Self {
            max_sessions: 32,
            max_concurrent_calls: 64,
            rate: None,
        }
    }
}

/// The identify stage of the HTTP front: which credentials are accepted and required.
#[derive(Debug, Clone, Default)]
pub struct HttpAuth {
    /// With TLS client certificates: the SPIFFE check re-run on every call.
    pub svid: Option<SvidPolicy>,
    /// OAuth bearer tokens.
    pub bearer: Option<BearerAuth>,
    /// Calls without a valid client SVID are refused (401).
    pub require_workload: bool,
    /// Calls without a valid bearer token are refused (401 with a challenge).
    pub require_user: bool,
    /// The principal's workload name for token-only callers.
    pub unattested_workload: String,
}

/// Bearer-token validation and the MCP authorization surface.
#[derive(Debug, Clone)]
pub struct BearerAuth {
    pub validator: Arc<JwtValidator>,
    /// Served at `/.well-known/oauth-protected-resource`; its `resource` is the token audience.
    pub resource: ProtectedResource,
    /// Every call needs all of these scopes (403 `insufficient_scope` otherwise).
    pub required_scopes: Vec<String>,
}

impl ListenConfig {
    /// Loopback names only: `localhost`, `127.0.0.1`, `[::1]`.
    pub fn default_allowed_hosts() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()]
    }

    /// Loopback origins on any port, over http and https.
    pub fn default_allowed_origins() -> Vec<String> {
        let mut out = Vec::new();
        for scheme in ["http", "https"] {
            for host in Self::default_allowed_hosts() {
                out.push(format!("{scheme}://{host}:*"));
            }
        }
        out
    }
}

/// One upstream MCP server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub name: ServerName,
    pub transport: UpstreamTransport,
    pub default_tier: Tier,
    /// Per-tool tier overrides, by the server's own tool name.
    pub tool_tiers: BTreeMap<String, Tier>,
    pub isolation: Isolation,
    /// How long a request may wait for the server's answer.
    pub request_timeout: Duration,
    pub protocol: UpstreamProtocol,
    /// Files a stdio server runs beyond its executable (an interpreter's script, lockfile,
    /// package directory), pinned by digest and checked before every start (T19).
    pub pinned_files: FilePins,
    /// When a stdio server's children start: once per session, or afresh for every acting
    /// call (then a call's credential lives in that child's environment alone).
    pub spawn: Spawn,
}

/// When a stdio server's children start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Spawn {
    /// One child per session (or one for all, `shared`), started at the first request.
    #[default]
    Session,
    /// A fresh child for every acting call, started with that call's credentials and
    /// stopped when the call ends; listings and the handshake use a credential-less child.
    PerCall,
}

impl ServerConfig {
    /// Hashes the server's pinned files now and compares them with their pins: called right
    /// before every start of the server (by the gateway and by the `manifest` commands).
    pub fn check_pinned_files(&self) -> Result<(), FilePinError> {
        self.pinned_files.check()
    }

    /// The operator-assigned tier of `tool` (never the server's own annotation).
    pub fn tier_of(&self, tool: &str) -> Tier {
        self.tool_tiers.get(tool).copied().unwrap_or(self.default_tier)
    }
}

/// How to reach a server.
#[derive(Debug, Clone)]
pub enum UpstreamTransport {
    Stdio {
        argv: Vec<String>,
        env: BTreeMap<String, Secret<String>>,
        cwd: Option<PathBuf>,
    },
    Http {
        url: String,
        headers: Vec<(String, Secret<String>)>,
        /// Mutual TLS for an `https://` upstream: presents the gateway's SVID and accepts
        /// only the configured upstream SPIFFE ID. `None`: plain HTTP, or HTTPS with the
        /// system's roots and no client certificate.
        tls: Option<Arc<rustls::ClientConfig>>,
    },
}

/// Whether sessions share one child process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Each client session gets its own child (default; nothing shared between principals, T3).
    PerSession,
    /// One child serves every session (only for servers without per-caller state).
    Shared,
}

/// Which protocol era to speak to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamProtocol {
    /// Probe with `server/discover`; fall back to `initialize`.
    Auto,
    /// Always use the `initialize` handshake (2025-11-25 and earlier).
    Legacy,
    /// Always use stateless 2026-07-28 requests.
    Modern,
}
