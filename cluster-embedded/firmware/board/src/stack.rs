//! The stack's high-water mark, measured at run time: the free RAM between the end of the
//! statics and the stack pointer is painted with a pattern at start-up; the deepest the stack
//! ever went is where the pattern first stops, scanning up from the bottom.

use core::ptr::{addr_of, read_volatile, write_volatile};

const PAINT: u32 = 0x5afe_c0de;
/// Left unpainted below the stack pointer at the time of painting (the painter's own frame).
const MARGIN: usize = 64;

unsafe extern "C" {
    /// The first free byte after the statics (cortex-m-rt's linker script).
    static __sheap: u32;
    /// The initial stack pointer: the top of RAM.
    static _stack_start: u32;
}

fn bottom() -> usize {
    // Only the symbol's address is taken; the linker script defines it.
    addr_of!(__sheap) as usize
}

fn top() -> usize {
    addr_of!(_stack_start) as usize
}

/// Paints the free stack. Call once, first thing in `main`.
#[inline(never)]
pub fn paint() {
    let sp = cortex_m::register::msp::read() as usize;
    let mut addr = bottom();
    while addr + 4 <= sp - MARGIN {
        // SAFETY: between the statics and the live stack: RAM nobody uses yet.
        unsafe { write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// The most stack used since [`paint`], in bytes (interrupt frames included).
pub fn high_water() -> usize {
    let mut addr = bottom();
    let top = top();
    // SAFETY: reads of RAM between the statics and the top of the stack.
    while addr < top && unsafe { read_volatile(addr as *const u32) } == PAINT {
        addr += 4;
    }
    top - addr
}
