//! The identify stage through the real binary: mutual TLS with SPIFFE SVIDs
//! (T16: the bad-certificate matrix, expiry re-checked per call, rotation under
//! load), OAuth bearer tokens from a real JWKS issuer (T1), sessions bound to
//! their principal (T3), the Host/Origin guard with TLS on (T6), and a real rmcp
//! client over mTLS whose SPIFFE ID decides what policy lets through.
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::Duration,
};

use jsonwebtoken::{Algorithm, Header};
use portcullis_e2e::{
    clients::Revision,
    demo_server_entry,
    pki::Pki,
    procs::{GatewayProc, demo_http_upstream},
};
use portcullis_identity::{BadSvid, test_issuer::*};
use serde_json::{Value, json};

/// Permits every call of workload `spiffe://example.org/agent/a` only.
const AGENT_A_ONLY: &str =
    "@id(\"agent-a\")\npermit (principal in Workload::\"spiffe://example.org/agent/a\", action, resource);\n";
/// Permits every call of user `alice` only.
const ALICE_ONLY: &str = "@id(\"alice\")\npermit (principal in User::\"alice\", action, resource);\n";

struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    session: Option<String>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

async fn post(client: &reqwest::Client, url: &str, body: &Value, headers: &[(&str, &str)]) -> Result<Reply, String> {
    let mut req = client
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.map_err(|e| format!("{e:?}"))?;
    let header = |name: &str| resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned());
    Ok(Reply {
        status: resp.status().as_u16(),
        www_authenticate: header("www-authenticate"),
        session: header("mcp-session-id"),
        body: resp.text().await.map_err(|e| e.to_string())?,
    })
}

fn initialize() -> Value {
    json!({"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}})
}

fn echo_call(id: u64) -> Value {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"echo","arguments":{"n":id}}})
}

/// The policy file `text`, in the config's dir.
fn policy_toml(dir: &std::path::Path, text: &str) -> String {
    let path = dir.join(format!("policy-{}.cedar", rand_suffix()));
    std::fs::write(&path, text).unwrap();
    format!("[policy]\ncedar = [\"{}\"]\n", path.display())
}

fn rand_suffix() -> u64 {
    static N: AtomicUsize = AtomicUsize::new(0);
    N.fetch_add(1, Ordering::SeqCst) as u64
}

fn allow_all(pki: &Pki) -> String {
    policy_toml(pki.dir.path(), "@id(\"all\")\npermit (principal, action, resource);\n")
}

/// Opens a session over `client` and returns its id.
async fn open(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = post(client, url, &initialize(), &[]).await?;
    if r.status != 200 {
        return Err(format!("initialize answered {}: {}", r.status, r.body));
    }
    r.session.ok_or_else(|| "no Mcp-Session-Id".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t16_bad_client_certificates_are_refused() {
    let pki = Pki::new();
    let gw = pki.gateway("", &format!("{}{}", allow_all(&pki), demo_server_entry("demo", "")));
    let good = pki.client("spiffe://example.org/agent/a", Duration::from_secs(600));
    open(&pki.http_client(Some(&good)), &gw.url)
        .await
        .expect("a valid SVID is admitted");
    // No certificate at all: the handshake requires one.
    assert!(
        open(&pki.http_client(None), &gw.url).await.is_err(),
        "no client certificate"
    );
    for kind in BadSvid::ALL {
        let bad = pki.bad_client(kind);
        let outcome = open(&pki.http_client(Some(&bad)), &gw.url).await;
        assert!(outcome.is_err(), "{kind:?} must be refused, got {outcome:?}");
    }
    // The refusals are logged, never a crash: the gateway still serves good clients.
    open(&pki.http_client(Some(&good)), &gw.url).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t16_expiry_is_checked_on_every_call_of_a_live_connection() {
    let pki = Pki::new();
    let gw = pki.gateway("", &format!("{}{}", allow_all(&pki), demo_server_entry("demo", "")));
    // Valid for ten seconds from now: long enough for the first call on a loaded machine.
    let valid = Duration::from_secs(10);
    let expires = tokio::time::Instant::now() + valid;
    let short = pki.client("spiffe://example.org/agent/a", valid);
    let client = pki.http_client(Some(&short));
    let session = open(&client, &gw.url).await.unwrap();
    let ok = post(&client, &gw.url, &echo_call(1), &[("mcp-session-id", &session)])
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert!(ok.json().get("result").is_some(), "{}", ok.body);
    tokio::time::sleep_until(expires + Duration::from_secs(2)).await;
    // Same client, same pooled connection (its handshake succeeded): the call is refused.
    let late = post(&client, &gw.url, &echo_call(2), &[("mcp-session-id", &session)])
        .await
        .unwrap();
    assert_eq!(late.status, 401, "{}", late.body);
    assert!(late.body.contains("expired"), "{}", late.body);
}

/// Writes `svid` over `prefix`.pem/.key the way rotation agents do: write beside, rename.
fn rotate_files(dir: &std::path::Path, prefix: &str, svid: &portcullis_identity::IssuedSvid) {
    let tmp = format!("{prefix}.next");
    let (cert, key) = svid.write(dir, &tmp).unwrap();
    std::fs::rename(key, dir.join(format!("{prefix}.key"))).unwrap();
    std::fs::rename(cert, dir.join(format!("{prefix}.pem"))).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t16_rotation_under_load_with_short_ttls_fails_no_call() {
    let pki = Arc::new(Pki::new());
    let gw = pki.gateway("", &format!("{}{}", allow_all(&pki), demo_server_entry("demo", "")));
    let id = "spiffe://example.org/agent/a";
    let current = Arc::new(Mutex::new(
        pki.http_client(Some(&pki.client(id, Duration::from_secs(3)))),
    ));
    let stop = Arc::new(AtomicBool::new(false));
    let (calls, failures) = (Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
    let mut workers = Vec::new();
    for w in 0..4u64 {
        let (current, stop, calls, failures, url) = (
            current.clone(),
            stop.clone(),
            calls.clone(),
            failures.clone(),
            gw.url.clone(),
        );
        workers.push(tokio::spawn(async move {
            let client = current.lock().unwrap().clone();
            let session = open(&client, &url).await.unwrap();
            let mut n = w * 1_000_000;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let client = current.lock().unwrap().clone();
                match post(&client, &url, &echo_call(n), &[("mcp-session-id", &session)]).await {
                    Ok(r) if r.status == 200 && r.json().get("result").is_some() => {}
                    Ok(r) => failures.lock().unwrap().push(format!("{}: {}", r.status, r.body)),
                    Err(e) => failures.lock().unwrap().push(e),
                }
                calls.fetch_add(1, Ordering::SeqCst);
            }
        }));
    }
    // Clients rotate to a fresh 3-second SVID every second; the gateway's own
    // certificate is replaced by a fresh 4-second one every 2 s underneath them.
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        *current.lock().unwrap() = pki.http_client(Some(&pki.client(id, Duration::from_secs(3))));
        if round % 2 == 1 {
            let gw_svid = pki
                .ca
                .issue(
                    &portcullis_identity::SpiffeId::parse("spiffe://example.org/gateway").unwrap(),
                    Duration::from_secs(4),
                    &["localhost".into(), "127.0.0.1".into()],
                )
                .unwrap();
            rotate_files(pki.dir.path(), "gateway", &gw_svid);
        }
    }
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.unwrap();
    }
    let failures = failures.lock().unwrap();
    let calls = calls.load(Ordering::SeqCst);
    assert!(calls > 20, "only {calls} calls were made");
    assert!(
        failures.is_empty(),
        "{} of {calls} calls failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t3_a_session_id_presented_by_another_principal_is_refused() {
    let pki = Pki::new();
    let gw = pki.gateway("", &format!("{}{}", allow_all(&pki), demo_server_entry("demo", "")));
    let a = pki.http_client(Some(
        &pki.client("spiffe://example.org/agent/a", Duration::from_secs(600)),
    ));
    let b = pki.http_client(Some(
        &pki.client("spiffe://example.org/agent/b", Duration::from_secs(600)),
    ));
    let session = open(&a, &gw.url).await.unwrap();
    let stolen = post(&b, &gw.url, &echo_call(1), &[("mcp-session-id", &session)])
        .await
        .unwrap();
    assert_eq!(stolen.status, 403, "{}", stolen.body);
    assert!(stolen.body.contains("another principal"), "{}", stolen.body);
    let own = post(&a, &gw.url, &echo_call(2), &[("mcp-session-id", &session)])
        .await
        .unwrap();
    assert_eq!(own.status, 200, "{}", own.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t6_host_and_origin_are_checked_with_tls_on() {
    let pki = Pki::new();
    let gw = pki.gateway("", &format!("{}{}", allow_all(&pki), demo_server_entry("demo", "")));
    let a = pki.http_client(Some(
        &pki.client("spiffe://example.org/agent/a", Duration::from_secs(600)),
    ));
    let evil_origin = post(&a, &gw.url, &initialize(), &[("origin", "https://evil.example")])
        .await
        .unwrap();
    assert_eq!(evil_origin.status, 403, "{}", evil_origin.body);
    let evil_host = post(&a, &gw.url, &initialize(), &[("host", "evil.example")])
        .await
        .unwrap();
    assert_eq!(evil_host.status, 403, "{}", evil_host.body);
    let local = format!("https://localhost:{}", gw.addr.port());
    let fine = post(&a, &gw.url, &initialize(), &[("origin", &local)]).await.unwrap();
    assert_eq!(fine.status, 200, "{}", fine.body);
}

/// An rmcp client speaking Streamable HTTP over `client`.
async fn rmcp_over(client: reqwest::Client, url: &str) -> portcullis_e2e::clients::Client {
    portcullis_e2e::clients::http_with(client, url, Revision::Legacy)
        .await
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rmcp_client_over_mtls_policy_allows_one_spiffe_id_and_denies_another() {
    let pki = Pki::new();
    let policy = policy_toml(pki.dir.path(), AGENT_A_ONLY);
    let gw = pki.gateway("", &format!("{policy}{}", demo_server_entry("demo", "")));
    let a = rmcp_over(
        pki.http_client(Some(
            &pki.client("spiffe://example.org/agent/a", Duration::from_secs(600)),
        )),
        &gw.url,
    )
    .await;
    let result = portcullis_e2e::clients::call(&a, "echo", json!({"hello": "mtls"}))
        .await
        .expect("agent a is permitted");
    assert!(portcullis_e2e::clients::text(&result).contains("mtls"));
    let b = rmcp_over(
        pki.http_client(Some(
            &pki.client("spiffe://example.org/agent/b", Duration::from_secs(600)),
        )),
        &gw.url,
    )
    .await;
    let denied = portcullis_e2e::clients::call(&b, "echo", json!({"hello": "mtls"}))
        .await
        .expect_err("agent b is denied");
    assert!(
        denied.to_string().contains("-32013") || denied.to_string().contains("denied"),
        "{denied}"
    );
    let _ = a.cancel().await;
    let _ = b.cancel().await;
}

/// A plain-HTTP gateway that requires bearer tokens from `issuer`.
fn oauth_gateway(issuer: &Issuer, policy: &str, servers: &str) -> GatewayProc {
    GatewayProc::start_with(&format!(
        "[listen]\nhttp = \"127.0.0.1:0\"\n[listen.oauth]\nissuer = \"{ISSUER}\"\nresource = \"{AUDIENCE}\"\njwks_url = \"{}\"\nrequired_scopes = [\"tools:call\"]\n{policy}\n{servers}",
        issuer.url("/jwks")
    ))
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t1_bearer_token_matrix_and_the_authorization_surface() {
    let key = TestKey::ec("k1");
    let rsa = TestKey::rsa("r1");
    let stranger = TestKey::ec("k1");
    let issuer = Issuer::start(&[&key, &rsa]).await;
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_toml(dir.path(), "@id(\"all\")\npermit (principal, action, resource);\n");
    let gw = oauth_gateway(&issuer, &policy, &demo_server_entry("demo", ""));
    let http = reqwest::Client::new();
    let bearer = |t: &str| format!("Bearer {t}");

    // Protected Resource Metadata, and the 401 that points at it.
    let prm_url = format!("http://{}/.well-known/oauth-protected-resource/mcp", gw.addr);
    let prm: Value = http.get(&prm_url).send().await.unwrap().json().await.unwrap();
    assert_eq!(prm["resource"], AUDIENCE);
    assert_eq!(prm["authorization_servers"][0], format!("{ISSUER}/"));
    let missing = post(&http, &gw.url, &initialize(), &[]).await.unwrap();
    assert_eq!(missing.status, 401, "{}", missing.body);
    let challenge = missing.www_authenticate.clone().expect("WWW-Authenticate");
    assert!(
        challenge.starts_with("Bearer resource_metadata=")
            && challenge.contains("/.well-known/oauth-protected-resource"),
        "{challenge}"
    );

    let good = key.sign(&good_claims());
    let ok = post(&http, &gw.url, &initialize(), &[("authorization", &bearer(&good))])
        .await
        .unwrap();
    assert_eq!(ok.status, 200, "{}", ok.body);

    let now = now();
    let mut hs256 = Header::new(Algorithm::HS256);
    hs256.kid = Some("k1".into());
    let hs256 = jsonwebtoken::encode(
        &hs256,
        &good_claims(),
        &jsonwebtoken::EncodingKey::from_secret(key.public_pem.as_bytes()),
    )
    .unwrap();
    let mut jku = key.header();
    jku.jku = Some(issuer.url("/jwks").to_string());
    let mut x5u = key.header();
    x5u.x5u = Some(issuer.url("/jwks").to_string());
    let mut unknown_kid = key.header();
    unknown_kid.kid = Some("nobody".into());
    let cases: Vec<(&str, String)> = vec![
        (
            "wrong audience",
            key.sign(&with(good_claims(), "aud", json!("https://other.example/mcp"))),
        ),
        ("missing audience", key.sign(&without(good_claims(), "aud"))),
        (
            "multiple audiences",
            key.sign(&with(good_claims(), "aud", json!([AUDIENCE, "https://other.example"]))),
        ),
        ("expired", key.sign(&with(good_claims(), "exp", json!(now - 3600)))),
        ("future nbf", key.sign(&with(good_claims(), "nbf", json!(now + 3600)))),
        ("alg none", unsigned("k1", &good_claims())),
        ("HS256 keyed with the public key", hs256),
        ("unknown kid", key.sign_with(&unknown_kid, &good_claims())),
        ("jku header", key.sign_with(&jku, &good_claims())),
        ("x5u header", key.sign_with(&x5u, &good_claims())),
        ("signed by another key with the same kid", stranger.sign(&good_claims())),
        (
            "wrong issuer",
            key.sign(&with(good_claims(), "iss", json!("https://evil.example"))),
        ),
        ("garbage", "not.a.jwt".into()),
    ];
    for (what, token) in cases {
        let r = post(&http, &gw.url, &initialize(), &[("authorization", &bearer(&token))])
            .await
            .unwrap();
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        let challenge = r.www_authenticate.unwrap_or_default();
        assert!(challenge.contains("invalid_token"), "{what}: {challenge}");
    }

    // Scopes short of the required ones: 403 insufficient_scope.
    let narrow = key.sign(&with(good_claims(), "scope", json!("tools:read")));
    let r = post(&http, &gw.url, &initialize(), &[("authorization", &bearer(&narrow))])
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.www_authenticate.unwrap_or_default().contains("insufficient_scope"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t1_users_reach_policy_and_the_token_never_reaches_the_upstream() {
    let key = TestKey::ec("k1");
    let issuer = Issuer::start(&[&key]).await;
    let upstream = demo_http_upstream();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_toml(dir.path(), ALICE_ONLY);
    let servers = format!("[[servers]]\nname = \"demo\"\nurl = \"{}\"\n", upstream.url);
    let gw = oauth_gateway(&issuer, &policy, &servers);
    let http = reqwest::Client::new();

    let alice = format!("Bearer {}", key.sign(&good_claims()));
    let session = {
        let r = post(&http, &gw.url, &initialize(), &[("authorization", &alice)])
            .await
            .unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        r.session.unwrap()
    };
    let call = json!({"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"http_headers","arguments":{}}});
    let seen = post(
        &http,
        &gw.url,
        &call,
        &[("authorization", &alice), ("mcp-session-id", &session)],
    )
    .await
    .unwrap();
    assert_eq!(seen.status, 200, "{}", seen.body);
    let headers = &seen.json()["result"]["structuredContent"];
    assert!(
        headers.is_object() && !headers.as_object().unwrap().is_empty(),
        "{}",
        seen.body
    );
    assert!(
        headers.get("authorization").is_none(),
        "the inbound token leaked upstream: {headers}"
    );

    // The session belongs to alice: the same id with bob's token is refused, and bob
    // in his own session is denied by policy (the user reached the decision).
    let bob = format!("Bearer {}", key.sign(&with(good_claims(), "sub", json!("bob"))));
    let stolen = post(
        &http,
        &gw.url,
        &call,
        &[("authorization", &bob), ("mcp-session-id", &session)],
    )
    .await
    .unwrap();
    assert_eq!(stolen.status, 403, "{}", stolen.body);
    let bob_session = post(&http, &gw.url, &initialize(), &[("authorization", &bob)])
        .await
        .unwrap()
        .session
        .unwrap();
    let denied = post(
        &http,
        &gw.url,
        &call,
        &[("authorization", &bob), ("mcp-session-id", &bob_session)],
    )
    .await
    .unwrap();
    assert_eq!(denied.json()["error"]["code"], -32013, "{}", denied.body);
}
