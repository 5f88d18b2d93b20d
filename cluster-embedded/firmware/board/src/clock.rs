//! The millisecond clock: the CMSDK APB timer 0, a 32-bit down-counter at the 25 MHz APB
//! clock, read and widened in software. (The firmware wakes the core with SysTick or another
//! timer interrupt; the clock needs none.)
//!
//! Counting SysTick interrupts would be simpler, but a count of interrupts loses time whenever
//! an interrupt is late enough to merge with the next one: under QEMU on a loaded host that
//! happens often (a run measured 2 s of interrupts in 6 s), and on hardware whenever
//! interrupts stay masked for over a millisecond. The counter's value is the time itself.

use crate::mmio::Registers;
use crate::{CORE_HZ, TIMER0};

const CTRL: usize = 0x00;
const VALUE: usize = 0x04;
const RELOAD: usize = 0x08;
const CTRL_ENABLE: u32 = 1 << 0;

/// The timer counts at the APB clock, which is the core clock on this board.
const TICKS_PER_MS: u32 = CORE_HZ / 1000;

/// Milliseconds since [`Clock::start`]. Read it at least every 171 s (the counter's wrap at
/// 25 MHz).
pub struct Clock {
    timer: Registers<TIMER0>,
    last: u32,
    /// Ticks not yet counted as a whole millisecond.
    part: u32,
    millis: i64,
}

impl Clock {
    /// Starts the timer, free-running from `u32::MAX`.
    pub fn start(mut timer: Registers<TIMER0>) -> Self {
        timer.write(CTRL, 0);
        timer.write(RELOAD, u32::MAX);
        timer.write(VALUE, u32::MAX);
        timer.write(CTRL, CTRL_ENABLE);
        Self {
            last: timer.read(VALUE),
            timer,
            part: 0,
            millis: 0,
        }
    }

    /// The ticks (25 MHz) elapsed since some fixed moment, modulo 2^32: differences of two
    /// readings less than 171 s apart measure time.
    pub fn ticks(&self) -> u32 {
        // The counter counts down.
        self.timer.read(VALUE).wrapping_neg()
    }

    /// Milliseconds since start.
    pub fn now(&mut self) -> i64 {
        let value = self.timer.read(VALUE);
        // A down-counter over the whole 32-bit range: the ticks since the last read. 32-bit
        // divisions only (one instruction here; a 64-bit one is a library call).
        let ticks = self.last.wrapping_sub(value);
        self.last = value;
        let part = self.part + ticks % TICKS_PER_MS;
        self.millis += i64::from(ticks / TICKS_PER_MS + part / TICKS_PER_MS);
        self.part = part % TICKS_PER_MS;
        self.millis
    }
}
