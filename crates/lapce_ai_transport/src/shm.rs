//! Sealed memfd regions and their mappings.
//!
//! This module is the only place that touches shared memory through raw pointers. Everything
//! above it goes through [`Mapping`]'s bounds-checked accessors, so a bug (or a hostile peer)
//! elsewhere cannot turn into an out-of-bounds access.
//!
//! Why memfd and not `/dev/shm` names: a memfd has no name in any filesystem, so nothing is left
//! behind when a process is killed, and there is no name to guess or to race for.

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};

use rustix::fs::{MemfdFlags, SealFlags};
use rustix::mm::{MapFlags, ProtFlags};

use crate::{Error, Result};

/// The seals every ring memfd carries. With `SHRINK` and `GROW` sealed, neither side can change
/// the size under the other's mapping, so no access through a valid mapping can raise SIGBUS.
/// `SEAL` stops anyone from adding `WRITE` later and freezing the peer.
pub const REQUIRED_SEALS: SealFlags = SealFlags::SHRINK.union(SealFlags::GROW).union(SealFlags::SEAL);

/// Creates an anonymous, sealed memfd of `size` bytes, zero-filled.
pub fn create_sealed_memfd(name: &str, size: usize) -> Result<OwnedFd> {
    let fd = rustix::fs::memfd_create(name, MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).map_err(|e| Error::io("memfd_create", e))?;
    rustix::fs::ftruncate(&fd, size as u64).map_err(|e| Error::io("ftruncate", e))?;
    rustix::fs::fcntl_add_seals(&fd, REQUIRED_SEALS).map_err(|e| Error::io("fcntl(F_ADD_SEALS)", e))?;
    Ok(fd)
}

/// Seals a ring memfd must not carry: with `WRITE` or `FUTURE_WRITE` the peer could make the
/// region read-only and every write of ours fail.
pub const FORBIDDEN_SEALS: SealFlags = SealFlags::WRITE.union(SealFlags::FUTURE_WRITE);

/// Identity of a file (device and inode), to tell two fds of one file from two files.
pub type FileId = (u64, u64);

/// Checks that an fd received from a peer is a sealed memfd of exactly `size` bytes: its seals
/// include [`REQUIRED_SEALS`] and none of [`FORBIDDEN_SEALS`]. Returns the file's identity.
///
/// Mapping an unsealed file would let the peer truncate it and crash us with SIGBUS.
pub fn check_sealed_memfd(fd: BorrowedFd<'_>, size: usize) -> Result<FileId> {
    let seals = rustix::fs::fcntl_get_seals(fd).map_err(|e| Error::InvalidShm(format!("not a sealable memfd ({e})")))?;
    if !seals.contains(REQUIRED_SEALS) {
        return Err(Error::InvalidShm(format!(
            "memfd lacks the seals SHRINK|GROW|SEAL (seals {seals:?})"
        )));
    }
    if seals.intersects(FORBIDDEN_SEALS) {
        return Err(Error::InvalidShm(format!("memfd is sealed against writing (seals {seals:?})")));
    }
    let st = rustix::fs::fstat(fd).map_err(|e| Error::io("fstat", e))?;
    if st.st_size as u64 != size as u64 {
        return Err(Error::InvalidShm(format!("memfd is {} bytes, expected {size}", st.st_size)));
    }
    Ok((st.st_dev as u64, st.st_ino as u64))
}

/// A shared, read-write mapping of a whole memfd. Unmapped on drop.
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; it is not tied to the thread that created it, and
// all accesses through `&Mapping` are either atomics or byte copies that tolerate concurrent
// writers (the peer process writes concurrently anyway).
unsafe impl Send for Mapping {}
// SAFETY: see `Send`; `&Mapping` only offers atomics and copies.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared and read-write.
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> Result<Self> {
        if len == 0 {
            return Err(Error::InvalidArgument("cannot map 0 bytes".into()));
        }
        // SAFETY: we ask the kernel for a fresh mapping (null hint, no MAP_FIXED), so no existing
        // memory is replaced. The file's size is sealed and was checked to be `len` by our callers,
        // so every byte of the mapping is backed.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                ProtFlags::READ | ProtFlags::WRITE,
                MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }
        .map_err(|e| Error::io("mmap", e))?;
        let ptr = NonNull::new(ptr.cast::<u8>()).ok_or_else(|| Error::InvalidShm("mmap returned null".into()))?;
        Ok(Mapping { ptr, len })
    }

    /// Length of the mapping in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: empty mappings cannot be made.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Base address, for bindings that expose the mapping to another runtime (for example as an
    /// external `ArrayBuffer`). The pointer is valid for `len()` bytes while `self` lives.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    fn check(&self, off: usize, len: usize, align: usize) {
        // These are our own offsets, computed from validated indices; failing here is a bug in
        // this crate, never peer input, so a panic is the right answer.
        assert!(off.is_multiple_of(align), "unaligned shared-memory access at {off}");
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.len),
            "shared-memory access {off}+{len} out of {}",
            self.len
        );
    }

    /// A 64-bit atomic at `off` (8-aligned, in bounds).
    pub fn atomic_u64(&self, off: usize) -> &AtomicU64 {
        self.check(off, 8, 8);
        // SAFETY: in bounds and aligned (checked above); the memory lives as long as `&self`;
        // AtomicU64 has the same layout as u64 and every bit pattern is valid. Other processes
        // only ever access these words atomically too.
        unsafe { AtomicU64::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// A 32-bit atomic at `off` (4-aligned, in bounds).
    pub fn atomic_u32(&self, off: usize) -> &AtomicU32 {
        self.check(off, 4, 4);
        // SAFETY: as for `atomic_u64`.
        unsafe { AtomicU32::from_ptr(self.ptr.as_ptr().add(off).cast()) }
    }

    /// Reads a u32 at `off` once. The peer may be writing it concurrently; callers validate the value.
    pub fn read_u32(&self, off: usize) -> u32 {
        self.check(off, 4, 4);
        // SAFETY: in bounds and aligned. A volatile read makes exactly one load, so a value that is
        // validated is the value that is used (no double fetch a racing peer could exploit).
        unsafe { std::ptr::read_volatile(self.ptr.as_ptr().add(off).cast::<u32>()) }
    }

    /// Writes a u32 at `off`.
    pub fn write_u32(&self, off: usize, value: u32) {
        self.check(off, 4, 4);
        // SAFETY: in bounds and aligned; a concurrent peer read sees either value, which the
        // ring's release/acquire protocol makes irrelevant.
        unsafe { std::ptr::write_volatile(self.ptr.as_ptr().add(off).cast::<u32>(), value) }
    }

    /// Copies `dst.len()` bytes out of the mapping starting at `off`.
    pub fn read_bytes(&self, off: usize, dst: &mut [u8]) {
        self.check(off, dst.len(), 1);
        // SAFETY: source range is in bounds (checked); `dst` is our own private memory, so the
        // ranges cannot overlap. Torn bytes from a misbehaving peer are just bad data.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len()) }
    }

    /// Appends `len` bytes of the mapping starting at `off` to `dst`, copying once (no
    /// zero-fill first: reassembling large messages is a memcpy-bound path).
    pub fn append_to(&self, off: usize, len: usize, dst: &mut Vec<u8>) {
        self.check(off, len, 1);
        dst.reserve(len);
        let start = dst.len();
        // SAFETY: the source range is in bounds (checked); `reserve` made room for `len` more
        // bytes in `dst`, which is private memory, so the ranges cannot overlap; after the copy
        // those bytes are initialised, so extending the length over them is sound.
        unsafe {
            std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr().add(start), len);
            dst.set_len(start + len);
        }
    }

    /// Copies `src` into the mapping at `off`.
    pub fn write_bytes(&self, off: usize, src: &[u8]) {
        self.check(off, src.len(), 1);
        // SAFETY: destination range is in bounds (checked); `src` is private memory (a caller
        // cannot hold a Rust slice into the mapping), so the ranges do not overlap.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len()) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` came from a successful mmap and are unmapped exactly once, here.
        // Accessors borrow `self`, so none can outlive this.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_memfd_cannot_be_resized() {
        let fd = create_sealed_memfd("t", 8192).unwrap();
        check_sealed_memfd(fd.as_fd(), 8192).unwrap();
        assert!(rustix::fs::ftruncate(&fd, 4096).is_err(), "shrink must be refused");
        assert!(rustix::fs::ftruncate(&fd, 1 << 20).is_err(), "grow must be refused");
        assert!(check_sealed_memfd(fd.as_fd(), 4096).is_err(), "size mismatch must be reported");
    }

    #[test]
    fn write_sealed_or_unsealable_memfd_is_refused() {
        for extra in [SealFlags::WRITE, SealFlags::FUTURE_WRITE] {
            let fd = rustix::fs::memfd_create("w", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
            rustix::fs::ftruncate(&fd, 4096).unwrap();
            rustix::fs::fcntl_add_seals(&fd, extra | SealFlags::SHRINK | SealFlags::GROW).unwrap();
            rustix::fs::fcntl_add_seals(&fd, SealFlags::SEAL).unwrap();
            assert!(
                matches!(check_sealed_memfd(fd.as_fd(), 4096), Err(Error::InvalidShm(_))),
                "{extra:?}"
            );
        }
        // Sealed against resizing but not against more seals: the peer could still add WRITE.
        let fd = rustix::fs::memfd_create("s", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        rustix::fs::fcntl_add_seals(&fd, SealFlags::SHRINK | SealFlags::GROW).unwrap();
        assert!(matches!(check_sealed_memfd(fd.as_fd(), 4096), Err(Error::InvalidShm(_))));
    }

    #[test]
    fn unsealed_memfd_is_refused() {
        let fd = rustix::fs::memfd_create("u", MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING).unwrap();
        rustix::fs::ftruncate(&fd, 4096).unwrap();
        let err = check_sealed_memfd(fd.as_fd(), 4096).unwrap_err();
        assert!(matches!(err, Error::InvalidShm(_)), "{err}");
    }

    #[test]
    fn two_mappings_share_bytes() {
        let fd = create_sealed_memfd("t", 4096).unwrap();
        let a = Mapping::map(fd.as_fd(), 4096).unwrap();
        let b = Mapping::map(fd.as_fd(), 4096).unwrap();
        a.write_bytes(100, b"hello");
        let mut out = [0u8; 5];
        b.read_bytes(100, &mut out);
        assert_eq!(&out, b"hello");
    }

    #[test]
    #[should_panic(expected = "out of")]
    fn out_of_bounds_access_panics_instead_of_touching_memory() {
        let fd = create_sealed_memfd("t", 4096).unwrap();
        let a = Mapping::map(fd.as_fd(), 4096).unwrap();
        a.read_u32(4096);
    }
}
