//! The console: a CMSDK APB UART (ARM's Cortex-M System Design Kit), polled. It carries the
//! node's JSON lines out and the operator's command lines in (QEMU's `-serial stdio`).

use crate::UART0;
use crate::mmio::Registers;

const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const BAUDDIV: usize = 0x10;

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
const CTRL_TX_ENABLE: u32 = 1 << 0;
const CTRL_RX_ENABLE: u32 = 1 << 1;

/// The longest command line kept; longer lines are cut (and then not understood).
pub const LINE: usize = 160;

/// The UART, and the command line being typed.
pub struct Uart {
    regs: Registers<UART0>,
    line: heapless::Vec<u8, LINE>,
    /// The last byte was a carriage return: a `\n` right after it ends no second line.
    after_cr: bool,
}

impl Uart {
    /// The UART at `regs`, transmitter and receiver enabled. The divider is the smallest the
    /// block accepts (16); it sets the real line's baud rate, which QEMU does not model.
    pub fn new(mut regs: Registers<UART0>) -> Self {
        regs.write(BAUDDIV, 16);
        regs.write(CTRL, CTRL_TX_ENABLE | CTRL_RX_ENABLE);
        Self {
            regs,
            line: heapless::Vec::new(),
            after_cr: false,
        }
    }

    /// Writes `bytes`, waiting while the one-byte transmit buffer is full.
    pub fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            while self.regs.read(STATE) & STATE_TX_FULL != 0 {}
            self.regs.write(DATA, u32::from(byte));
        }
    }

    /// True when a received byte waits.
    pub fn rx_pending(&self) -> bool {
        self.regs.read(STATE) & STATE_RX_FULL != 0
    }

    /// Reads what has arrived; returns a whole command line (without its end) once one is
    /// complete. Never waits.
    pub fn poll_line(&mut self) -> Option<heapless::Vec<u8, LINE>> {
        while self.rx_pending() {
            let byte = self.regs.read(DATA) as u8;
            let after_cr = core::mem::replace(&mut self.after_cr, byte == b'\r');
            match byte {
                b'\n' if after_cr => {}
                b'\r' | b'\n' => return Some(core::mem::take(&mut self.line)),
                _ => {
                    let _ = self.line.push(byte);
                }
            }
        }
        None
    }
}
