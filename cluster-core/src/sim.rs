//! A deterministic simulator of many nodes on a virtual network (feature `sim`).
//!
//! Nothing here sleeps, opens a socket, reads a clock or draws entropy: a run is a pure
//! function of one `u64` seed, so a failing run replays exactly.
//!
//! * [`SimNet`] is the network, sans-IO like the node: hosts (a hid, IPv4 addresses, a LAN
//!   segment), multicast with TTL 0 (same host) or 1 (the LAN segment, for nodes in remote
//!   mode), TCP connections with the adapter's bookkeeping (listeners, [`ConnId`]s, outcomes
//!   of direct sends), seeded latency, jitter, loss, duplication and reordering (datagrams
//!   only; streams stay ordered), partitions, and dead TCP stacks.
//! * [`Cluster`] runs [`Node`]s on it by the driving contract, with a per-node event log,
//!   byte counters, faults (crash, restart, leave, partition, heal, kill a listener) and
//!   bounded runs ([`Cluster::run_until`], [`Cluster::run_for`]).
//! * [`seeds`] sweeps seeds in tests; `SIM_SEED=<n>` replays one.
//!
//! ```
//! use cluster_core::Config;
//! use cluster_core::sim::{self, Cluster, ExpectSeed};
//!
//! for seed in sim::seeds(0..4) {
//!     let mut c = Cluster::new(seed, 3, Config::lan_fast());
//!     c.run_until(|c| c.all_know_each_other(), 10_000).expect_seed(seed);
//! }
//! ```
//!
//! Each node's seed is [`node_seed`]`(run_seed, index, incarnation)`; the network and the
//! join times draw from their own streams of the run seed.
//!
//! [`ConnId`]: crate::ConnId
//! [`Node`]: crate::Node

mod cluster;
mod fanout;
mod net;
mod rng;
mod segments;

use core::ops::Range;
use std::vec::Vec;

pub use cluster::{
    Cluster, ClusterBuilder, ExpectSeed, LoggedEvent, NodeCounters, NodeMut, NodeState, SimTimeout,
    TimeoutReason,
};
pub use net::{Delivery, EndpointId, HostId, LinkModel, NetConfig, NetStats, SimNet, Trace};
pub use rng::{SimRng, derive_seed, node_seed, splitmix64};
pub use segments::{SIM_MEMBERS, SegmentEvent, SegmentLinks, SegmentSim};

/// The `p`-th percentile (0–100, nearest rank) of `values`, which it sorts; 0 when empty.
#[must_use]
pub fn percentile(values: &mut [u64], p: u32) -> u64 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let rank = (values.len() * p.min(100) as usize).div_ceil(100).max(1);
    values[rank - 1]
}

/// The seeds to sweep: `range`, or only the seed in the `SIM_SEED` environment variable when
/// it is set (to replay a failing run).
///
/// # Panics
///
/// When `SIM_SEED` is set but is not a `u64`.
#[must_use]
pub fn seeds(range: Range<u64>) -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(text) => {
            let seed = text
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("SIM_SEED={text:?} is not a u64"));
            std::vec![seed]
        }
        Err(_) => range.collect(),
    }
}
