//! The `portcullis` binary; everything lives in the library so it can be tested.
#![forbid(unsafe_code)]

/// mimalloc rather than glibc's malloc: every call allocates and frees many small
/// buffers across the runtime's threads (docs/benchmarks.md "Build" has the measurement).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    portcullis_cli::main()
}
