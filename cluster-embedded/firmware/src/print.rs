//! The node's events as the JSON lines of `cluster join --json` (and, for this node's own
//! queries, those of `cluster query --json`), plus `stats` on request.

use cluster_embedded::cluster_core::Event;

use crate::{FirmwareDriver, Group};
use mps2_board::json::Line;
use mps2_board::lines;
use mps2_board::uart::Uart;

/// `{"event":"joined",...}`: the node's identity, group and protocols.
pub fn joined(out: &mut Uart, driver: &FirmwareDriver, group: Group) {
    let node = driver.node();
    lines::joined(
        out,
        node.sid().as_bytes(),
        node.hid().as_bytes(),
        group.addr.octets(),
        group.port,
        node.protocols(),
    );
}

/// The line of one event; events a firmware node has no line for are skipped.
pub fn event(out: &mut Uart, driver: &FirmwareDriver, event: &Event<{ crate::DATA }>) {
    match event {
        Event::Discovered { sid } => {
            if let Some(service) = driver.node().service(sid.as_bytes()) {
                lines::discovered(out, service);
            }
        }
        Event::Lost { sid, reason } => lines::lost(out, sid.as_bytes(), *reason),
        Event::TagsChanged { sid } => {
            if let Some(service) = driver.node().service(sid.as_bytes()) {
                lines::tags(out, sid.as_bytes(), service.tags());
            }
        }
        Event::Message {
            sid,
            channel,
            ruid,
            payload,
        }
        | Event::QueryReceived {
            sid,
            channel,
            ruid,
            payload,
        } => lines::message(
            out,
            matches!(event, Event::QueryReceived { .. }),
            sid.as_bytes(),
            *channel,
            ruid.as_ref().map(|r| r.as_bytes()),
            payload.data(),
        ),
        Event::Query(news) => lines::query_news(out, news),
        Event::Dropped { count } => lines::dropped(out, u64::from(*count)),
        _ => {}
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
