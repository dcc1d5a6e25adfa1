//! SQLite's memory from the process's global allocator.
//!
//! SQLite allocates its page caches, statements and schemas with the C library's `malloc`
//! unless told otherwise. Under glibc every thread that loads a page does so in its own
//! arena, and an arena gives memory back only from its top: in a 30-minute mixed load the
//! server's glibc arenas grew past 230 MiB beside 180 MiB of everything else. Routed
//! through the global allocator (mimalloc in `phr`), freed pages are reused across threads
//! and given back like the rest of the process's memory.

use std::alloc::{Layout, alloc, dealloc, realloc};
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;

use rusqlite::ffi;

/// Bytes in front of each block: its size, and SQLite's 8-byte alignment kept (16 for
/// anything that stores wider values).
const HEADER: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(HEADER)?, HEADER).ok()
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    let Some(layout) = usize::try_from(n).ok().and_then(layout) else {
        return null_mut();
    };
    // SAFETY: the layout has a non-zero size (the header).
    let base = unsafe { alloc(layout) };
    if base.is_null() {
        return null_mut();
    }
    // SAFETY: the block holds the header, aligned for a usize; the caller's part follows it.
    unsafe {
        base.cast::<usize>().write(layout.size() - HEADER);
        base.add(HEADER).cast()
    }
}

/// The start of the block of `p` (as [`x_malloc`] returned it) and its caller-visible size.
///
/// # Safety
/// `p` came from [`x_malloc`] or [`x_realloc`] and was not freed.
unsafe fn block(p: *mut c_void) -> (*mut u8, usize) {
    // SAFETY: as the caller promises, the header is HEADER bytes in front of `p`.
    unsafe {
        let base = p.cast::<u8>().sub(HEADER);
        (base, base.cast::<usize>().read())
    }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what this allocator gave it; the layout is the one it was
    // allocated with.
    unsafe {
        let (base, size) = block(p);
        dealloc(
            base,
            Layout::from_size_align_unchecked(size + HEADER, HEADER),
        );
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    if p.is_null() {
        // SAFETY: a null block is a new allocation.
        return unsafe { x_malloc(n) };
    }
    let Some(new) = usize::try_from(n).ok().and_then(layout) else {
        return null_mut();
    };
    // SAFETY: as in x_free; the new size is checked above.
    unsafe {
        let (base, size) = block(p);
        let moved = realloc(
            base,
            Layout::from_size_align_unchecked(size + HEADER, HEADER),
            new.size(),
        );
        if moved.is_null() {
            return null_mut();
        }
        moved.cast::<usize>().write(new.size() - HEADER);
        moved.add(HEADER).cast()
    }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: as in x_free.
    let (_, size) = unsafe { block(p) };
    c_int::try_from(size).unwrap_or(c_int::MAX)
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    n.saturating_add(7) & !7
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Makes SQLite allocate through the global allocator. Call before the first database is
/// opened; false when SQLite was already in use (it then keeps the C library's `malloc`).
pub fn use_global_allocator() -> bool {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: null_mut(),
    };
    // SAFETY: SQLite copies the methods; they are valid for the process's life.
    unsafe {
        ffi::sqlite3_config(
            ffi::SQLITE_CONFIG_MALLOC,
            &methods as *const ffi::sqlite3_mem_methods,
        ) == ffi::SQLITE_OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_their_size_and_contents_through_realloc() {
        // SAFETY: the blocks are used as SQLite would: written within their size, resized,
        // freed once.
        unsafe {
            let p = x_malloc(10).cast::<u8>();
            assert!(!p.is_null());
            assert_eq!(p as usize % 8, 0);
            assert_eq!(x_size(p.cast()), 10);
            for i in 0..10 {
                p.add(i).write(i as u8);
            }
            let q = x_realloc(p.cast(), 5000).cast::<u8>();
            assert_eq!(x_size(q.cast()), 5000);
            for i in 0..10 {
                assert_eq!(q.add(i).read(), i as u8);
            }
            let r = x_realloc(q.cast(), 3).cast::<u8>();
            assert_eq!(x_size(r.cast()), 3);
            assert_eq!(r.add(2).read(), 2);
            x_free(r.cast());
            x_free(null_mut());
            assert!(x_malloc(-1).is_null());
            assert_eq!(x_roundup(13), 16);
            assert_eq!(x_size(null_mut()), 0);
        }
    }
}
