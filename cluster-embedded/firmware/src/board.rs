//! The board: ARM's MPS2 with the AN386 FPGA image (Cortex-M4F), as QEMU emulates it
//! (`qemu-system-arm -M mps2-an386`). Only what the firmware uses is listed.

/// The core clock (and SysTick's processor clock source): 25 MHz on AN386.
pub const CORE_HZ: u32 = 25_000_000;
/// The SMSC LAN9220 (LAN9118 family) Ethernet MAC and PHY, on the static memory bus.
pub const ETHERNET: usize = 0x4020_0000;
/// The first CMSDK APB UART: the console (QEMU's `-serial`).
pub const UART0: usize = 0x4000_4000;
/// The first CMSDK APB timer: the clock.
pub const TIMER0: usize = 0x4000_0000;
