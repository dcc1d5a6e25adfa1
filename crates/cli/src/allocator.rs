//! The process's memory allocator: mimalloc, with memory given back to the system as soon
//! as it is freed.
//!
//! The server allocates and frees many small JSON values per request from several threads;
//! under glibc malloc that was a fifth of the ingest profile and its peak RSS grew to 1.6 GiB
//! at 16 clients. mimalloc's defaults keep freed pages for a while and commit its arenas
//! whole, so a burst (start-up parsing the R4 definitions, a wave of large Bundles) stayed
//! resident long after: the server idled at 280 MiB, of which 100 MiB were freed pages. Here
//! pages are given back at once, arenas are committed as used and never backed by
//! transparent huge pages (one 2 MiB page stays resident while any 4 KiB of it is in use).
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
        (PURGE_DELAY, "MIMALLOC_PURGE_DELAY", 0),
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
        assert_eq!(option(PURGE_DELAY), 0);
        assert_eq!(option(ARENA_EAGER_COMMIT), 0);
        assert_eq!(option(ALLOW_THP), 0);
        // SAFETY: prctl(PR_GET_THP_DISABLE) only reads a flag of this process.
        assert_eq!(
            unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) },
            1
        );
    }
}
