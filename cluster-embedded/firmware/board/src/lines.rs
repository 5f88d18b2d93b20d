//! The node's lines, shared by both firmware images: those of `cluster join --json` (and, for
//! the node's own queries, of `cluster query --json`), written with [`Line`] from the parts
//! each driver's events carry. Field names and order are cluster-host's `json` module's.

use core::net::IpAddr;

use cluster_core::{LostReason, ProtocolList, QueryEvent, Service, TagList};

use crate::json::Line;
use crate::uart::Uart;

/// `{"event":"joined",...}`: the node's identity, group and protocols.
pub fn joined(
    out: &mut Uart,
    sid: &[u8],
    hid: &[u8],
    group: [u8; 4],
    port: u16,
    protocols: ProtocolList,
) {
    let mut line = Line::event(out, "joined");
    line.bytes("sid", sid)
        .bytes("hid", hid)
        .key_ip("group", Some(group))
        .number("port", u64::from(port));
    protocol_list(&mut line, protocols);
    line.null("tcp_port").null("unix_path");
    line.end();
}

/// `{"event":"discovered",...}`: a service as the node knows it.
pub fn discovered(out: &mut Uart, service: &Service) {
    let ip = match service.ip() {
        Some(IpAddr::V4(v4)) => Some(v4.octets()),
        _ => None,
    };
    let mut line = Line::event(out, "discovered");
    line.bytes("sid", service.sid().as_bytes())
        .bytes("hid", service.hid().as_bytes())
        .key_ip("ip", ip);
    tag_list(&mut line, service.tags());
    protocol_list(&mut line, service.protocols());
    line.boolean("local", service.is_local());
    match service.tcp_port() {
        Some(port) => line.number("tcp_port", u64::from(port)),
        None => line.null("tcp_port"),
    };
    line.end();
}

/// `{"event":"lost","sid":...,"reason":...}`.
pub fn lost(out: &mut Uart, sid: &[u8], reason: LostReason) {
    let mut line = Line::event(out, "lost");
    line.bytes("sid", sid)
        .bytes("reason", reason.name().as_bytes());
    line.end();
}

/// `{"event":"tags","sid":...,"tags":[...]}`.
pub fn tags(out: &mut Uart, sid: &[u8], tags: &TagList) {
    let mut line = Line::event(out, "tags");
    line.bytes("sid", sid);
    tag_list(&mut line, tags);
    line.end();
}

/// `{"event":"message",...}` (`query: false`) or `{"event":"query",...}` (`query: true`).
pub fn message(
    out: &mut Uart,
    query: bool,
    sid: &[u8],
    channel: u64,
    ruid: Option<&[u8]>,
    data: Option<&[u8]>,
) {
    if query {
        let mut line = Line::event(out, "query");
        line.bytes("sid", sid);
        optional(&mut line, "ruid", ruid);
        optional(&mut line, "data", data);
        line.number("channel", channel);
        line.end();
    } else {
        let mut line = Line::event(out, "message");
        line.bytes("sid", sid).number("channel", channel);
        optional(&mut line, "data", data);
        optional(&mut line, "ruid", ruid);
        line.end();
    }
}

/// `{"event":"dropped","count":N}`.
pub fn dropped(out: &mut Uart, count: u64) {
    let mut line = Line::event(out, "dropped");
    line.number("count", count);
    line.end();
}

/// News about one of this node's queries, as `cluster query --json` prints it.
pub fn query_news<const DATA: usize>(out: &mut Uart, news: &QueryEvent<DATA>) {
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

/// A `{"event":"warning","error":...}` line: a command that did nothing.
pub fn warning(out: &mut Uart, why: &str) {
    let mut line = Line::event(out, "warning");
    line.bytes("error", why.as_bytes());
    line.end();
}

/// A `{"event":"fatal","error":...}` line, then the end of the emulation with a failure.
pub fn fatal(out: &mut Uart, why: &str) -> ! {
    let mut line = Line::event(out, "fatal");
    line.bytes("error", why.as_bytes());
    line.end();
    crate::host::exit_failure()
}

fn tag_list(line: &mut Line<'_>, tags: &TagList) {
    line.list("tags", tags.iter().map(|t| t.as_bytes()));
}

fn protocol_list(line: &mut Line<'_>, protocols: ProtocolList) {
    line.list(
        "protocols",
        protocols.letters().iter().map(|l| l.as_bytes()),
    );
}

fn optional(line: &mut Line<'_>, key: &str, value: Option<&[u8]>) {
    match value {
        Some(bytes) => line.bytes(key, bytes),
        None => line.null(key),
    };
}
