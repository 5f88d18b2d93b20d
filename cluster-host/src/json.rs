//! The JSON lines of `cluster join --json` and friends (one object per line), shared by every
//! adapter's command-line front end so that they print the same thing.
//!
//! | line | keys |
//! | --- | --- |
//! | joined | `event`, `sid`, `hid`, `port`, `group`, `protocols`, `tcp_port`, `unix_path`, `interfaces` |
//! | discovered | `event`, `sid`, `hid`, `ip`, `tags`, `protocols`, `local`, `tcp_port`, `interface`, `interface_address` (where it was heard: our interface's name and our address on it), `learned` (`multicast`, `seed` or `gateway`), `segment` (its segment's name, or null) |
//! | lost | `event`, `sid`, `reason` (`expired`, `disconnect`, `left`) |
//! | tags | `event`, `sid`, `tags` |
//! | message | `event`, `sid`, `channel`, `data`, `ruid`, and `raw` when present |
//! | query | `event`, `sid`, `ruid`, `data`, `channel`, and `raw` when present |
//! | refreshed | `event`, `protocol` |
//! | dropped | `event`, `count` |
//! | service | `event`, then the keys of `discovered` (`cluster services --json`); with `data_version` and `data` (`{"key": value}`) when the service publishes data |
//! | data | `event`, `sid`, `version`, `data` (`{"key": value}`): a service published new data |
//! | response, error, missing | `event`, `sid`, and `data` (and `raw` when present) or `error` |
//! | done | `event`, `responses`, `missing`, `timed_out`; from a front end that kept the query's news ([`query_done_json`]) also `missing_sids` |
//! | stats | `event`, then every counter of [`cluster_core::Stats`] and of [`TransportStats`], named as their fields (`cluster services --stats --json`) |
//! | error | `event`, `error` (the message), `what` (what failed, e.g. `key_file`) |
//! | metrics | `event`, `address` (where `cluster join --metrics` serves `GET /metrics`) |
//! | interface | `event`, `interface`, `address`, `group`, `port`, `ttl`, `loop`, `loop_v6`, `answered` (`local`, `remote`), `sids`, `verdict` (`ok`, `alone`, `no_loop`, `error`), `hints` (`cluster doctor`) |
//!
//! Text that is not UTF-8 is written `{"bytes_hex": "..."}`; an absent `data` is `null`. The
//! `raw` field (typed payloads: postcard bytes) is lowercase hex, as `cluster decode` writes it.

use std::fmt::Write as _;

use cluster_core::Stats;
use serde_json::{Map, Value, json};

use crate::event::{Event, Payload, QueryEvent, QuerySummary, ServiceInfo};
use crate::node_data::DataMap;
use crate::transports::TransportStats;

/// A byte string as JSON: a string when UTF-8, else `{"bytes_hex": "..."}`.
#[must_use]
pub fn bytes_json(bytes: &[u8]) -> Value {
    match std::str::from_utf8(bytes) {
        Ok(text) => Value::String(text.to_owned()),
        Err(_) => json!({ "bytes_hex": hex(bytes) }),
    }
}

fn sid_json(sid: &cluster_core::Sid) -> Value {
    bytes_json(sid.as_bytes())
}

fn data_json(payload: &Payload) -> Value {
    payload.data.as_deref().map_or(Value::Null, bytes_json)
}

/// Lowercase hex.
fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

/// Adds `"raw": "<hex>"` to a line when the payload has a `raw` field (typed payloads).
fn with_raw(mut line: Value, payload: &Payload) -> Value {
    if let (Some(raw), Value::Object(map)) = (&payload.raw, &mut line) {
        map.insert("raw".to_owned(), Value::String(hex(raw)));
    }
    line
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
    /// The interfaces the group is joined on, by name.
    pub interfaces: Vec<String>,
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
        "interfaces": info.interfaces,
    })
}

/// A service's keys, after `event`.
#[must_use]
pub fn service_json(event: &str, service: &ServiceInfo) -> Value {
    let mut line = json!({
        "event": event,
        "sid": sid_json(&service.sid),
        "hid": bytes_json(service.hid.as_bytes()),
        "ip": service.ip.map(|ip| ip.to_string()),
        "tags": service.tags,
        "protocols": protocols_json(service.protocols),
        "local": service.local,
        "tcp_port": service.tcp_port,
        "interface": service.heard_on.as_ref().map(|h| h.interface.clone()),
        "interface_address": service.heard_on.as_ref().map(|h| h.address.to_string()),
        "learned": service.learned,
        "segment": service.segment,
    });
    if service.data_version > 0
        && let Value::Object(map) = &mut line
    {
        map.insert("data_version".to_owned(), json!(service.data_version));
        map.insert("data".to_owned(), data_map_json(&service.data));
    }
    line
}

/// A service's data: `{"key": value}`, each value as [`bytes_json`] writes it.
fn data_map_json(data: &DataMap) -> Value {
    Value::Object(
        data.iter()
            .map(|(k, v)| (k.clone(), bytes_json(v)))
            .collect::<Map<_, _>>(),
    )
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
        } => with_raw(
            json!({
                "event": "message",
                "sid": sid_json(sid),
                "channel": channel,
                "data": data_json(payload),
                "ruid": ruid,
            }),
            payload,
        ),
        Event::QueryReceived {
            sid,
            channel,
            ruid,
            payload,
        } => with_raw(
            json!({
                "event": "query",
                "sid": sid_json(sid),
                "ruid": ruid,
                "data": data_json(payload),
                "channel": channel,
            }),
            payload,
        ),
        Event::ProtocolRefreshed { protocol } => {
            json!({ "event": "refreshed", "protocol": protocol.letter() })
        }
        Event::DataChanged { sid, version, data } => json!({
            "event": "data",
            "sid": sid_json(sid),
            "version": version,
            "data": data_map_json(data),
        }),
        Event::Dropped { count } => json!({ "event": "dropped", "count": count }),
        Event::SendFailed { error } => {
            json!({ "event": "send_failed", "error": error.to_string() })
        }
    }
}

/// The line of a query's news.
#[must_use]
pub fn query_event_json(event: &QueryEvent) -> Value {
    match event {
        QueryEvent::Response { sid, payload } => with_raw(
            json!({ "event": "response", "sid": sid_json(sid), "data": data_json(payload) }),
            payload,
        ),
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

/// The final line of a query whose news were kept: [`done_json`] plus `missing_sids`, the
/// targets that did not answer, in the order the node reported them.
#[must_use]
pub fn query_done_json(summary: &QuerySummary, missing: &[cluster_core::Sid]) -> Value {
    let mut value = done_json(summary);
    if let Value::Object(map) = &mut value {
        map.insert(
            "missing_sids".to_owned(),
            missing.iter().map(sid_json).collect(),
        );
    }
    value
}

/// Every counter of the node, by field name, in the order of [`Stats`]' fields.
#[must_use]
pub fn node_counters(stats: &Stats) -> Vec<(&'static str, u64)> {
    // `Stats` is `#[non_exhaustive]`: a test compares this list with its fields.
    vec![
        ("frames_accepted", stats.frames_accepted),
        ("heartbeats_repeated", stats.heartbeats_repeated),
        ("frames_dropped", stats.frames_dropped),
        ("decode_errors", stats.decode_errors),
        ("own_echoes", stats.own_echoes),
        ("filtered_out", stats.filtered_out),
        ("services_rejected", stats.services_rejected),
        ("services_evicted", stats.services_evicted),
        ("oversized", stats.oversized),
        ("sends_rejected", stats.sends_rejected),
        ("queries_rejected", stats.queries_rejected),
        ("ping_batch_full", stats.ping_batch_full),
        ("events_dropped", stats.events_dropped),
        ("stream_overflows", stats.stream_overflows),
        ("transmit_buffer_too_small", stats.transmit_buffer_too_small),
        ("encode_errors", stats.encode_errors),
        ("clock_regressions", stats.clock_regressions),
        ("sends_failed", stats.sends_failed),
        ("pings_sent", stats.pings_sent),
        ("routes_refused", stats.routes_refused),
        ("queries_retried", stats.queries_retried),
        ("answers_repeated", stats.answers_repeated),
        ("copies_dropped", stats.copies_dropped),
        ("holds_reclaimed", stats.holds_reclaimed),
        ("silent_probes", stats.silent_probes),
        ("expiry_holds", stats.expiry_holds),
        ("unsealed", stats.unsealed),
        ("unknown_key", stats.unknown_key),
        ("forged", stats.forged),
        ("replayed", stats.replayed),
        ("replay_evictions", stats.replay_evictions),
    ]
}

/// Every counter of the adapter's transports, by field name, in the order of
/// [`TransportStats`]' fields.
#[must_use]
pub fn transport_counters(stats: &TransportStats) -> Vec<(&'static str, u64)> {
    // Destructured without `..`: a new field does not compile until it is listed here.
    let TransportStats {
        datagrams_sent,
        datagrams_received,
        datagrams_failed,
        datagrams_sent_v6,
        datagrams_received_v6,
        stream_frames_received,
        datagram_copies,
        connects,
        accepts,
        writes_ok,
        writes_failed,
        writes_refused,
        idle_closes,
        connections_open,
        connections_refused,
        connections_evicted,
        connects_refused,
        stream_frames_oversized,
        stream_garbage_bytes,
        stream_decode_errors,
        events_lagged,
        queued_sends_refused,
    } = *stats;
    vec![
        ("datagrams_sent", datagrams_sent),
        ("datagrams_received", datagrams_received),
        ("datagrams_failed", datagrams_failed),
        ("datagrams_sent_v6", datagrams_sent_v6),
        ("datagrams_received_v6", datagrams_received_v6),
        ("stream_frames_received", stream_frames_received),
        ("datagram_copies", datagram_copies),
        ("connects", connects),
        ("accepts", accepts),
        ("writes_ok", writes_ok),
        ("writes_failed", writes_failed),
        ("writes_refused", writes_refused),
        ("idle_closes", idle_closes),
        ("connections_open", connections_open),
        ("connections_refused", connections_refused),
        ("connections_evicted", connections_evicted),
        ("connects_refused", connects_refused),
        ("stream_frames_oversized", stream_frames_oversized),
        ("stream_garbage_bytes", stream_garbage_bytes),
        ("stream_decode_errors", stream_decode_errors),
        ("events_lagged", events_lagged),
        ("queued_sends_refused", queued_sends_refused),
    ]
}

/// `{"event":"stats", ...}`: every counter of the node and of its transports, keyed by its
/// field name in [`Stats`] or [`TransportStats`] (the two share no name).
#[must_use]
pub fn stats_json(node: &Stats, transport: &TransportStats) -> Value {
    let mut map = Map::new();
    map.insert("event".to_owned(), json!("stats"));
    for (name, value) in node_counters(node)
        .into_iter()
        .chain(transport_counters(transport))
    {
        map.insert(name.to_owned(), json!(value));
    }
    Value::Object(map)
}

/// `{"event":"error","what":...,"error":...}`: something a running node was asked to do
/// failed and nothing changed (for example `what` = `key_file`: the key file read again on
/// SIGHUP is unreadable or invalid, and the keys in use stay).
#[must_use]
pub fn error_json(what: &str, error: &dyn std::fmt::Display) -> Value {
    json!({ "event": "error", "what": what, "error": error.to_string() })
}

/// `{"event":"keys","ids":[...],"send":N}`: the key ring now in use (ids only, never key
/// bytes), or `{"event":"keys","ids":[],"send":null}` when sealing is off.
#[must_use]
#[cfg(feature = "seal")]
pub fn keys_json(keys: Option<&cluster_core::KeyRing>) -> Value {
    let ids: Vec<u8> = keys.map(|k| k.ids().collect()).unwrap_or_default();
    let send = keys.map(|k| k.send_key().id());
    json!({ "event": "keys", "ids": ids, "send": send })
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
            heard_on: Some(crate::interfaces::HeardOn {
                interface: "lo".into(),
                address: "127.0.0.1".parse().unwrap(),
            }),
            data_version: 0,
            data: DataMap::new(),
            learned: "multicast",
            segment: None,
        };
        assert_eq!(
            event_json(&Event::Discovered(service)).to_string(),
            r#"{"event":"discovered","sid":"AbCd1234","hid":"02:fc:00:00:00:01","ip":"127.0.0.1","tags":["web"],"protocols":["t","c"],"local":true,"tcp_port":4000,"interface":"lo","interface_address":"127.0.0.1","learned":"multicast","segment":null}"#
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
        let typed = QueryEvent::Response {
            sid: sid(),
            payload: Payload {
                data: Some(b"pong".to_vec()),
                raw: Some(vec![0x0a, 0xff]),
            },
        };
        assert_eq!(
            query_event_json(&typed).to_string(),
            r#"{"event":"response","sid":"AbCd1234","data":"pong","raw":"0aff"}"#
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
        let silent = [Sid::new(b"silent01").unwrap()];
        assert_eq!(
            query_done_json(&QuerySummary::default(), &silent)["missing_sids"],
            json!(["silent01"])
        );
    }

    /// The field names of a struct, read from its derived `Debug` output.
    fn debug_fields(debug: &str) -> Vec<String> {
        let inner = debug
            .split_once('{')
            .and_then(|(_, rest)| rest.rsplit_once('}'))
            .map(|(inner, _)| inner)
            .unwrap_or_default();
        inner
            .split(',')
            .filter_map(|field| field.split_once(':'))
            .map(|(name, _)| name.trim().to_owned())
            .collect()
    }

    #[test]
    fn the_stats_line_names_every_counter_by_its_field() {
        let node = Stats::default();
        let transport = TransportStats::default();
        let names = |list: Vec<(&str, u64)>| -> Vec<String> {
            list.into_iter().map(|(n, _)| n.to_owned()).collect()
        };
        assert_eq!(
            names(node_counters(&node)),
            debug_fields(&format!("{node:?}")),
            "every field of cluster_core::Stats, in order"
        );
        assert_eq!(
            names(transport_counters(&transport)),
            debug_fields(&format!("{transport:?}"))
        );
        let line = stats_json(&node, &transport);
        let object = line.as_object().unwrap();
        assert_eq!(object["event"], "stats");
        // No name is shared: the line has one key per counter, plus `event`.
        assert_eq!(
            object.len(),
            1 + node_counters(&node).len() + transport_counters(&transport).len()
        );
        let transport = TransportStats {
            connections_refused: 3,
            ..TransportStats::default()
        };
        assert_eq!(stats_json(&node, &transport)["connections_refused"], 3);
    }

    #[test]
    #[cfg(feature = "seal")]
    fn key_lines_show_ids_never_bytes() {
        use cluster_core::{Key, KeyRing};
        let mut ring = KeyRing::new(Key::new(1, [7; 32]));
        ring.add(Key::new(2, [9; 32])).unwrap();
        ring.set_send(2).unwrap();
        assert_eq!(
            keys_json(Some(&ring)).to_string(),
            r#"{"event":"keys","ids":[1,2],"send":2}"#
        );
        assert_eq!(
            keys_json(None).to_string(),
            r#"{"event":"keys","ids":[],"send":null}"#
        );
        assert_eq!(
            error_json("key_file", &"bad").to_string(),
            r#"{"event":"error","what":"key_file","error":"bad"}"#
        );
    }
}
