//! Test PKI and a loopback TLS harness: a tokio-rustls server that reports what each
//! handshake concluded, and a client that presents a chosen certificate.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use portcullis_identity::{
    BundleSource, ClientAuth, ClientTrust, DevCa, IssuedSvid, Reload, ServerTls, ServerTlsSettings, SpiffeId,
    SvidPolicy, SvidSource, TrustDomain, crypto_provider,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub fn td() -> TrustDomain {
    TrustDomain::new("example.org").unwrap()
}

pub fn id(path: &str) -> SpiffeId {
    SpiffeId::from_parts(&td(), path).unwrap()
}

pub fn policy() -> SvidPolicy {
    SvidPolicy::new([td()]).unwrap()
}

/// A dev CA on disk plus a server SVID for the gateway (`localhost`).
pub struct Pki {
    pub dir: TempDir,
    pub ca: DevCa,
}

impl Pki {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::init(&dir.path().join("ca"), td()).unwrap();
        Self { dir, ca }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn bundle(&self) -> PathBuf {
        self.path("ca/ca.pem")
    }

    /// Issues and writes a gateway server SVID as `<prefix>.pem` / `<prefix>.key`.
    pub fn write_server_svid(&self, prefix: &str, ttl: Duration) -> IssuedSvid {
        let svid = self.ca.issue(&id("/gateway"), ttl, &["localhost".to_string()]).unwrap();
        svid.write(self.dir.path(), prefix).unwrap();
        svid
    }

    pub fn server_settings(&self, mode: ClientAuth, reload: Reload) -> ServerTlsSettings {
        self.write_server_svid("server", Duration::from_secs(600));
        ServerTlsSettings {
            svid: SvidSource::Files {
                cert_chain: self.path("server.pem"),
                private_key: self.path("server.key"),
            },
            client_trust: Some(ClientTrust {
                bundle: BundleSource::file(td(), self.bundle()),
                mode,
                svid_policy: policy(),
            }),
            reload,
            alpn_protocols: vec![],
        }
    }
}

pub fn server_tls(settings: &ServerTlsSettings) -> ServerTls {
    ServerTls::new(settings).unwrap()
}

/// An upstream serving the SVID `spiffe://…/upstream` (no DNS names) from files and requiring
/// client certificates that chain to the test bundle.
pub async fn mtls_upstream(pki: &Pki) -> (SocketAddr, mpsc::UnboundedReceiver<Outcome>) {
    let upstream = pki.ca.issue(&id("/upstream"), Duration::from_secs(300), &[]).unwrap();
    upstream.write(pki.dir.path(), "upstream").unwrap();
    let server = server_tls(&ServerTlsSettings {
        svid: SvidSource::Files {
            cert_chain: pki.path("upstream.pem"),
            private_key: pki.path("upstream.key"),
        },
        client_trust: Some(ClientTrust {
            bundle: BundleSource::file(td(), pki.bundle()),
            mode: ClientAuth::Required,
            svid_policy: policy(),
        }),
        reload: Reload::OnDemand,
        alpn_protocols: vec![],
    });
    serve(server.config()).await
}

/// What the server concluded about one handshake: the peer chain, or the error.
pub type Outcome = Result<Option<Vec<CertificateDer<'static>>>, String>;

/// Serves TLS on 127.0.0.1:0; every accepted handshake answers `ok` and reports its outcome.
pub async fn serve(config: Arc<ServerConfig>) -> (SocketAddr, mpsc::UnboundedReceiver<Outcome>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                let outcome = match acceptor.accept(tcp).await {
                    Ok(mut tls) => {
                        let peer = tls.get_ref().1.peer_certificates().map(|c| c.to_vec());
                        let _ = tls.write_all(b"ok").await;
                        let _ = tls.shutdown().await;
                        Ok(peer)
                    }
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send(outcome);
            });
        }
    });
    (addr, rx)
}

pub fn certs(pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap()
}

pub fn roots(bundle_pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in certs(bundle_pem) {
        roots.add(cert).unwrap();
    }
    roots
}

/// A client trusting `bundle_pem` for the server, presenting `svid` if given.
pub fn client_config(bundle_pem: &str, svid: Option<&IssuedSvid>) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(crypto_provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots(bundle_pem));
    let config = match svid {
        Some(svid) => {
            let key = PrivateKeyDer::from_pem_slice(svid.key_pem.expose().as_bytes()).unwrap();
            builder.with_client_auth_cert(certs(&svid.cert_pem), key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// Connects, and returns the server's leaf and whether the server's `ok` arrived.
pub async fn connect(addr: SocketAddr, config: Arc<ClientConfig>, server_name: &str) -> ClientView {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    match TlsConnector::from(config).connect(name, tcp).await {
        Ok(mut tls) => {
            let server_leaf = tls.get_ref().1.peer_certificates().and_then(|c| c.first().cloned());
            let mut buf = Vec::new();
            let read = tls.read_to_end(&mut buf).await;
            ClientView {
                server_leaf,
                got_ok: read.is_ok() && buf == b"ok",
                error: read.err().map(|e| e.to_string()),
            }
        }
        Err(e) => ClientView {
            server_leaf: None,
            got_ok: false,
            error: Some(e.to_string()),
        },
    }
}

#[derive(Debug)]
pub struct ClientView {
    pub server_leaf: Option<CertificateDer<'static>>,
    pub got_ok: bool,
    pub error: Option<String>,
}

/// One handshake: connect with `config`, then return the server's outcome.
pub async fn handshake(
    addr: SocketAddr,
    rx: &mut mpsc::UnboundedReceiver<Outcome>,
    config: Arc<ClientConfig>,
) -> (ClientView, Outcome) {
    let view = connect(addr, config, "localhost").await;
    let outcome = rx.recv().await.unwrap();
    (view, outcome)
}

pub fn leaf_of(svid: &IssuedSvid) -> CertificateDer<'static> {
    svid.cert_der().unwrap()
}

pub fn write(path: &Path, contents: &str) {
    // Atomic replacement, as an operator's tooling (or SPIRE's helper) would do.
    let tmp = path.with_extension("tmp-write");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
