//! The one place that touches device memory: a block of 32-bit registers read and written
//! with volatile accesses, behind a safe API whose only `unsafe` step is its creation.

/// A block of memory-mapped 32-bit registers at the fixed address `BASE`. The address is a
/// type parameter, not a field: the value is zero-sized, so a `static` holding a driver needs
/// no initial bytes and lives in `.bss` (a non-zero field would put the whole driver, frame
/// buffers included, in `.data`: RAM and the same again in flash).
pub struct Registers<const BASE: usize>(());

impl<const BASE: usize> Registers<BASE> {
    /// The registers at `BASE`.
    ///
    /// # Safety
    ///
    /// `BASE` must be the address of a device's register block on this board, every offset
    /// later passed to [`read`](Self::read) and [`write`](Self::write) must lie inside it,
    /// and nothing else may access that block while this value lives.
    pub const unsafe fn new() -> Self {
        Self(())
    }

    /// Reads the register at `offset` bytes from the base.
    #[inline]
    pub fn read(&self, offset: usize) -> u32 {
        // SAFETY: the caller of `new` vouched for the block; the access is aligned (offsets
        // are multiples of 4 in every caller) and volatile, as device memory must be read.
        unsafe { core::ptr::read_volatile((BASE + offset) as *const u32) }
    }

    /// Writes `value` to the register at `offset` bytes from the base.
    #[inline]
    pub fn write(&mut self, offset: usize, value: u32) {
        // SAFETY: as in `read`; `&mut self` keeps writes from two places apart.
        unsafe { core::ptr::write_volatile((BASE + offset) as *mut u32, value) }
    }
}
