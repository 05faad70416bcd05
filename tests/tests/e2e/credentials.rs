//! Per-call credentials through the real binary (issue 19; T11 scope creep, T12 secret
//! exposure): the broker mints each call's credential after the decision — a PostgreSQL
//! role that can read one schema and is gone after the call, a JWT the upstream verifies
//! with the gateway's JWKS, a named secret — delivered to that call alone (a header per
//! request, or the environment of a child started for the call), never logged or recorded,
//! and every source failure denies the call.
use std::{process::Command, time::Duration};

use portcullis_e2e::{
    bin, demo_server_command, portcullis,
    procs::{GatewayProc, TempConfig, demo_http_upstream, free_port, write_config},
    raw_http::{Reply, open_session, post},
};
use serde_json::{Value, json};
use sqlx::{Connection, Row};

const DENIED: i64 = -32013;

/// The admin connection string of the test PostgreSQL, or `None` (the test is skipped).
fn admin_url() -> Option<String> {
    match std::env::var("DATABASE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            eprintln!("DATABASE_URL is not set: skipping a PostgreSQL credential test");
            None
        }
    }
}

/// A fresh lowercase suffix, so parallel tests use their own schemas and role prefixes.
fn unique() -> String {
    format!("{:010x}", rand::random::<u64>() >> 24)
}

async fn admin(url: &str) -> sqlx::PgConnection {
    sqlx::PgConnection::connect(url).await.expect("connect as admin")
}

async fn exec(conn: &mut sqlx::PgConnection, sql: String) {
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .execute(&mut *conn)
        .await
        .expect("admin statement");
}

/// Schemas `s_<id>` (table `orders`, two rows) and `h_<id>` (table `salaries`).
async fn schemas(url: &str, id: &str) {
    let mut conn = admin(url).await;
    for sql in [
        format!("CREATE SCHEMA s_{id}"),
        format!("CREATE TABLE s_{id}.orders (id int PRIMARY KEY, total numeric)"),
        format!("INSERT INTO s_{id}.orders VALUES (1, 10), (2, 20)"),
        format!("CREATE SCHEMA h_{id}"),
        format!("CREATE TABLE h_{id}.salaries (who text, salary numeric)"),
    ] {
        exec(&mut conn, sql).await;
    }
}

async fn drop_schemas(url: &str, id: &str) {
    let mut conn = admin(url).await;
    exec(&mut conn, format!("DROP SCHEMA IF EXISTS s_{id}, h_{id} CASCADE")).await;
}

/// Roles named `<prefix>…` and when they expire.
async fn roles(url: &str, prefix: &str) -> Vec<(String, Option<String>)> {
    let mut conn = admin(url).await;
    sqlx::query("SELECT rolname::text, rolvaliduntil::text FROM pg_roles WHERE starts_with(rolname, $1)")
        .bind(prefix)
        .fetch_all(&mut conn)
        .await
        .expect("list roles")
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect()
}

/// `connect_url` for roles on the test database.
fn connect_url(admin: &str) -> String {
    let url = reqwest::Url::parse(admin).expect("DATABASE_URL is a URL");
    format!(
        "postgres://{{user}}:{{password}}@{}:{}{}",
        url.host_str().unwrap_or("127.0.0.1"),
        url.port().unwrap_or(5432),
        url.path()
    )
}

/// A gateway in front of the demo server started per call, whose `query` calls get a role
/// that can read `s_<id>` (prefix `pc<id>_`), with `extra` config appended.
fn db_gateway(admin: &str, id: &str, extra: &str) -> GatewayProc {
    let config: TempConfig = write_config("");
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"

[[servers]]
name = "demo"
command = {command}
spawn = "per-call"
tools = {{ query = {{ tier = "read-sensitive" }} }}

[broker.sources.sales]
kind = "postgres-role"
admin_url_env = "TEST_PG_ADMIN"
connect_url = "{connect}"
prefix = "pc{id}_"
ttl_secs = 120
grants = [{{ schema = "s_{id}", privileges = ["select"] }}]

[[credentials]]
id = "sales-read"
server = "demo"
tools = ["query"]
source = "sales"
env = "DATABASE_URL"
{extra}"#,
        command = demo_server_command(),
        connect = connect_url(admin),
    );
    write_permit_all(&config, &text);
    GatewayProc::start_file_with_env(config, &[("TEST_PG_ADMIN", admin)])
}

/// Writes `text` as the config with a permit-all Cedar policy that needs no reason: these
/// tests are about credentials, not decisions.
fn write_permit_all(config: &TempConfig, text: &str) {
    let policy = "\n[policy]\ncedar = [\"allow.cedar\"]\nrequire_reason = false\n";
    std::fs::write(&config.path, format!("{text}{policy}")).unwrap();
    std::fs::write(
        config.dir.path().join("allow.cedar"),
        "permit (principal, action, resource);\n",
    )
    .unwrap();
}

fn query_call(id: u64, sql: &str) -> String {
    json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"query","arguments":{"sql":sql}}}).to_string()
}

async fn call(gw: &GatewayProc, session: &str, body: String) -> Reply {
    post(&gw.url, body, &[("mcp-session-id", session)]).await
}

/// The role a `query` answer ran as, and whether the tool reported an error (its text).
fn query_outcome(reply: &Reply) -> (String, Result<Value, String>) {
    let body = reply.json();
    let result = &body["result"];
    if result["isError"] == json!(true) {
        let text = result["content"][0]["text"].as_str().unwrap_or_default().to_owned();
        let role = text
            .strip_prefix("as role ")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_default()
            .to_owned();
        return (role, Err(text));
    }
    let structured = &result["structuredContent"];
    assert!(structured.is_object(), "unexpected answer: {body}");
    (
        structured["role"].as_str().unwrap_or_default().to_owned(),
        Ok(structured["rows"].clone()),
    )
}

/// Every decision record of the gateway's audit log, as JSON (from `audit export`).
fn decision_records(gw: &GatewayProc) -> Vec<Value> {
    let (code, text) = portcullis(&["audit", "export", "--config", gw.config.path.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r["kind"] == "decision")
        .collect()
}

#[tokio::test]
async fn t11_minted_role_reads_its_schema_only_and_is_gone_after_the_call() {
    let Some(admin) = admin_url() else { return };
    let id = unique();
    schemas(&admin, &id).await;
    let gw = db_gateway(&admin, &id, "");
    let session = open_session(&gw.url).await;
    let read = call(
        &gw,
        &session,
        query_call(2, &format!("SELECT id, total FROM s_{id}.orders ORDER BY id")),
    )
    .await;
    let (role, rows) = query_outcome(&read);
    let rows = rows.expect("the role reads its schema");
    assert_eq!(rows.as_array().map(Vec::len), Some(2), "{rows}");
    assert!(role.starts_with(&format!("pc{id}_")), "ran as {role}");
    assert!(roles(&admin, &role).await.is_empty(), "role {role} outlived its call");

    for (n, sql) in [
        format!("SELECT * FROM h_{id}.salaries"),
        format!("INSERT INTO s_{id}.orders VALUES (3, 30)"),
        format!("CREATE TABLE s_{id}.mine (x int)"),
        "CREATE TABLE public.mine (x int)".to_owned(),
    ]
    .iter()
    .enumerate()
    {
        let reply = call(&gw, &session, query_call(10 + n as u64, sql)).await;
        let (role, outcome) = query_outcome(&reply);
        let why = outcome.expect_err(&format!("`{sql}` must be refused"));
        assert!(why.contains("permission denied"), "`{sql}`: {why}");
        assert!(roles(&admin, &role).await.is_empty(), "role {role} outlived its call");
    }
    // The decision records name the grant, source, scope and expiry; never a password.
    let records = decision_records(&gw);
    let granted: Vec<&Value> = records
        .iter()
        .filter(|r| r["ext"]["credential_grant"].is_string())
        .collect();
    assert_eq!(granted.len(), 5, "{records:?}");
    for record in &granted {
        assert_eq!(record["ext"]["credential_rule"], "sales-read");
        assert_eq!(record["ext"]["credential_kind"], "postgres-role");
        assert!(
            record["ext"]["credential_scope"]
                .as_str()
                .unwrap_or_default()
                .contains(&format!("s_{id}"))
        );
        assert!(record["ext"]["credential_expires_at"].is_string());
        assert!(!record.to_string().contains("password"), "{record}");
    }
    drop(gw);
    drop_schemas(&admin, &id).await;
}

#[tokio::test]
async fn t11_two_concurrent_calls_get_different_roles() {
    let Some(admin) = admin_url() else { return };
    let id = unique();
    schemas(&admin, &id).await;
    let gw = db_gateway(&admin, &id, "");
    let session = open_session(&gw.url).await;
    // Both calls hold their role at once (each sleeps in the database).
    let slow = |n: u64| query_call(n, &format!("SELECT pg_sleep(0.5), count(*) FROM s_{id}.orders"));
    let (a, b) = tokio::join!(call(&gw, &session, slow(2)), call(&gw, &session, slow(3)));
    let (role_a, rows_a) = query_outcome(&a);
    let (role_b, rows_b) = query_outcome(&b);
    assert!(rows_a.is_ok() && rows_b.is_ok(), "{rows_a:?} {rows_b:?}");
    assert_ne!(role_a, role_b, "two calls shared a role");
    assert!(
        roles(&admin, &format!("pc{id}_")).await.is_empty(),
        "roles outlived their calls"
    );
    drop(gw);
    drop_schemas(&admin, &id).await;
}

#[tokio::test]
async fn t11_roles_left_by_a_killed_gateway_expire_and_are_swept_at_the_next_start() {
    let Some(admin) = admin_url() else { return };
    let id = unique();
    schemas(&admin, &id).await;
    let mut gw = db_gateway(&admin, &id, "");
    let session = open_session(&gw.url).await;
    let url = gw.url.clone();
    let long = query_call(2, &format!("SELECT pg_sleep(30), count(*) FROM s_{id}.orders"));
    let pending = tokio::spawn(async move { post(&url, long, &[("mcp-session-id", session.as_str())]).await });
    // Wait until the call's role exists, then kill the gateway mid-call.
    let prefix = format!("pc{id}_");
    let mut left = Vec::new();
    for _ in 0..200 {
        left = roles(&admin, &prefix).await;
        if !left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(left.len(), 1, "the call's role exists while it runs");
    let _ = gw.child.kill();
    let _ = gw.child.wait();
    pending.abort();
    // Never valid past its TTL: VALID UNTIL is set (120 s from minting).
    let (_, valid_until) = &left[0];
    assert!(valid_until.is_some(), "the role has no VALID UNTIL");
    assert_eq!(roles(&admin, &prefix).await.len(), 1, "still there after the kill");
    // The next start sweeps it.
    let gw = gw.restart_with_env(&[("TEST_PG_ADMIN", admin.as_str())]);
    let logs = gw.logs_with("left behind");
    assert!(
        roles(&admin, &prefix).await.is_empty(),
        "not swept at start; logs:\n{logs}"
    );
    drop(gw);
    drop_schemas(&admin, &id).await;
}

#[tokio::test]
async fn t11_database_unreachable_denies_and_records_the_call() {
    let config: TempConfig = write_config("");
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"

[[servers]]
name = "demo"
command = {command}
spawn = "per-call"

[broker.sources.down]
kind = "postgres-role"
admin_url_env = "TEST_PG_ADMIN"
connect_url = "postgres://{{user}}:{{password}}@127.0.0.1:1/x"
grants = [{{ schema = "sales", privileges = ["select"] }}]

[broker.sources.gone]
kind = "secret"
file = "no-such-secret"

[[credentials]]
id = "db"
server = "demo"
tools = ["get_env"]
source = "down"
env = "DATABASE_URL"

[[credentials]]
id = "legacy"
server = "demo"
tools = ["echo"]
source = "gone"
env = "API_TOKEN"
"#,
        command = demo_server_command()
    );
    write_permit_all(&config, &text);
    let gw = GatewayProc::start_file_with_env(config, &[("TEST_PG_ADMIN", "postgres://postgres@127.0.0.1:1/x")]);
    let session = open_session(&gw.url).await;
    for (n, tool, source) in [(2, "get_env", "down"), (3, "echo", "gone")] {
        let body = json!({"jsonrpc":"2.0","id":n,"method":"tools/call","params":{"name":tool,"arguments":{}}});
        let reply = call(&gw, &session, body.to_string()).await;
        assert_eq!(reply.error_code(), DENIED, "{}", reply.body);
        let message = reply.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
        assert!(message.contains("credential could not be issued"), "{message}");
        assert!(message.contains(source), "names the source: {message}");
    }
    // Both denies are recorded, at the scope stage, and nothing was allowed.
    let records = decision_records(&gw);
    let denied: Vec<&Value> = records
        .iter()
        .filter(|r| r["reason"].as_str().unwrap_or_default().starts_with("scope: "))
        .collect();
    assert_eq!(denied.len(), 2, "{records:?}");
    assert!(denied.iter().all(|r| r["decision"] == "deny"), "{denied:?}");
}

#[tokio::test]
async fn t11_a_per_call_child_sees_only_its_credential_and_none_of_the_gateways_environment() {
    let config: TempConfig = write_config("");
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"

[[servers]]
name = "demo"
command = {command}
env = {{ STATIC = "configured" }}
spawn = "per-call"

[broker.sources.token]
kind = "secret"
file = "token.txt"

[[credentials]]
id = "token-for-get-env"
server = "demo"
tools = ["get_env"]
source = "token"
env = "API_TOKEN"
"#,
        command = demo_server_command()
    );
    write_permit_all(&config, &text);
    std::fs::write(config.dir.path().join("token.txt"), "first-token\n").unwrap();
    let dir = config.dir.path().to_owned();
    let gw = GatewayProc::start_file_with_env(config, &[("GATEWAY_CANARY", "gateway-only-value")]);
    let session = open_session(&gw.url).await;
    let get_env = |n: u64| {
        json!({"jsonrpc":"2.0","id":n,"method":"tools/call","params":{"name":"get_env","arguments":{}}}).to_string()
    };
    let env_of = |reply: &Reply| -> Value {
        let body = reply.json();
        let structured = &body["result"]["structuredContent"];
        if structured.is_object() {
            return structured.clone();
        }
        serde_json::from_str(body["result"]["content"][0]["text"].as_str().unwrap_or("{}")).unwrap_or_default()
    };
    let first = env_of(&call(&gw, &session, get_env(2)).await);
    assert_eq!(first["API_TOKEN"], "first-token", "{first}");
    assert_eq!(first["STATIC"], "configured", "{first}");
    assert!(
        first.get("GATEWAY_CANARY").is_none(),
        "the child saw the gateway's environment: {first}"
    );
    // A fresh child per call: a rotated secret reaches the next call, without a restart.
    std::fs::write(dir.join("token.txt"), "second-token\n").unwrap();
    let second = env_of(&call(&gw, &session, get_env(3)).await);
    assert_eq!(second["API_TOKEN"], "second-token", "{second}");
    // A call no rule names runs on a child without any credential.
    let echo = json!({"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"echo","arguments":{"x":1}}});
    let reply = call(&gw, &session, echo.to_string()).await;
    assert!(reply.json()["result"].is_object(), "{}", reply.body);
}

#[tokio::test]
async fn t11_jwt_verifies_with_the_served_jwks_and_carries_the_calls_digest() {
    let upstream = demo_http_upstream();
    let config: TempConfig = write_config("");
    let dir = config.dir.path().to_owned();
    let (code, text) = portcullis(&["audit", "keygen", "--out", dir.join("jwt.key").to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let admin_port = free_port();
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"
anonymous_principal = "spiffe://example.org/agent"

[admin]
listen = "127.0.0.1:{admin_port}"

[[servers]]
name = "web"
url = "{url}"

[broker.sources.signer]
kind = "jwt"
key = "jwt.key"
issuer = "https://gateway.example"
ttl_secs = 60

[[credentials]]
id = "web-jwt"
server = "web"
source = "signer"
header = "Authorization"
prefix = "Bearer "
"#,
        url = upstream.url
    );
    write_permit_all(&config, &text);
    let gw = GatewayProc::start_file(config);
    let session = open_session(&gw.url).await;
    let headers = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"http_headers","arguments":{}}});
    let reply = call(&gw, &session, headers.to_string()).await;
    let body = reply.json();
    let seen = body["result"]["structuredContent"].clone();
    let seen = if seen.is_object() {
        seen
    } else {
        serde_json::from_str(body["result"]["content"][0]["text"].as_str().unwrap_or("{}")).unwrap_or_default()
    };
    let authorization = seen["authorization"].as_str().unwrap_or_default().to_owned();
    let token = authorization
        .strip_prefix("Bearer ")
        .unwrap_or_else(|| panic!("no bearer token reached the upstream: {body}"));
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("http://127.0.0.1:{admin_port}/.well-known/jwks.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap_or_default())
        .expect("the token's kid is in the served JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&["web"]);
    validation.set_issuer(&["https://gateway.example"]);
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("the token verifies with the served JWKS")
        .claims;
    assert_eq!(claims["sub"], "spiffe://example.org/agent");
    assert_eq!(claims["scope"], "http_headers");
    let empty_args = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(b"{}"));
    assert_eq!(claims["args_sha256"], empty_args.as_str(), "{claims}");
    // It names the decision that allowed the call.
    let decision = decision_records(&gw)
        .into_iter()
        .find(|r| r["ext"]["credential_rule"] == "web-jwt" && r["decision"] == "allow")
        .expect("an allow record naming the credential");
    assert_eq!(claims["decision_id"], decision["decision_id"], "{claims} {decision}");
    let exp = claims["exp"].as_u64().unwrap();
    let iat = claims["iat"].as_u64().unwrap();
    assert_eq!(exp - iat, 60, "{claims}");
}

#[tokio::test]
async fn t11_token_exchange_without_a_bearer_token_denies() {
    let upstream = demo_http_upstream();
    let config: TempConfig = write_config("");
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"

[[servers]]
name = "web"
url = "{url}"

[broker.sources.exchange]
kind = "token-exchange"
token_endpoint = "http://127.0.0.1:{port}/token"
client_id = "portcullis"

[[credentials]]
id = "web-exchange"
server = "web"
source = "exchange"
header = "Authorization"
prefix = "Bearer "
"#,
        url = upstream.url,
        port = free_port(),
    );
    write_permit_all(&config, &text);
    let gw = GatewayProc::start_file(config);
    let session = open_session(&gw.url).await;
    let echo = json!({"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"echo","arguments":{}}});
    let reply = call(&gw, &session, echo.to_string()).await;
    assert_eq!(reply.error_code(), DENIED, "{}", reply.body);
    assert!(reply.body.contains("exchange"), "{}", reply.body);
}

#[tokio::test]
async fn t12_secrets_the_broker_handled_appear_in_no_log_record_or_answer() {
    let upstream = demo_http_upstream();
    let config: TempConfig = write_config("");
    let dir = config.dir.path().to_owned();
    let env_canary = format!("env-canary-{}", unique());
    let header_canary = format!("header-canary-{}", unique());
    std::fs::write(dir.join("env-secret"), &env_canary).unwrap();
    std::fs::write(dir.join("header-secret"), &header_canary).unwrap();
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"

[audit]
path = "audit"
key = "audit.key"
capture_bodies = true

[[servers]]
name = "local"
command = {command}
spawn = "per-call"

[[servers]]
name = "web"
url = "{url}"

[broker.sources.env_secret]
kind = "secret"
file = "env-secret"

[broker.sources.header_secret]
kind = "secret"
file = "header-secret"

[[credentials]]
id = "local-token"
server = "local"
source = "env_secret"
env = "API_TOKEN"

[[credentials]]
id = "web-token"
server = "web"
source = "header_secret"
header = "X-Api-Key"
"#,
        command = demo_server_command(),
        url = upstream.url,
    );
    write_permit_all(&config, &text);
    let gw = GatewayProc::start_file(config);
    let session = open_session(&gw.url).await;
    let mut answers = String::new();
    for (n, tool) in [(2, "local__echo"), (3, "web__echo"), (4, "local__crash")] {
        let body =
            json!({"jsonrpc":"2.0","id":n,"method":"tools/call","params":{"name":tool,"arguments":{"note":"hello"}}});
        let reply = tokio::time::timeout(Duration::from_secs(90), call(&gw, &session, body.to_string())).await;
        if let Ok(reply) = reply {
            answers.push_str(&reply.body);
        }
    }
    assert!(answers.contains("hello"), "the calls were answered: {answers}");
    let logs = gw.logs();
    let mut sinks = vec![("gateway stderr (debug)", logs), ("answers", answers)];
    for entry in walk(&dir.join("audit")) {
        let bytes = std::fs::read(&entry).unwrap();
        sinks.push(("audit log", String::from_utf8_lossy(&bytes).into_owned()));
    }
    for (sink, text) in &sinks {
        for canary in [&env_canary, &header_canary] {
            assert!(!text.contains(canary.as_str()), "{sink} holds a secret");
        }
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `check-config` explains a rule whose delivery its server cannot take.
#[test]
fn credential_rules_must_match_their_servers_transport() {
    let config = write_config(&format!(
        r#"[[servers]]
name = "demo"
command = {command}

[broker.sources.s]
kind = "secret"
env = "X"

[[credentials]]
id = "r"
server = "demo"
source = "s"
env = "TOKEN"
"#,
        command = demo_server_command()
    ));
    let out = Command::new(bin("portcullis"))
        .args(["check-config", "--config", config.path.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("credentials[0].env") && text.contains("spawn = \"per-call\""),
        "{text}"
    );
}

/// A real RFC 8693 token endpoint for the test: it checks the form, answers
/// `exchanged-<n>` for each exchange it performs, or 500 once told to fail.
struct TokenEndpoint {
    url: String,
    exchanges: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    failing: std::sync::Arc<std::sync::atomic::AtomicBool>,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl TokenEndpoint {
    async fn start() -> Self {
        use std::sync::atomic::Ordering;
        let exchanges = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (count, fail, log) = (exchanges.clone(), failing.clone(), seen.clone());
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move |body: String| {
                let (count, fail, log) = (count.clone(), fail.clone(), log.clone());
                async move {
                    log.lock().unwrap().push(body.clone());
                    if fail.load(Ordering::SeqCst) {
                        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down".to_owned());
                    }
                    let form: std::collections::HashMap<String, String> = url_form(&body);
                    let grant = form.get("grant_type").map(String::as_str);
                    if grant != Some("urn:ietf:params:oauth:grant-type:token-exchange")
                        || form.get("audience").map(String::as_str) != Some("web")
                        || form.get("subject_token").is_none_or(String::is_empty)
                    {
                        let error = json!({"error": "invalid_request"}).to_string();
                        return (axum::http::StatusCode::BAD_REQUEST, error);
                    }
                    let n = count.fetch_add(1, Ordering::SeqCst) + 1;
                    let token = json!({"access_token": format!("exchanged-{n}"), "token_type": "Bearer",
                        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token", "expires_in": 300});
                    (axum::http::StatusCode::OK, token.to_string())
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            url: format!("http://{addr}/token"),
            exchanges,
            failing,
            seen,
        }
    }
}

fn url_form(body: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(&format!("http://x/?{body}"))
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn t11_token_exchange_swaps_the_callers_token_caches_it_and_denies_when_the_endpoint_fails() {
    use portcullis_identity::test_issuer::{AUDIENCE, ISSUER, Issuer, TestKey, good_claims};
    use std::sync::atomic::Ordering;
    let key = TestKey::ec("k1");
    let issuer = Issuer::start(&[&key]).await;
    let endpoint = TokenEndpoint::start().await;
    let upstream = demo_http_upstream();
    let config: TempConfig = write_config("");
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"
[listen.oauth]
issuer = "{ISSUER}"
resource = "{AUDIENCE}"
jwks_url = "{jwks}"

[[servers]]
name = "web"
url = "{url}"

[broker.sources.exchange]
kind = "token-exchange"
token_endpoint = "{token}"
client_id = "portcullis"
client_secret_env = "TEST_CLIENT_SECRET"

[[credentials]]
id = "web-exchange"
server = "web"
source = "exchange"
header = "Authorization"
prefix = "Bearer "
"#,
        jwks = issuer.url("/jwks"),
        url = upstream.url,
        token = endpoint.url,
    );
    write_permit_all(&config, &text);
    let gw = GatewayProc::start_file_with_env(config, &[("TEST_CLIENT_SECRET", "client-secret-value")]);
    let alice = key.sign(&good_claims());
    let bob = {
        let mut claims = good_claims();
        claims["sub"] = json!("bob");
        key.sign(&claims)
    };
    let headers_seen = |reply: &Reply| reply.json()["result"]["structuredContent"]["authorization"].clone();
    let call_as = |token: String, session: Option<String>, id: u64| {
        let url = gw.url.clone();
        async move {
            let auth = format!("Bearer {token}");
            let session = match session {
                Some(s) => s,
                None => {
                    let init = post(
                        &url,
                        portcullis_e2e::raw_http::initialize(),
                        &[("authorization", &auth)],
                    )
                    .await;
                    let sid = init
                        .session
                        .clone()
                        .unwrap_or_else(|| panic!("no session: {}", init.body));
                    let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"}).to_string();
                    post(&url, note, &[("authorization", &auth), ("mcp-session-id", &sid)]).await;
                    sid
                }
            };
            let body =
                json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"http_headers","arguments":{}}});
            let reply = post(
                &url,
                body.to_string(),
                &[("authorization", &auth), ("mcp-session-id", &session)],
            )
            .await;
            (session, reply)
        }
    };
    // Alice's token is exchanged; the upstream sees the exchanged token, never hers.
    let (session, first) = call_as(alice.clone(), None, 2).await;
    assert_eq!(headers_seen(&first), json!("Bearer exchanged-1"), "{}", first.body);
    assert!(
        !first.body.contains(&alice),
        "the caller's own token reached the upstream"
    );
    let form = endpoint.seen.lock().unwrap()[0].clone();
    let form = url_form(&form);
    assert_eq!(
        form.get("subject_token"),
        Some(&alice),
        "subject token = the caller's bearer"
    );
    assert_eq!(form.get("scope").map(String::as_str), Some("http_headers"));
    // Cached per (principal, audience, scope): the next call makes no exchange.
    let (_, second) = call_as(alice.clone(), Some(session), 3).await;
    assert_eq!(headers_seen(&second), json!("Bearer exchanged-1"), "{}", second.body);
    assert_eq!(endpoint.exchanges.load(Ordering::SeqCst), 1);
    // Another user needs an exchange of their own; with the endpoint failing, denied.
    endpoint.failing.store(true, Ordering::SeqCst);
    let (_, refused) = call_as(bob, None, 4).await;
    assert_eq!(refused.error_code(), DENIED, "{}", refused.body);
    assert!(refused.body.contains("exchange"), "{}", refused.body);
    // The client secret and the tokens are in no log line.
    let logs = gw.logs();
    for secret in ["client-secret-value", "exchanged-1", alice.as_str()] {
        assert!(!logs.contains(secret), "a secret reached the gateway's log");
    }
}

/// T19 with `spawn = "per-call"`: every call's child is checked against the server's pins
/// before it starts, so a file changed between two calls stops the second.
#[tokio::test]
async fn t19_a_per_call_child_is_checked_against_its_pins_at_every_spawn() {
    let config: TempConfig = write_config("");
    let dir = config.dir.path().to_owned();
    let pinned = dir.join("data.txt");
    std::fs::write(&pinned, "version 1").unwrap();
    let digest = portcullis_attest::file_sha256(&pinned).unwrap();
    let text = format!(
        r#"[listen]
http = "127.0.0.1:0"

[[servers]]
name = "demo"
command = {command}
spawn = "per-call"
pinned_files = {{ "data.txt" = "sha256:{digest}" }}
"#,
        command = demo_server_command()
    );
    write_permit_all(&config, &text);
    let gw = GatewayProc::start_file(config);
    let session = open_session(&gw.url).await;
    let echo = |n: u64| {
        json!({"jsonrpc":"2.0","id":n,"method":"tools/call","params":{"name":"echo","arguments":{"n":n}}}).to_string()
    };
    let first = call(&gw, &session, echo(2)).await;
    assert!(first.json()["result"].is_object(), "{}", first.body);
    std::fs::write(&pinned, "version 2").unwrap();
    let second = call(&gw, &session, echo(3)).await;
    let message = second.json()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(
        message.contains("data.txt"),
        "the changed file stops the next per-call child: {}",
        second.body
    );
}
