//! The adapter test suite: every test is an `async fn` generic over a [`Runtime`](crate::Runtime), and
//! [`adapter_suite!`](crate::adapter_suite) makes one `#[test]` of each per runtime.
//!
//! * [`loopback`]: discovery, leave, queries and refusals, events on channels, crashes,
//!   queued sends, tags, unix sockets, failover to multicast with the type-8 report,
//!   listener refresh.
//! * [`data`]: per-node data published through the handles, read in `services()`, selected by.
//! * [`held`]: queries held open and answered later through the handles.
//! * [`typed`]: typed messages through the handles: queries, answers, bad answers, events.
//! * [`limits`]: the adapters' bounds (connection table, huge declared frames, slow event
//!   subscribers) and key rotation through the handles.

pub mod data;
pub mod held;
pub mod limits;
pub mod loopback;
pub mod typed;
