//! The gateway's SVID and trust bundles from a SPIFFE Workload API (a SPIRE agent's
//! socket) instead of files.
//!
//! Feeds the identify stage (the front's certificate and the bundles client SVIDs must
//! chain to) and the forward hop (the client SVID presented to mTLS upstreams). A
//! [`WorkloadApi`] keeps one live `spiffe::X509Source`: the agent pushes rotated SVIDs and
//! bundles over a gRPC stream and the next handshake uses them, no restart, no polling.
//!
//! Fail closed: [`WorkloadApi::connect`] fails when no SVID arrives within the startup
//! timeout, and a handshake attempted before `connect` has no certificate. When the agent
//! goes away later, the last SVID is served (and the loss logged) until it expires; from
//! then on handshakes fail until the agent is back.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use spiffe::transport::Endpoint;
use spiffe::{X509Source, X509Svid};
use tokio::sync::OnceCell;

use self::watch::{log_rotations, log_svid, reconnect_logger};

use crate::material::crypto_provider;
use crate::spiffe_id::TrustDomain;

mod watch;

/// How often the same "no usable material" complaint is logged at most.
const COMPLAINT_INTERVAL: Duration = Duration::from_secs(10);

/// Where the Workload API is and how long startup waits for the first SVID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadApiSettings {
    /// `unix:///run/spire/agent.sock` (or `tcp://127.0.0.1:8081`).
    pub endpoint: String,
    /// How long [`WorkloadApi::connect`] retries before giving up.
    pub startup_timeout: Duration,
}

/// Why the Workload API cannot supply TLS material.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadApiError {
    #[error(
        "`{endpoint}` is not a SPIFFE Workload API address ({reason}); \
         use `unix:///path/to/agent.sock` or `tcp://127.0.0.1:8081`"
    )]
    BadEndpoint { endpoint: String, reason: String },
    #[error(
        "no X.509-SVID from the SPIFFE Workload API at `{endpoint}` within {secs} s ({reason}); \
         start the SPIRE agent and register this workload with it, or point `workload_api_socket` \
         (default: SPIFFE_ENDPOINT_SOCKET) at the agent's socket"
    )]
    Unavailable {
        endpoint: String,
        secs: u64,
        reason: String,
    },
    #[error("the SPIFFE Workload API at `{endpoint}` is not connected yet; connect it before building the TLS config")]
    NotConnected { endpoint: String },
}

/// A shared handle on one Workload API; clones share the connection and its cache.
#[derive(Clone)]
pub struct WorkloadApi {
    inner: Arc<Inner>,
}

struct Inner {
    settings: WorkloadApiSettings,
    endpoint: Endpoint,
    source: OnceCell<X509Source>,
    provider: Arc<CryptoProvider>,
    cache: Mutex<Cache>,
    last_complaint: Mutex<Option<Instant>>,
}

/// Rustls forms of the material of one source revision, built on first use.
#[derive(Default)]
struct Cache {
    revision: Option<u64>,
    key: Option<Arc<CertifiedKey>>,
    roots: HashMap<String, Arc<RootCertStore>>,
}

impl std::fmt::Debug for WorkloadApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkloadApi")
            .field("endpoint", &self.inner.settings.endpoint)
            .field("connected", &self.inner.source.initialized())
            .finish_non_exhaustive()
    }
}

impl WorkloadApi {
    /// A handle on the Workload API at `settings.endpoint`; nothing is contacted until
    /// [`Self::connect`]. Fails only on an address that cannot be a Workload API.
    pub fn new(settings: WorkloadApiSettings) -> Result<Self, WorkloadApiError> {
        let endpoint = Endpoint::parse(&settings.endpoint).map_err(|e| WorkloadApiError::BadEndpoint {
            endpoint: settings.endpoint.clone(),
            reason: e.to_string(),
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                settings,
                endpoint,
                source: OnceCell::new(),
                provider: crypto_provider(),
                cache: Mutex::new(Cache::default()),
                last_complaint: Mutex::new(None),
            }),
        })
    }

    /// The configured address, as given.
    pub fn endpoint(&self) -> &str {
        &self.inner.settings.endpoint
    }

    pub fn is_connected(&self) -> bool {
        self.inner.source.initialized()
    }

    /// Waits (up to the startup timeout) for the agent's first SVID and bundles, then
    /// follows its updates in the background. Calling it again is a no-op.
    pub async fn connect(&self) -> Result<(), WorkloadApiError> {
        self.inner.source.get_or_try_init(|| self.open()).await?;
        Ok(())
    }

    async fn open(&self) -> Result<X509Source, WorkloadApiError> {
        let settings = &self.inner.settings;
        let source = X509Source::builder()
            .client_factory(reconnect_logger(&self.inner))
            .initial_sync_timeout(settings.startup_timeout)
            .build()
            .await
            .map_err(|e| WorkloadApiError::Unavailable {
                endpoint: settings.endpoint.clone(),
                secs: settings.startup_timeout.as_secs(),
                reason: e.to_string(),
            })?;
        if let Ok(svid) = source.svid() {
            log_svid(
                "received X.509-SVID from the SPIFFE Workload API",
                self.endpoint(),
                &svid,
            );
        }
        tokio::spawn(log_rotations(source.clone(), Arc::downgrade(&self.inner)));
        Ok(source)
    }

    /// The current SVID as a rustls [`CertifiedKey`]; `None` (logged) when there is none
    /// that may be used: not connected, withdrawn by the agent, or expired.
    pub(crate) fn certified_key(&self) -> Option<Arc<CertifiedKey>> {
        let source = self.connected_source()?;
        let state = source.state();
        let svid = match state.svid() {
            Ok(svid) => svid,
            Err(error) => {
                self.complain(&format!(
                    "no usable X.509-SVID ({error}); TLS handshakes fail until the agent supplies one"
                ));
                return None;
            }
        };
        let mut cache = self.cache_for(state.revision());
        if let Some(key) = &cache.key {
            return Some(key.clone());
        }
        match certified_key(&svid, &self.inner.provider) {
            Ok(key) => {
                let key = Arc::new(key);
                cache.key = Some(key.clone());
                Some(key)
            }
            Err(reason) => {
                self.complain(&format!("the agent's X.509-SVID is unusable: {reason}"));
                None
            }
        }
    }

    /// The trust anchors the agent gave for `trust_domain` (its own or a federated one);
    /// `None` (logged) when it gave none or the source is not usable.
    pub(crate) fn roots_for(&self, trust_domain: &TrustDomain) -> Option<Arc<RootCertStore>> {
        let source = self.connected_source()?;
        let state = source.state();
        let context = match state.context() {
            Ok(context) => context,
            Err(error) => {
                self.complain(&format!("no trust bundles ({error})"));
                return None;
            }
        };
        let mut cache = self.cache_for(state.revision());
        if let Some(roots) = cache.roots.get(trust_domain.as_str()) {
            return Some(roots.clone());
        }
        let td = spiffe::TrustDomain::new(trust_domain.as_str()).ok()?;
        let Some(bundle) = context.bundle_set().get(&td) else {
            tracing::warn!(
                endpoint = self.endpoint(),
                trust_domain = trust_domain.as_str(),
                "the SPIFFE Workload API gave no trust bundle for this trust domain"
            );
            return None;
        };
        let mut roots = RootCertStore::empty();
        for authority in bundle.authorities() {
            if let Err(error) = roots.add(CertificateDer::from(authority.as_bytes().to_vec())) {
                tracing::warn!(trust_domain = trust_domain.as_str(), %error, "skipping an unusable bundle authority");
            }
        }
        let roots = Arc::new(roots);
        cache.roots.insert(trust_domain.as_str().to_owned(), roots.clone());
        Some(roots)
    }

    pub(crate) fn require_connected(&self) -> Result<(), WorkloadApiError> {
        match self.is_connected() {
            true => Ok(()),
            false => Err(WorkloadApiError::NotConnected {
                endpoint: self.endpoint().to_owned(),
            }),
        }
    }

    fn connected_source(&self) -> Option<&X509Source> {
        let source = self.inner.source.get();
        if source.is_none() {
            self.complain("not connected; TLS handshakes fail until it is");
        }
        source
    }

    /// The cache, emptied first if the source has moved to another revision.
    fn cache_for(&self, revision: u64) -> std::sync::MutexGuard<'_, Cache> {
        let mut cache = self.inner.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.revision != Some(revision) {
            *cache = Cache {
                revision: Some(revision),
                ..Cache::default()
            };
        }
        cache
    }

    /// Logs `problem` at most once per [`COMPLAINT_INTERVAL`]: it would otherwise repeat
    /// on every handshake.
    fn complain(&self, problem: &str) {
        let mut last = self.inner.last_complaint.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|at| at.elapsed() < COMPLAINT_INTERVAL) {
            return;
        }
        *last = Some(Instant::now());
        tracing::error!(endpoint = self.endpoint(), "SPIFFE Workload API: {problem}");
    }
}

fn certified_key(svid: &X509Svid, provider: &CryptoProvider) -> Result<CertifiedKey, rustls::Error> {
    let chain = svid
        .cert_chain()
        .iter()
        .map(|cert| CertificateDer::from(cert.as_bytes().to_vec()))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(svid.private_key().as_bytes().to_vec()));
    let key = CertifiedKey::new(chain, provider.key_provider.load_private_key(key)?);
    key.keys_match()?;
    Ok(key)
}
