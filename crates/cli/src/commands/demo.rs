//! `portcullis demo`: the gateway and the bundled demo server on loopback, and a
//! short scripted agent session that shows what is let through and what is
//! stopped, and why. Exits 0 when every step behaved as expected.
use std::{net::SocketAddr, process::ExitCode};

use anyhow::Context;
use portcullis_gateway::serve_http;
use serde_json::{Value, json};

use crate::{
    assemble, audit_open,
    commands::{
        demo_credentials::{self, DemoDb},
        init::starter_config,
    },
    config, shutdown,
};

struct Demo {
    http: reqwest::Client,
    /// Trusts the gateway but presents no client certificate.
    no_svid: reqwest::Client,
    url: String,
    session: Option<String>,
    failures: usize,
    first_receipt: Option<u64>,
}

pub async fn run(serve: bool, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find this program's own path")?;
    let addr = listen.unwrap_or_else(|| {
        let port = if serve { 8080 } else { 0 };
        SocketAddr::from(([127, 0, 0, 1], port))
    });
    let mut text = starter_config(&exe.to_string_lossy(), &addr.to_string(), "127.0.0.1:0");
    let home = tempfile::tempdir().context("cannot create a temporary directory for the demo")?;
    // Per-call database roles, when a PostgreSQL is at hand (step 7).
    let db = DemoDb::prepare().await;
    let mut env = config::ConfigEnv::default();
    if let Ok(db) = &db {
        text = demo_credentials::per_call(&text) + &db.config().map_err(|e| anyhow::anyhow!(e))?;
        env.vars.insert(
            demo_credentials::ADMIN_URL_VAR.to_owned(),
            portcullis_core::Secret::new(db.admin_url.clone()),
        );
    }
    // The approver the starter config registers (`operator`), as `init` writes it.
    let approver_key = home.path().join(crate::commands::init::APPROVER_KEY);
    audit_open::generate(&approver_key)?;
    let policies = home.path().join("policies");
    std::fs::create_dir_all(&policies)?;
    std::fs::write(policies.join("tiers.cedar"), portcullis_policy::DEFAULT_CEDAR_POLICIES)?;
    std::fs::write(policies.join("credentials.cedar"), demo_credentials::DEMO_POLICY)?;
    // Mutual TLS out of the box: a dev CA, the gateway's SVID and the agent's.
    let pki = crate::commands::ca::starter_pki(home.path(), std::time::Duration::from_secs(3600))?;
    let loaded = config::parse_in(&text, "<demo>", home.path(), &env)?;
    let audit = loaded.audit.clone();
    let admin_listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("cannot listen on a loopback port for the demo's admin API")?;
    let admin_url = format!("http://{}", admin_listener.local_addr()?);
    let tls = loaded.tls.as_ref().map(assemble::tls_acceptor).transpose()?;
    let gateway = assemble::gateway(loaded, None, Some(crate::lock_note::LockNote::new("demo", None))).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_http(gateway.clone(), listener, tls, async move {
        let _ = stopped.await;
    }));
    let admin = tokio::spawn(portcullis_gateway::serve_admin(
        gateway.clone(),
        admin_listener,
        None,
        std::future::pending(),
    ));
    println!("Portcullis demo: gateway at https://{local}/mcp in front of the bundled demo server");
    println!(
        "The agent presents its SVID {} over mutual TLS\n",
        crate::commands::ca::STARTER_AGENT
    );
    let http = crate::commands::connect::host_name_tls(
        reqwest::Client::builder(),
        Some((&pki.agent_cert, &pki.agent_key)),
        Some(&pki.bundle),
    )?
    .build()
    .context("cannot set up the demo agent's TLS client")?;
    let no_svid = crate::commands::connect::host_name_tls(reqwest::Client::builder(), None, Some(&pki.bundle))?
        .build()
        .context("cannot set up the demo's TLS client")?;
    let mut demo = Demo {
        http,
        no_svid,
        url: format!("https://{local}/mcp"),
        session: None,
        failures: 0,
        first_receipt: None,
    };
    demo.script().await;
    demo.approval_step(&admin_url, &approver_key).await;
    demo.credentials_step(db.as_ref()).await;
    demo.end_session().await;
    if serve {
        println!("\nServing at https://{local}/mcp (mutual TLS) — Ctrl-C stops. Connect a desktop host with:");
        println!(
            "  portcullis connect https://{local}/mcp --cert {} --key {} --ca {}",
            pki.agent_cert.display(),
            pki.agent_key.display(),
            pki.bundle.display()
        );
        shutdown::signalled().await;
    }
    let _ = stop.send(());
    let _ = server.await;
    admin.abort();
    gateway.shutdown().await;
    drop(gateway);
    if let Some(settings) = &audit {
        demo.audit_step(settings).await;
    }
    if demo.failures > 0 {
        println!("\n{} demo step(s) did not behave as expected", demo.failures);
        return Ok(ExitCode::FAILURE);
    }
    println!("\nAll demo steps behaved as expected.");
    Ok(ExitCode::SUCCESS)
}

impl Demo {
    async fn script(&mut self) {
        println!("1. An agent opens a session (MCP 2025-11-25)");
        let init = json!({"jsonrpc":"2.0","id":1,"method":"initialize","params":{
            "protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"demo-agent","version":"1"}}});
        let (status, body, sid) = self.post(&init, &[]).await;
        self.session = sid;
        let server = body
            .pointer("/result/serverInfo/name")
            .and_then(Value::as_str)
            .unwrap_or("?");
        self.expect(
            status == 200 && self.session.is_some(),
            &format!("session opened with upstream `{server}`"),
        );
        self.notify().await;

        println!("\n2. It lists the tools: only what policy lets this caller use");
        let (_, body, _) = self
            .post(&json!({"jsonrpc":"2.0","id":2,"method":"tools/list"}), &[])
            .await;
        let tools = body
            .pointer("/result/tools")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let names: Vec<&str> = tools
            .iter()
            .filter_map(|t| t.get("name").and_then(Value::as_str))
            .collect();
        for name in &names {
            println!("     - {name}");
        }
        self.expect(
            !names.is_empty() && !names.contains(&"lookup_customer"),
            &format!(
                "{} tools listed; lookup_customer (read-sensitive) hidden: no scope",
                names.len()
            ),
        );

        println!("\n3. It calls tools; policy decides each call on its own (tiers: read, read-sensitive, write)");
        let why = "answer the customer's refund question";
        for (id, tool, args, reason, allowed) in [
            (3, "search_docs", json!({"query":"refund"}), Some(why), true),
            (4, "search_docs", json!({"query":"refund"}), None, false),
            (5, "lookup_customer", json!({"customer_id":"C-1001"}), Some(why), false),
        ] {
            let meta = match reason {
                Some(r) => json!({"io.portcullis/reason": r}),
                None => json!({}),
            };
            let call = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":tool,"arguments":args,"_meta":meta}});
            let (status, body, _) = self.post(&call, &[]).await;
            let receipt = body
                .pointer("/result/_meta/io.portcullis~1receipt/auditIndex")
                .and_then(Value::as_u64);
            self.first_receipt = self.first_receipt.or(receipt);
            let with = if reason.is_some() {
                "with a reason"
            } else {
                "without a reason"
            };
            if allowed {
                let text = body
                    .pointer("/result/content/0/text")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let short: String = text.chars().take(60).collect();
                self.expect(
                    status == 200 && body.get("result").is_some(),
                    &format!("{tool} {with}: allowed → {short}"),
                );
            } else {
                let why = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
                let denied = body.pointer("/error/code").and_then(Value::as_i64) == Some(-32013);
                self.expect(denied, &format!("{tool} {with}: {why}"));
            }
        }

        println!("\n4. Attacks the gateway stops before anything reaches the server");
        let refused = self
            .no_svid
            .post(&self.url)
            .body(init.to_string())
            .send()
            .await
            .is_err();
        self.expect(
            refused,
            "refused a caller without a client SVID, at the TLS handshake (T16)",
        );
        let list = json!({"jsonrpc":"2.0","id":6,"method":"tools/list"});
        let (status, body, _) = self.post(&list, &[("origin", "http://evil.example")]).await;
        self.expect_refusal(status, 403, &body, "a web page on a foreign Origin (DNS rebinding, T6)");
        let (status, body, _) = self
            .post_raw(br#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_docs","name":"delete_record"}}"#.to_vec(), &[])
            .await;
        self.expect_refusal(
            status,
            400,
            &body,
            "a message with a duplicate key (parser differential, T13)",
        );
        let saved = self.session.replace("0123456789abcdef0123456789abcdef".into());
        let (status, body, _) = self.post(&list, &[]).await;
        self.session = saved;
        self.expect_refusal(status, 404, &body, "a guessed session id (T3)");

        println!("\n5. A stateless MCP 2026-07-28 client: headers must agree with the body");
        let session = self.session.take();
        let meta = json!({"io.modelcontextprotocol/protocolVersion":"2026-07-28",
            "io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/clientInfo":{"name":"demo-agent","version":"1"},
            "io.portcullis/reason":"check the audit policy"});
        let call = json!({"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"search_docs","arguments":{"query":"audit"},"_meta":meta}});
        let good = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "search_docs"),
        ];
        let (status, body, _) = self.post(&call, &good).await;
        self.expect(
            status == 200 && body.get("result").is_some(),
            "tools/call with matching headers: relayed",
        );
        let bad = [
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "read_only_tool"),
        ];
        let (status, body, _) = self.post(&call, &bad).await;
        self.expect_refusal(status, 400, &body, "Mcp-Name says one tool, the body calls another");
        self.session = session;
    }

    /// Step 6: a write call waits until the approver `operator` approves it, from the admin
    /// API as `portcullis approvals approve` does (the binding signed with the approver key).
    async fn approval_step(&mut self, admin_url: &str, key: &std::path::Path) {
        println!("\n6. A write call waits for a human: the approver approves that exact call");
        let call = json!({"jsonrpc":"2.0","id":20,"method":"tools/call","params":{"name":"send_message",
            "arguments":{"to":"ops@example.com","body":"refund approved"},
            "_meta":{"io.portcullis/reason":"tell ops the refund is approved"}}});
        let (http, url, session) = (self.http.clone(), self.url.clone(), self.session.clone());
        let waiting = tokio::spawn(async move {
            let mut req = http
                .post(&url)
                .header("content-type", "application/json")
                .header("accept", "application/json")
                .body(call.to_string());
            if let Some(sid) = &session {
                req = req.header("mcp-session-id", sid);
            }
            match req.send().await {
                Ok(resp) => resp.json::<Value>().await.unwrap_or(Value::Null),
                Err(e) => json!({"error": {"message": e.to_string()}}),
            }
        });
        let approved = async {
            let admin = crate::commands::approvals::Admin::with_key(admin_url, key)?;
            let mut waiting_id = None;
            for _ in 0..100 {
                let listed = admin.send("GET", "/approvals", None).await?;
                if let Some(first) = listed["approvals"].as_array().and_then(|a| a.first()) {
                    println!(
                        "     pending: {} on {} by {}, reason: {}",
                        first["target"].as_str().unwrap_or("?"),
                        first["server"].as_str().unwrap_or("?"),
                        first["principal"]["workload"].as_str().unwrap_or("?"),
                        first["reason"].as_str().unwrap_or("-")
                    );
                    waiting_id = first["id"].as_str().map(str::to_owned);
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            let id = waiting_id.ok_or_else(|| anyhow::anyhow!("no call showed up as waiting for approval"))?;
            admin.approve(&id).await?;
            anyhow::Ok(id)
        }
        .await;
        match approved {
            Ok(id) => self.expect(
                true,
                &format!("operator approved request {id} (portcullis approvals approve)"),
            ),
            Err(e) => self.expect(false, &format!("approving the waiting call failed: {e:#}")),
        }
        let answer = waiting.await.unwrap_or(Value::Null);
        let sent = answer
            .pointer("/result/structuredContent/status")
            .and_then(Value::as_str)
            == Some("sent");
        self.expect(
            sent,
            "send_message, approved: forwarded once; its records name the approval",
        );
    }

    /// Step 7: the agent ends its session.
    /// Step 7: `query` runs with a database role minted for the call alone: it reads
    /// schema `sales`, is refused on `hr`, and is gone once the call is over.
    async fn credentials_step(&mut self, db: Result<&DemoDb, &String>) {
        println!("\n7. Least privilege: each `query` call gets its own database role, dropped afterwards");
        let db = match db {
            Ok(db) => db,
            Err(why) => {
                println!(
                    "   – skipped: no PostgreSQL ({why}); set {}=postgres://ADMIN@HOST:PORT/DB to see it",
                    demo_credentials::DEMO_POSTGRES_ENV
                );
                return;
            }
        };
        let mut roles = Vec::new();
        for (id, sql, readable) in [
            (30, "SELECT id, customer, total FROM sales.orders ORDER BY id", true),
            (31, "SELECT * FROM hr.salaries", false),
        ] {
            let call = json!({"jsonrpc":"2.0","id":id,"method":"tools/call","params":{"name":"query",
                "arguments":{"sql":sql},"_meta":{"io.portcullis/reason":"reconcile the refund with the order"}}});
            let (_, body, _) = self.post(&call, &[]).await;
            let (role, outcome) = demo_credentials::answer(&body);
            let role_text = role.clone().unwrap_or_else(|| "?".into());
            roles.extend(role);
            match (readable, outcome) {
                (true, Ok(rows)) => self.expect(
                    rows.as_array().is_some_and(|r| !r.is_empty()),
                    &format!("`{sql}` as role {role_text}: {rows}"),
                ),
                (false, Err(why)) => {
                    self.expect(why.contains("permission denied"), &format!("`{sql}`: refused ({why})"))
                }
                (_, outcome) => self.expect(false, &format!("`{sql}`: unexpected {outcome:?}")),
            }
        }
        let distinct = roles.len() == 2 && roles[0] != roles[1];
        self.expect(distinct, "each call ran as a role of its own");
        for role in &roles {
            match db.role_exists(role).await {
                Ok(exists) => self.expect(!exists, &format!("role {role} no longer exists")),
                Err(e) => self.expect(false, &format!("cannot check role {role}: {e}")),
            }
        }
    }

    async fn end_session(&mut self) {
        println!("\n8. The agent ends its session");
        let mut req = self.http.delete(&self.url);
        if let Some(sid) = &self.session {
            req = req.header("mcp-session-id", sid);
        }
        let ok = req.send().await.map(|r| r.status().as_u16() == 200).unwrap_or(false);
        self.expect(ok, "session closed; its server process stopped");
    }

    /// Step 8: the audit log, read back and verified offline.
    async fn audit_step(&mut self, settings: &config::AuditSettings) {
        println!("\n9. The audit log: every call recorded before its answer was released");
        let config::AuditStoreSettings::File { dir } = &settings.store else {
            return;
        };
        let outcome = async {
            let reader = portcullis_audit::store::FileReader::open(dir)?;
            let mut keys = portcullis_audit::TrustedKeys::new();
            keys.insert(portcullis_audit::LogPublicKey::load(&audit_open::public_key_path(
                &settings.key,
            ))?);
            let report = portcullis_audit::verify(&reader, &keys, &mut |_| {}).await?;
            anyhow::Ok(report)
        }
        .await;
        match outcome {
            Ok(report) if report.is_ok() => self.expect(
                report.records > 0,
                &format!(
                    "{} records, {} signed checkpoint(s): the log verifies (receipt of the first call: index {})",
                    report.records,
                    report.checkpoints,
                    self.first_receipt.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
                ),
            ),
            Ok(report) => self.expect(false, &format!("audit log does not verify: {:?}", report.failure)),
            Err(e) => self.expect(false, &format!("audit log unreadable: {e}")),
        }
    }

    async fn notify(&self) {
        let note = json!({"jsonrpc":"2.0","method":"notifications/initialized"});
        let _ = self.post(&note, &[]).await;
    }

    async fn post(&self, body: &Value, headers: &[(&str, &str)]) -> (u16, Value, Option<String>) {
        self.post_raw(serde_json::to_vec(body).unwrap_or_default(), headers)
            .await
    }

    async fn post_raw(&self, body: Vec<u8>, headers: &[(&str, &str)]) -> (u16, Value, Option<String>) {
        let mut req = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body);
        if let Some(sid) = &self.session {
            req = req.header("mcp-session-id", sid);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let sid = resp
                    .headers()
                    .get("mcp-session-id")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = resp.json::<Value>().await.unwrap_or(Value::Null);
                (status, body, sid)
            }
            Err(e) => (0, json!({"error": {"message": e.to_string()}}), None),
        }
    }

    fn expect(&mut self, ok: bool, what: &str) {
        if ok {
            println!("   ✔ {what}");
        } else {
            self.failures += 1;
            println!("   ✘ unexpected: {what}");
        }
    }

    fn expect_refusal(&mut self, status: u16, want: u16, body: &Value, what: &str) {
        let why = body.pointer("/error/message").and_then(Value::as_str).unwrap_or("");
        if status == want {
            println!("   ✔ refused {what}\n       HTTP {status}: {why}");
        } else {
            self.failures += 1;
            println!("   ✘ expected HTTP {want} for {what}, got {status}: {body}");
        }
    }
}
