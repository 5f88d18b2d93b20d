//! Join options shared by the adapters and the command line: the node's [`Config`] plus what
//! only an adapter knows (group, port, interface, hid, unix-socket path, timeouts).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use cluster_core::{Config, ConfigError, Protocol, ProtocolList};

use crate::interfaces::{InterfaceFilter, InterfaceSelector};
use crate::metrics::QueryLatency;
#[cfg(feature = "seal")]
use cluster_core::{KeyRing, KeyRingError};

/// The multicast group of the reference (spec 1.1).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(230, 230, 230, 230);
/// The UDP port of the reference, bound and sent to (spec 1.1).
pub const DEFAULT_PORT: u16 = 23000;
/// Idle TCP and unix connections are closed after this long (spec 7.2 Q10).
pub const DEFAULT_TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// How long an outgoing connection may take before the send counts as failed.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the list of local addresses is read again (spec 7.2 Q14).
pub const DEFAULT_ADDRS_REFRESH: Duration = Duration::from_secs(30);
/// The IPv6 group by default: link-local scope (`ff02::`), and `e6e6:e6e6` is the IPv4
/// group 230.230.230.230 in hexadecimal.
pub const DEFAULT_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0xe6e6, 0xe6e6);
/// How often the interface list is read again by default.
pub const DEFAULT_INTERFACE_POLL: Duration = Duration::from_secs(2);
pub use crate::transports::DEFAULT_MAX_CONNECTIONS;

/// The timer profile a node starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// [`Config::reference`]: the Tcl reference's timers (heartbeat 110–140 s, ttl 600 s).
    /// Use it on networks shared with Tcl nodes, which heartbeat only every two minutes.
    Reference,
    /// [`Config::lan_fast`]: heartbeat 400–600 ms, ttl 2 s, queries time out after 2 s. The
    /// default: a node started by hand is seen, and its crash noticed, within seconds.
    #[default]
    LanFast,
}

impl Profile {
    /// The profile's node configuration.
    #[must_use]
    pub fn config(self) -> Config {
        match self {
            Self::Reference => Config::reference(),
            Self::LanFast => Config::lan_fast(),
        }
    }

    /// Its command-line name: `reference` or `lan-fast`.
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::Reference => "reference",
            Self::LanFast => "lan-fast",
        }
    }
}

impl FromStr for Profile {
    type Err = OptionsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reference" => Ok(Self::Reference),
            "lan-fast" | "lan_fast" => Ok(Self::LanFast),
            other => Err(OptionsError::UnknownProfile(other.to_owned())),
        }
    }
}

/// Why options were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OptionsError {
    /// The node configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(ConfigError),
    /// A profile name other than `reference` and `lan-fast`.
    #[error("unknown profile {0:?} (use reference or lan-fast)")]
    UnknownProfile(String),
    /// A protocol letter other than `c`, `t` and `u` (the reference raises an error too).
    #[error("unknown protocol {0:?} (use c, t or u)")]
    UnknownProtocol(String),
    /// A channel that is not a number.
    #[error("bad channel {0:?}")]
    BadChannel(String),
    /// `u` is configured without a unix-socket path.
    #[error("protocol u needs a unix-socket path")]
    UnixPathMissing,
    /// The unix-socket path is not valid UTF-8 or too long to advertise.
    #[error("unix-socket path {0:?} is not UTF-8 or longer than 104 bytes once the sid is added")]
    BadUnixPath(PathBuf),
    /// The key file could not be read (feature `seal`).
    #[cfg(feature = "seal")]
    #[error("key file {path:?}: {message}")]
    KeyFileUnreadable {
        /// The file.
        path: PathBuf,
        /// What the system said.
        message: String,
    },
    /// [`Options::max_connections`] is 0.
    #[error("max_connections must be at least 1")]
    NoConnections,
    /// Seeds are given but the node is in local mode or does not run `t`.
    #[error("seeds need remote mode and protocol t")]
    SeedsNeedRemoteTcp,
    /// A seed is not `HOST:PORT`.
    #[error("seed {0:?} is not HOST:PORT")]
    BadSeed(String),
    /// A segment name is empty, longer than 16 bytes or holds a space.
    #[error("segment {0:?} is not a name of 1 to 16 bytes without spaces")]
    BadSegment(String),
    /// [`Options::event_buffer`] is 0.
    #[error("event_buffer must be at least 1")]
    NoEventBuffer,
    /// The key file is not a valid key ring (feature `seal`).
    #[cfg(feature = "seal")]
    #[error("key file {path:?}: {error}")]
    BadKeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        error: KeyRingError,
    },
}

impl From<ConfigError> for OptionsError {
    fn from(e: ConfigError) -> Self {
        Self::Config(e)
    }
}

/// Everything needed to join: the node's [`Config`] and the adapter's settings.
///
/// ```
/// use std::time::Duration;
/// use cluster_host::{Options, Profile};
/// let options = Options::new(Profile::LanFast)
///     .port(23001)
///     .heartbeat(Duration::from_millis(200))
///     .tag("web")?;
/// assert_eq!(options.config.tags.len(), 1);
/// # Ok::<(), cluster_host::OptionsError>(())
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Options {
    /// The node's configuration: timers, `remote`, protocols, channels, tags.
    pub config: Config,
    /// The multicast group (`230.230.230.230`).
    pub group: Ipv4Addr,
    /// The UDP port, bound and sent to (`23000`).
    pub port: u16,
    /// The interfaces that join the group and send multicast, by name or address. Empty
    /// (the default): in local mode the default interface, as the reference does (or
    /// loopback on a host with no multicast route, see [`crate::socket`]); with `remote`
    /// every up, multicast-capable, non-loopback interface, followed while the node runs
    /// (see [`crate::multicast`]).
    pub interfaces: Vec<InterfaceSelector>,
    /// The IPv6 group joined next to the IPv4 one, on the same port, when interfaces are
    /// followed (`remote` or chosen interfaces; see [`crate::multicast`]):
    /// [`DEFAULT_GROUP_V6`] by default; `None` turns IPv6 off.
    pub group_v6: Option<Ipv6Addr>,
    /// Where the engine records each query's latency, from its start to each answer
    /// ([`crate::metrics::NodeMetrics::query_latency`]); `None`: not recorded.
    pub query_latency: Option<QueryLatency>,
    /// Interfaces whose names match one of these globs (`*`, `?`) are never used.
    pub exclude_interfaces: Vec<String>,
    /// Read the interface list again this often, to join interfaces that appear and leave
    /// those that go ([`DEFAULT_INTERFACE_POLL`], 2 s).
    pub interface_poll: Duration,
    /// The hid; `None` reads the host's MAC ([`crate::hid::host_hid`]).
    pub hid: Option<String>,
    /// The unix-socket path `/dir/name.ext` for `u`; the node listens on
    /// `/dir/name-<sid>.ext` ([`unix_socket_path`]).
    pub unix_path: Option<PathBuf>,
    /// Close a stream connection after this long without a frame either way (120 s).
    pub tcp_idle_timeout: Duration,
    /// Give up an outgoing connection after this long (2 s); the send fails over.
    pub connect_timeout: Duration,
    /// Read the host's addresses again this often (30 s).
    pub addrs_refresh: Duration,
    /// Stream connections (`t` and `u`, accepted and outgoing together) open at most
    /// ([`DEFAULT_MAX_CONNECTIONS`], 256). While that many are open a new inbound
    /// connection is closed at once, and an outgoing one is opened only in place of one no
    /// known service uses (see the crate docs, "Limits").
    pub max_connections: usize,
    /// Events kept for each subscriber that does not keep up ([`EVENT_BUFFER`], 1024); past
    /// that it loses its oldest and gets `Event::Dropped` (see the crate docs, "Limits").
    /// Every slot is allocated at the join: size it for the bursts the application must
    /// print whole (a flood of invented services is one).
    ///
    /// [`EVENT_BUFFER`]: crate::EVENT_BUFFER
    pub event_buffer: usize,
    /// Seal every frame with this key ring and accept only frames sealed with one of its keys
    /// (`cluster_core::seal`; feature `seal`). `None` (the default): plain frames, as the
    /// reference sends.
    #[cfg(feature = "seal")]
    pub keys: Option<KeyRing>,
    /// Seeds, as `HOST:PORT` of a node's `t` listener: the node exchanges membership with
    /// them over TCP and heartbeats remote members unicast ([`crate::seeds`]). Names are
    /// resolved at the start and again while a seed has not answered. Needs `remote` and `t`
    /// ([`seed`](Self::seed) sets `remote`). Empty (the default): LAN only.
    pub seeds: Vec<String>,
    /// The TCP port of `t`; `None` (the default): an ephemeral one, as the reference. Nodes
    /// that are seeds need a fixed one.
    pub tcp_port: Option<u16>,
    /// The name of this node's segment (a site, a subnet, a VPC), told to remote members
    /// with the membership's frames and shown for the services heard on the LAN; `None` (the
    /// default): unnamed.
    pub segment: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self::new(Profile::default())
    }
}

impl Options {
    /// The defaults of `profile`, on the reference's group and port.
    #[must_use]
    pub fn new(profile: Profile) -> Self {
        Self {
            config: profile.config(),
            group: DEFAULT_GROUP,
            port: DEFAULT_PORT,
            interfaces: Vec::new(),
            exclude_interfaces: Vec::new(),
            group_v6: Some(DEFAULT_GROUP_V6),
            query_latency: None,
            interface_poll: DEFAULT_INTERFACE_POLL,
            hid: None,
            unix_path: None,
            tcp_idle_timeout: DEFAULT_TCP_IDLE_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            addrs_refresh: DEFAULT_ADDRS_REFRESH,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            event_buffer: crate::EVENT_BUFFER,
            #[cfg(feature = "seal")]
            keys: None,
            seeds: Vec::new(),
            tcp_port: None,
            segment: None,
        }
    }

    /// Adds a seed `HOST:PORT` and turns remote mode on.
    #[must_use]
    pub fn seed(mut self, host_port: impl Into<String>) -> Self {
        self.seeds.push(host_port.into());
        self.config.remote = true;
        self
    }

    /// Accept and reach services on other hosts (multicast TTL 1).
    #[must_use]
    pub fn remote(mut self, remote: bool) -> Self {
        self.config.remote = remote;
        self
    }

    /// A fixed heartbeat interval instead of the profile's range.
    #[must_use]
    pub fn heartbeat(mut self, interval: Duration) -> Self {
        self.config.heartbeat_min = interval;
        self.config.heartbeat_max = interval;
        self
    }

    /// How long a service may go unseen before it is removed.
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.config.ttl = ttl;
        self
    }

    /// The protocols in priority order (`c` is always added).
    #[must_use]
    pub fn protocols(mut self, protocols: &[Protocol]) -> Self {
        self.config.protocols = ProtocolList::new(protocols);
        self
    }

    /// The multicast group.
    #[must_use]
    pub fn group(mut self, group: Ipv4Addr) -> Self {
        self.group = group;
        self
    }

    /// The UDP port.
    #[must_use]
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Adds a multicast interface, by one of its addresses (`127.0.0.1` keeps traffic on
    /// loopback).
    #[must_use]
    pub fn interface(mut self, address: Ipv4Addr) -> Self {
        self.interfaces
            .push(InterfaceSelector::Addr(std::net::IpAddr::V4(address)));
        self
    }

    /// Adds a multicast interface, by name (`eth0`), or by address when `name` parses as one.
    #[must_use]
    pub fn interface_name(mut self, name: &str) -> Self {
        let Ok(selector) = name.parse();
        self.interfaces.push(selector);
        self
    }

    /// Never uses the interfaces whose names match `glob` (`docker*`).
    #[must_use]
    pub fn exclude_interface(mut self, glob: impl Into<String>) -> Self {
        self.exclude_interfaces.push(glob.into());
        self
    }

    /// Records each query's latency in `latency` (see [`crate::metrics`]).
    #[must_use]
    pub fn query_latency(mut self, latency: QueryLatency) -> Self {
        self.query_latency = Some(latency);
        self
    }

    /// The IPv6 group (`None`: IPv4 only).
    #[must_use]
    pub fn group_v6(mut self, group: Option<Ipv6Addr>) -> Self {
        self.group_v6 = group;
        self
    }

    /// How often the interface list is read again.
    #[must_use]
    pub fn interface_poll(mut self, every: Duration) -> Self {
        self.interface_poll = every;
        self
    }

    /// The interfaces chosen, as a filter over the host's list.
    #[must_use]
    pub fn interface_filter(&self) -> InterfaceFilter {
        InterfaceFilter {
            only: self.interfaces.clone(),
            exclude: self.exclude_interfaces.clone(),
        }
    }

    /// The hid, instead of the host's MAC.
    #[must_use]
    pub fn hid(mut self, hid: impl Into<String>) -> Self {
        self.hid = Some(hid.into());
        self
    }

    /// Runs `u` with sockets derived from `path`, and puts `u` first in the protocols.
    #[must_use]
    pub fn unix_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.unix_path = Some(path.into());
        if !self.config.protocols.contains(Protocol::Unix) {
            let mut list = ProtocolList::new(&[Protocol::Unix]);
            for p in self.config.protocols.iter() {
                list.push(p);
            }
            self.config.protocols = list;
        }
        self
    }

    /// The idle timeout of stream connections.
    #[must_use]
    pub fn tcp_idle_timeout(mut self, timeout: Duration) -> Self {
        self.tcp_idle_timeout = timeout;
        self
    }

    /// The most stream connections open at once (see
    /// [`Options::max_connections`](Self#structfield.max_connections)).
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Events kept for a subscriber that falls behind (see
    /// [`Options::event_buffer`](Self#structfield.event_buffer)).
    #[must_use]
    pub fn event_buffer(mut self, events: usize) -> Self {
        self.event_buffer = events;
        self
    }

    /// Seals every frame with `keys` (see [`Options::keys`](Self#structfield.keys)).
    #[must_use]
    #[cfg(feature = "seal")]
    pub fn keys(mut self, keys: KeyRing) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Seals every frame with the key ring read from `path` ([`read_key_file`]).
    ///
    /// # Errors
    ///
    /// As [`read_key_file`].
    #[cfg(feature = "seal")]
    pub fn key_file(self, path: impl AsRef<Path>) -> Result<Self, OptionsError> {
        Ok(self.keys(read_key_file(path.as_ref())?))
    }

    /// Adds a tag.
    ///
    /// # Errors
    ///
    /// [`OptionsError::Config`] when the tag is too long or there are too many.
    pub fn tag(mut self, tag: &str) -> Result<Self, OptionsError> {
        self.config.add_tag(tag)?;
        Ok(self)
    }

    /// Subscribes to a channel.
    ///
    /// # Errors
    ///
    /// [`OptionsError::Config`] when there are too many channels.
    pub fn channel(mut self, channel: u64) -> Result<Self, OptionsError> {
        self.config.add_channel(channel)?;
        Ok(self)
    }

    /// Checks everything that can be checked before sockets are opened.
    ///
    /// # Errors
    ///
    /// The first problem found.
    pub fn validate(&self) -> Result<(), OptionsError> {
        self.config.validate()?;
        if self.max_connections == 0 {
            return Err(OptionsError::NoConnections);
        }
        if self.event_buffer == 0 {
            return Err(OptionsError::NoEventBuffer);
        }
        let seeds_can_run = self.config.remote && self.config.protocols.contains(Protocol::Tcp);
        if !self.seeds.is_empty() && !seeds_can_run {
            return Err(OptionsError::SeedsNeedRemoteTcp);
        }
        if let Some(bad) = self.segment.as_ref().filter(|s| {
            s.is_empty()
                || s.len() > cluster_core::membership::SEGMENT
                || s.contains(char::is_whitespace)
        }) {
            return Err(OptionsError::BadSegment(bad.clone()));
        }
        if let Some(bad) = self.seeds.iter().find(|s| {
            s.rsplit_once(':')
                .is_none_or(|(h, p)| h.is_empty() || p.parse::<u16>().is_err())
        }) {
            return Err(OptionsError::BadSeed(bad.clone()));
        }
        let runs_unix = self.config.protocols.contains(Protocol::Unix);
        match (&self.unix_path, runs_unix) {
            (None, true) => return Err(OptionsError::UnixPathMissing),
            (Some(path), true) => {
                let longest = unix_socket_path(path, "XXXXXXXXXXXXXXXX");
                match longest.to_str() {
                    Some(s) if s.len() <= cluster_core::UnixPath::MAX_LEN => {}
                    _ => return Err(OptionsError::BadUnixPath(path.clone())),
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The socket a node with `sid` listens on for `u`: `/dir/name.ext` becomes
/// `/dir/name-<sid>.ext` (spec 1.3); a path without an extension gets `-<sid>` at the end.
///
/// ```
/// use std::path::Path;
/// use cluster_host::unix_socket_path;
/// assert_eq!(
///     unix_socket_path(Path::new("/run/app/c.sock"), "AbCd1234"),
///     Path::new("/run/app/c-AbCd1234.sock")
/// );
/// ```
#[must_use]
pub fn unix_socket_path(base: &Path, sid: &str) -> PathBuf {
    let stem = base.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = match (stem, base.extension()) {
        (Some(stem), Some(ext)) => format!("{stem}-{sid}.{}", ext.to_string_lossy()),
        (Some(stem), None) => format!("{stem}-{sid}"),
        (None, _) => format!("cluster-{sid}"),
    };
    base.with_file_name(name)
}

/// Reads a key ring from a key file: one key per line, `ID HEX` (an id from 0 to 255 and 64
/// hex digits), the key to send with marked `*ID HEX`; `#` starts a comment line (format of
/// [`KeyRing::parse`]).
///
/// # Errors
///
/// [`OptionsError::KeyFileUnreadable`] or [`OptionsError::BadKeyFile`].
#[cfg(feature = "seal")]
pub fn read_key_file(path: &Path) -> Result<KeyRing, OptionsError> {
    let text = std::fs::read_to_string(path).map_err(|e| OptionsError::KeyFileUnreadable {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    KeyRing::parse(&text).map_err(|error| OptionsError::BadKeyFile {
        path: path.to_owned(),
        error,
    })
}

/// Splits a list given on the command line: words separated by spaces or commas.
///
/// ```
/// assert_eq!(cluster_host::split_list("web, db  cache"), ["web", "db", "cache"]);
/// ```
#[must_use]
pub fn split_list(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .collect()
}

/// Reads protocol letters in priority order (`"t c"`, `"u,t"`).
///
/// # Errors
///
/// [`OptionsError::UnknownProtocol`] for anything but `c`, `t` and `u`.
pub fn parse_protocols(text: &str) -> Result<ProtocolList, OptionsError> {
    let mut list = ProtocolList::EMPTY;
    for word in split_list(text) {
        let protocol = Protocol::from_letter(word.as_bytes())
            .ok_or_else(|| OptionsError::UnknownProtocol(word.to_owned()))?;
        list.push(protocol);
    }
    Ok(list)
}

/// Reads channel numbers (`"5 7"`).
///
/// # Errors
///
/// [`OptionsError::BadChannel`] for a word that is not a number.
pub fn parse_channels(text: &str) -> Result<Vec<u64>, OptionsError> {
    split_list(text)
        .into_iter()
        .map(|w| {
            w.parse()
                .map_err(|_| OptionsError::BadChannel(w.to_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_is_a_short_name_without_spaces() {
        let named = |name: &str| Options {
            segment: Some(name.to_owned()),
            ..Options::default()
        };
        assert_eq!(named("plant-b").validate(), Ok(()));
        for bad in ["", "two words", "a-name-of-17-byte"] {
            assert_eq!(
                named(bad).validate(),
                Err(OptionsError::BadSegment(bad.to_owned()))
            );
        }
    }

    #[test]
    fn seeds_need_remote_mode_tcp_and_host_port() {
        let seeded = Options::default().seed("10.0.0.1:41917");
        assert!(seeded.config.remote);
        assert_eq!(seeded.validate(), Ok(()));
        let local = Options::default().seed("10.0.0.1:41917").remote(false);
        assert_eq!(local.validate(), Err(OptionsError::SeedsNeedRemoteTcp));
        for bad in ["10.0.0.1", ":41917", "seed:http"] {
            assert_eq!(
                Options::default().seed(bad).validate(),
                Err(OptionsError::BadSeed(bad.to_owned())),
                "{bad}"
            );
        }
    }

    #[test]
    fn unix_paths_get_the_sid_before_the_extension() {
        let p = |base: &str| unix_socket_path(Path::new(base), "s1");
        assert_eq!(p("/tmp/c.sock"), Path::new("/tmp/c-s1.sock"));
        assert_eq!(p("/tmp/c"), Path::new("/tmp/c-s1"));
        assert_eq!(p("rel.x.y"), Path::new("rel.x-s1.y"));
    }

    #[test]
    fn protocols_and_channels_parse_like_the_reference_options() {
        let list = parse_protocols("u t").unwrap();
        assert_eq!(list.letters().as_slice(), ["u", "t"]);
        assert_eq!(
            parse_protocols("t x"),
            Err(OptionsError::UnknownProtocol("x".into()))
        );
        assert_eq!(parse_channels("5,7"), Ok(vec![5, 7]));
        assert!(parse_channels("five").is_err());
    }

    #[test]
    fn limits_of_zero_are_refused() {
        assert_eq!(
            Options::default().max_connections(0).validate(),
            Err(OptionsError::NoConnections)
        );
        assert_eq!(
            Options::default().event_buffer(0).validate(),
            Err(OptionsError::NoEventBuffer)
        );
        assert_eq!(Options::default().event_buffer(1).validate(), Ok(()));
    }

    #[test]
    fn unix_needs_a_path_that_fits() {
        let mut options = Options::default().protocols(&[Protocol::Unix]);
        assert_eq!(options.validate(), Err(OptionsError::UnixPathMissing));
        options.unix_path = Some(PathBuf::from(format!("/{}.sock", "x".repeat(100))));
        assert!(matches!(
            options.validate(),
            Err(OptionsError::BadUnixPath(_))
        ));
        let options = Options::default().unix_path("/tmp/c.sock");
        assert_eq!(
            options.config.protocols.letters().as_slice(),
            ["u", "t", "c"]
        );
        assert_eq!(options.validate(), Ok(()));
    }

    #[test]
    #[cfg(feature = "seal")]
    fn key_files_are_read_or_refused_with_their_path() {
        let dir = std::env::temp_dir().join(format!("cluster-keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, format!("# ring\n*4 {}\n", "ab".repeat(32))).unwrap();
        let options = Options::default().key_file(&good).unwrap();
        assert_eq!(options.keys.unwrap().send_key().id(), 4);
        let bad = dir.join("bad");
        std::fs::write(&bad, "4 00\n").unwrap();
        assert!(matches!(
            Options::default().key_file(&bad),
            Err(OptionsError::BadKeyFile {
                error: KeyRingError::Syntax { line: 1 },
                ..
            })
        ));
        assert!(matches!(
            Options::default().key_file(dir.join("missing")),
            Err(OptionsError::KeyFileUnreadable { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn profiles_are_named_on_the_command_line() {
        assert_eq!("reference".parse(), Ok(Profile::Reference));
        assert_eq!("lan-fast".parse(), Ok(Profile::LanFast));
        assert!("fast".parse::<Profile>().is_err());
        assert_eq!(Profile::default().name(), "lan-fast");
    }
}
