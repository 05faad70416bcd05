//! `portcullis completions SHELL` and `portcullis man`: shell completion scripts and manual
//! pages generated from the command line's own definitions (clap), so they never drift from
//! `--help`.
use std::{io::Write as _, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::CommandFactory as _;

/// Writes the completion script for `shell` to stdout.
pub fn completions(shell: clap_complete::Shell) -> anyhow::Result<ExitCode> {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "portcullis", &mut out);
    to_stdout(&out).context("cannot write the completion script to stdout")?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `portcullis.1` to stdout, or with `out_dir` one page per command into it
/// (`portcullis.1`, `portcullis-run.1`, …), saying which.
pub fn man(out_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let cmd = crate::Cli::command();
    match out_dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .context("cannot render the manual page")?;
            to_stdout(&out).context("cannot write the manual page to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
            clap_mangen::generate_to(cmd, &dir)
                .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
            let pages = std::fs::read_dir(&dir)
                .with_context(|| format!("cannot list {}", dir.display()))?
                .filter_map(Result::ok)
                .filter(|e| {
                    let name = e.file_name();
                    let name = name.to_string_lossy();
                    name.starts_with("portcullis") && name.ends_with(".1")
                })
                .count();
            println!(
                "wrote {pages} manual pages into {}: portcullis.1 and one per command (portcullis-run.1, …); read \
                 one with `man {}/portcullis.1`",
                dir.display(),
                dir.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is not an error.
fn to_stdout(bytes: &[u8]) -> std::io::Result<()> {
    let mut stdout = std::io::stdout();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
