//! Node configuration and its two profiles, [`Config::reference`] and [`Config::lan_fast`].

use core::fmt;
use core::time::Duration;

use crate::identity::{MAX_TAGS, Tag, TagList};
use crate::protocol::{Protocol, ProtocolList};
use crate::wire::Compat;

/// The most extra channels a node subscribes to (channels 0, 1 and 2 are always subscribed).
pub const MAX_CHANNELS: usize = 16;

/// Everything a node needs to know before it joins. Build it from a profile and adjust:
///
/// ```
/// use cluster_core::Config;
/// let mut config = Config::lan_fast();
/// config.remote = true;
/// config.add_tag("web").unwrap();
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// How long a service may go unseen before it is removed (reference: 600 s).
    pub ttl: Duration,
    /// Count a service's age in whole seconds, as the reference does, so that it expires when
    /// `whole_secs(age) > ttl` (spec 5.9); otherwise in milliseconds.
    pub ttl_whole_seconds: bool,
    /// Shortest heartbeat interval; the interval is drawn once per node, uniformly between
    /// this and [`heartbeat_max`](Self::heartbeat_max) (reference: 110–140 s).
    pub heartbeat_min: Duration,
    /// Longest heartbeat interval.
    pub heartbeat_max: Duration,
    /// Accept and reach services on other hosts (multicast TTL 1) instead of this host only.
    pub remote: bool,
    /// The protocols this node runs, in priority order; `c` is appended when missing.
    pub protocols: ProtocolList,
    /// Extra channels to subscribe to, besides 0, 1 and 2.
    pub channels: heapless::Vec<u64, MAX_CHANNELS>,
    /// The node's initial tags.
    pub tags: TagList,
    /// Delay between a new service's first frame and its `Discovered` event (reference: 1 s).
    pub discovered_delay: Duration,
    /// How long a new service stays on probation: until it is heard from again at least this
    /// long after its first frame (or a direct send to it over `t` or `u` is delivered), it
    /// may be evicted to make room for another newcomer. Established services are never
    /// evicted (see [`Node`](crate::Node), "Capacity and floods"). 1 s in both profiles.
    pub probation: Duration,
    /// `discover` is refused when the last discovery was at most this long ago (reference:
    /// 30 s, compared in whole seconds).
    pub discover_interval: Duration,
    /// How long failed services are collected before one ping is broadcast (reference: 5 s).
    pub ping_batch_window: Duration,
    /// Time left to a service whose direct sends all failed (`expected(30)` in the reference).
    pub expected_after_failure: Duration,
    /// Time left to the other services a received ping names (`expected(20)`).
    pub expected_when_pinged: Duration,
    /// `expected` does nothing for a service seen less than this long ago (reference: 3 s).
    pub recently_seen_guard: Duration,
    /// Longest random delay before answering a ping that names two or more sids (15 s).
    pub ping_answer_stagger: Duration,
    /// Delay of the expiry check that follows a received ping (reference: 30 s).
    pub expiry_check_after_ping: Duration,
    /// Default query timeout (reference: 30 s).
    pub query_timeout: Duration,
    /// Fall back to multicast with a filter when every direct protocol to a target failed
    /// (spec 7.3, default on).
    pub multicast_fallback: bool,
    /// Retransmit a query to the targets that have not answered, every this long until its
    /// timeout, by multicast filtered to each such target: the frame of a service-level query
    /// (spec 7.3, Q6), which any node answers by multicast. `None` (reference): the query is
    /// sent once, as the reference does. Needs the feature `loss-recovery` (without it, never
    /// retransmitted). See [`Node`](crate::Node), "Loss".
    pub query_retry: Option<Duration>,
    /// How long an answered query is remembered, by asker, id and payload, so that a
    /// retransmitted copy gets the same answer again without the policy answering twice.
    /// Zero (reference): every copy is answered anew. Needs the feature `loss-recovery`
    /// (without it, nothing is remembered). See [`Node`](crate::Node), "Loss".
    pub answer_memory: Duration,
    /// Ask a service that has been silent for more than half its `ttl`, at each full
    /// heartbeat, with a discovery filtered to it (which it answers directly, over TCP when it
    /// can), so that heartbeats lost in a row do not expire a healthy service; the same
    /// discovery asks again (up to 8 at a time) the services whose tags have not arrived. Off
    /// in the reference profile. Needs the feature `loss-recovery` (without it, no probing).
    /// See [`Node`](crate::Node), "Loss".
    pub probe_silent: bool,
    /// Refuse frames the reference cannot read (spec 7.3, default on).
    pub compat: Compat,
    /// A partial frame from a UDP sender is dropped after this long without new data (5 s).
    pub stream_idle: Duration,
    /// Largest frame body accepted when reassembling (1 MiB).
    pub max_frame_len: usize,
}

impl Config {
    /// Every duration zero, no protocols, channels or tags: the configuration of an empty
    /// node ([`Node::empty`](crate::Node::empty)) until it starts. All zero bits. Not valid.
    pub(crate) const fn unset() -> Self {
        Self {
            ttl: Duration::ZERO,
            ttl_whole_seconds: false,
            heartbeat_min: Duration::ZERO,
            heartbeat_max: Duration::ZERO,
            remote: false,
            protocols: ProtocolList::EMPTY,
            channels: heapless::Vec::new(),
            tags: TagList::new(),
            discovered_delay: Duration::ZERO,
            probation: Duration::ZERO,
            discover_interval: Duration::ZERO,
            ping_batch_window: Duration::ZERO,
            expected_after_failure: Duration::ZERO,
            expected_when_pinged: Duration::ZERO,
            recently_seen_guard: Duration::ZERO,
            ping_answer_stagger: Duration::ZERO,
            expiry_check_after_ping: Duration::ZERO,
            query_timeout: Duration::ZERO,
            multicast_fallback: false,
            // `Some(ZERO)`, not `None`: `None` is the niche `nanos = 1_000_000_000`, which
            // would make the empty node non-zero bits and move a firmware's static node from
            // `.bss` into `.data` (its whole size copied from flash at start-up).
            query_retry: Some(Duration::ZERO),
            answer_memory: Duration::ZERO,
            probe_silent: false,
            compat: Compat::Reference,
            stream_idle: Duration::ZERO,
            max_frame_len: 0,
        }
    }

    /// The reference's defaults (spec 5.17, 7.4), for networks shared with Tcl nodes:
    /// heartbeat every 110–140 s, services expire after 600 s unseen, pings after 5 s.
    #[must_use]
    pub fn reference() -> Self {
        Self {
            ttl: Duration::from_secs(600),
            ttl_whole_seconds: true,
            heartbeat_min: Duration::from_millis(110_000),
            heartbeat_max: Duration::from_millis(140_000),
            remote: false,
            protocols: ProtocolList::new(&[Protocol::Tcp, Protocol::Multicast]),
            channels: heapless::Vec::new(),
            tags: TagList::new(),
            discovered_delay: Duration::from_millis(1000),
            probation: Duration::from_millis(1000),
            discover_interval: Duration::from_secs(30),
            ping_batch_window: Duration::from_millis(5000),
            expected_after_failure: Duration::from_secs(30),
            expected_when_pinged: Duration::from_secs(20),
            recently_seen_guard: Duration::from_secs(3),
            ping_answer_stagger: Duration::from_millis(15_000),
            expiry_check_after_ping: Duration::from_millis(30_000),
            query_timeout: Duration::from_millis(30_000),
            multicast_fallback: true,
            query_retry: None,
            answer_memory: Duration::ZERO,
            probe_silent: false,
            compat: Compat::Reference,
            stream_idle: Duration::from_secs(5),
            max_frame_len: crate::wire::MAX_FRAME_LEN,
        }
    }

    /// Seconds instead of minutes, for LANs of this project's nodes (Tcl nodes still
    /// interoperate, they only see this node heartbeat more often).
    ///
    /// The values follow from the goals measured in the simulator on a loss-free LAN of 64
    /// nodes:
    /// * heartbeat every 400–600 ms and `ttl` 2 s (counted in milliseconds, checked at every
    ///   full heartbeat as the reference does): a silent crash is noticed within `ttl` plus one
    ///   heartbeat, 2.6 s at most, and a healthy node is dropped only if four heartbeats in a
    ///   row are lost (10⁻⁸ at 1% loss);
    /// * `Discovered` at once (no 1 s delay) and discovery answered directly, so a joining
    ///   node knows everyone within a few network round trips;
    /// * failed sends ping after 50 ms and leave the target 1 s, so a crash seen by a sender is
    ///   dropped by all within about 1.1 s;
    /// * queries time out after 2 s; one that a target has not answered is sent again every
    ///   250 ms by multicast, answers are remembered for 2 s so that a copy is answered
    ///   without asking the policy again, and a service silent for half its `ttl` is asked
    ///   for a heartbeat (see [`Node`](crate::Node), "Loss").
    #[must_use]
    pub fn lan_fast() -> Self {
        Self {
            ttl: Duration::from_millis(2000),
            ttl_whole_seconds: false,
            heartbeat_min: Duration::from_millis(400),
            heartbeat_max: Duration::from_millis(600),
            discovered_delay: Duration::ZERO,
            discover_interval: Duration::from_millis(1000),
            ping_batch_window: Duration::from_millis(50),
            expected_after_failure: Duration::from_millis(1000),
            expected_when_pinged: Duration::from_millis(800),
            recently_seen_guard: Duration::from_millis(100),
            ping_answer_stagger: Duration::from_millis(100),
            expiry_check_after_ping: Duration::from_millis(1000),
            query_timeout: Duration::from_millis(2000),
            query_retry: Some(Duration::from_millis(250)),
            answer_memory: Duration::from_millis(2000),
            probe_silent: true,
            ..Self::reference()
        }
    }

    /// Adds a tag to [`tags`](Self::tags).
    ///
    /// # Errors
    ///
    /// [`ConfigError::TagTooLong`] or [`ConfigError::TooManyTags`].
    pub fn add_tag(&mut self, tag: &str) -> Result<(), ConfigError> {
        let tag = Tag::new(tag.as_bytes()).ok_or(ConfigError::TagTooLong)?;
        self.tags.push(tag).map_err(|_| ConfigError::TooManyTags)
    }

    /// Subscribes to an extra channel.
    ///
    /// # Errors
    ///
    /// [`ConfigError::TooManyChannels`].
    pub fn add_channel(&mut self, channel: u64) -> Result<(), ConfigError> {
        if channel <= 2 || self.channels.contains(&channel) {
            return Ok(());
        }
        self.channels
            .push(channel)
            .map_err(|_| ConfigError::TooManyChannels)
    }

    /// Checks the configuration; [`Node::new`](crate::Node::new) calls it.
    ///
    /// # Errors
    ///
    /// The first problem found.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.heartbeat_min > self.heartbeat_max || self.heartbeat_max.is_zero() {
            return Err(ConfigError::HeartbeatRange);
        }
        if self.ttl.is_zero() {
            return Err(ConfigError::ZeroTtl);
        }
        if self.protocols.is_empty() {
            return Err(ConfigError::NoProtocols);
        }
        if self.tags.len() > MAX_TAGS {
            return Err(ConfigError::TooManyTags);
        }
        if self
            .tags
            .iter()
            // The first byte read from the zero-padded array: no slice of the tag's length
            // (and no `Option`) to build (-52 B in the Cortex-M node image).
            .any(|t| t.is_empty() || t.padded()[0] == b'-')
        {
            return Err(ConfigError::BadTag);
        }
        Ok(())
    }

    /// The protocols in priority order, with `c` appended when missing (spec 5.1).
    pub(crate) fn effective_protocols(&self) -> ProtocolList {
        let mut list = self.protocols;
        list.push(Protocol::Multicast);
        list
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::reference()
    }
}

/// Why a [`Config`] was refused. Nothing was created.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// `heartbeat_min` is above `heartbeat_max`, or the interval is zero.
    HeartbeatRange,
    /// `ttl` is zero.
    ZeroTtl,
    /// No protocol is configured.
    NoProtocols,
    /// More than [`MAX_TAGS`] tags.
    TooManyTags,
    /// A tag longer than [`Tag::MAX_LEN`] bytes.
    TagTooLong,
    /// An empty tag or one starting with `-`.
    BadTag,
    /// More than [`MAX_CHANNELS`] extra channels.
    TooManyChannels,
    /// The hid is empty or longer than [`crate::Hid::MAX_LEN`].
    BadHid,
    /// The sid is empty or longer than [`crate::Sid::MAX_LEN`].
    BadSid,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::HeartbeatRange => "heartbeat interval range is empty or reversed",
            Self::ZeroTtl => "ttl is zero",
            Self::NoProtocols => "no protocol configured",
            Self::TooManyTags => "too many tags",
            Self::TagTooLong => "tag too long",
            Self::BadTag => "a tag is empty or starts with '-'",
            Self::TooManyChannels => "too many channels",
            Self::BadHid => "hid is empty or too long",
            Self::BadSid => "sid is empty or too long",
        })
    }
}

impl core::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_validate() {
        assert_eq!(Config::reference().validate(), Ok(()));
        assert_eq!(Config::lan_fast().validate(), Ok(()));
    }

    #[test]
    fn an_empty_tag_or_one_starting_with_a_dash_is_refused() {
        for (tag, expected) in [
            ("", Err(ConfigError::BadTag)),
            ("-", Err(ConfigError::BadTag)),
            ("-x", Err(ConfigError::BadTag)),
            ("x-", Ok(())),
            ("x", Ok(())),
            ("abcdefghijklmnopqrstuvwx", Ok(())),
        ] {
            let mut config = Config::reference();
            config.tags.push(Tag::new(b"ok").unwrap()).unwrap();
            config.tags.push(Tag::new(tag.as_bytes()).unwrap()).unwrap();
            assert_eq!(config.validate(), expected, "{tag:?}");
        }
    }

    #[test]
    fn multicast_is_always_run() {
        let mut config = Config::reference();
        config.protocols = ProtocolList::new(&[Protocol::Tcp]);
        assert_eq!(
            config.effective_protocols().letters().as_slice(),
            ["t", "c"]
        );
    }
}
