//! `cluster doctor`: per interface, does multicast work, and does anybody answer?
//!
//! For each interface the options choose (`--interface`, `--exclude-interface`; by default
//! every up, multicast-capable, non-loopback interface with an IPv4 address, or loopback
//! when there is none), one after the other:
//!
//! 1. **Loop**: a socket bound to the port joins the group on that interface only and sends
//!    a probe to it with multicast loopback on; the probe must come back within
//!    [`LOOP_WAIT`]. The probe is a frame every node drops unread: its `filter` names a sid
//!    nobody has (spec 5.8; counted in nodes' `filtered_out`). The same over IPv6 (the IPv6
//!    group, unless `--no-ipv6`) on an interface with an IPv6 address.
//! 2. **Answers**: a node joins on that interface alone (IPv4) for `--wait` and counts the
//!    services it discovers (on this host, or elsewhere), then leaves.
//!
//! One verdict per interface: `ok` (loop, and someone answered), `alone` (loop, nobody
//! answered), `no_loop` (our own datagram did not come back), `error` (a socket or the node
//! failed); with hints about the group, port, TTL and firewalls. The exit status is 0 when
//! every verdict is `ok`, else 6.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Duration;

use clap::Args;
use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
use cluster_host::interfaces::{self, InterfaceSelector, NetInterface};
use cluster_host::socket;
use cluster_tokio::{Cluster, Event, Options};
use serde_json::{Value, json};

use crate::CliError;
use crate::node::NodeArgs;
use crate::output::Printer;

/// How long the loop probe may take to come back.
const LOOP_WAIT: Duration = Duration::from_millis(1000);

/// `cluster doctor`.
#[derive(Debug, Args)]
pub(crate) struct DoctorArgs {
    #[command(flatten)]
    node: NodeArgs,
    /// How long each interface listens for other nodes.
    #[arg(long, value_parser = cluster_host::parse_duration, default_value = "2s", value_name = "DUR")]
    wait: Duration,
}

/// What one interface showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Alone,
    NoLoop,
    Error,
}

impl Verdict {
    fn name(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Alone => "alone",
            Self::NoLoop => "no_loop",
            Self::Error => "error",
        }
    }
}

/// The findings on one interface.
#[derive(Debug)]
struct Report {
    interface: String,
    address: Ipv4Addr,
    looped: Result<bool, String>,
    /// The IPv6 loop check: `None` when not tried (no IPv6 on the interface, or IPv6 off).
    looped_v6: Option<Result<bool, String>>,
    /// The sids that answered, and whether each runs on this host.
    answered: Result<Vec<(String, bool)>, String>,
}

impl Report {
    fn verdict(&self) -> Verdict {
        match (&self.looped, &self.answered) {
            (Err(_), _) | (_, Err(_)) => Verdict::Error,
            _ if matches!(self.looped_v6, Some(Err(_))) => Verdict::Error,
            (Ok(false), _) => Verdict::NoLoop,
            _ if self.looped_v6 == Some(Ok(false)) => Verdict::NoLoop,
            (Ok(true), Ok(sids)) if sids.is_empty() => Verdict::Alone,
            (Ok(true), Ok(_)) => Verdict::Ok,
        }
    }

    fn counts(&self) -> (usize, usize) {
        let sids = self.answered.as_deref().unwrap_or_default();
        let local = sids.iter().filter(|(_, local)| *local).count();
        (local, sids.len() - local)
    }

    fn hints(&self, options: &Options, wait: Duration) -> Vec<String> {
        let (group, port) = (options.group, options.port);
        let mut hints = Vec::new();
        if let Err(e) = &self.looped {
            hints.push(format!("the probe socket failed: {e}"));
        }
        if let Some(Err(e)) = &self.looped_v6 {
            hints.push(format!("the IPv6 probe socket failed: {e}"));
        }
        if self.looped_v6 == Some(Ok(false))
            && let Some(group) = options.group_v6
        {
            hints.push(format!(
                "our own IPv6 datagram to [{group}]:{port} did not come back on {}: a firewall \
                 of this host may drop it (allow udp port {port} in input and output for IPv6 \
                 too), or use --no-ipv6",
                self.interface
            ));
        }
        if let Err(e) = &self.answered {
            hints.push(format!("the node could not run on {}: {e}", self.interface));
        }
        if self.looped == Ok(false) {
            hints.push(format!(
                "our own datagram to {group}:{port} did not come back on {}: the interface may \
                 not do multicast, or a firewall of this host drops it (allow udp port {port} \
                 to {group} in input and output)",
                self.interface
            ));
        }
        let (local, remote) = self.counts();
        if !options.config.remote {
            hints.push(
                "TTL 0 (local mode): datagrams stay on this host; add --remote to reach other \
                 hosts"
                    .to_owned(),
            );
        } else if self.looped == Ok(true) && remote == 0 {
            hints.push(format!(
                "no node on another host answered on {} within {}: is one running there with \
                 --remote, group {group} and port {port}? A firewall on either host may drop \
                 udp port {port} (and IGMP); a switch with IGMP snooping needs a querier",
                self.interface,
                cluster_host::format_duration(wait),
            ));
        }
        if local > 0 && remote == 0 && options.config.remote {
            hints.push("only nodes on this host answered".to_owned());
        }
        hints
    }

    fn json(&self, options: &Options, wait: Duration) -> Value {
        let (local, remote) = self.counts();
        json!({
            "event": "interface",
            "interface": self.interface,
            "address": self.address.to_string(),
            "group": options.group.to_string(),
            "port": options.port,
            "ttl": u32::from(options.config.remote),
            "loop": self.looped.as_ref().ok(),
            "loop_v6": self.looped_v6.as_ref().and_then(|l| l.as_ref().ok()),
            "answered": { "local": local, "remote": remote },
            "sids": self.answered.as_deref().unwrap_or_default().iter().map(|(s, _)| s).collect::<Vec<_>>(),
            "verdict": self.verdict().name(),
            "hints": self.hints(options, wait),
        })
    }

    fn text(&self) -> String {
        let (local, remote) = self.counts();
        let looped = match &self.looped {
            Ok(true) => "loop ok",
            Ok(false) => "loop FAILED",
            Err(_) => "loop not tested",
        };
        format!(
            "{} ({}): {}: {looped}, {} node(s) answered ({remote} on other hosts, {local} on this one)",
            self.interface,
            self.address,
            self.verdict().name(),
            local + remote,
        )
    }
}

/// `cluster doctor`.
pub(crate) async fn doctor(args: DoctorArgs) -> Result<(), CliError> {
    let options = args.node.options()?;
    let printer = Printer::new(args.node.json);
    let all = interfaces::list()?;
    let mut chosen: Vec<&NetInterface> = options
        .interface_filter()
        .select(&all)
        .into_iter()
        .filter(|i| i.first_v4().is_some())
        .collect();
    if chosen.is_empty() && options.interfaces.is_empty() {
        chosen = all
            .iter()
            .filter(|i| i.loopback && i.first_v4().is_some())
            .collect();
    }
    let mut failing = 0;
    for interface in chosen {
        let Some(address) = interface.first_v4() else {
            continue;
        };
        let looped = loop_check(&options, address)
            .await
            .map_err(|e| e.to_string());
        let looped_v6 = match (options.group_v6, interface.index) {
            (Some(group), Some(index)) if !interface.v6.is_empty() && !interface.loopback => Some(
                loop_check_v6(&options, group, index)
                    .await
                    .map_err(|e| e.to_string()),
            ),
            _ => None,
        };
        let answered = answers(&options, &interface.name, args.wait).await;
        let report = Report {
            interface: interface.name.clone(),
            address,
            looped,
            looped_v6,
            answered,
        };
        if report.verdict() != Verdict::Ok {
            failing += 1;
        }
        printer.doctor(
            &report.json(&options, args.wait),
            report.text(),
            &report.hints(&options, args.wait),
        )?;
    }
    if failing == 0 {
        Ok(())
    } else {
        Err(CliError::Unhealthy(failing))
    }
}

/// Sends a probe to the group on the interface of `address` and waits for it to come back.
async fn loop_check(options: &Options, address: Ipv4Addr) -> std::io::Result<bool> {
    let socket = socket::bound_multicast_socket(options.port, options.config.remote)?;
    #[cfg(target_os = "linux")]
    socket.set_multicast_all_v4(false)?;
    socket.join_multicast_v4(&options.group, &address)?;
    socket.set_multicast_if_v4(&address)?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(socket.into())?;
    let to = SocketAddrV4::new(options.group, options.port);
    probe_comes_back(&socket, std::net::SocketAddr::V4(to)).await
}

/// Sends a fresh probe to `to` and waits (at most [`LOOP_WAIT`]) for it to come back.
async fn probe_comes_back(
    socket: &tokio::net::UdpSocket,
    to: std::net::SocketAddr,
) -> std::io::Result<bool> {
    let probe = probe(cluster_host::os_seed())?;
    match socket.send_to(&probe, to).await {
        Ok(_) => {}
        // A firewall rule of this host refused it on the way out (`EPERM`).
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => return Ok(false),
        Err(e) => return Err(e),
    }
    let mut buf = vec![0u8; socket::DATAGRAM_BUFFER];
    let came_back = async {
        loop {
            let (n, _) = socket.recv_from(&mut buf).await?;
            if buf.get(..n) == Some(&probe[..]) {
                return Ok::<_, std::io::Error>(());
            }
        }
    };
    match tokio::time::timeout(LOOP_WAIT, came_back).await {
        Ok(Ok(())) => Ok(true),
        Ok(Err(e)) => Err(e),
        Err(_) => Ok(false),
    }
}

/// [`loop_check`] over IPv6: the IPv6 group on the interface of index `index`.
async fn loop_check_v6(
    options: &Options,
    group: std::net::Ipv6Addr,
    index: u32,
) -> std::io::Result<bool> {
    let socket = socket::bound_multicast_socket_v6(options.port, options.config.remote)?;
    #[cfg(target_os = "linux")]
    socket.set_multicast_all_v6(false)?;
    socket.join_multicast_v6(&group, index)?;
    socket.set_multicast_if_v6(index)?;
    socket.set_nonblocking(true)?;
    let socket = tokio::net::UdpSocket::from_std(socket.into())?;
    let to = std::net::SocketAddrV6::new(group, options.port, 0, index);
    probe_comes_back(&socket, std::net::SocketAddr::V6(to)).await
}

/// The probe: an event whose `filter` names a sid nobody has, so that every node drops it
/// unread.
fn probe(nonce: u64) -> std::io::Result<Vec<u8>> {
    let nobody = format!("cluster-doctor-{nonce:016x}");
    let named = [nobody.as_str()];
    let message = Message {
        kind: Some(MessageKind::Event),
        channel: Some(0),
        sid: Some(Str::from("doctor00")),
        hid: Some(Str::from("00:00:00:00:00:00")),
        filter: Some(List::from_items(&named)),
        data: Some(Str::from("loop probe")),
        ..Message::default()
    };
    let mut out = vec![0u8; 512];
    let n = message
        .encode(FilterPlacement::First, &mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    out.truncate(n);
    Ok(out)
}

/// Joins on `interface` alone for `wait` and lists who was discovered.
async fn answers(
    options: &Options,
    interface: &str,
    wait: Duration,
) -> Result<Vec<(String, bool)>, String> {
    let mut options = options.clone().group_v6(None);
    options.interfaces = vec![InterfaceSelector::Name(interface.to_owned())];
    let handle = Cluster::join(options).await.map_err(|e| e.to_string())?;
    let mut events = handle.events();
    let mut found = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(event)) = tokio::time::timeout_at(deadline, events.next()).await {
        if let Event::Discovered(service) = event {
            found.push((service.sid.to_string(), service.local));
        }
    }
    let _ = handle.leave().await;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::wire::Frame;

    #[test]
    fn the_probe_is_a_frame_filtered_to_nobody() {
        let bytes = probe(7).unwrap();
        let (frame, used) = Frame::parse(&bytes).unwrap();
        assert_eq!(used, bytes.len());
        let message = Message::from_frame(&frame);
        let filter: Vec<&[u8]> = message.filter.unwrap().iter().collect();
        assert_eq!(filter, [b"cluster-doctor-0000000000000007".as_slice()]);
    }
}
