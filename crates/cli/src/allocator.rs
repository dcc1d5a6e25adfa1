//! The process's memory allocator: mimalloc, with memory given back to the system shortly
//! after it is freed.
//!
//! The server allocates and frees many small JSON values per request from several threads;
//! under glibc malloc that was a fifth of the ingest profile and its peak RSS grew to 1.6 GiB
//! at 16 clients. mimalloc's defaults keep freed pages for a while and commit its arenas
//! whole, so a burst (start-up parsing the R4 definitions, a wave of large Bundles) stayed
//! resident long after: the server idled at 280 MiB, of which 100 MiB were freed pages. Here
//! pages are given back after [`PURGE_DELAY_MS`], arenas are committed as used and never
//! backed by transparent huge pages (one 2 MiB page stays resident while any 4 KiB of it is
//! in use). Giving pages back at once (a delay of 0) cost a third of the ingest throughput
//! when measured: the store's writer then freed and reallocated SQLite's sub-journal pages
//! for every Bundle entry, and each `madvise` also stops the other core to flush its TLB.
//! An operator who prefers the defaults sets mimalloc's own environment variables
//! (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`, `MIMALLOC_ALLOW_THP`), which are
//! then left alone.

use std::ffi::{c_int, c_long};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Option numbers of `mi_option_e` in mimalloc 3's `mimalloc.h`, the version `libmimalloc-sys`
/// builds by default (its Rust constants follow mimalloc 2's numbering, so they are not used).
const ARENA_EAGER_COMMIT: c_int = 4;
const PURGE_DELAY: c_int = 15;
const ALLOW_THP: c_int = 43;

/// Milliseconds a freed page stays with the allocator before it is given back. Measured with
/// `phr bench --workload ingest --clients 4` (authorization on, 2 cores): 0 ms gave 3.2k
/// Observations/s, 10 ms 4.8k–5.7k and 100 ms 4.4k–5.9k, the resident size 10–35 MiB higher.
const PURGE_DELAY_MS: c_long = 10;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    // Read back by the tests only.
    #[cfg_attr(not(test), allow(dead_code))]
    fn mi_option_get(option: c_int) -> c_long;
}

/// Sets the allocator's options, unless the environment sets them. Call first thing in
/// `main`, before any thread starts.
pub fn tune() {
    if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
        // mimalloc asks for transparent huge pages on its arenas. It set itself up before
        // `main`, so the kernel is told directly that this process wants none.
        // SAFETY: prctl(PR_SET_THP_DISABLE) only sets a flag of this process.
        unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
    for (option, variable, value) in [
        (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", PURGE_DELAY_MS),
        (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT", 0),
        (ALLOW_THP, "MIMALLOC_ALLOW_THP", 0),
    ] {
        if std::env::var_os(variable).is_none() {
            // SAFETY: mi_option_set only stores a value in mimalloc's option table; it is
            // called before any other thread exists.
            unsafe { mi_option_set(option, value) };
        }
    }
}

/// The allocator's current value of `option`.
#[cfg(test)]
fn option(option: c_int) -> c_long {
    // SAFETY: mi_option_get reads mimalloc's option table.
    unsafe { mi_option_get(option) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_numbers_are_mimalloc_3s() {
        // mimalloc 3's defaults: purge after 1000 ms, arenas committed on overcommit systems
        // (2). Were the numbers another version's, these would read other options.
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(option(PURGE_DELAY), 1000);
        }
        if std::env::var_os("MIMALLOC_ARENA_EAGER_COMMIT").is_none() {
            assert_eq!(option(ARENA_EAGER_COMMIT), 2);
        }
        if std::env::var_os("MIMALLOC_ALLOW_THP").is_none() {
            assert_eq!(option(ALLOW_THP), 1);
        }
        tune();
        assert_eq!(option(PURGE_DELAY), PURGE_DELAY_MS);
        assert_eq!(option(ARENA_EAGER_COMMIT), 0);
        assert_eq!(option(ALLOW_THP), 0);
        // SAFETY: prctl(PR_GET_THP_DISABLE) only reads a flag of this process.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) },
            1
        );
    }
}
