//! A smoltcp [`Device`] for the SMSC LAN9118 family of Ethernet controllers (LAN9118,
//! LAN9220: a MAC and a PHY with on-chip FIFOs, no DMA), in 32-bit bus mode, polled.
//!
//! The controller keeps received frames in its RX data FIFO, each announced by a word in the
//! RX status FIFO (frame length including the 4-byte FCS, error bits); frames are sent by
//! writing two command words and the frame's bytes, as little-endian words, to the TX data
//! FIFO. The MAC's own registers (`MAC_CR`, the address, the hash filter) sit behind an
//! indirect window: `MAC_CSR_DATA` and a command in `MAC_CSR_CMD`.
//!
//! What this driver does and does not do:
//! * Polled, no interrupt: the firmware's loop wakes every millisecond (SysTick) and looks at
//!   the RX status FIFO's fill level, one register read.
//! * One frame buffer each way, in RAM: a received frame is copied out of the FIFO once,
//!   whole, before smoltcp sees it; a frame smoltcp writes is pushed into the FIFO at once.
//! * Multicast: every multicast frame is passed (`MCPAS`) and smoltcp keeps the groups it
//!   joined; a busier network would program the 64-bit hash filter instead.
//! * Bad frames: a status with the error summary bit, or longer than the buffer, is skipped
//!   with the FIFO's fast-forward and counted; nothing the wire sends can make the driver
//!   read past its buffer or wait.
//!
//! Both network stacks drive it: smoltcp through [`phy::Device`](smoltcp::phy::Device)
//! (feature `smoltcp`, module [`smoltcp_device`]) and embassy-net through
//! `embassy_net_driver::Driver` (feature `embassy`).
//!
//! The register sequence follows the LAN9118 datasheet's (soft reset, wait for `READY`,
//! MAC address from the EEPROM loader, `TX_ON`, `TXEN | RXEN`) and was checked against QEMU's
//! model of the chip (`hw/net/lan9118.c`), which this firmware runs on in CI.

use crate::ETHERNET;
use crate::mmio::Registers;

/// The largest frame: an Ethernet header, 1500 bytes of payload (no FCS, no VLAN tag).
pub const FRAME: usize = 1514;
/// The receive buffer: a frame and its FCS, rounded up to whole FIFO words.
const RX_BUF: usize = 1520;

// System control and status registers (byte offsets).
const RX_DATA_FIFO: usize = 0x00;
const TX_DATA_FIFO: usize = 0x20;
const RX_STATUS_FIFO: usize = 0x40;
const TX_STATUS_FIFO: usize = 0x48;
const BYTE_TEST: usize = 0x64;
const RX_CFG: usize = 0x6c;
const TX_CFG: usize = 0x70;
const HW_CFG: usize = 0x74;
const RX_DP_CTRL: usize = 0x78;
const RX_FIFO_INF: usize = 0x7c;
const TX_FIFO_INF: usize = 0x80;
const IRQ_CFG: usize = 0x54;
const INT_STS: usize = 0x58;
const INT_EN: usize = 0x5c;
const FIFO_INT: usize = 0x68;
const PMT_CTRL: usize = 0x84;
const FREE_RUN: usize = 0x9c;
const MAC_CSR_CMD: usize = 0xa4;
const MAC_CSR_DATA: usize = 0xa8;

// Values and bits.
const BYTE_TEST_VALUE: u32 = 0x8765_4321;
const HW_CFG_SRST: u32 = 1;
const PMT_CTRL_READY: u32 = 1;
const TX_CFG_TX_ON: u32 = 1 << 1;
const RX_DP_CTRL_FFWD: u32 = 1 << 31;
const RX_STATUS_ERROR: u32 = 1 << 15;
const TX_CMD_A_FIRST: u32 = 1 << 13;
const TX_CMD_A_LAST: u32 = 1 << 12;
/// `IRQ_CFG`: the IRQ pin enabled, push-pull, active high.
const IRQ_CFG_PUSH_PULL_HIGH: u32 = (1 << 8) | (1 << 4) | 1;
/// `INT_STS`/`INT_EN`: the RX status FIFO holds more entries than `FIFO_INT`'s level (0).
const INT_RSFL: u32 = 1 << 3;
const MAC_CSR_BUSY: u32 = 1 << 31;
const MAC_CSR_READ: u32 = 1 << 30;

// MAC registers (indices behind the MAC_CSR window).
const MAC_CR: u32 = 1;
const MAC_ADDRH: u32 = 2;
const MAC_ADDRL: u32 = 3;
const MAC_CR_MCPAS: u32 = 1 << 19;
const MAC_CR_FDPX: u32 = 1 << 20;
const MAC_CR_TXEN: u32 = 1 << 3;
const MAC_CR_RXEN: u32 = 1 << 2;

/// How many times a bounded wait reads its register before giving up.
const SPINS: u32 = 100_000;

/// Why the controller could not be brought up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitError {
    /// `BYTE_TEST` did not read `0x87654321`: no LAN9118 there, or the bus is not 32 bits.
    NotFound,
    /// The soft reset or a MAC register access did not finish.
    Timeout,
}

/// Counters of what the driver saw.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Frames handed to smoltcp.
    pub received: u32,
    /// Frames sent.
    pub sent: u32,
    /// Frames skipped: error status, too long, or too short to hold an FCS.
    pub rx_errors: u32,
}

/// The controller and its two frame buffers.
pub struct Lan9118 {
    /// The last frame taken out of the RX FIFO (and its FCS).
    pub(crate) rx: [u8; RX_BUF],
    /// The MAC address the EEPROM loader set, once [`init`](Self::init) has read it.
    pub(crate) mac: [u8; 6],
    /// The registers, the transmit buffer and the counters: what a [`TxToken`] borrows
    /// while an [`RxToken`] borrows `rx` (smoltcp may answer a frame at once, e.g. ARP).
    pub(crate) port: Port,
}

/// The controller's registers, the frame being sent, and the counters.
pub(crate) struct Port {
    regs: Registers<ETHERNET>,
    tx: [u8; FRAME],
    counters: Counters,
}

impl Lan9118 {
    /// The driver for the controller at `regs`, not yet initialised (see [`init`](Self::init)).
    /// `const`, so that a `static` holds it without a flash image.
    pub const fn new(regs: Registers<ETHERNET>) -> Self {
        Self {
            rx: [0; RX_BUF],
            mac: [0; 6],
            port: Port {
                regs,
                tx: [0; FRAME],
                counters: Counters {
                    received: 0,
                    sent: 0,
                    rx_errors: 0,
                },
            },
        }
    }

    /// Resets the controller, turns the transmitter and the receiver on, and returns the MAC
    /// address its EEPROM loader set (QEMU's `-nic ...,mac=`).
    pub fn init(&mut self) -> Result<[u8; 6], InitError> {
        let port = &mut self.port;
        if port.regs.read(BYTE_TEST) != BYTE_TEST_VALUE {
            return Err(InitError::NotFound);
        }
        port.regs.write(HW_CFG, HW_CFG_SRST);
        port.wait(HW_CFG, HW_CFG_SRST, 0)?;
        port.wait(PMT_CTRL, PMT_CTRL_READY, PMT_CTRL_READY)?;
        let low = port.mac_read(MAC_ADDRL)?.to_le_bytes();
        let high = port.mac_read(MAC_ADDRH)?.to_le_bytes();
        // Frames start at the first byte of the first word, without end padding.
        port.regs.write(RX_CFG, 0);
        port.regs.write(TX_CFG, TX_CFG_TX_ON);
        port.mac_write(
            MAC_CR,
            MAC_CR_TXEN | MAC_CR_RXEN | MAC_CR_FDPX | MAC_CR_MCPAS,
        )?;
        // The IRQ pin's shape; no interrupt is enabled until a driver arms one.
        port.regs.write(FIFO_INT, 0);
        port.regs.write(INT_EN, 0);
        port.regs.write(IRQ_CFG, IRQ_CFG_PUSH_PULL_HIGH);
        self.mac = [low[0], low[1], low[2], low[3], high[0], high[1]];
        Ok(self.mac)
    }

    /// True when a received frame waits in the FIFO.
    pub fn rx_pending(&self) -> bool {
        self.port.rx_pending()
    }

    /// What the driver has counted.
    pub fn counters(&self) -> Counters {
        self.port.counters
    }

    /// The free-running 25 MHz counter (time since reset, modulo 2^32).
    pub fn free_run(&self) -> u32 {
        self.port.regs.read(FREE_RUN)
    }

    /// Takes the next good frame out of the FIFO into `rx`, skipping bad ones; its length
    /// without the FCS.
    pub(crate) fn take_frame(&mut self) -> Option<usize> {
        let port = &mut self.port;
        loop {
            if !port.rx_pending() {
                return None;
            }
            let status = port.regs.read(RX_STATUS_FIFO);
            let len = ((status >> 16) & 0x3fff) as usize;
            let words = len.div_ceil(4);
            if status & RX_STATUS_ERROR != 0 || !(4 + 14..=RX_BUF).contains(&len) {
                port.counters.rx_errors = port.counters.rx_errors.wrapping_add(1);
                port.skip(words);
                continue;
            }
            for chunk in self.rx[..words * 4].chunks_exact_mut(4) {
                chunk.copy_from_slice(&port.regs.read(RX_DATA_FIFO).to_le_bytes());
            }
            port.counters.received = port.counters.received.wrapping_add(1);
            return Some(len - 4);
        }
    }
}

impl Port {
    #[cfg(feature = "embassy")]
    /// Arms the RX interrupt: it fires when a frame arrives (after `arm`, not for frames
    /// already waiting: check [`rx_pending`](Self::rx_pending) after arming).
    pub(crate) fn arm_rx_interrupt(&mut self) {
        self.regs.write(INT_STS, INT_RSFL);
        self.regs.write(INT_EN, INT_RSFL);
    }

    /// True when a received frame waits in the FIFO.
    pub(crate) fn rx_pending(&self) -> bool {
        (self.regs.read(RX_FIFO_INF) >> 16) & 0xff != 0
    }

    /// Reads MAC register `index` through the indirect window.
    fn mac_read(&mut self, index: u32) -> Result<u32, InitError> {
        self.regs
            .write(MAC_CSR_CMD, MAC_CSR_BUSY | MAC_CSR_READ | index);
        self.wait(MAC_CSR_CMD, MAC_CSR_BUSY, 0)?;
        Ok(self.regs.read(MAC_CSR_DATA))
    }

    /// Writes MAC register `index` through the indirect window.
    fn mac_write(&mut self, index: u32, value: u32) -> Result<(), InitError> {
        self.regs.write(MAC_CSR_DATA, value);
        self.regs.write(MAC_CSR_CMD, MAC_CSR_BUSY | index);
        self.wait(MAC_CSR_CMD, MAC_CSR_BUSY, 0)
    }

    /// Waits, a bounded number of reads, until `register & mask == want`.
    fn wait(&self, register: usize, mask: u32, want: u32) -> Result<(), InitError> {
        for _ in 0..SPINS {
            if self.regs.read(register) & mask == want {
                return Ok(());
            }
        }
        Err(InitError::Timeout)
    }

    /// Discards a frame of `words` FIFO words: the fast-forward for long ones, reads for short
    /// ones (the datasheet asks for reads below four words).
    fn skip(&mut self, words: usize) {
        if words >= 4 {
            self.regs.write(RX_DP_CTRL, RX_DP_CTRL_FFWD);
            let _ = self.wait(RX_DP_CTRL, RX_DP_CTRL_FFWD, 0);
        } else {
            for _ in 0..words {
                let _ = self.regs.read(RX_DATA_FIFO);
            }
        }
    }

    /// True when the TX data FIFO has room for a whole frame and its commands.
    pub(crate) fn tx_room(&self) -> bool {
        (self.regs.read(TX_FIFO_INF) & 0xffff) as usize >= FRAME + 8
    }

    /// Lets `fill` write a frame of `len` bytes (at most [`FRAME`]) into the transmit buffer,
    /// then sends it: the work of both stacks' transmit tokens.
    pub(crate) fn fill_and_send<R>(&mut self, len: usize, fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let len = len.min(FRAME);
        let result = fill(&mut self.tx[..len]);
        self.send(len);
        result
    }

    /// Pushes the first `len` bytes of `tx` into the TX FIFO as one frame.
    fn send(&mut self, len: usize) {
        // Each frame leaves a word in the TX status FIFO; drop them, nobody reads them.
        while (self.regs.read(TX_FIFO_INF) >> 16) & 0xff != 0 {
            let _ = self.regs.read(TX_STATUS_FIFO);
        }
        // At most FRAME (1514): fits command A's 11-bit buffer size.
        let len32 = len as u32;
        self.regs
            .write(TX_DATA_FIFO, TX_CMD_A_FIRST | TX_CMD_A_LAST | len32);
        // Command B: a tag (the length again) and the frame's length.
        self.regs.write(TX_DATA_FIFO, (len32 << 16) | len32);
        for chunk in self.tx[..len].chunks(4) {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            self.regs.write(TX_DATA_FIFO, u32::from_le_bytes(word));
        }
        self.counters.sent = self.counters.sent.wrapping_add(1);
    }
}

#[cfg(feature = "embassy")]
pub mod embassy_driver;
#[cfg(feature = "smoltcp")]
pub mod smoltcp_device;

/// The controller's interrupt: disarms it (the driver arms it again when it has nothing to
/// read). Call it from the interrupt handler of [`ETHERNET_IRQ`](crate::ETHERNET_IRQ); it
/// touches only the interrupt enable and status registers, which no path of the driver leaves
/// half-written.
pub fn disarm_interrupt() {
    // SAFETY: the controller's block; the two registers written are the interrupt's alone,
    // and an interrupt handler runs to its end before the driver resumes.
    let mut regs: Registers<ETHERNET> = unsafe { Registers::new() };
    regs.write(INT_EN, 0);
    regs.write(INT_STS, INT_RSFL);
}

/// The controller's interrupt line, for `cortex_m::peripheral::NVIC`.
#[derive(Debug, Clone, Copy)]
pub struct Interrupt;

// SAFETY: the number is the controller's line on this board's NVIC, and is below the
// Cortex-M4's limit of 240.
unsafe impl cortex_m::interrupt::InterruptNumber for Interrupt {
    fn number(self) -> u16 {
        crate::ETHERNET_IRQ
    }
}
