//! Fuzz targets of `cluster-core`, as plain functions over bytes.
//!
//! Each `fuzz_targets/<name>.rs` only calls the function of the same name here (`node` reads
//! its input as a typed [`node::Script`] the same way, for `cargo fuzz fmt`), and
//! `tests/replay.rs` runs every file of `corpus/<name>/` (and `artifacts/<name>/`) through it
//! on stable Rust, so a corpus is a regression suite without cargo-fuzz. The bodies use the
//! public API of `cluster-core` only, and panic when a property breaks.
//!
//! | target | input | properties |
//! | --- | --- | --- |
//! | [`decode()`] | any bytes | no panic; a decoded frame's fields re-encode (unchecked) to a frame that decodes to the same fields, canonically; reference mode writes the same bytes or refuses a reserved varint; `Message::from_frame` round-trips through `Message::encode_with`; `encoded_len` and `encode` agree |
//! | [`stream()`] | chunks (see [`stream::read_chunks`]) | no panic; pending bytes never exceed `N`; counters grow and count what was reported; with a buffer larger than the stream, chunking and interleaving senders change nothing; valid frames between garbage without `c0 8d` are all found |
//! | [`tcl_list()`] | any bytes | reading any text ends, never panics, and its readers agree; writing elements with `ListWriter` then reading gives them back (also nested and as a dict); `element_len` and `LenCounter` are exact |
//! | [`node()`] | a [`node::Script`] | see below |
//! | [`sealed()`] | steps (see `sealed.rs`) | a node that requires sealed frames, fed garbage, forged, altered, cut and replayed frames around a peer's authentic ones: no panic; only sealed frames leave it; nothing but an authentic frame is accepted, and each at most once; it never knows a service but the peer |
//!
//! The `node` target drives one [`node::FuzzNode`] by its driving contract: after every input
//! or command it drains `poll_transmit` (into `TRANSMIT_BUF` bytes) and `poll_event`, and when
//! `poll_timeout()` has passed it calls `handle_timeout`. It checks that nothing panics; that
//! every frame sent is one valid frame carrying the node's sid and hid, that a reference node
//! can read; that `known() <= 8`; that after `handle_timeout(t)` and the drain,
//! `poll_timeout()` is `None` or later than `t`, and a second `handle_timeout(t)` does nothing;
//! that a time in the past is counted; that the counters of `Stats` never decrease; that a
//! refused tag edit changes nothing; that a node that left stays silent; and, for scripts
//! that ask for it, that a second run of the same script sends and tells exactly the same.
#![forbid(unsafe_code)]

pub mod bytes;
mod decode;
pub mod frames;
pub mod node;
mod sealed;
pub mod stream;
mod tcl;

use arbitrary::{Arbitrary, Unstructured};

/// Target `decode`: any bytes as a frame, a message and a varint.
pub fn decode(data: &[u8]) {
    decode::run(data);
}

/// Target `stream`: chunks of a byte stream through `Reassembler` and `StreamTable`.
pub fn stream(data: &[u8]) {
    stream::run(data);
}

/// Target `tcl_list`: the Tcl list reader and writer.
pub fn tcl_list(data: &[u8]) {
    tcl::run(data);
}

/// Target `node`: a script of inputs and commands driven into one node.
pub fn node(data: &[u8]) {
    let Ok(script) = node::Script::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    node::run(&script);
}

/// Target `sealed`: forged, altered and replayed frames at a node that requires sealing.
pub fn sealed(data: &[u8]) {
    sealed::run(data);
}

/// Runs a `node` input and tells what it did (for looking at seeds and crashes).
pub fn node_report(data: &[u8]) -> node::Report {
    let script = node::Script::arbitrary_take_rest(Unstructured::new(data)).unwrap_or_else(|_| {
        node::Script {
            setup: node::Setup::default(),
            steps: Vec::new(),
        }
    });
    node::run(&script)
}

/// A target's body.
pub type Target = fn(&[u8]);

/// The targets by name, for the replay test.
pub const TARGETS: [(&str, Target); 5] = [
    ("decode", decode),
    ("stream", stream),
    ("tcl_list", tcl_list),
    ("node", node),
    ("sealed", sealed),
];
