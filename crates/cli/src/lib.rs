//! The `portcullis` command line: argument parsing, dispatch to one module per subcommand
//! (`commands/`), and the mapping of failures to exit codes.
//!
//! Architecture invariant: this crate is the only one that reads the
//! environment, arguments and config files; libraries receive validated config.
#![forbid(unsafe_code)]

mod assemble;
mod audit_open;
mod commands;
pub mod config;
mod duration;
pub mod embed;
mod logging;
mod open_files;
mod policy_open;
mod preflight;
mod shutdown;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Portcullis: a zero-trust gateway for the Model Context Protocol.
#[derive(Debug, Parser)]
#[command(name = "portcullis", version, about, long_about = None)]
pub struct Cli {
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: logging::LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway's HTTP front with the given config.
    Run {
        /// The TOML config file.
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Serve one client on stdin/stdout (for desktop hosts that launch a command).
    Stdio {
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// Expose only this server of the config (no namespacing).
        #[arg(long)]
        server: Option<String>,
    },
    /// Validate a config file without starting anything.
    CheckConfig {
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Write a working starter config into DIR (default: current directory).
    Init {
        dir: Option<PathBuf>,
        /// Overwrite files that already exist.
        #[arg(long)]
        force: bool,
    },
    /// Run a complete local demonstration on embedded defaults.
    Demo {
        /// Keep the gateway running after the scripted session, for a real client.
        #[arg(long)]
        serve: bool,
        /// Address for the demo gateway (default: a free loopback port; 127.0.0.1:8080 with --serve).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Bridge a stdio MCP client to a gateway over Streamable HTTP(S), presenting an SVID.
    Connect(commands::connect::ConnectArgs),
    /// Validate, test and explain the policy set.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Verify, read and prove the audit log.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Pinned servers: write, sign, verify and amend server manifests.
    #[command(subcommand)]
    Manifest(commands::manifest::ManifestCommand),
    /// Check a signed result receipt offline against the gateway's public key(s).
    VerifyReceipt(commands::verify_receipt::VerifyReceiptArgs),
    /// Development CA: create a trust domain and issue short-lived SVIDs.
    #[command(subcommand)]
    Ca(commands::ca::CaCommand),
    /// Run the bundled demo MCP server on stdio (used by `demo` and `init` configs).
    #[command(hide = true)]
    DemoServer {
        /// Also expose the test tools (echo, crash, hang, ...).
        #[arg(long)]
        test_tools: bool,
        /// Serve Streamable HTTP at ADDR instead of stdio.
        #[arg(long)]
        http: Option<std::net::SocketAddr>,
        /// Serve HTTPS with this certificate chain (PEM); needs --http and --tls-key.
        #[arg(long, requires_all = ["http", "tls_key"])]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert.
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates (SVIDs) chaining to this CA bundle; needs --tls-cert.
        #[arg(long, requires = "tls_cert")]
        client_ca: Option<PathBuf>,
        /// List `fetch_weather`, whose description turns hostile after N calls (rug-pull tests).
        #[arg(long, value_name = "N", env = "PORTCULLIS_DEMO_RUG_PULL_AFTER")]
        rug_pull_after: Option<u32>,
        /// List a corpus of poisoned tool definitions (tool-poisoning tests).
        #[arg(long)]
        poisoned_tools: bool,
        /// Append one line (the tool's name) to FILE for every tools/call received (tests
        /// count what reached the server).
        #[arg(long, value_name = "FILE")]
        call_log: Option<PathBuf>,
    },
}

/// Runs the command line and maps failures to exit codes: 0 ok, 1 failure, 2 bad config.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(code) => code,
        Err(e) => {
            let is_config = e.downcast_ref::<config::ConfigError>().is_some();
            eprintln!("error: {e:#}");
            if is_config {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => commands::run::run(&config).await,
        Command::Stdio { config, server } => commands::stdio::run(&config, server.as_deref()).await,
        Command::CheckConfig { config } => commands::check_config::run(&config),
        Command::Init { dir, force } => commands::init::run(dir, force),
        Command::Demo { serve, listen } => commands::demo::run(serve, listen).await,
        Command::Audit(command) => commands::audit::run(command).await,
        Command::Policy(command) => commands::policy::run(command),
        Command::Ca(command) => commands::ca::run(command),
        Command::Connect(args) => commands::connect::run(args).await,
        Command::Manifest(command) => commands::manifest::run(command).await,
        Command::VerifyReceipt(args) => commands::verify_receipt::run(args),
        Command::DemoServer {
            test_tools,
            http,
            tls_cert,
            tls_key,
            client_ca,
            rug_pull_after,
            poisoned_tools,
            call_log,
        } => {
            let opts = portcullis_demo_server::DemoOptions {
                test_tools,
                rug_pull_after,
                poisoned_tools,
                call_log,
            };
            match (http, tls_cert, tls_key) {
                (Some(addr), Some(cert), Some(key)) => {
                    let tls = portcullis_demo_server::HttpsOptions { cert, key, client_ca };
                    portcullis_demo_server::serve_https(addr, opts, tls).await?
                }
                (Some(addr), _, _) => portcullis_demo_server::serve_http(addr, opts).await?,
                (None, _, _) => portcullis_demo_server::serve_stdio(opts).await?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
