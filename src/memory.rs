//! What ferry asks of its allocator for a run. The binary allocates with
//! mimalloc (src/main.rs); these settings are mimalloc's own options.

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (the crate names
/// no constant for it): how many milliseconds freed memory is kept before it
/// goes back to the OS (1,000 by default in mimalloc 3; 0 at once).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long an export keeps freed memory, in milliseconds.
const EXPORT_PURGE_DELAY: std::os::raw::c_long = 10;

/// Give freed memory back to the OS within 10 ms. An export frees each
/// chunk's profiles, diffs and statements on several threads. With
/// mimalloc's default second what they kept grew with the number of chunks
/// (a first run peaked at 40.8 MiB at 100,000 profiles and 65.4 at
/// 1,000,000). Given back at once, the memory stayed flat but the run spent
/// a fifth of its CPU in `madvise` and in faulting the same pages back in
/// (19.5 CPU-s per million profiles against 15.1). Ten milliseconds keeps
/// both: 41.1 and 40.1 MiB at 100k and 1M, 15.1 CPU-s (docs/export.md).
/// Import, which frees batch after batch of the same size and stays flat,
/// keeps the default.
pub fn return_freed_memory_soon() {
    // SAFETY: mi_option_set takes any option number and value; with
    // another global allocator (the tests) it only sets an unused option.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, EXPORT_PURGE_DELAY) }
}
