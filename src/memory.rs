//! What ferry asks of its allocator for a run. The binary allocates with
//! mimalloc (src/main.rs); these settings are mimalloc's own options.

/// `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (the crate names
/// no constant for it): how many milliseconds freed memory is kept before it
/// goes back to the OS (10 by default; 0 at once).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Give freed memory back to the OS at once. An export frees each chunk's
/// profiles, diffs and statements on several threads, and with the default
/// delay what they kept grew with the number of chunks: a run where one
/// profile in a hundred changed peaked at 37.5 MiB at 1,000,000 profiles
/// against 29.9 at 100,000, and at 29.9 with this. It costs an export 4% to
/// 13% more CPU (the release calls), so import, which frees batch after
/// batch of the same size and stays flat, keeps the default.
pub fn return_freed_memory_at_once() {
    // SAFETY: mi_option_set takes any option number and value; with
    // another global allocator (the tests) it only sets an unused option.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0) }
}
