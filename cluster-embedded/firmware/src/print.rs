//! The node's events as the JSON lines of `cluster join --json` (and, for this node's own
//! queries, those of `cluster query --json`), plus `stats` on request.

use cluster_embedded::cluster_core::{Event, QueryEvent, Service};
use core::net::IpAddr;

use crate::{FirmwareDriver, Group};
use mps2_board::json::Line;
use mps2_board::uart::Uart;

/// `{"event":"joined",...}`: the node's identity, group and protocols.
pub fn joined(out: &mut Uart, driver: &FirmwareDriver, group: Group) {
    let node = driver.node();
    let mut line = Line::event(out, "joined");
    line.bytes("sid", node.sid().as_bytes())
        .bytes("hid", node.hid().as_bytes());
    line.key_ip("group", Some(group.addr.octets()))
        .number("port", u64::from(group.port))
        .list(
            "protocols",
            node.protocols().letters().iter().map(|l| l.as_bytes()),
        )
        .null("tcp_port")
        .null("unix_path");
    line.end();
}

/// The line of one event; events a firmware node has no line for are skipped.
pub fn event(out: &mut Uart, driver: &FirmwareDriver, event: &Event<{ crate::DATA }>) {
    match event {
        Event::Discovered { sid } => {
            if let Some(service) = driver.node().service(sid.as_bytes()) {
                discovered(out, service);
            }
        }
        Event::Lost { sid, reason } => {
            let mut line = Line::event(out, "lost");
            line.bytes("sid", sid.as_bytes())
                .bytes("reason", reason.name().as_bytes());
            line.end();
        }
        Event::TagsChanged { sid } => {
            if let Some(service) = driver.node().service(sid.as_bytes()) {
                let mut line = Line::event(out, "tags");
                line.bytes("sid", sid.as_bytes())
                    .list("tags", service.tags().iter().map(|t| t.as_bytes()));
                line.end();
            }
        }
        Event::Message {
            sid,
            channel,
            ruid,
            payload,
        } => {
            let mut line = Line::event(out, "message");
            line.bytes("sid", sid.as_bytes())
                .number("channel", *channel);
            optional(&mut line, "data", payload.data());
            optional(&mut line, "ruid", ruid.as_ref().map(|r| r.as_bytes()));
            line.end();
        }
        Event::QueryReceived {
            sid,
            channel,
            ruid,
            payload,
        } => {
            let mut line = Line::event(out, "query");
            line.bytes("sid", sid.as_bytes());
            optional(&mut line, "ruid", ruid.as_ref().map(|r| r.as_bytes()));
            optional(&mut line, "data", payload.data());
            line.number("channel", *channel);
            line.end();
        }
        Event::Query(news) => query(out, news),
        Event::Dropped { count } => {
            let mut line = Line::event(out, "dropped");
            line.number("count", u64::from(*count));
            line.end();
        }
        _ => {}
    }
}

fn discovered(out: &mut Uart, service: &Service) {
    let ip = match service.ip() {
        Some(IpAddr::V4(v4)) => Some(v4.octets()),
        _ => None,
    };
    let mut line = Line::event(out, "discovered");
    line.bytes("sid", service.sid().as_bytes())
        .bytes("hid", service.hid().as_bytes())
        .key_ip("ip", ip)
        .list("tags", service.tags().iter().map(|t| t.as_bytes()))
        .list(
            "protocols",
            service.protocols().letters().iter().map(|l| l.as_bytes()),
        )
        .boolean("local", service.is_local());
    match service.tcp_port() {
        Some(port) => line.number("tcp_port", u64::from(port)),
        None => line.null("tcp_port"),
    };
    line.end();
}

/// News about one of this node's queries, as `cluster query --json` prints it.
fn query(out: &mut Uart, news: &QueryEvent<{ crate::DATA }>) {
    match news {
        QueryEvent::Response { sid, payload, .. } => {
            let mut line = Line::event(out, "response");
            line.bytes("sid", sid.as_bytes());
            optional(&mut line, "data", payload.data());
            line.end();
        }
        QueryEvent::Error { sid, error, .. } => {
            let mut line = Line::event(out, "error");
            line.bytes("sid", sid.as_bytes())
                .bytes("error", error.data().unwrap_or_default());
            line.end();
        }
        QueryEvent::Missing { sid, .. } => {
            let mut line = Line::event(out, "missing");
            line.bytes("sid", sid.as_bytes());
            line.end();
        }
        QueryEvent::Done {
            answered,
            missing,
            timed_out,
            ..
        } => {
            let mut line = Line::event(out, "done");
            line.number("responses", u64::from(*answered))
                .number("missing", u64::from(*missing))
                .boolean("timed_out", *timed_out);
            line.end();
        }
    }
}

/// `{"event":"stats",...}`: the node's and the driver's counters (the names of
/// `cluster services --stats`), the MAC's, the receive polls' work ([`Load`](crate::Load)),
/// the uptime and the stack's high-water mark.
pub fn stats(
    out: &mut Uart,
    driver: &FirmwareDriver,
    mac: mps2_board::lan9118::Counters,
    load: &crate::Load,
    uptime_ms: i64,
) {
    let node = driver.node().stats();
    let transport = driver.stats();
    let mut line = Line::event(out, "stats");
    line.number("frames_accepted", node.frames_accepted)
        .number("frames_dropped", node.frames_dropped)
        .number("decode_errors", node.decode_errors)
        .number("services_rejected", node.services_rejected)
        .number("services_evicted", node.services_evicted)
        .number("oversized", node.oversized)
        .number("events_dropped", node.events_dropped)
        .number("unsealed", node.unsealed)
        .number("unknown_key", node.unknown_key)
        .number("forged", node.forged)
        .number("replayed", node.replayed)
        .number(
            "stream_garbage_bytes",
            driver.node().stream_stats().reassembly.garbage_bytes,
        )
        .number("datagrams_received", transport.datagrams_received)
        .number("datagrams_dropped", transport.datagrams_dropped)
        .number("datagrams_sent", transport.datagrams_sent)
        .number("mac_frames_received", u64::from(mac.received))
        .number("mac_frames_sent", u64::from(mac.sent))
        .number("mac_rx_errors", u64::from(mac.rx_errors))
        .number("rx_polls", u64::from(load.polls))
        .number("rx_poll_ticks", load.ticks)
        .number("uptime_ms", u64::try_from(uptime_ms).unwrap_or(0))
        .number("stack_high_water", mps2_board::stack::high_water() as u64);
    line.end();
}

fn optional(line: &mut Line<'_>, key: &str, value: Option<&[u8]>) {
    match value {
        Some(bytes) => line.bytes(key, bytes),
        None => line.null(key),
    };
}
