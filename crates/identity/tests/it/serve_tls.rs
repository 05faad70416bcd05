//! `serve_tls`: every request carries the client's chain as `PeerCertificates` (empty
//! without a certificate), a failed handshake does not stop the loop, and shutdown stops
//! accepting and returns once open connections are done.
use std::net::SocketAddr;
use std::time::{Duration, SystemTime};

use axum::{Extension, Router, routing::get};
use portcullis_identity::{ClientAuth, IssuedSvid, PeerCertificates, Reload, serve_tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::support::*;

async fn whoami(Extension(peer): Extension<PeerCertificates>) -> String {
    if peer.leaf().is_none() {
        return "no certificate".into();
    }
    match policy().peer_workload_id(Some(peer.chain()), SystemTime::now()) {
        Ok(id) => id.to_string(),
        Err(e) => format!("refused: {e}"),
    }
}

fn https_client(pki: &Pki, addr: SocketAddr, svid: Option<&IssuedSvid>) -> reqwest::Client {
    let config = client_config(pki.ca.bundle_pem(), svid);
    reqwest::Client::builder()
        .tls_backend_preconfigured(rustls::ClientConfig::clone(&config))
        .resolve("localhost", addr)
        .build()
        .unwrap()
}

#[tokio::test]
async fn every_request_carries_the_peer_chain_and_shutdown_is_graceful() {
    let pki = Pki::new();
    let server = server_tls(&pki.server_settings(ClientAuth::Optional, Reload::OnDemand));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("https://localhost:{}/whoami", addr.port());
    let router = Router::new().route("/whoami", get(whoami));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let acceptor = TlsAcceptor::from(server.config());
    let served = tokio::spawn(serve_tls(listener, acceptor, router, async {
        let _ = stopped.await;
    }));

    // Plain HTTP on the TLS port fails its handshake and ends only that connection.
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /whoami HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut ignored = Vec::new();
    let _ = tcp.read_to_end(&mut ignored).await;

    let agent = pki.ca.issue(&id("/agent/x"), Duration::from_secs(300), &[]).unwrap();
    let with_svid = https_client(&pki, addr, Some(&agent));
    // Two requests on one kept-alive connection: each carries the chain.
    for _ in 0..2 {
        let body = with_svid.get(&url).send().await.unwrap().text().await.unwrap();
        assert_eq!(body, "spiffe://example.org/agent/x");
    }
    let anonymous = https_client(&pki, addr, None);
    let body = anonymous.get(&url).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "no certificate");

    stop.send(()).unwrap();
    let result = tokio::time::timeout(Duration::from_secs(10), served).await;
    assert!(matches!(result, Ok(Ok(Ok(())))), "{result:?}");
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed");
}
