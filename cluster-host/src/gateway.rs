//! The gateway: relaying queries and events from other segments to the LAN-only services
//! this node exports ([`cluster_core::membership`], "Gateways").
//!
//! A node elsewhere knows an exported service as living at this node's TCP address (its
//! route), so its node sends that service's queries and events here, as ordinary frames
//! with `filter` naming the service. This module recognises them ([`inbound`]); the engine
//! then has this node's own node send them on the LAN with the ordinary query and send
//! paths: **the LAN service only ever receives frames of this node**, built by the same
//! code as any of its queries and events, so a reference (Tcl 1.1.8) node or a firmware
//! node gets nothing it does not understand, and it answers this node, which it knows.
//! Each answer goes back on the asker's connection as the response the service would have
//! sent ([`answer_frame`]): `sid` and `hid` the service's, the asker's `ruid`, `filter` the
//! asker's sid.
//!
//! What is relayed: queries (type 4) and events (type 6). Any other frame for an exported
//! service (a failed report, a response, a heartbeat) is not: only a node of this project
//! sends to a route, and those frames would be about the gateway, not the service.
//! Relayed events reach the service from the gateway (its `sid`), with the sender's `ruid`.
//!
//! A query naming several exported services reaches the gateway once per target (the
//! asker's direct sends each carry every target in `filter`): a relayed query is therefore
//! remembered by asker, query id and target while it runs, and a copy is not relayed again.

use std::collections::{HashMap, HashSet};

use cluster_core::wire::{FilterPlacement, List, Message, MessageKind, Str};
use cluster_core::{ConnId, Hid, Sid};

/// Relayed queries a gateway runs at most at once; more are not relayed (the asker's
/// query times out for that target).
pub const MAX_RELAYED: usize = 1024;

/// A query or event for exported services, read from a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Query or event.
    pub kind: MessageKind,
    /// The asker.
    pub from: Sid,
    /// The exported services it names.
    pub targets: Vec<Sid>,
    /// Its `ruid`.
    pub ruid: Option<String>,
    /// Its `keepalive` flag (echoed in responses).
    pub keepalive: bool,
    /// Its channel.
    pub channel: u64,
    /// Its `data`.
    pub data: Option<Vec<u8>>,
    /// Its `raw`.
    pub raw: Option<Vec<u8>>,
}

/// Reads `frame`: `Some` when it is a query or an event whose `filter` names some service
/// `is_export` accepts.
#[must_use]
pub fn inbound(frame: &[u8], is_export: impl Fn(&Sid) -> bool) -> Option<Inbound> {
    let (message, _) = Message::parse(frame).ok()?;
    let kind = message.kind?;
    if !matches!(kind, MessageKind::Query | MessageKind::Event) {
        return None;
    }
    let targets: Vec<Sid> = message
        .filter?
        .into_iter()
        .filter_map(Sid::new)
        .filter(|sid| is_export(sid))
        .collect();
    if targets.is_empty() {
        return None;
    }
    Some(Inbound {
        kind,
        from: Sid::new(message.sid?.as_bytes())?,
        targets,
        ruid: message
            .ruid
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned()),
        keepalive: message.keepalive == Some(true),
        channel: message.channel.unwrap_or(0),
        data: message.data.map(|d| d.as_bytes().to_vec()),
        raw: message.raw.map(<[u8]>::to_vec),
    })
}

/// A query relayed to one service, waiting for its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The connection the query came on; the answer goes back on it.
    pub conn: ConnId,
    /// The asker.
    pub asker: Sid,
    /// The asker's query id.
    pub ruid: Option<String>,
    /// Echoed when the query carried it.
    pub keepalive: bool,
    /// The query's channel.
    pub channel: u64,
    /// The service asked.
    pub target: Sid,
    /// Its hid.
    pub target_hid: Hid,
}

impl Pending {
    fn key(&self) -> (Sid, Option<String>, Sid) {
        (self.asker, self.ruid.clone(), self.target)
    }
}

/// The relayed queries in flight, by the gateway's own query id.
#[derive(Debug, Default)]
pub struct Relays {
    pending: HashMap<String, Pending>,
    running: HashSet<(Sid, Option<String>, Sid)>,
}

impl Relays {
    /// True when this query (asker, query id, target) is being relayed already, or when
    /// no more may run: it is not relayed.
    #[must_use]
    pub fn refuses(&self, asker: &Sid, ruid: Option<&str>, target: &Sid) -> bool {
        self.pending.len() >= MAX_RELAYED
            || self
                .running
                .contains(&(*asker, ruid.map(str::to_owned), *target))
    }

    /// Records a relayed query, started as this node's query `id`.
    pub fn start(&mut self, id: String, pending: Pending) {
        self.running.insert(pending.key());
        self.pending.insert(id, pending);
    }

    /// The relayed query behind this node's query `id`.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Pending> {
        self.pending.get(id)
    }

    /// This node's query `id` ended.
    pub fn finish(&mut self, id: &str) {
        if let Some(pending) = self.pending.remove(id) {
            self.running.remove(&pending.key());
        }
    }

    /// The connection `conn` closed: its askers' answers have nowhere to go. Returns this
    /// node's query ids to cancel.
    pub fn closed(&mut self, conn: ConnId) -> Vec<String> {
        let ids: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.conn == conn)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &ids {
            self.finish(id);
        }
        ids
    }

    /// Relayed queries running.
    #[must_use]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// True when none runs.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

/// A service's answer to a relayed query.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer<'a> {
    /// Its `data` and `raw`.
    Data(Option<&'a [u8]>, Option<&'a [u8]>),
    /// Its error text.
    Error(&'a [u8]),
}

/// The response the service would have sent the asker: `sid hid type=5 channel protocols
/// [ruid] [keepalive] data|error filter=[asker]`.
#[must_use]
pub fn answer_frame(pending: &Pending, answer: Answer<'_>) -> Option<Vec<u8>> {
    const PROTOCOLS: [&str; 2] = ["t", "c"];
    let asker = [pending.asker.as_str()?];
    let (data, raw, error) = match answer {
        Answer::Data(data, raw) => (Some(Str::from_bytes(data.unwrap_or_default())), raw, None),
        Answer::Error(text) => (None, None, Some(Str::from_bytes(text))),
    };
    let message = Message {
        kind: Some(MessageKind::Response),
        channel: Some(pending.channel),
        hid: Some(Str::from(pending.target_hid.as_str()?)),
        sid: Some(Str::from(pending.target.as_str()?)),
        protocols: Some(List::from_items(&PROTOCOLS)),
        ruid: pending.ruid.as_deref().map(Str::from),
        keepalive: pending.keepalive.then_some(true),
        data,
        raw,
        error,
        filter: Some(List::from_items(&asker)),
        ..Message::default()
    };
    message.encode_to_vec(FilterPlacement::Last).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(text: &str) -> Sid {
        Sid::new(text.as_bytes()).unwrap()
    }

    fn query(filter: &[&str], kind: MessageKind) -> Vec<u8> {
        let protocols = ["t", "c"];
        Message {
            kind: Some(kind),
            channel: Some(0),
            hid: Some(Str::from("02:fc:00:00:00:09")),
            sid: Some(Str::from("Rrrrrrrr")),
            protocols: Some(List::from_items(&protocols)),
            ruid: Some(Str::from("q7")),
            data: Some(Str::from("status")),
            keepalive: Some(true),
            filter: Some(List::from_items(filter)),
            ..Message::default()
        }
        .encode_to_vec(FilterPlacement::First)
        .unwrap()
    }

    fn exported(s: &Sid) -> bool {
        s.as_bytes().starts_with(b"Tcl")
    }

    #[test]
    fn a_query_naming_exported_services_is_relayed_to_those_only() {
        let frame = query(&["Tcl00001", "Gaaaaaaa", "Tcl00002"], MessageKind::Query);
        let inbound = inbound(&frame, exported).unwrap();
        assert_eq!(inbound.kind, MessageKind::Query);
        assert_eq!(inbound.from, sid("Rrrrrrrr"));
        assert_eq!(inbound.targets, [sid("Tcl00001"), sid("Tcl00002")]);
        assert_eq!(inbound.ruid.as_deref(), Some("q7"));
        assert!(inbound.keepalive);
        assert_eq!(inbound.data.as_deref(), Some(&b"status"[..]));
    }

    #[test]
    fn other_frames_and_other_targets_are_not_relayed() {
        assert_eq!(
            inbound(&query(&["Gaaaaaaa"], MessageKind::Query), exported),
            None
        );
        for kind in [
            MessageKind::Heartbeat,
            MessageKind::Response,
            MessageKind::Failed,
            MessageKind::Flush,
        ] {
            assert_eq!(
                inbound(&query(&["Tcl00001"], kind), exported),
                None,
                "{kind:?}"
            );
        }
        assert_eq!(inbound(b"\x00garbage", exported), None);
        assert!(inbound(&query(&["Tcl00001"], MessageKind::Event), exported).is_some());
    }

    #[test]
    fn the_answer_is_the_services_response_to_the_asker() {
        let pending = Pending {
            conn: ConnId(3),
            asker: sid("Rrrrrrrr"),
            ruid: Some("q7".into()),
            keepalive: true,
            channel: 5,
            target: sid("Tcl00001"),
            target_hid: Hid::new(b"02:fc:00:00:00:51").unwrap(),
        };
        let frame = answer_frame(&pending, Answer::Data(Some(b"ok"), None)).unwrap();
        let (m, _) = Message::parse(&frame).unwrap();
        assert_eq!(m.kind, Some(MessageKind::Response));
        assert_eq!(m.sid.unwrap(), "Tcl00001");
        assert_eq!(m.hid.unwrap(), "02:fc:00:00:00:51");
        assert_eq!(m.ruid.unwrap(), "q7");
        assert_eq!(m.channel, Some(5));
        assert_eq!(m.keepalive, Some(true));
        assert_eq!(m.data.unwrap(), "ok");
        let filter: Vec<Vec<u8>> = m.filter.unwrap().into_iter().map(<[u8]>::to_vec).collect();
        assert_eq!(filter, [b"Rrrrrrrr".to_vec()]);
        let frame = answer_frame(&pending, Answer::Error(b"no such thing")).unwrap();
        let (m, _) = Message::parse(&frame).unwrap();
        assert_eq!(
            (m.data, m.error.unwrap()),
            (None, Str::from("no such thing"))
        );
    }

    #[test]
    fn a_copy_of_a_running_relay_is_refused_until_it_ends() {
        let mut relays = Relays::default();
        let pending = Pending {
            conn: ConnId(3),
            asker: sid("Rrrrrrrr"),
            ruid: Some("q7".into()),
            keepalive: true,
            channel: 0,
            target: sid("Tcl00001"),
            target_hid: Hid::new(b"02:fc:00:00:00:51").unwrap(),
        };
        assert!(!relays.refuses(&pending.asker, Some("q7"), &pending.target));
        relays.start("g1".into(), pending.clone());
        assert!(relays.refuses(&pending.asker, Some("q7"), &pending.target));
        assert!(!relays.refuses(&pending.asker, Some("q8"), &pending.target));
        assert_eq!(relays.closed(ConnId(4)), Vec::<String>::new());
        assert_eq!(relays.closed(ConnId(3)), ["g1"]);
        assert!(relays.is_empty());
        assert!(!relays.refuses(&pending.asker, Some("q7"), &pending.target));
    }
}
