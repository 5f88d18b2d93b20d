//! The board support of the cluster firmware: ARM's MPS2 with the AN386 FPGA image
//! (Cortex-M4F), as QEMU emulates it (`qemu-system-arm -M mps2-an386`). Shared by the
//! firmware images of both drivers (cluster-embedded's smoltcp poll loop and cluster-embassy's
//! async task), so that each is only its application.
//!
//! | module | what |
//! | --- | --- |
//! | [`mmio`] | volatile register access behind a safe API (the only `unsafe`: creating one) |
//! | [`lan9118`] | the SMSC LAN9220 Ethernet controller: a smoltcp `phy::Device` (feature `smoltcp`) and an `embassy-net-driver` `Driver` (feature `embassy`) |
//! | [`clock`] | milliseconds from the CMSDK APB timer 0 |
//! | [`uart`] | the console: CMSDK APB UART 0, lines in and out |
//! | [`json`] | JSON lines on the console, without `core::fmt` |
//! | `lines` | the node's lines (`cluster join --json`'s), from `cluster-core` types (feature `cluster`) |
//! | [`host`] | Arm semihosting: the command line, a file, the exit status |
//! | [`options`] | the firmware's options, from the command line |
//! | [`stack`] | stack painting and the high-water mark |
#![no_std]

pub mod clock;
pub mod host;
pub mod json;
pub mod lan9118;
#[cfg(feature = "cluster")]
pub mod lines;
pub mod mmio;
pub mod options;
pub mod stack;
pub mod uart;

// The memory map: only what the firmware uses.

/// The core clock (and SysTick's processor clock source): 25 MHz on AN386.
pub const CORE_HZ: u32 = 25_000_000;
/// The SMSC LAN9220 (LAN9118 family) Ethernet MAC and PHY, on the static memory bus.
pub const ETHERNET: usize = 0x4020_0000;
/// The first CMSDK APB UART: the console (QEMU's `-serial`).
pub const UART0: usize = 0x4000_4000;
/// The first CMSDK APB timer: the clock.
pub const TIMER0: usize = 0x4000_0000;
/// The Ethernet controller's interrupt line (an external interrupt of the NVIC).
pub const ETHERNET_IRQ: u16 = 13;
