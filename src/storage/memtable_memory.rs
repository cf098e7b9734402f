//! Where RocksDB's big `new char[]` blocks come from: its memtables' arena blocks, 8 MiB
//! each (a 64 MiB write buffer / 8).
//!
//! Through glibc, a flushed memtable's blocks go back to the kernel, so the next memtable
//! faults in every 4 KiB page again: 25,000 of the 31,000 faults per 100 MB appended in
//! batches, about a fifth of an append's time (docs/DECISIONS.md §50). build.rs has the
//! linker send RocksDB's `operator new[]` and `operator delete[]` (and nothing else's: the
//! wrap applies to the objects linked into this library) to the functions here. Blocks of at least [`BIG`]
//! bytes come from one address range reserved up front; freed ones stay resident, up to
//! [`RETAIN`] bytes, for the next memtable to reuse without a fault, and the rest give
//! their pages back. Everything else, and anything the range cannot hold, goes to the
//! original operators.
//!
//! The `--wrap` flags are link arguments of this package's own targets (the addon and its
//! tests): a binary of another package that linked this crate's rlib would have to pass
//! them too, or `__real__Znam` stays undefined.

use std::ffi::c_void;
use std::ptr;
use std::sync::{Mutex, OnceLock};

/// Allocations this big or bigger are served here (RocksDB's arena blocks are 8 MiB; its
/// other `new char[]` users ask for a few KiB to 1 MiB).
pub const BIG: usize = 4 << 20;
/// Blocks are rounded up to, and aligned at, this. (Transparent huge pages, tried, made
/// appends slower: a 2 MiB fault zeroes 2 MiB at once, and the first ones compact memory.)
const UNIT: usize = 1 << 20;
/// Freed bytes kept resident for reuse: one write buffer, what the next memtable refills.
pub const RETAIN: usize = 64 << 20;
/// Address space reserved (not memory: no page is touched or committed until used).
const RESERVE: usize = 16 << 30;

extern "C" {
    fn __real__Znam(size: usize) -> *mut c_void;
    fn __real__ZdaPv(ptr: *mut c_void);
    fn __real__ZdaPvm(ptr: *mut c_void, size: usize);
}

/// `operator new[](size_t)` for RocksDB's objects.
///
/// # Safety
/// Called by RocksDB's C++ code only, as `operator new[]`.
#[no_mangle]
pub unsafe extern "C" fn __wrap__Znam(size: usize) -> *mut c_void {
    if size >= BIG {
        if let Some(p) = shared().and_then(|r| r.allocate(size)) {
            return p.cast();
        }
    }
    __real__Znam(size)
}

/// `operator delete[](void*)` for RocksDB's objects.
///
/// # Safety
/// Called by RocksDB's C++ code only, with what its `operator new[]` returned.
#[no_mangle]
pub unsafe extern "C" fn __wrap__ZdaPv(ptr: *mut c_void) {
    if !release_shared(ptr) {
        __real__ZdaPv(ptr)
    }
}

/// `operator delete[](void*, size_t)` for RocksDB's objects.
///
/// # Safety
/// As [`__wrap__ZdaPv`].
#[no_mangle]
pub unsafe extern "C" fn __wrap__ZdaPvm(ptr: *mut c_void, size: usize) {
    if !release_shared(ptr) {
        __real__ZdaPvm(ptr, size)
    }
}

static SHARED: OnceLock<Option<Region>> = OnceLock::new();

/// The process's region, reserved on the first big allocation.
fn shared() -> Option<&'static Region> {
    SHARED
        .get_or_init(|| Region::reserve(RESERVE, RETAIN))
        .as_ref()
}

/// The process's region if it is reserved already: without reserving it, which only a
/// big allocation does.
fn reserved() -> Option<&'static Region> {
    SHARED.get().and_then(Option::as_ref)
}

/// Takes back `ptr` if the shared region handed it out. Before any big allocation there
/// is no region, and every `delete[]` passes straight through.
fn release_shared(ptr: *mut c_void) -> bool {
    reserved().is_some_and(|region| region.release(ptr.cast()))
}

/// Bytes in blocks handed out and not yet freed, and freed bytes kept resident.
pub fn stats() -> (usize, usize) {
    reserved().map_or((0, 0), Region::stats)
}

/// A reserved range of address space, and the blocks carved from it.
struct Region {
    base: usize,
    len: usize,
    retain: usize,
    pool: Mutex<Pool>,
}

#[derive(Default)]
struct Pool {
    /// Bytes of the range handed out so far, from its start.
    used: usize,
    /// Live blocks, (address, length).
    live: Vec<(usize, usize)>,
    /// Freed blocks, (address, length): `warm` ones still hold their pages, `cold` ones gave
    /// them back. All three lists are short (a memtable has eight blocks).
    warm: Vec<(usize, usize)>,
    cold: Vec<(usize, usize)>,
}

fn total(blocks: &[(usize, usize)]) -> usize {
    blocks.iter().map(|&(_, l)| l).sum()
}

/// Takes a block of length `len` out of `blocks`, if it holds one; its address.
fn take_of_len(blocks: &mut Vec<(usize, usize)>, len: usize) -> Option<usize> {
    let i = blocks.iter().position(|&(_, l)| l == len)?;
    Some(blocks.swap_remove(i).0)
}

impl Region {
    /// Maps `len` bytes of address space with no access, so that nothing is committed
    /// until a block is made writable. None if the kernel refuses: then everything goes to
    /// glibc.
    fn reserve(len: usize, retain: usize) -> Option<Region> {
        // one extra unit, to start on a unit boundary
        let mapped = len.checked_add(UNIT)?;
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
        let p = unsafe {
            libc::mmap(
                ptr::null_mut(),
                mapped,
                libc::PROT_NONE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return None;
        }
        Some(Region {
            base: (p as usize).next_multiple_of(UNIT),
            len,
            retain,
            pool: Mutex::new(Pool::default()),
        })
    }

    fn pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A block of at least `size` bytes: a freed one of the same length if there is one,
    /// resident ones first; None if the range is full or the kernel refused.
    fn allocate(&self, size: usize) -> Option<*mut u8> {
        let len = size.checked_next_multiple_of(UNIT)?;
        let mut pool = self.pool();
        let reused = take_of_len(&mut pool.warm, len).or_else(|| take_of_len(&mut pool.cold, len));
        let addr = if let Some(addr) = reused {
            addr
        } else {
            if len > self.len - pool.used {
                return None;
            }
            let addr = self.base + pool.used;
            // SAFETY: [addr, addr + len) lies inside the reservation and is no one's yet.
            let prot = libc::PROT_READ | libc::PROT_WRITE;
            if unsafe { libc::mprotect(addr as *mut c_void, len, prot) } != 0 {
                return None;
            }
            pool.used += len;
            addr
        };
        pool.live.push((addr, len));
        Some(addr as *mut u8)
    }

    /// Takes back `ptr` if it is in this range; false if it is not.
    fn release(&self, ptr: *mut u8) -> bool {
        let addr = ptr as usize;
        if addr < self.base || addr >= self.base + self.len {
            return false;
        }
        let mut pool = self.pool();
        // in the range but not a live block cannot happen: RocksDB frees what it allocated
        if let Some(i) = pool.live.iter().position(|&(a, _)| a == addr) {
            let block = pool.live.swap_remove(i);
            if total(&pool.warm) + block.1 <= self.retain {
                pool.warm.push(block);
            } else {
                // SAFETY: the block is ours and no longer in use; its pages read as zero
                // after this.
                unsafe { libc::madvise(block.0 as *mut c_void, block.1, libc::MADV_DONTNEED) };
                pool.cold.push(block);
            }
        }
        true
    }

    fn stats(&self) -> (usize, usize) {
        let pool = self.pool();
        (total(&pool.live), total(&pool.warm))
    }
}

#[cfg(test)]
mod tests {
    // The unwraps and expects here are on the tests' own regions and stores, never on
    // input from a peer, the disk or a caller: one failing is the test failing.
    use super::*;
    use crate::storage::db::tests::tmp;
    use crate::storage::{CoreRecords, OpenOptions, Storage};

    const MIB: usize = 1 << 20;

    fn fill(block: *mut u8, len: usize, byte: u8) {
        // SAFETY: `block` is a live block of `len` bytes from the test's region.
        unsafe { ptr::write_bytes(block, byte, len) }
    }

    fn ends(block: *mut u8, len: usize) -> (u8, u8) {
        // SAFETY: as in `fill`.
        unsafe { (*block, *block.add(len - 1)) }
    }

    #[test]
    fn freed_blocks_come_back_resident_up_to_what_is_retained() {
        let region = Region::reserve(64 * MIB, 16 * MIB).expect("reserve");
        let first: Vec<_> = (0..3).map(|_| region.allocate(8 * MIB).unwrap()).collect();
        for (i, &block) in first.iter().enumerate() {
            fill(block, 8 * MIB, i as u8 + 1);
        }
        for &block in &first {
            assert!(region.release(block));
        }
        // two fit in the 16 MiB retained; the third gave its pages back
        assert_eq!(region.stats(), (0, 16 * MIB));
        let second: Vec<_> = (0..3).map(|_| region.allocate(8 * MIB).unwrap()).collect();
        assert_eq!(region.stats(), (24 * MIB, 0));
        let (mut a, mut b) = (first.clone(), second.clone());
        a.sort();
        b.sort();
        assert_eq!(a, b, "the same three blocks again");
        let mut contents: Vec<_> = second.iter().map(|&p| ends(p, 8 * MIB)).collect();
        contents.sort();
        assert_eq!(contents, [(0, 0), (1, 1), (2, 2)]);
    }

    #[test]
    fn sizes_round_up_and_a_full_range_says_so() {
        let region = Region::reserve(16 * MIB, 0).expect("reserve");
        let a = region.allocate(5 * MIB + 1).unwrap();
        assert_eq!(a as usize % UNIT, 0);
        assert_eq!(region.stats(), (6 * MIB, 0));
        let b = region.allocate(10 * MIB).unwrap();
        assert!(region.allocate(MIB).is_none(), "16 MiB are all handed out");
        assert!(region.release(a));
        // nothing is retained (0 bytes): the block went cold, and is reused at its length
        assert_eq!(region.stats(), (10 * MIB, 0));
        assert!(
            region.allocate(7 * MIB).is_none(),
            "no 7 MiB block, no room"
        );
        let c = region.allocate(6 * MIB).unwrap();
        assert_eq!(c, a);
        assert_eq!(ends(c, 6 * MIB), (0, 0));
        assert!(region.release(b) && region.release(c));
    }

    #[test]
    fn pointers_from_elsewhere_are_not_taken() {
        let region = Region::reserve(8 * MIB, 8 * MIB).expect("reserve");
        let mut elsewhere = vec![0u8; 16];
        assert!(!region.release(elsewhere.as_mut_ptr()));
        assert!(!region.release(ptr::null_mut()));
    }

    #[test]
    fn rocksdb_memtables_live_in_the_shared_region_and_keep_what_they_hold() {
        let block = vec![0x5a; 1024];
        let blocks: Vec<(u64, &[u8])> = (0..12_000).map(|i| (i, &block[..])).collect();
        // the second store's memtable reuses what the first one's freed
        for round in 0..2 {
            let dir = tmp("memtable-memory");
            let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
            let records = CoreRecords {
                data_pointer: round,
                blocks: &blocks,
                nodes: &[],
            };
            st.write_with(Default::default(), &records).unwrap();
            let (live, _) = stats();
            assert!(
                live >= 8 * MIB,
                "RocksDB's arena blocks come from here: {live}"
            );
            for i in [0, 5_000, 11_999] {
                assert_eq!(st.block(round, i).unwrap(), Some(block.clone()));
            }
            drop(st);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
