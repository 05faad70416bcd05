//! One module per subcommand of `portcullis`; each exposes `run` (and its clap arguments
//! when it has subcommands or flags of its own). `lib.rs` parses the command line and
//! dispatches here; loading the config is `crate::config`'s, opening the stages
//! `crate::assemble`'s.
pub mod approvals;
pub mod audit;
pub mod break_glass;
pub mod ca;
pub mod check_config;
pub mod connect;
pub mod demo;
mod demo_credentials;
pub mod generate;
pub mod init;
pub mod manifest;
pub mod pin_files;
pub mod policy;
pub mod run;
pub mod stdio;
pub mod verify_receipt;
pub mod why;
