//! `portcullis approvals …`: approvers list the calls waiting for approval on a gateway's
//! admin listener, show one, approve or deny it; and sign a call's binding offline
//! (`sign`), for a host to send with the call. Requests to the admin listener are signed
//! with the approver key (`--key`, header `x-portcullis-approver`) and/or made over mutual
//! TLS with an approver SVID (`--cert`, `--cert-key`, `--ca`). Approving signs the request's
//! binding, so the audit record names the approver's signature.
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use clap::{Args, Subcommand};
use portcullis_approvals::{Binding, admin_auth, token, unix_now};
use portcullis_audit::LogSigner;
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List the calls waiting for approval.
    List(AdminArgs),
    /// Show one approval request: the call, its reason and arguments, and its binding.
    Show {
        /// The approval request id (from `list`, the gateway's log, or the refused call's error).
        id: String,
        /// Print only the binding, as `approvals sign --call` reads it.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Approve a waiting call: signs its binding with your key and sends the token.
    Approve {
        /// The approval request id (from `list`).
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Deny a waiting call.
    Deny {
        /// The approval request id (from `list`).
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Sign a call's binding offline and print the approval token; the host sends it with
    /// the call in `params._meta["io.portcullis/approval"]`.
    Sign {
        /// Your approver key (`portcullis audit keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The binding (`approvals show ID --json`, or `error.data.approval.binding` of the refused call).
        #[arg(long)]
        call: PathBuf,
    },
}

/// Where the admin listener is and who you are.
#[derive(Debug, Args)]
pub struct AdminArgs {
    /// The gateway's config file: its `[admin] listen` is the address.
    #[arg(long, short, env = "PORTCULLIS_CONFIG", required_unless_present = "admin")]
    config: Option<PathBuf>,
    /// The admin listener's URL instead (e.g. http://127.0.0.1:9443).
    #[arg(long)]
    admin: Option<String>,
    /// Your approver key (`portcullis audit keygen`): signs each request.
    #[arg(long)]
    key: Option<PathBuf>,
    /// Your approver SVID certificate chain (PEM), for an admin listener over mutual TLS.
    #[arg(long, requires = "cert_key")]
    cert: Option<PathBuf>,
    /// The private key of --cert.
    #[arg(long, requires = "cert")]
    cert_key: Option<PathBuf>,
    /// The CA bundle that signs the gateway's certificate (https only).
    #[arg(long)]
    ca: Option<PathBuf>,
}

pub async fn run(command: ApprovalsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ApprovalsCommand::List(admin) => {
            let listed = Admin::new(&admin)?.send("GET", "/approvals", None).await?;
            let items = listed["approvals"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no calls are waiting for approval");
            }
            for item in &items {
                println!("{}", summary(item));
            }
        }
        ApprovalsCommand::Show { id, json, admin } => {
            let entry = Admin::new(&admin)?
                .send("GET", &format!("/approvals/{id}"), None)
                .await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&entry["binding"])?);
            } else {
                println!("{}", summary(&entry));
                println!("{}", serde_json::to_string_pretty(&entry)?);
            }
        }
        ApprovalsCommand::Approve { id, admin } => {
            let answer = Admin::new(&admin)?.approve(&id).await?;
            println!(
                "approval request {id}: {} ({} of {} approvals)",
                answer["state"].as_str().unwrap_or("?"),
                answer["approved_by"].as_array().map_or(0, Vec::len),
                answer["required"]
            );
        }
        ApprovalsCommand::Deny { id, admin } => {
            let answer = Admin::new(&admin)?
                .send("POST", &format!("/approvals/{id}/deny"), Some(json!({})))
                .await?;
            println!("approval request {id}: {}", answer["state"].as_str().unwrap_or("?"));
        }
        ApprovalsCommand::Sign { key, call } => {
            let signer = load_key(&key)?;
            let bytes = std::fs::read(&call).with_context(|| format!("cannot read {}", call.display()))?;
            let binding = Binding::from_slice(&bytes)
                .with_context(|| format!("{} is not an approval binding", call.display()))?;
            if binding.expires_at < unix_now() {
                anyhow::bail!(
                    "the approval request {} expired at {} (Unix seconds); the caller must make the call again",
                    binding.id,
                    binding.expires_at
                );
            }
            println!(
                "{}",
                token::sign(&binding, signer.signing_key(), signer.key_id().as_str())
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per request for `list`.
fn summary(item: &Value) -> String {
    let s = |k: &str| item[k].as_str().unwrap_or("-").to_owned();
    let principal = &item["principal"];
    format!(
        "{id}  {state}  {server}/{target} ({tier})  by {workload}{user}  reason: {reason}  approvals: {given}/{required}  expires {exp}",
        id = s("id"),
        state = s("state"),
        server = s("server"),
        target = s("target"),
        tier = s("tier"),
        workload = principal["workload"].as_str().unwrap_or("-"),
        user = principal["user"]
            .as_str()
            .map(|u| format!(" (user {u})"))
            .unwrap_or_default(),
        reason = s("reason"),
        given = item["approved_by"].as_array().map_or(0, Vec::len),
        required = item["required"],
        exp = item["expires_at"],
    )
}

fn load_key(path: &Path) -> anyhow::Result<LogSigner> {
    LogSigner::load(path).with_context(|| format!("cannot load the approver key {}", path.display()))
}

/// A client of one admin listener.
pub(crate) struct Admin {
    base: String,
    client: reqwest::Client,
    signer: Option<LogSigner>,
}

impl Admin {
    pub(crate) fn new(args: &AdminArgs) -> anyhow::Result<Self> {
        let base = match (&args.admin, &args.config) {
            (Some(url), _) => url.trim_end_matches('/').to_owned(),
            (None, Some(config)) => admin_url(config)?,
            (None, None) => anyhow::bail!("give --config (its [admin] listen) or --admin URL"),
        };
        let signer = args.key.as_deref().map(load_key).transpose()?;
        if signer.is_none() && args.cert.is_none() {
            anyhow::bail!(
                "say who you are: --key APPROVER_KEY (a registered approver key), or --cert/--cert-key with an approver SVID"
            );
        }
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30));
        if base.starts_with("https://") {
            builder = super::connect::host_name_tls(
                builder,
                args.cert.as_deref().zip(args.cert_key.as_deref()),
                args.ca.as_deref(),
            )?;
        } else if args.cert.is_some() || args.ca.is_some() {
            anyhow::bail!("--cert, --cert-key and --ca need an https:// admin listener; `{base}` is plain HTTP");
        }
        Ok(Self {
            base,
            client: builder.build().context("cannot set up the HTTP client")?,
            signer,
        })
    }

    /// A client of the admin listener at `base` signing with the approver key at `key`.
    pub(crate) fn with_key(base: &str, key: &Path) -> anyhow::Result<Self> {
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .timeout(Duration::from_secs(30))
                .build()
                .context("cannot set up the HTTP client")?,
            signer: Some(load_key(key)?),
        })
    }

    /// Approves request `id`: signs its binding with the approver key (when there is one)
    /// and sends the token. Returns the gateway's answer.
    pub(crate) async fn approve(&self, id: &str) -> anyhow::Result<Value> {
        let entry = self.send("GET", &format!("/approvals/{id}"), None).await?;
        let body = match &self.signer {
            Some(signer) => {
                let binding: Binding = serde_json::from_value(entry["binding"].clone())
                    .context("the gateway sent a binding this version cannot read")?;
                json!({"token": token::sign(&binding, signer.signing_key(), signer.key_id().as_str())})
            }
            None => json!({}),
        };
        self.send("POST", &format!("/approvals/{id}/approve"), Some(body)).await
    }

    /// Sends one request (signed with the approver key, if any) and returns the JSON answer;
    /// a refusal becomes an error carrying the gateway's message.
    pub(crate) async fn send(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let bytes = body.map(|b| b.to_string().into_bytes()).unwrap_or_default();
        let url = format!("{}{path}", self.base);
        let mut request = match method {
            "POST" => self
                .client
                .post(&url)
                .header("content-type", "application/json")
                .body(bytes.clone()),
            _ => self.client.get(&url),
        };
        if let Some(signer) = &self.signer {
            let header = admin_auth::sign(
                signer.signing_key(),
                signer.key_id().as_str(),
                method,
                path,
                unix_now(),
                &bytes,
            );
            request = request.header(admin_auth::HEADER, header);
        }
        let response = request.send().await.with_context(|| {
            format!(
                "cannot reach the admin listener at {}; is the gateway running with [admin] listen?",
                self.base
            )
        })?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let message = answer["error"].as_str().unwrap_or("no message");
            anyhow::bail!("the gateway refused ({status}): {message}");
        }
        Ok(answer)
    }
}

/// `http(s)://<[admin] listen>` of a config file (https when the front has TLS and
/// `[admin] tls` is not `false`).
fn admin_url(config: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let value: toml::Value =
        toml::from_str(&text).with_context(|| format!("{} is not valid TOML", config.display()))?;
    let listen = value
        .get("admin")
        .and_then(|a| a.get("listen"))
        .and_then(toml::Value::as_str)
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} has no [admin] listen; add one (e.g. listen = \"127.0.0.1:9443\") and restart the gateway, or give --admin URL",
                config.display()
            )
        })?;
    let admin_tls = value
        .get("admin")
        .and_then(|a| a.get("tls"))
        .and_then(toml::Value::as_bool)
        != Some(false);
    let tls = admin_tls && value.get("listen").and_then(|l| l.get("tls")).is_some();
    Ok(format!("{}://{listen}", if tls { "https" } else { "http" }))
}
