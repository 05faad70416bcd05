//! A FAKE SPIRE agent for tests: a SPIFFE Workload API server on a Unix socket that
//! hands out SVIDs issued by the dev CA. Compiled only with the `test-util` feature.
//!
//! It exists because a real SPIRE agent (a Go program) cannot be installed on the machines
//! that build and test Portcullis. It implements the one RPC `spiffe::X509Source` uses,
//! the `FetchX509SVID` server stream, as SPIRE does: it answers with the current SVID and
//! bundles, pushes every rotation down open streams, and refuses requests that lack the
//! `workload.spiffe.io: true` security header with `INVALID_ARGUMENT`. It does no workload
//! attestation: every caller gets the SVID it was given. Every other RPC is `UNIMPLEMENTED`.
use std::collections::HashMap;
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::Stream;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::UnixListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::codegen::{BoxFuture, Service, http};
use tonic::{Request, Response, Status};

use crate::dev_ca::{DevCa, DevCaError, IssuedSvid};
use crate::spiffe_id::SpiffeId;

/// The SPIFFE header SPIRE requires on every Workload API request.
const SECURITY_HEADER: &str = "workload.spiffe.io";

/// `X509SVIDRequest` of workload.proto (no fields).
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidRequest {}

/// `X509SVIDResponse` of workload.proto.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidResponse {
    #[prost(message, repeated, tag = "1")]
    pub svids: Vec<X509SvidMessage>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub crl: Vec<Vec<u8>>,
    /// DER bundles of federated trust domains, keyed by `spiffe://<trust-domain>`.
    #[prost(map = "string, bytes", tag = "3")]
    pub federated_bundles: HashMap<String, Vec<u8>>,
}

/// `X509SVID` of workload.proto: one SVID, its PKCS#8 key and its trust domain's bundle.
#[derive(Clone, PartialEq, prost::Message)]
pub struct X509SvidMessage {
    #[prost(string, tag = "1")]
    pub spiffe_id: String,
    /// DER certificates, leaf first, concatenated.
    #[prost(bytes = "vec", tag = "2")]
    pub x509_svid: Vec<u8>,
    /// DER PKCS#8 private key.
    #[prost(bytes = "vec", tag = "3")]
    pub x509_svid_key: Vec<u8>,
    /// DER CA certificates of the SVID's trust domain, concatenated.
    #[prost(bytes = "vec", tag = "4")]
    pub bundle: Vec<u8>,
    #[prost(string, tag = "5")]
    pub hint: String,
}

/// What the fake agent hands out: one SVID, its bundle, and any federated bundles.
#[derive(Debug, Clone)]
pub struct AgentSvid {
    pub spiffe_id: SpiffeId,
    pub svid: IssuedSvid,
    /// PEM CA certificates of the SVID's own trust domain.
    pub bundle_pem: String,
    /// `(trust domain, PEM bundle)` of federated trust domains.
    pub federated: Vec<(String, String)>,
}

impl AgentSvid {
    /// An SVID for `spiffe_id` from `ca`, valid for `ttl`, with `ca`'s bundle.
    pub fn issue(ca: &DevCa, spiffe_id: &SpiffeId, ttl: Duration, server_names: &[String]) -> Result<Self, DevCaError> {
        Ok(Self {
            spiffe_id: spiffe_id.clone(),
            svid: ca.issue(spiffe_id, ttl, server_names)?,
            bundle_pem: ca.bundle_pem().to_owned(),
            federated: Vec::new(),
        })
    }

    fn to_response(&self) -> Result<X509SvidResponse, DevCaError> {
        let key = PrivateKeyDer::from_pem_slice(self.svid.key_pem.expose().as_bytes()).map_err(pem_error)?;
        let federated = self
            .federated
            .iter()
            .map(|(td, pem)| Ok((format!("spiffe://{td}"), der_concat(pem)?)))
            .collect::<Result<_, DevCaError>>()?;
        Ok(X509SvidResponse {
            svids: vec![X509SvidMessage {
                spiffe_id: self.spiffe_id.to_string(),
                x509_svid: der_concat(&self.svid.cert_pem)?,
                x509_svid_key: key.secret_der().to_vec(),
                bundle: der_concat(&self.bundle_pem)?,
                hint: String::new(),
            }],
            crl: Vec::new(),
            federated_bundles: federated,
        })
    }
}

fn der_concat(pem: &str) -> Result<Vec<u8>, DevCaError> {
    let mut der = Vec::new();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        der.extend_from_slice(cert.map_err(pem_error)?.as_ref());
    }
    Ok(der)
}

fn pem_error(e: rustls::pki_types::pem::Error) -> DevCaError {
    DevCaError::BadCaFile {
        path: PathBuf::from("<fake agent material>"),
        reason: e.to_string(),
    }
}

/// A running fake agent; it stops (and removes its socket) when dropped.
pub struct FakeSpireAgent {
    socket: PathBuf,
    current: watch::Sender<X509SvidResponse>,
    stop: watch::Sender<bool>,
    server: JoinHandle<()>,
}

impl FakeSpireAgent {
    /// Serves the Workload API on the Unix socket `socket`, handing out `svid`.
    pub async fn start(socket: &Path, svid: &AgentSvid) -> Result<Self, DevCaError> {
        let io = |source| DevCaError::Io {
            path: socket.to_path_buf(),
            source,
        };
        let (current, _) = watch::channel(svid.to_response()?);
        let (stop, _) = watch::channel(false);
        let listener = UnixListener::bind(socket).map_err(io)?;
        let service = WorkloadApiService {
            current: current.clone(),
            stop: stop.clone(),
        };
        let incoming = futures::stream::unfold(listener, |listener| async move {
            let accepted = listener.accept().await.map(|(stream, _)| stream);
            Some((accepted, listener))
        });
        let server = tokio::spawn(async move {
            let served = tonic::transport::Server::builder()
                .serve_with_incoming(service, incoming)
                .await;
            if let Err(error) = served {
                tracing::warn!(%error, "fake SPIRE agent stopped serving");
            }
        });
        Ok(Self {
            socket: socket.to_path_buf(),
            current,
            stop,
            server,
        })
    }

    /// `unix://<socket>`, the address to configure as `workload_api_socket`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Pushes `svid` to every open stream, as SPIRE does on rotation.
    pub fn rotate(&self, svid: &AgentSvid) -> Result<(), DevCaError> {
        self.current.send_replace(svid.to_response()?);
        Ok(())
    }

    /// The agent goes away: open streams end, the socket is closed and removed.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for FakeSpireAgent {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        self.server.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// The `SpiffeWorkloadAPI` gRPC service, routed by hand (what tonic-build would generate).
#[derive(Clone)]
struct WorkloadApiService {
    current: watch::Sender<X509SvidResponse>,
    stop: watch::Sender<bool>,
}

impl tonic::server::NamedService for WorkloadApiService {
    const NAME: &'static str = "SpiffeWorkloadAPI";
}

impl<B> Service<http::Request<B>> for WorkloadApiService
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if req.uri().path() != "/SpiffeWorkloadAPI/FetchX509SVID" {
            return Box::pin(async {
                Ok(Status::unimplemented("the fake SPIRE agent serves FetchX509SVID only").into_http())
            });
        }
        let fetch = FetchX509Svid {
            current: self.current.subscribe(),
            stop: self.stop.subscribe(),
        };
        Box::pin(async move {
            let codec = tonic_prost::ProstCodec::<X509SvidResponse, X509SvidRequest>::default();
            Ok(tonic::server::Grpc::new(codec).server_streaming(fetch, req).await)
        })
    }
}

type SvidStream = Pin<Box<dyn Stream<Item = Result<X509SvidResponse, Status>> + Send>>;

struct FetchX509Svid {
    current: watch::Receiver<X509SvidResponse>,
    stop: watch::Receiver<bool>,
}

impl tonic::server::ServerStreamingService<X509SvidRequest> for FetchX509Svid {
    type Response = X509SvidResponse;
    type ResponseStream = SvidStream;
    type Future = BoxFuture<Response<SvidStream>, Status>;

    fn call(&mut self, request: Request<X509SvidRequest>) -> Self::Future {
        let has_header = request
            .metadata()
            .get(SECURITY_HEADER)
            .is_some_and(|value| value == "true");
        if !has_header {
            // SPIRE's answer, word for word.
            return Box::pin(async { Err(Status::invalid_argument("security header missing from request")) });
        }
        let state = (self.current.clone(), self.stop.clone(), true);
        let stream = futures::stream::unfold(state, |(mut current, mut stop, first)| async move {
            if !first {
                tokio::select! {
                    changed = current.changed() => changed.ok()?,
                    _ = stop.wait_for(|stopped| *stopped) => return None,
                }
            }
            if *stop.borrow() {
                return None;
            }
            let response = current.borrow_and_update().clone();
            Some((Ok(response), (current, stop, false)))
        });
        Box::pin(async move { Ok(Response::new(Box::pin(stream) as SvidStream)) })
    }
}
