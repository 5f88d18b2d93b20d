//! `cluster-tokio`: drives [`cluster_core`] on tokio with real sockets.
//!
//! The socket driver arrives with the node state machine; today this crate hosts the
//! `cluster` command's packet tools (`cluster decode`, `cluster encode`), see [`packet`].

pub mod packet;
