//! Queries held open and answered later (`Node::hold_queries`, `answer`, `refuse`,
//! `drop_held`), two nodes driven by hand in virtual time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use cluster_core::{
    AnswerError, Config, ConnId, DefaultPolicy, Destination, Event, HeldTable, Instant, Node,
    QueryEvent, QueryRequest, ReplyToken, Resolver, Source, Targets,
};

const HID: &str = "02:fc:00:00:00:01";

type Asker = Node<DefaultPolicy, 32, 512>;
type Responder<const HELD: usize> = Node<DefaultPolicy, 32, 512, HeldTable<HELD>>;

/// Two nodes on one host, every frame delivered at once.
struct Pair<const HELD: usize> {
    asker: Asker,
    responder: Responder<HELD>,
    now: Instant,
    asker_events: Vec<Event<512>>,
    responder_events: Vec<Event<512>>,
}

fn host() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 23000)
}

fn source(dst: &Destination, conn: u32) -> Source {
    match dst {
        Destination::Group { .. } => Source::multicast(host(), true),
        Destination::Service { .. } => Source::tcp(ConnId(conn), host(), true),
    }
}

impl<const HELD: usize> Pair<HELD> {
    fn joined(seed: u64) -> Self {
        let config = Config::lan_fast();
        let at = Instant::ZERO;
        let mut pair = Self {
            asker: Asker::new(config.clone(), HID, DefaultPolicy, seed, at).unwrap(),
            responder: Responder::new(config, HID, DefaultPolicy, seed + 1, at).unwrap(),
            now: at,
            asker_events: Vec::new(),
            responder_events: Vec::new(),
        };
        pair.pump();
        while pair.asker.known() == 0 || pair.responder.known() == 0 {
            pair.advance_to(pair.next_deadline());
        }
        pair
    }

    fn next_deadline(&self) -> Instant {
        [self.asker.poll_timeout(), self.responder.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .unwrap()
    }

    /// Delivers every frame either way until both are quiet, then drains the events.
    fn pump(&mut self) {
        let now = self.now;
        let mut buf = vec![0u8; Asker::TRANSMIT_BUF.max(Responder::<HELD>::TRANSMIT_BUF)];
        loop {
            let mut moved = false;
            while let Some(t) = self.asker.poll_transmit(now, &mut buf) {
                moved = true;
                if let Some(id) = t.dst.send_id() {
                    self.asker.transport_ok(now, id);
                }
                let _ = self
                    .responder
                    .handle_datagram(now, source(&t.dst, 1), &buf[..t.len]);
            }
            while let Some(t) = self.responder.poll_transmit(now, &mut buf) {
                moved = true;
                if let Some(id) = t.dst.send_id() {
                    self.responder.transport_ok(now, id);
                }
                let _ = self
                    .asker
                    .handle_datagram(now, source(&t.dst, 2), &buf[..t.len]);
            }
            if !moved {
                break;
            }
        }
        self.asker_events
            .extend(std::iter::from_fn(|| self.asker.poll_event()));
        self.responder_events
            .extend(std::iter::from_fn(|| self.responder.poll_event()));
    }

    /// Runs both nodes' timers up to `end`, in order.
    fn advance_to(&mut self, end: Instant) {
        loop {
            let next = self.next_deadline();
            if next > end {
                break;
            }
            self.now = self.now.max(next);
            self.asker.handle_timeout(self.now);
            self.responder.handle_timeout(self.now);
            self.pump();
        }
        self.now = self.now.max(end);
    }

    fn later(&mut self, ms: u64) {
        self.advance_to(Instant::from_millis(self.now.as_millis() + ms));
    }

    fn ask(&mut self, text: &[u8]) {
        let everyone = Resolver::resolve(&[]);
        self.asker
            .query(
                self.now,
                &QueryRequest::new(Targets::resolve(&everyone), text),
            )
            .unwrap();
        self.pump();
    }

    /// The tokens of the queries held so far, with their text.
    fn held(&self) -> Vec<(ReplyToken, Vec<u8>)> {
        self.responder_events
            .iter()
            .filter_map(|e| match e {
                Event::QueryHeld { token, payload, .. } => {
                    Some((*token, payload.data().unwrap_or_default().to_vec()))
                }
                _ => None,
            })
            .collect()
    }

    fn responses(&self) -> Vec<Result<Vec<u8>, Vec<u8>>> {
        self.asker_events
            .iter()
            .filter_map(|e| match e {
                Event::Query(QueryEvent::Response { payload, .. }) => {
                    Some(Ok(payload.data().unwrap_or_default().to_vec()))
                }
                Event::Query(QueryEvent::Error { error, .. }) => {
                    Some(Err(error.data().unwrap_or_default().to_vec()))
                }
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_held_query_answered_later_reaches_the_asker() {
    let mut pair = Pair::<4>::joined(7);
    assert!(pair.responder.hold_queries(true));
    pair.ask(b"status?");
    let held = pair.held();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].1, b"status?");
    assert!(
        pair.responses().is_empty(),
        "nothing is answered on the spot"
    );
    // The answer comes 700 ms later (lan_fast's query timeout is 2 s).
    pair.later(700);
    assert!(pair.responses().is_empty());
    pair.responder
        .answer(pair.now, held[0].0, b"all good", None)
        .unwrap();
    pair.pump();
    assert_eq!(pair.responses(), [Ok(b"all good".to_vec())]);
    assert!(pair.asker_events.iter().any(|e| matches!(
        e,
        Event::Query(QueryEvent::Done {
            answered: 1,
            timed_out: false,
            ..
        })
    )));
    assert_eq!(pair.responder.held(), 0);
    let stats = pair.responder.held_stats();
    assert_eq!((stats.held, stats.answered), (1, 1));
}

#[test]
fn a_refused_held_query_arrives_as_an_error() {
    let mut pair = Pair::<4>::joined(8);
    pair.responder.hold_queries(true);
    pair.ask(b"x");
    let token = pair.held()[0].0;
    pair.responder
        .refuse(pair.now, token, "no such key")
        .unwrap();
    pair.pump();
    assert_eq!(pair.responses(), [Err(b"no such key".to_vec())]);
    assert_eq!(pair.responder.held_stats().refused, 1);
}

#[test]
fn a_token_answers_once() {
    let mut pair = Pair::<4>::joined(9);
    pair.responder.hold_queries(true);
    pair.ask(b"x");
    let token = pair.held()[0].0;
    pair.responder.answer(pair.now, token, b"1", None).unwrap();
    assert_eq!(
        pair.responder.answer(pair.now, token, b"2", None),
        Err(AnswerError::Unknown)
    );
    assert_eq!(
        pair.responder
            .answer(pair.now, ReplyToken::from_u32(999), b"3", None),
        Err(AnswerError::Unknown)
    );
    pair.pump();
    assert_eq!(pair.responses(), [Ok(b"1".to_vec())]);
}

#[test]
fn an_answer_after_the_timeout_is_refused_and_counted() {
    let mut pair = Pair::<4>::joined(10);
    pair.responder.hold_queries(true);
    pair.ask(b"x");
    let token = pair.held()[0].0;
    // Answered exactly at the timeout, before the node's timer ran: late, not sent.
    let timeout = Config::lan_fast().query_timeout.as_millis() as u64;
    let deadline = Instant::from_millis(pair.now.as_millis() + timeout);
    assert_eq!(
        pair.responder.answer(deadline, token, b"too late", None),
        Err(AnswerError::Late)
    );
    assert_eq!(pair.responder.held_stats().late, 1);
    assert_eq!(pair.responder.held(), 0);
    pair.advance_to(deadline);
    pair.pump();
    assert!(pair.responses().is_empty());
    assert!(pair.asker_events.iter().any(|e| matches!(
        e,
        Event::Query(QueryEvent::Done {
            timed_out: true,
            ..
        })
    )));
}

#[test]
fn a_held_query_expires_in_virtual_time_and_its_token_is_then_unknown() {
    let mut pair = Pair::<4>::joined(11);
    pair.responder.hold_queries(true);
    pair.ask(b"x");
    let token = pair.held()[0].0;
    let asked = pair.now;
    let timeout = Config::lan_fast().query_timeout.as_millis() as u64;
    // The held query's timeout is one of the responder's deadlines.
    assert!(pair.responder.poll_timeout().unwrap().as_millis() <= asked.as_millis() + timeout);
    pair.later(timeout + 1);
    assert_eq!(pair.responder.held(), 0);
    assert_eq!(pair.responder.held_stats().expired, 1);
    assert_eq!(
        pair.responder.answer(pair.now, token, b"late", None),
        Err(AnswerError::Unknown)
    );
}

#[test]
fn a_dropped_token_answers_the_asker_with_an_error_at_once() {
    let mut pair = Pair::<4>::joined(12);
    pair.responder.hold_queries(true);
    pair.ask(b"x");
    let token = pair.held()[0].0;
    pair.responder.drop_held(pair.now, token).unwrap();
    pair.pump();
    assert_eq!(
        pair.responses(),
        [Err(b"query dropped unanswered".to_vec())]
    );
    assert_eq!(pair.responder.held_stats().dropped, 1);
}

#[test]
fn a_full_table_refuses_new_queries_as_busy() {
    let mut pair = Pair::<2>::joined(13);
    pair.responder.hold_queries(true);
    for text in [&b"a"[..], b"b", b"c"] {
        pair.ask(text);
    }
    assert_eq!(pair.held().len(), 2);
    assert_eq!(
        pair.responses(),
        [Err(b"busy: too many queries held open".to_vec())]
    );
    assert_eq!(pair.responder.held_stats().busy, 1);
    // Answering one makes room again.
    let token = pair.held()[0].0;
    pair.responder.answer(pair.now, token, b"ok", None).unwrap();
    pair.ask(b"d");
    assert_eq!(pair.held().len(), 3);
}

#[test]
fn with_holding_off_the_policy_answers_on_the_spot() {
    let mut pair = Pair::<4>::joined(14);
    pair.responder.hold_queries(true);
    pair.responder.hold_queries(false);
    pair.ask(b"x");
    assert!(pair.held().is_empty());
    assert_eq!(pair.responses(), [Ok(Vec::new())]);
}

#[test]
fn a_node_without_room_cannot_hold_queries() {
    let mut pair = Pair::<0>::joined(15);
    // (A `NoHeld` node has no room either: see the unit tests.)
    assert!(!pair.responder.hold_queries(true));
    assert!(pair.responder.hold_queries(false));
    pair.ask(b"x");
    assert!(pair.held().is_empty());
    assert_eq!(pair.responses(), [Ok(Vec::new())]);
}

#[test]
fn leaving_forgets_held_queries() {
    let mut pair = Pair::<4>::joined(16);
    pair.responder.hold_queries(true);
    pair.ask(b"x");
    let token = pair.held()[0].0;
    pair.responder.leave(pair.now);
    assert_eq!(pair.responder.held(), 0);
    assert_eq!(
        pair.responder.answer(pair.now, token, b"x", None),
        Err(AnswerError::Unknown)
    );
}

#[cfg(feature = "loss-recovery")]
#[test]
fn retransmitted_copies_of_a_held_query_reach_the_application_once() {
    // lan_fast retransmits a query every 250 ms to the targets that have not answered; an
    // application that takes 900 ms must still see it once.
    let mut pair = Pair::<4>::joined(21);
    assert!(pair.responder.hold_queries(true));
    pair.ask(b"slow?");
    pair.later(900);
    let held = pair.held();
    assert_eq!(held.len(), 1, "copies are not held again: {held:?}");
    let copies = pair.responder.stats().copies_dropped;
    assert!(
        copies >= 3,
        "the asker retransmitted (250, 500, 750 ms): {copies}"
    );
    pair.responder
        .answer(pair.now, held[0].0, b"done", None)
        .unwrap();
    pair.pump();
    pair.later(500);
    assert_eq!(pair.responses(), [Ok(b"done".to_vec())]);
    assert_eq!(pair.held().len(), 1, "nothing held after the answer");
    assert_eq!(pair.responder.held_stats().answered, 1);
}
