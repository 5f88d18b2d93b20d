//! The controller as an `embassy-net-driver` [`Driver`]: interrupt-driven receive. When no
//! frame waits, `receive` registers the task's waker and arms the controller's RX interrupt;
//! the interrupt handler calls [`on_interrupt`], which disarms it and wakes the task.

use core::task::Context;

use embassy_net_driver::{Capabilities, Driver, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;

use super::{FRAME, Lan9118, Port, disarm_interrupt};

/// The task waiting for a received frame.
static RX_WAKER: AtomicWaker = AtomicWaker::new();

/// The interrupt handler's work: disarms the controller's interrupt and wakes the network
/// task. Call it from the handler of [`ETHERNET_IRQ`](crate::ETHERNET_IRQ).
pub fn on_interrupt() {
    disarm_interrupt();
    RX_WAKER.wake();
}

/// A received frame, borrowed from the driver's buffer.
pub struct RxToken<'a>(&'a mut [u8]);

/// Room for one frame to send.
pub struct TxToken<'a>(&'a mut Port);

impl embassy_net_driver::RxToken for RxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.0)
    }
}

impl embassy_net_driver::TxToken for TxToken<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        self.0.fill_and_send(len, f)
    }
}

impl Driver for Lan9118 {
    type RxToken<'a> = RxToken<'a>;
    type TxToken<'a> = TxToken<'a>;

    fn receive(&mut self, cx: &mut Context<'_>) -> Option<(RxToken<'_>, TxToken<'_>)> {
        let Some(len) = self.take_frame() else {
            RX_WAKER.register(cx.waker());
            self.port.arm_rx_interrupt();
            // A frame that arrived before the interrupt was armed raises none: look again.
            if self.port.rx_pending() {
                cx.waker().wake_by_ref();
            }
            return None;
        };
        Some((RxToken(&mut self.rx[..len]), TxToken(&mut self.port)))
    }

    fn transmit(&mut self, cx: &mut Context<'_>) -> Option<TxToken<'_>> {
        if !self.port.tx_room() {
            // The FIFO drains at line rate; ask again at once rather than wait for an
            // interrupt this driver does not arm.
            cx.waker().wake_by_ref();
            return None;
        }
        Some(TxToken(&mut self.port))
    }

    fn link_state(&mut self, _cx: &mut Context<'_>) -> LinkState {
        // QEMU's PHY reports the link up from reset; a board whose cable can be pulled would
        // read the PHY's basic status register here and arm its interrupt.
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = FRAME;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.mac)
    }
}
