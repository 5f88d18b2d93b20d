//! The memory of a node with the default capacity (32 services, 512-byte payloads), pinned:
//! the crate docs and BENCHMARKS.md state this figure, so a change to it must update them.

use cluster_core::{DefaultPolicy, Event, Node, Service};

/// The figure the crate docs state, on 64-bit targets (21,376 until the registry kept the
/// index it found last, on hosts only: issue 18; 21,384 until the outbox's broadcast queue
/// and the queue of `Lost` events were plain lists without `large-registry`: issue 14).
const DOCUMENTED: usize = 21_352;
/// The same node built with the `seal` feature (its key ring, replay table of 32 senders and
/// a 1 KiB opening buffer come on top); the goal is for the default build.
const DOCUMENTED_SEALED: usize = 24_128;
/// With the feature `node-data` each service record keeps the version of the data it
/// publishes (2 bytes), which takes the record from 312 to 320 bytes (alignment): 256 bytes
/// more with 32 services. Hosts turn it on (through cluster-host); the 24 KiB goal is for the default
/// build, which the firmware uses.
const DATA_EXTRA: usize = 256;
/// With the feature `loss-recovery` the node carries the query retransmission table, the
/// answer memory (16 answers, 16 askers' counters) and the late-tick expiry hold (16 bytes);
/// without it their capacity is zero and the hold is empty.
const LOSS_EXTRA: usize = 848;
/// With the feature `unix` the node keeps its own unix-socket path (105 bytes), a table of
/// 4 local services' paths, each service's unix connection (4 bytes, which take the record
/// from 312 to 320 bytes: 256 with 32 services) and room for a path in its rendered props
/// (256 bytes of text instead of 14); without it (the firmware, which has no unix sockets)
/// none of them.
const UNIX_EXTRA: usize = 1_088;
/// With both `node-data` and `unix` a record holds 318 bytes of fields, 320 with alignment,
/// as with either alone: the 256 bytes are counted once.
const DATA_UNIX_SHARED: usize = 256;
/// With the feature `heartbeat-fast-path` (large simulations) the registry keeps each
/// service's last periodic heartbeat (100 bytes) and 4 hints (8 bytes), and the node a flag:
/// 108 bytes per service and 16 more with alignment. (Its counter,
/// `Stats::heartbeats_repeated`, is in every build.)
const REPEAT_EXTRA: usize = 3_472;
/// With the feature `large-registry` (large simulations) the registry keeps a copy of what
/// eviction reads of each service (24 bytes), a short list of changed records and the ring
/// buffer's positions, and the outbox's broadcast queue and the queue of `Lost` events are
/// rings too: 872 bytes (with `seal` the node's padding absorbs 8 of them, 16 with
/// `heartbeat-fast-path` too); 24 more with `heartbeat-fast-path`, whose kept heartbeats
/// then live in a ring too.
const LARGE_EXTRA: usize = 872;
const LARGE_SEALED_SHARED: usize = 8;
const LARGE_REPEAT_EXTRA: usize = 24;

#[test]
fn default_node_fits_in_24_kib_and_matches_the_docs() {
    let size = size_of::<Node>();
    eprintln!(
        "size_of::<Node>() = {size} bytes (seal: {})",
        cfg!(feature = "seal")
    );
    eprintln!("size_of::<Service>() = {}", size_of::<Service>());
    eprintln!("size_of::<Event>() = {}", size_of::<Event>());
    let data_extra = if cfg!(feature = "node-data") {
        DATA_EXTRA
    } else {
        0
    } + if cfg!(feature = "loss-recovery") {
        LOSS_EXTRA
    } else {
        0
    } + if cfg!(feature = "unix") {
        UNIX_EXTRA
    } else {
        0
    } + if cfg!(feature = "heartbeat-fast-path") {
        REPEAT_EXTRA
    } else {
        0
    } + if cfg!(feature = "large-registry") {
        LARGE_EXTRA
    } else {
        0
    } + if cfg!(all(
        feature = "large-registry",
        feature = "heartbeat-fast-path"
    )) {
        LARGE_REPEAT_EXTRA
    } else {
        0
    } - if cfg!(all(feature = "node-data", feature = "unix")) {
        DATA_UNIX_SHARED
    } else {
        0
    } - if cfg!(all(feature = "large-registry", feature = "seal")) {
        LARGE_SEALED_SHARED
    } else {
        0
    } - if cfg!(all(
        feature = "large-registry",
        feature = "seal",
        feature = "heartbeat-fast-path"
    )) {
        LARGE_SEALED_SHARED
    } else {
        0
    };
    if cfg!(feature = "seal") {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(
                size,
                DOCUMENTED_SEALED + data_extra,
                "update the crate docs"
            );
        }
    } else if cfg!(any(
        feature = "node-data",
        feature = "loss-recovery",
        feature = "unix",
        feature = "heartbeat-fast-path",
        feature = "large-registry"
    )) {
        if cfg!(target_pointer_width = "64") {
            assert_eq!(size, DOCUMENTED + data_extra, "update the crate docs");
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
