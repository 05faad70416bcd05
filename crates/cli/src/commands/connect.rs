//! `portcullis connect URL`: a local stdio bridge to a gateway's Streamable HTTP(S) front,
//! for desktop hosts that launch a command and cannot do mutual TLS themselves.
//!
//! JSON-RPC lines from stdin are relayed with `portcullis_transport::connect_http` (POST
//! per message, JSON or SSE answers, `Mcp-Session-Id`, the GET stream for server-initiated
//! messages), presenting this workload's SVID; everything the gateway sends (answers,
//! notifications, server-to-client requests) goes to stdout, one message per line. On EOF
//! the bridge waits (bounded) for answers still owed, closes the session (DELETE) and exits
//! 0. A gateway that cannot be reached answers each request with a JSON-RPC error.
//! With `--sign-key` the bridge signs every `tools/call` for the host, and with
//! `--receipt-key` it checks every result's signed receipt (see `attest`).
use std::{collections::HashSet, path::PathBuf, process::ExitCode, time::Duration};

use anyhow::Context;
use portcullis_identity::{Reload, SpiffeId, UpstreamTlsSettings, upstream_client_config};
use portcullis_mcp::{ErrorCode, Limits, Message, MessageKind, error_response};
use portcullis_transport::{HttpClient, HttpSpec, LineReader, Link, LinkEvent, connect_http};
use serde_json::Value;
use tokio::io::{AsyncWrite, AsyncWriteExt, BufReader};

use crate::shutdown;
use attest::BridgeAttest;

mod attest;

/// A gateway that does not accept the TCP connection by then is reported unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// After EOF on stdin, answers still owed are awaited this long before closing.
const DRAIN_LIMIT: Duration = Duration::from_secs(30);
/// How long closing the session (DELETE) may take.
const CLOSE_LIMIT: Duration = Duration::from_secs(5);
/// How often TLS files are checked for renewal (SPIFFE mode).
const TLS_RELOAD_POLL: Duration = Duration::from_secs(5);

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (a desktop host's MCP server entry; absolute paths: hosts start commands elsewhere):\n  \
                        portcullis connect https://127.0.0.1:8080/mcp --cert /abs/mydir/pki/agent.pem \\\n      \
                        --key /abs/mydir/pki/agent.key --ca /abs/mydir/pki/ca/ca.pem\n\n\
                        The certificate is checked before connecting (expiry, issuer against --ca); TLS refusals are \
                        explained in words."
)]
pub struct ConnectArgs {
    /// The gateway's MCP endpoint, e.g. `https://gateway.example.org:8443/mcp`.
    url: url::Url,
    /// This workload's SVID (PEM chain, leaf first), presented to the gateway.
    #[arg(long, requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of --cert.
    #[arg(long, requires = "cert")]
    key: Option<PathBuf>,
    /// PEM trust bundle the gateway's certificate must chain to (default: the system's roots).
    #[arg(long)]
    ca: Option<PathBuf>,
    /// Verify the gateway's SPIFFE ID instead of the URL's host name (needs --ca and --cert).
    #[arg(long, value_name = "ID", requires_all = ["ca", "cert"])]
    server_spiffe_id: Option<SpiffeId>,
    /// Sign every tools/call with this host key (`portcullis audit keygen`) on the host's behalf.
    #[arg(long, value_name = "KEY")]
    sign_key: Option<PathBuf>,
    /// The audience calls are signed for: the gateway's `[attestation] audience`.
    #[arg(long, default_value = crate::config::DEFAULT_AUDIENCE, requires = "sign_key")]
    audience: String,
    /// The server of un-namespaced tool names (a gateway with a single server).
    #[arg(long, requires = "sign_key")]
    server: Option<String>,
    /// Check every result's signed receipt with this gateway public key (repeat for rotated
    /// keys); a result that fails is replaced by an error.
    #[arg(long = "receipt-key", value_name = "PUB")]
    receipt_keys: Vec<PathBuf>,
}

pub async fn run(args: ConnectArgs) -> anyhow::Result<ExitCode> {
    check_own_certificate(&args)?;
    let client = http_client(&args)?;
    let attest = bridge_attest(&args)?;
    let limits = Limits::default();
    let spec = HttpSpec {
        name: "gateway".into(),
        url: args.url.to_string(),
        headers: Vec::new(),
        limits,
    };
    let link = connect_http(spec, HttpClient::new(client));
    relay(link, limits, attest, tokio::io::stdin(), tokio::io::stdout()).await?;
    Ok(ExitCode::SUCCESS)
}

/// What can be known locally about this client's certificate, said before connecting (the
/// gateway's refusal reaches the client only as a TLS alert): expired or not yet valid stops
/// the bridge; an issuer outside `--ca` is a warning (the gateway may trust more CAs).
fn check_own_certificate(args: &ConnectArgs) -> anyhow::Result<()> {
    let Some(cert) = &args.cert else {
        return Ok(());
    };
    if let Some(warning) =
        portcullis_identity::check_own_certificate(cert, args.ca.as_deref(), std::time::SystemTime::now())?
    {
        tracing::warn!("{}", warning.0);
    }
    Ok(())
}

/// The signing and receipt checks `--sign-key` and `--receipt-key` ask for.
fn bridge_attest(args: &ConnectArgs) -> anyhow::Result<BridgeAttest> {
    let signer = match &args.sign_key {
        None => None,
        Some(path) => {
            let key = portcullis_audit::LogSigner::load(path)
                .with_context(|| format!("cannot load the host signing key {}", path.display()))?;
            Some(portcullis_attest::HostSigner::new(
                key.signing_key().clone(),
                args.audience.clone(),
            ))
        }
    };
    let trusted = if args.receipt_keys.is_empty() {
        None
    } else {
        let set = crate::config::key_set(&args.receipt_keys)
            .map_err(|(i, reason)| anyhow::anyhow!("--receipt-key #{}: {reason}", i + 1))?;
        Some(set)
    };
    Ok(BridgeAttest::new(signer, args.server.clone(), trusted))
}

/// The HTTP client for the gateway: plain for `http://`, mutual TLS for `https://`.
fn http_client(args: &ConnectArgs) -> anyhow::Result<reqwest::Client> {
    let url = &args.url;
    let builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT);
    match url.scheme() {
        "http" => {
            if args.cert.is_some() || args.ca.is_some() {
                anyhow::bail!("--cert, --key, --ca and --server-spiffe-id need an https:// URL; `{url}` is plain HTTP");
            }
            tracing::warn!(
                "`{url}` is plain HTTP: messages travel unencrypted and the gateway cannot identify this \
                 client by certificate; use an https:// URL with --cert, --key and --ca outside local tests"
            );
            Ok(builder.build()?)
        }
        "https" => {
            let builder = match (&args.server_spiffe_id, &args.cert, &args.key, &args.ca) {
                (Some(id), Some(cert), Some(key), Some(ca)) => {
                    let settings = UpstreamTlsSettings {
                        svid: portcullis_identity::SvidSource::Files {
                            cert_chain: cert.clone(),
                            private_key: key.clone(),
                        },
                        // `--ca` is the bundle of the gateway's trust domain only.
                        trust_bundle: portcullis_identity::BundleSource::file(id.trust_domain().clone(), ca.clone()),
                        expected_server: id.clone(),
                        reload: Reload::Poll(TLS_RELOAD_POLL),
                    };
                    let config = upstream_client_config(&settings)?;
                    builder.tls_backend_preconfigured(rustls::ClientConfig::clone(&config))
                }
                (Some(_), ..) => anyhow::bail!("--server-spiffe-id needs --cert, --key and --ca"),
                (None, ..) => host_name_tls(
                    builder,
                    args.cert.as_deref().zip(args.key.as_deref()),
                    args.ca.as_deref(),
                )?,
            };
            builder
                .build()
                .map_err(|e| match portcullis_transport::tls_words::explain(&e) {
                    Some(words) => anyhow::anyhow!("cannot set up TLS to the gateway: {words}"),
                    None => anyhow::Error::from(e).context("cannot set up TLS to the gateway"),
                })
        }
        other => anyhow::bail!("`{url}` has scheme `{other}`; give the gateway's http:// or https:// URL"),
    }
}

/// Server checked by host name against `--ca` (or the system's roots); the SVID files are
/// read once, so restart the bridge after renewing them (or use `--server-spiffe-id`).
pub fn host_name_tls(
    mut builder: reqwest::ClientBuilder,
    svid: Option<(&std::path::Path, &std::path::Path)>,
    ca: Option<&std::path::Path>,
) -> anyhow::Result<reqwest::ClientBuilder> {
    let read =
        |path: &std::path::Path| std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()));
    if let Some(ca) = ca {
        let roots = reqwest::Certificate::from_pem_bundle(&read(ca)?)
            .with_context(|| format!("`{}` is not a PEM certificate bundle", ca.display()))?;
        builder = builder.tls_certs_only(roots);
    }
    match svid {
        Some((cert, key)) => {
            let mut pem = read(cert)?;
            pem.push(b'\n');
            pem.extend(read(key)?);
            let identity = reqwest::Identity::from_pem(&pem).with_context(|| {
                format!(
                    "`{}` and `{}` are not a PEM certificate chain and its private key",
                    cert.display(),
                    key.display()
                )
            })?;
            Ok(builder.identity(identity))
        }
        None => {
            tracing::warn!("no --cert/--key: the gateway cannot identify this client by certificate");
            Ok(builder)
        }
    }
}

/// Relays stdin lines to the link and link messages to stdout until EOF or a signal.
async fn relay(
    link: Link,
    limits: Limits,
    mut attest: BridgeAttest,
    input: impl tokio::io::AsyncRead + Unpin,
    mut output: impl AsyncWrite + Unpin,
) -> anyhow::Result<()> {
    // Everything goes through the channels here (`direct` is the gateway's hot path).
    let Link { tx, mut rx, guard, .. } = link;
    let mut lines = LineReader::new(BufReader::new(input), limits.max_bytes);
    // Ids of requests sent and not yet answered, so EOF can wait for their answers.
    let mut pending: HashSet<String> = HashSet::new();
    let mut reported_unreachable = false;
    let mut stop = std::pin::pin!(shutdown::signalled());
    loop {
        tokio::select! {
            line = lines.next_line() => {
                let msg = match line {
                    Ok(None) => break,
                    Ok(Some(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
                    Ok(Some(bytes)) => match parse_line(&bytes, limits) {
                        Ok(msg) => msg,
                        Err(answer) => {
                            write_line(&mut output, &answer).await?;
                            continue;
                        }
                    },
                    Err(portcullis_transport::LineReaderError::Io(e)) => {
                        return Err(e).context("cannot read stdin");
                    }
                    Err(e) => {
                        let answer = error_response(None, ErrorCode::InvalidRequest, &e.to_string(), None);
                        write_line(&mut output, &answer).await?;
                        continue;
                    }
                };
                let msg = match attest.outgoing(msg) {
                    Ok(msg) => msg,
                    Err(answer) => {
                        write_line(&mut output, &answer).await?;
                        continue;
                    }
                };
                if msg.kind() == MessageKind::Request
                    && let Some(id) = msg.id()
                {
                    pending.insert(id.to_string());
                }
                if tx.send(msg).await.is_err() {
                    anyhow::bail!("the connection to the gateway closed unexpectedly");
                }
            }
            event = rx.recv() => {
                let Some(event) = event else {
                    anyhow::bail!("the connection to the gateway closed unexpectedly");
                };
                relay_event(event, &mut attest, &mut output, &mut pending, &mut reported_unreachable).await?;
            }
            () = &mut stop => break,
        }
    }
    // EOF: let answers still owed arrive, then close the session.
    let drained = tokio::time::timeout(DRAIN_LIMIT, async {
        while !pending.is_empty() {
            let Some(event) = rx.recv().await else { break };
            relay_event(event, &mut attest, &mut output, &mut pending, &mut reported_unreachable).await?;
        }
        anyhow::Ok(())
    })
    .await;
    if let Ok(Err(e)) = drained {
        return Err(e);
    }
    if drained.is_err() {
        tracing::warn!(
            "{} request(s) still unanswered after {DRAIN_LIMIT:?}; closing",
            pending.len()
        );
    }
    drop(tx);
    drop(guard);
    let closed = tokio::time::timeout(CLOSE_LIMIT, async {
        while let Some(event) = rx.recv().await {
            if matches!(event, LinkEvent::Closed { .. }) {
                break;
            }
        }
    })
    .await;
    if closed.is_err() {
        tracing::warn!("the gateway did not confirm closing the session within {CLOSE_LIMIT:?}");
    }
    Ok(())
}

/// One stdin line as a message, or the JSON-RPC error answer to write back.
fn parse_line(bytes: &[u8], limits: Limits) -> Result<Message, Value> {
    Message::parse(bytes, limits).map_err(|e| error_response(None, e.code(), &e.to_string(), None))
}

async fn relay_event(
    event: LinkEvent,
    attest: &mut BridgeAttest,
    output: &mut (impl AsyncWrite + Unpin),
    pending: &mut HashSet<String>,
    reported_unreachable: &mut bool,
) -> anyhow::Result<()> {
    match event {
        LinkEvent::Message { msg, .. } => {
            let msg = attest.incoming(msg);
            if msg.kind() == MessageKind::Response
                && let Some(id) = msg.id()
            {
                pending.remove(&id.to_string());
            }
            let failed = msg.error().and_then(|e| e.get("code")).and_then(Value::as_i64);
            if failed == Some(ErrorCode::UpstreamFailed.code()) && !*reported_unreachable {
                *reported_unreachable = true;
                tracing::error!(
                    "the gateway could not be reached or refused the connection (details above); check the URL, \
                     that the gateway runs, and the --cert, --key and --ca files"
                );
            }
            let bytes = msg.to_bytes();
            output.write_all(&bytes).await.context("cannot write to stdout")?;
            output.write_all(b"\n").await.context("cannot write to stdout")?;
            output.flush().await.context("cannot write to stdout")?;
        }
        LinkEvent::Malformed { reason } => tracing::warn!("the gateway sent something that is not JSON-RPC: {reason}"),
        LinkEvent::Closed { reason } => anyhow::bail!("{reason}"),
    }
    Ok(())
}

async fn write_line(output: &mut (impl AsyncWrite + Unpin), value: &Value) -> anyhow::Result<()> {
    let mut bytes = serde_json::to_vec(value).context("cannot encode an error answer")?;
    bytes.push(b'\n');
    output.write_all(&bytes).await.context("cannot write to stdout")?;
    output.flush().await.context("cannot write to stdout")
}
