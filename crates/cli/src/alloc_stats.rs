//! Allocation counts for the benchmark, outside the request flow.
//!
//! A `portcullis` built with the `count-allocations` feature counts every allocation
//! (a counting wrapper around mimalloc, `src/main.rs`) and, when `PORTCULLIS_ALLOC_STATS`
//! names a file, rewrites that file every [`PERIOD`] with the totals so far:
//! `allocations deallocations reallocations bytes_allocated`, one line, replaced
//! atomically (written beside it, then renamed). `portcullis-bench --count-allocations`
//! reads it before and after each measured phase and reports allocations per call. Other
//! builds never start the writer.
use std::{
    path::{Path, PathBuf},
    thread::JoinHandle,
    time::Duration,
};

/// Names the file the counts go to.
pub const ENV: &str = "PORTCULLIS_ALLOC_STATS";

/// How often the file is rewritten.
pub const PERIOD: Duration = Duration::from_millis(10);

/// The allocator's totals since the process started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub allocations: u64,
    pub deallocations: u64,
    pub reallocations: u64,
    pub bytes_allocated: u64,
}

impl Counts {
    /// The file's one line.
    fn line(&self) -> String {
        format!(
            "{} {} {} {}\n",
            self.allocations, self.deallocations, self.reallocations, self.bytes_allocated
        )
    }
}

/// Starts the writer when [`ENV`] names a file; `read` gives the totals.
pub fn start(read: impl Fn() -> Counts + Send + 'static) -> Option<JoinHandle<()>> {
    let path = PathBuf::from(std::env::var_os(ENV)?);
    std::thread::Builder::new()
        .name("alloc-stats".into())
        .spawn(move || {
            loop {
                if let Err(e) = write(&path, read()) {
                    eprintln!("portcullis: cannot write allocation counts to {}: {e}", path.display());
                    return;
                }
                std::thread::sleep(PERIOD);
            }
        })
        .ok()
}

/// Replaces `path` with `counts` (a reader never sees a partial line).
fn write(path: &Path, counts: Counts) -> std::io::Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    std::fs::write(&partial, counts.line())?;
    std::fs::rename(&partial, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_counts_are_written_as_one_line_and_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("alloc-stats");
        let mut counts = Counts {
            allocations: 120,
            deallocations: 100,
            reallocations: 7,
            bytes_allocated: 65_536,
        };
        write(&path, counts).expect("write");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "120 100 7 65536\n");
        counts.allocations = 121;
        write(&path, counts).expect("write again");
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "121 100 7 65536\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(
            names,
            vec![std::ffi::OsString::from("alloc-stats")],
            "no partial file is left"
        );
    }
}
