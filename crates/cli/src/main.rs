//! The `portcullis` binary; everything lives in the library so it can be tested.
#![forbid(unsafe_code)]

/// mimalloc rather than glibc's malloc: every call allocates and frees many small
/// buffers across the runtime's threads (docs/benchmarks.md "Build" has the measurement).
#[cfg(not(any(feature = "count-allocations", feature = "system-allocator")))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[cfg(all(feature = "count-allocations", feature = "system-allocator"))]
compile_error!("`count-allocations` counts mimalloc's allocations; build it without `system-allocator`");

/// The benchmark's build: mimalloc, every allocation counted (`portcullis_cli::alloc_stats`).
#[cfg(feature = "count-allocations")]
#[global_allocator]
static ALLOCATOR: stats_alloc::StatsAlloc<mimalloc::MiMalloc> = stats_alloc::StatsAlloc::new(mimalloc::MiMalloc);

fn main() -> std::process::ExitCode {
    #[cfg(feature = "count-allocations")]
    let _counts = portcullis_cli::alloc_stats::start(|| {
        let stats = ALLOCATOR.stats();
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        portcullis_cli::alloc_stats::Counts {
            allocations: wide(stats.allocations),
            deallocations: wide(stats.deallocations),
            reallocations: wide(stats.reallocations),
            bytes_allocated: wide(stats.bytes_allocated),
        }
    });
    portcullis_cli::main()
}
