//! The JSON lines of `cluster join --json` and friends (one object per line), shared by every
//! adapter's command-line front end so that they print the same thing.
//!
//! | line | keys |
//! | --- | --- |
//! | joined | `event`, `sid`, `hid`, `port`, `group`, `protocols`, `tcp_port`, `unix_path` |
//! | discovered | `event`, `sid`, `hid`, `ip`, `tags`, `protocols`, `local`, `tcp_port` |
//! | lost | `event`, `sid`, `reason` (`expired`, `disconnect`, `left`) |
//! | tags | `event`, `sid`, `tags` |
//! | message | `event`, `sid`, `channel`, `data`, `ruid` |
//! | query | `event`, `sid`, `ruid`, `data`, `channel` |
//! | refreshed | `event`, `protocol` |
//! | dropped | `event`, `count` |
//! | service | `event`, then the keys of `discovered` (`cluster services --json`) |
//! | response, error, missing | `event`, `sid`, and `data` or `error` |
//! | done | `event`, `responses`, `missing`, `timed_out` |
//!
//! Text that is not UTF-8 is written `{"bytes_hex": "..."}`; an absent `data` is `null`.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::event::{Event, Payload, QueryEvent, QuerySummary, ServiceInfo};

/// A byte string as JSON: a string when UTF-8, else `{"bytes_hex": "..."}`.
#[must_use]
pub fn bytes_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => {
            let mut hex = String::with_capacity(bytes.len() * 2);
            for b in bytes {
                let _ = write!(hex, "{b:02x}");
            }
            json!({ "bytes_hex": hex })
        }
    }
}

fn sid_json(sid: &cluster_core::Sid) -> Value {
    bytes_json(sid.as_bytes())
}

fn data_json(payload: &Payload) -> Value {
    payload.data.as_deref().map_or(Value::Null, bytes_json)
}

fn protocols_json(list: cluster_core::ProtocolList) -> Value {
    list.letters().iter().map(|l| json!(l)).collect()
}

/// What a node says about itself once joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedInfo {
    /// Its sid.
    pub sid: cluster_core::Sid,
    /// Its hid.
    pub hid: cluster_core::Hid,
    /// The multicast group and port.
    pub group: std::net::SocketAddrV4,
    /// Its protocols.
    pub protocols: cluster_core::ProtocolList,
    /// Its TCP port.
    pub tcp_port: Option<u16>,
    /// Its unix socket.
    pub unix_path: Option<String>,
}

/// `{"event":"joined",...}`.
#[must_use]
pub fn joined_json(info: &JoinedInfo) -> Value {
    json!({
        "event": "joined",
        "sid": sid_json(&info.sid),
        "hid": bytes_json(info.hid.as_bytes()),
        "group": info.group.ip().to_string(),
        "port": info.group.port(),
        "protocols": protocols_json(info.protocols),
        "tcp_port": info.tcp_port,
        "unix_path": info.unix_path,
    })
}

/// A service's keys, after `event`.
#[must_use]
pub fn service_json(event: &str, service: &ServiceInfo) -> Value {
    json!({
        "event": event,
        "sid": sid_json(&service.sid),
        "hid": bytes_json(service.hid.as_bytes()),
        "ip": service.ip.map(|ip| ip.to_string()),
        "tags": service.tags,
        "protocols": protocols_json(service.protocols),
        "local": service.local,
        "tcp_port": service.tcp_port,
    })
}

/// The line of an event.
#[must_use]
pub fn event_json(event: &Event) -> Value {
    match event {
        Event::Discovered(service) => service_json("discovered", service),
        Event::Lost { sid, reason } => {
            json!({ "event": "lost", "sid": sid_json(sid), "reason": reason.name() })
        }
        Event::TagsChanged { sid, tags } => {
            json!({ "event": "tags", "sid": sid_json(sid), "tags": tags })
        }
        Event::Message {
            sid,
            channel,
            ruid,
            payload,
        } => json!({
            "event": "message",
            "sid": sid_json(sid),
            "channel": channel,
            "data": data_json(payload),
            "ruid": ruid,
        }),
        Event::QueryReceived {
            sid,
            channel,
            ruid,
            payload,
        } => json!({
            "event": "query",
            "sid": sid_json(sid),
            "ruid": ruid,
            "data": data_json(payload),
            "channel": channel,
        }),
        Event::ProtocolRefreshed { protocol } => {
            json!({ "event": "refreshed", "protocol": protocol.letter() })
        }
        Event::Dropped { count } => json!({ "event": "dropped", "count": count }),
    }
}

/// The line of a query's news.
#[must_use]
pub fn query_event_json(event: &QueryEvent) -> Value {
    match event {
        QueryEvent::Response { sid, payload } => {
            json!({ "event": "response", "sid": sid_json(sid), "data": data_json(payload) })
        }
        QueryEvent::Error { sid, error } => {
            json!({ "event": "error", "sid": sid_json(sid), "error": error })
        }
        QueryEvent::Missing { sid } => json!({ "event": "missing", "sid": sid_json(sid) }),
        QueryEvent::Done(summary) => done_json(summary),
    }
}

/// `{"event":"done","responses":N,"missing":M,"timed_out":B}`.
#[must_use]
pub fn done_json(summary: &QuerySummary) -> Value {
    json!({
        "event": "done",
        "responses": summary.answered,
        "missing": summary.missing,
        "timed_out": summary.timed_out,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cluster_core::{LostReason, Protocol, ProtocolList, Sid};

    fn sid() -> Sid {
        Sid::new(b"AbCd1234").unwrap()
    }

    #[test]
    fn lines_carry_the_keys_the_issue_lists() {
        let service = ServiceInfo {
            sid: sid(),
            hid: cluster_core::Hid::new(b"02:fc:00:00:00:01").unwrap(),
            ip: Some("127.0.0.1".parse().unwrap()),
            local: true,
            tags: vec!["web".into()],
            protocols: ProtocolList::new(&[Protocol::Tcp, Protocol::Multicast]),
            tcp_port: Some(4000),
            unix_path: None,
            expected: false,
        };
        assert_eq!(
            event_json(&Event::Discovered(service)).to_string(),
            r#"{"event":"discovered","sid":"AbCd1234","hid":"02:fc:00:00:00:01","ip":"127.0.0.1","tags":["web"],"protocols":["t","c"],"local":true,"tcp_port":4000}"#
        );
        let lost = Event::Lost {
            sid: sid(),
            reason: LostReason::Disconnected,
        };
        assert_eq!(
            event_json(&lost).to_string(),
            r#"{"event":"lost","sid":"AbCd1234","reason":"disconnect"}"#
        );
        let message = Event::Message {
            sid: sid(),
            channel: 5,
            ruid: None,
            payload: Payload::text(vec![0xff, 0x00]),
        };
        assert_eq!(
            event_json(&message).to_string(),
            r#"{"event":"message","sid":"AbCd1234","channel":5,"data":{"bytes_hex":"ff00"},"ruid":null}"#
        );
        let done = QueryEvent::Done(QuerySummary {
            answered: 2,
            missing: 1,
            timed_out: true,
        });
        assert_eq!(
            query_event_json(&done).to_string(),
            r#"{"event":"done","responses":2,"missing":1,"timed_out":true}"#
        );
    }
}
