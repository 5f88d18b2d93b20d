//! Counters: every bounded container and every dropped input has one.

/// Counters of a node, read with [`Node::stats`](crate::Node::stats). They only grow
/// (saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Stats {
    /// Frames that passed the receive pipeline.
    pub frames_accepted: u64,
    /// Of `frames_accepted`, periodic heartbeats that repeated the last one accepted from
    /// their service and took the short path (feature `heartbeat-fast-path`; always 0
    /// without it: the field is there in every build, so that a crate reading the counters
    /// does not depend on the features another crate of the build turned on).
    pub heartbeats_repeated: u64,
    /// Frames dropped for any reason (the reasons below included).
    pub frames_dropped: u64,
    /// Frames that failed to decode.
    pub decode_errors: u64,
    /// Own multicast echoes dropped (normal).
    pub own_echoes: u64,
    /// Frames whose filter did not name this node (normal).
    pub filtered_out: u64,
    /// New services refused because the registry was full of established services.
    pub services_rejected: u64,
    /// Services on probation evicted to make room for a newcomer.
    pub services_evicted: u64,
    /// Frames with values larger than this node stores.
    pub oversized: u64,
    /// Commands refused because the outbound queue was full.
    pub sends_rejected: u64,
    /// Queries refused because the query table was full.
    pub queries_rejected: u64,
    /// Failed services not pinged because the ping batch was full (they still expire).
    pub ping_batch_full: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Partial frames dropped by the reassembly buffers (overflow, eviction or idle).
    pub stream_overflows: u64,
    /// Frames not sent because the caller's transmit buffer was too small.
    pub transmit_buffer_too_small: u64,
    /// Frames not sent because they could not be encoded, counted when the encoder refused
    /// them or, for a query response on a channel whose varint starts `C0 8D` (spec 7.3),
    /// when the response was about to be queued.
    pub encode_errors: u64,
    /// Times `now` went backwards and was clamped.
    pub clock_regressions: u64,
    /// Direct sends that failed on every protocol.
    pub sends_failed: u64,
    /// Pings broadcast.
    pub pings_sent: u64,
    /// Frames of a service read on a connection that were not addressed to this node, or came
    /// from another address than the service's: handled, but the connection was not made the
    /// route to the service.
    pub routes_refused: u64,
    /// Query frames sent again to targets that had not answered ([`Config::query_retry`]).
    ///
    /// [`Config::query_retry`]: crate::Config::query_retry
    pub queries_retried: u64,
    /// Copies of an answered query answered again from memory, without asking the policy
    /// ([`Config::answer_memory`]).
    ///
    /// [`Config::answer_memory`]: crate::Config::answer_memory
    pub answers_repeated: u64,
    /// Copies of an answered query left unanswered because the answer is no longer at hand
    /// (given up to make room for a send, or remembered no more), and queries too old to tell
    /// (see [`Config::answer_memory`]): the policy is never asked twice.
    ///
    /// [`Config::answer_memory`]: crate::Config::answer_memory
    pub copies_dropped: u64,
    /// Payloads kept for retransmission (a query's, a remembered answer) given up early to
    /// make room for a new send.
    pub holds_reclaimed: u64,
    /// Services asked for a heartbeat because they were silent for half their ttl or their
    /// tags are unknown ([`Config::probe_silent`]).
    ///
    /// [`Config::probe_silent`]: crate::Config::probe_silent
    pub silent_probes: u64,
    /// Ticks that came so late (the node was not run for a while) that expiry waited for the
    /// frames queued meanwhile before dropping anyone (feature `loss-recovery`).
    pub expiry_holds: u64,
    /// Frames dropped because they were not sealed while this node requires sealed frames
    /// (feature `seal`).
    pub unsealed: u64,
    /// Sealed frames dropped because no key of the ring has their key id.
    pub unknown_key: u64,
    /// Sealed frames dropped because they did not authenticate (wrong key, altered bytes, a
    /// malformed envelope).
    pub forged: u64,
    /// Sealed frames dropped because they were accepted before (or are older than the replay
    /// window).
    pub replayed: u64,
    /// Senders forgotten by the replay table to make room for a new one.
    pub replay_evictions: u64,
}

impl Stats {
    /// Every counter at zero, in `const` contexts.
    pub(crate) const ZERO: Self = Self {
        frames_accepted: 0,
        heartbeats_repeated: 0,
        frames_dropped: 0,
        decode_errors: 0,
        own_echoes: 0,
        filtered_out: 0,
        services_rejected: 0,
        oversized: 0,
        sends_rejected: 0,
        events_dropped: 0,
        stream_overflows: 0,
        transmit_buffer_too_small: 0,
        encode_errors: 0,
        clock_regressions: 0,
        sends_failed: 0,
        pings_sent: 0,
        routes_refused: 0,
        queries_retried: 0,
        answers_repeated: 0,
        copies_dropped: 0,
        holds_reclaimed: 0,
        silent_probes: 0,
        expiry_holds: 0,
        services_evicted: 0,
        queries_rejected: 0,
        ping_batch_full: 0,
        unsealed: 0,
        unknown_key: 0,
        forged: 0,
        replayed: 0,
        replay_evictions: 0,
    };
}

/// Adds one, saturating. Never inlined on microcontrollers: a 64-bit saturating add is about
/// 20 bytes of Thumb code, and the node bumps counters in some 40 places. Inlined on hosts,
/// where the call cost more than the add.
#[cfg_attr(target_os = "none", inline(never))]
#[cfg_attr(not(target_os = "none"), inline(always))]
pub(crate) fn bump(counter: &mut u64) {
    *counter = counter.saturating_add(1);
}

/// Counters of the queries a node held open ([`Node::hold_queries`](crate::Node::hold_queries)),
/// read with [`Node::held_stats`](crate::Node::held_stats). They only grow (saturating).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct HeldStats {
    /// Queries held open (each reported as an `Event::QueryHeld`).
    pub held: u64,
    /// Held queries answered in time.
    pub answered: u64,
    /// Held queries refused in time (their answer carries `error`).
    pub refused: u64,
    /// Answers given after the query timeout: not sent.
    pub late: u64,
    /// Held queries let go unanswered by the application (answered with an error).
    pub dropped: u64,
    /// Held queries whose timeout passed unanswered (forgotten).
    pub expired: u64,
    /// Queries refused at once with a "busy" error because the table of held queries (or the
    /// event queue) was full.
    pub busy: u64,
}
