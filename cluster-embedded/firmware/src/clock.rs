//! The millisecond clock: the CMSDK APB timer 0, a 32-bit down-counter at the 25 MHz APB
//! clock, read and widened in software; SysTick only wakes the core once a millisecond.
//!
//! Counting SysTick interrupts would be simpler, but a count of interrupts loses time whenever
//! an interrupt is late enough to merge with the next one: under QEMU on a loaded host that
//! happens often (a run measured 2 s of interrupts in 6 s), and on hardware whenever
//! interrupts stay masked for over a millisecond. The counter's value is the time itself.

use cortex_m::peripheral::SYST;
use cortex_m::peripheral::syst::SystClkSource;
use cortex_m_rt::exception;

use crate::board::CORE_HZ;
use crate::mmio::Registers;

const CTRL: usize = 0x00;
const VALUE: usize = 0x04;
const RELOAD: usize = 0x08;
const CTRL_ENABLE: u32 = 1 << 0;

/// The timer counts at the APB clock, which is the core clock on this board.
const TICKS_PER_MS: u64 = CORE_HZ as u64 / 1000;

#[exception]
fn SysTick() {
    // Nothing to do: the interrupt only ends the main loop's `wfi`.
}

/// Milliseconds since [`Clock::start`]. Read it at least every 171 s (the counter's wrap at
/// 25 MHz); the main loop does every millisecond.
pub struct Clock {
    timer: Registers,
    last: u32,
    ticks: u64,
}

impl Clock {
    /// Starts the timer (free-running from `u32::MAX`) and SysTick's millisecond wake-up.
    pub fn start(mut timer: Registers, mut syst: SYST) -> Self {
        timer.write(CTRL, 0);
        timer.write(RELOAD, u32::MAX);
        timer.write(VALUE, u32::MAX);
        timer.write(CTRL, CTRL_ENABLE);
        syst.set_clock_source(SystClkSource::Core);
        syst.set_reload(CORE_HZ / 1000 - 1);
        syst.clear_current();
        syst.enable_interrupt();
        syst.enable_counter();
        Self {
            last: timer.read(VALUE),
            timer,
            ticks: 0,
        }
    }

    /// Milliseconds since start.
    pub fn now(&mut self) -> i64 {
        let value = self.timer.read(VALUE);
        // A down-counter over the whole 32-bit range: the ticks since the last read.
        self.ticks += u64::from(self.last.wrapping_sub(value));
        self.last = value;
        i64::try_from(self.ticks / TICKS_PER_MS).unwrap_or(i64::MAX)
    }
}
