//! The `portcullis` command line: argument parsing, dispatch to one module per subcommand
//! (`commands/`), and the mapping of failures to exit codes.
//!
//! Architecture invariant: this crate is the only one that reads the
//! environment, arguments and config files; libraries receive validated config.
#![forbid(unsafe_code)]

pub mod alloc_stats;
mod assemble;
mod audit_open;
mod commands;
pub mod config;
mod duration;
pub mod embed;
mod lock_note;
mod logging;
mod open_files;
mod policy_open;
mod preflight;
mod replay;
mod shutdown;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

/// Portcullis: a zero-trust gateway for the Model Context Protocol.
#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about,
    long_about = "Portcullis: a zero-trust gateway for the Model Context Protocol. Every tool call is \
                  authenticated, authorised by policy, attested and recorded in a tamper-evident audit log \
                  before its result is released.",
    after_help = "Getting started:\n  \
                  portcullis demo                                   # a scripted session, nothing to set up\n  \
                  portcullis init mydir                             # a starter config, policies and dev PKI\n  \
                  portcullis run --config mydir/portcullis.toml     # the HTTPS front\n  \
                  portcullis why DECISION_ID --config mydir/portcullis.toml   # why a call was refused\n\n\
                  `portcullis COMMAND --help` for each command; `portcullis man` writes the manual page."
)]
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
    #[command(after_help = "Example:\n  portcullis run --config mydir/portcullis.toml   \
                            # https://127.0.0.1:8080/mcp with the config `portcullis init mydir` wrote\n\n\
                            Stops on SIGINT/SIGTERM after in-flight calls finish. Exit 2: bad config (every problem listed).")]
    Run {
        /// The TOML config file.
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Serve one client on stdin/stdout (for desktop hosts that launch a command).
    #[command(after_help = "Example (a desktop host's MCP server entry):\n  \
                            { \"command\": \"portcullis\", \"args\": [\"stdio\", \"--config\", \"/abs/path/mydir/portcullis.toml\"] }\n\n\
                            Several hosts may start it for one config: the first one holds the audit log and serves \
                            the others (docs/stdio-sharing.md).")]
    Stdio {
        /// The gateway config file (or $PORTCULLIS_CONFIG).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// Expose only this server of the config (no namespacing).
        #[arg(long)]
        server: Option<String>,
    },
    /// Validate a config file without starting anything: it loads what `run` loads
    /// (certificates, keys, policy files, manifests); exit 2 on any problem.
    #[command(after_help = "Example:\n  portcullis check-config --config mydir/portcullis.toml")]
    CheckConfig {
        /// The gateway config file (or $PORTCULLIS_CONFIG).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Write a working starter config into DIR (default: current directory): portcullis.toml,
    /// the tier policies, an audit key and a dev CA with gateway and agent SVIDs (30 days).
    #[command(
        after_help = "Examples:\n  portcullis init mydir                # a new starter directory\n  \
                            portcullis init mydir --renew        # new SVIDs from the same dev CA, nothing else touched\n  \
                            portcullis init mydir --force        # start over (edited files are kept as FILE.bak-TIME)"
    )]
    Init {
        /// The directory to write into (created if needed; default: the current directory).
        dir: Option<PathBuf>,
        /// Write the config and tier policies again although they exist; changed ones are
        /// first copied to `FILE.bak-<UTC time>`. The dev CA and the audit key are kept.
        #[arg(long, conflicts_with = "renew")]
        force: bool,
        /// Only re-issue the gateway and agent SVIDs from the dev CA `init` made (kept), valid
        /// 30 days more; prints the new expiry.
        #[arg(long)]
        renew: bool,
    },
    /// Run a complete local demonstration on embedded defaults.
    #[command(
        after_help = "Examples:\n  portcullis demo            # the scripted session; exit 0 when every step behaved\n  \
                            portcullis demo --serve    # keep the gateway running for a real client"
    )]
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
    /// Why was a call allowed or denied? The decision's records, the rules that decided, and
    /// what would have allowed it.
    Why(commands::why::WhyArgs),
    /// Verify, read and prove the audit log.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Calls waiting for approval: list, show, approve, deny; sign a call's binding offline.
    #[command(subcommand)]
    Approvals(commands::approvals::ApprovalsCommand),
    /// Emergency windows: request (with a reason and TTL), approve (two approvers), end, list.
    #[command(subcommand)]
    BreakGlass(commands::break_glass::BreakGlassCommand),
    /// Pinned servers: write, sign, verify and amend server manifests.
    #[command(subcommand)]
    Manifest(commands::manifest::ManifestCommand),
    /// Check a signed result receipt offline against the gateway's public key(s).
    VerifyReceipt(commands::verify_receipt::VerifyReceiptArgs),
    /// Development CA: create a trust domain and issue short-lived SVIDs.
    #[command(subcommand)]
    Ca(commands::ca::CaCommand),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        after_help = "Examples:\n  portcullis completions bash > ~/.local/share/bash-completion/completions/portcullis\n  \
                            portcullis completions zsh > \"${fpath[1]}/_portcullis\"\n  \
                            portcullis completions fish > ~/.config/fish/completions/portcullis.fish"
    )]
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual page (roff): `portcullis.1` to stdout, or one page per command into a directory.
    #[command(after_help = "Examples:\n  portcullis man | man -l -\n  \
                            portcullis man --out-dir ~/.local/share/man/man1")]
    Man {
        /// Write `portcullis.1` and one page per command (`portcullis-run.1`, …) into this directory.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
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
    let result = runtime.block_on(dispatch(cli.command));
    // The command is done (its own shutdown awaited). A read of stdin may still be pending
    // on a blocking thread (a desktop host keeps our stdin open, and that read cannot be
    // cancelled): do not wait for it, or `stdio` would hang after saying why it stopped.
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
    match result {
        Ok(code) => code,
        Err(e) => {
            let is_config = e.downcast_ref::<config::ConfigError>().is_some();
            eprintln!("error: {}", said_once(&e));
            if is_config {
                ExitCode::from(2)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

/// How long tasks still running when a command returns get to finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_millis(500);

/// `e` and its causes, `: `-separated, each said once: a cause whose text an outer message
/// already includes (many errors quote their source) is left out.
fn said_once(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain() {
        let part = cause.to_string();
        if part.is_empty() || text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

async fn dispatch(command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Run { config } => commands::run::run(&config).await,
        Command::Stdio { config, server } => commands::stdio::run(&config, server.as_deref()).await,
        Command::CheckConfig { config } => commands::check_config::run(&config),
        Command::Init { dir, force, renew } => commands::init::run(dir, force, renew),
        Command::Demo { serve, listen } => commands::demo::run(serve, listen).await,
        Command::Audit(command) => commands::audit::run(command).await,
        Command::Approvals(command) => commands::approvals::run(command).await,
        Command::BreakGlass(command) => commands::break_glass::run(command).await,
        Command::Policy(command) => commands::policy::run(command).await,
        Command::Why(args) => commands::why::run(args).await,
        Command::Ca(command) => commands::ca::run(command),
        Command::Connect(args) => commands::connect::run(args).await,
        Command::Manifest(command) => commands::manifest::run(command).await,
        Command::VerifyReceipt(args) => commands::verify_receipt::run(args),
        Command::Completions { shell } => commands::generate::completions(shell),
        Command::Man { out_dir } => commands::generate::man(out_dir),
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

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::{Cli, said_once};

    /// Every subcommand has a description and every argument a help text (`--help` is the
    /// reference a new user reads first).
    #[test]
    fn every_command_and_argument_is_described() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if cmd.get_about().is_none() && !path.is_empty() {
                missing.push(format!("`{path}`: no description"));
            }
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if matches!(id, "help" | "version") || arg.is_hide_set() {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("`{path} {id}`: no help"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.is_hide_set() {
                    continue;
                }
                let name = format!("{path} {}", sub.get_name()).trim().to_owned();
                walk(sub, &name, missing);
            }
        }
        let mut missing = Vec::new();
        walk(&Cli::command(), "", &mut missing);
        assert!(missing.is_empty(), "undescribed:\n{}", missing.join("\n"));
    }

    #[test]
    fn a_cause_an_outer_message_quotes_is_said_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory (os error 2)");
        let e = anyhow::Error::new(io)
            .context("cannot read key file `k`: No such file or directory (os error 2)")
            .context("cannot load the result-signing key k");
        assert_eq!(
            said_once(&e),
            "cannot load the result-signing key k: cannot read key file `k`: No such file or directory (os error 2)"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(said_once(&plain), "outer: inner");
    }
}
