//! The memory of a node with the default capacity, pinned.

use cluster_core::{DefaultPolicy, Event, Node, Service};

#[test]
fn default_node_fits_in_24_kib() {
    let size = size_of::<Node>();
    eprintln!("size_of::<Node>() = {size} bytes");
    eprintln!("size_of::<Service>() = {}", size_of::<Service>());
    eprintln!("size_of::<Event>() = {}", size_of::<Event>());
    assert!(
        size <= 24 * 1024,
        "Node is {size} bytes, over the 24 KiB goal"
    );
    let _ = size_of::<Node<DefaultPolicy, 1, 64>>();
}
