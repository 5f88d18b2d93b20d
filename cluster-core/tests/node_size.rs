//! The memory of a node with the default capacity (32 services, 512-byte payloads), pinned:
//! the crate docs and BENCHMARKS.md state this figure, so a change to it must update them.

use cluster_core::{DefaultPolicy, Event, Node, Service};

/// The figure the crate docs state, on 64-bit targets.
const DOCUMENTED: usize = 24_432;
/// The same node built with the `seal` feature (its key ring, replay table of 32 senders and
/// a 1 KiB opening buffer come on top); the goal is for the default build.
const DOCUMENTED_SEALED: usize = 27_200;

#[test]
fn default_node_fits_in_24_kib_and_matches_the_docs() {
    let size = size_of::<Node>();
    eprintln!(
        "size_of::<Node>() = {size} bytes (seal: {})",
        cfg!(feature = "seal")
    );
    eprintln!("size_of::<Service>() = {}", size_of::<Service>());
    eprintln!("size_of::<Event>() = {}", size_of::<Event>());
    if cfg!(feature = "seal") {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(size, DOCUMENTED_SEALED, "update the crate docs");
        }
    } else {
        assert!(
            size <= 24 * 1024,
            "Node is {size} bytes, over the 24 KiB goal"
        );
        if cfg!(target_pointer_width = "64") {
            assert_eq!(size, DOCUMENTED, "update the crate docs and BENCHMARKS.md");
        }
    }
    // The smallest node still builds.
    assert!(size_of::<Node<DefaultPolicy, 1, 64>>() < size);
}
