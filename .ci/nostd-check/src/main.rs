//! Links `cluster-core` into a `#![no_std]`, `#![no_main]` host binary with no global
//! allocator: if std or alloc leaked into cluster-core, this would fail to build.
#![no_std]
#![no_main]

#[cfg(feature = "negative-control")]
extern crate alloc;

use cluster_core::wire::{FilterPlacement, List, Message, MessageKind};

// Link the C library for the C runtime start-up and `memcpy`/`memset`/`memcmp`; nothing else.
#[link(name = "c")]
unsafe extern "C" {}

/// The precompiled `core` refers to the unwinding personality even with `panic = "abort"`;
/// it is never called.
#[unsafe(no_mangle)]
pub extern "C" fn rust_eh_personality() {}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

/// The C entry point: encodes a heartbeat, decodes it back and returns 0 when they agree.
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: i32, _argv: *const *const u8) -> i32 {
    let protocols = ["t", "c"];
    let message = Message {
        kind: Some(MessageKind::Heartbeat),
        sid: Some("AbCd1234".into()),
        hid: Some("00:11:22:33:44:55".into()),
        channel: Some(0),
        protocols: Some(List::from_items(&protocols)),
        known: Some(3),
        ..Message::default()
    };
    let mut buf = [0u8; 64];
    let Ok(len) = message.encode(FilterPlacement::Last, &mut buf) else {
        return 1;
    };
    #[cfg(feature = "negative-control")]
    let _leak = alloc::vec![0u8; len];
    match buf.get(..len).map(Message::parse) {
        Some(Ok((decoded, _))) if decoded == message => 0,
        _ => 2,
    }
}
