//! Events, queries, channels, tags and protocol failover on the simulator.
#![cfg(feature = "sim")]

use std::time::Duration;

use cluster_core::sim::{self, Cluster, ClusterBuilder, ExpectSeed, Trace};
use cluster_core::wire::MessageKind;
use cluster_core::{
    Config, Destination, Event, QueryEvent, QueryRequest, Resolver, SendRequest, TagOp, Targets,
};

fn messages_at(c: &Cluster, node: usize, channel: u64) -> usize {
    c.events(node)
        .iter()
        .filter(|e| matches!(&e.event, Event::Message { channel: ch, .. } if *ch == channel))
        .count()
}

#[test]
fn a_query_to_everyone_collects_one_reply_from_each_node() {
    for seed in sim::seeds(0..16) {
        let mut c = Cluster::new(seed, 6, Config::lan_fast());
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        let now = c.now();
        let everyone = Resolver::resolve(&[]);
        let id = c
            .node_mut(0)
            .query(
                now,
                &QueryRequest::new(Targets::resolve(&everyone), b"status"),
            )
            .expect_seed(seed);
        let done = c
            .run_until(
                |c| {
                    c.first_event_time(0, |e| matches!(e, Event::Query(QueryEvent::Done { .. })))
                        .is_some()
                },
                100_000,
            )
            .expect_seed(seed);
        assert!(
            done.as_millis() - now.as_millis() <= 20,
            "seed {seed}: {done:?}"
        );
        let mut answered = Vec::new();
        for e in c.events(0) {
            match &e.event {
                Event::Query(QueryEvent::Response { id: q, sid, .. }) if *q == id => {
                    answered.push(*sid)
                }
                Event::Query(QueryEvent::Done {
                    answered: a,
                    missing,
                    timed_out,
                    ..
                }) => {
                    assert_eq!((*a, *missing, *timed_out), (5, 0, false), "seed {seed}");
                }
                _ => {}
            }
        }
        answered.sort_by_key(|s| s.as_bytes().to_vec());
        answered.dedup();
        assert_eq!(answered.len(), 5, "seed {seed}");
        for i in 1..6 {
            let received = c
                .events(i)
                .iter()
                .filter(|e| matches!(e.event, Event::QueryReceived { .. }))
                .count();
            assert_eq!(received, 1, "seed {seed}: node {i}");
        }
    }
}

#[test]
fn a_query_with_a_crashed_responder_reports_it_missing() {
    for seed in sim::seeds(0..16) {
        let mut c = Cluster::new(seed, 4, Config::lan_fast());
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        c.run_for(Duration::from_millis(100));
        let crashed = c.sid(3).unwrap();
        c.crash(3);
        let now = c.now();
        let everyone = Resolver::resolve(&[]);
        c.node_mut(0)
            .query(
                now,
                &QueryRequest::new(Targets::resolve(&everyone), b"status"),
            )
            .expect_seed(seed);
        c.run_until(
            |c| {
                c.first_event_time(0, |e| matches!(e, Event::Query(QueryEvent::Done { .. })))
                    .is_some()
            },
            100_000,
        )
        .expect_seed(seed);
        let events: Vec<_> = c.events(0).iter().map(|e| e.event.clone()).collect();
        assert!(
            events.iter().any(
                |e| matches!(e, Event::Query(QueryEvent::Missing { sid, .. }) if *sid == crashed)
            ),
            "seed {seed}: {events:?}"
        );
        let responses = events
            .iter()
            .filter(|e| matches!(e, Event::Query(QueryEvent::Response { .. })))
            .count();
        assert_eq!(responses, 2, "seed {seed}");
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Query(QueryEvent::Done {
                    answered: 2,
                    missing: 1,
                    ..
                })
            )),
            "seed {seed}: {events:?}"
        );
    }
}

#[test]
fn events_reach_only_the_nodes_subscribed_to_their_channel() {
    for seed in sim::seeds(0..16) {
        let mut b = ClusterBuilder::new(seed);
        let host = b.host();
        let plain = Config::lan_fast();
        let mut subscribed = Config::lan_fast();
        subscribed.add_channel(7).unwrap();
        b.node(host, plain.clone());
        b.node(host, subscribed);
        b.node(host, plain);
        let mut c: Cluster = b.build();
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        let now = c.now();
        // Once as a broadcast to everyone, once directly to each.
        let broadcast = SendRequest {
            broadcast: Some(true),
            channel: 7,
            ..SendRequest::new(Targets::none(), b"b")
        };
        c.node_mut(0).send(now, &broadcast).expect_seed(seed);
        let everyone = Resolver::resolve(&[]);
        let direct = SendRequest {
            broadcast: Some(false),
            channel: 7,
            ..SendRequest::new(Targets::resolve(&everyone), b"d")
        };
        c.node_mut(0).send(now, &direct).expect_seed(seed);
        c.run_for(Duration::from_millis(50));
        assert_eq!(messages_at(&c, 1, 7), 2, "seed {seed}");
        assert_eq!(messages_at(&c, 2, 7), 0, "seed {seed}");
        let refused = c
            .datagram_errors(2)
            .iter()
            .find(|(e, _)| *e == cluster_core::DatagramError::NotSubscribed(7))
            .map(|(_, n)| *n);
        assert_eq!(refused, Some(2), "seed {seed}");
        // The unsubscribed node is still a healthy member.
        assert!(c.all_know_each_other(), "seed {seed}");
    }
}

#[test]
fn tag_changes_are_seen_by_every_node() {
    for seed in sim::seeds(0..16) {
        let mut c = Cluster::new(seed, 5, Config::lan_fast());
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        let sid = c.sid(2).unwrap();
        let now = c.now();
        let changed = c
            .node_mut(2)
            .update_tags(now, &[TagOp::Append("web")])
            .expect_seed(seed);
        assert!(changed, "seed {seed}");
        let seen = c
            .run_until(
                |c| {
                    (0..5).filter(|&a| a != 2).all(|a| {
                        c.node(a)
                            .and_then(|n| n.service(sid.as_bytes()))
                            .is_some_and(|s| s.tags().iter().any(|t| t == "web"))
                    })
                },
                100_000,
            )
            .expect_seed(seed);
        assert!(
            seen.as_millis() - now.as_millis() <= 5,
            "seed {seed}: {seen:?}"
        );
        for a in (0..5).filter(|&a| a != 2) {
            let changed = c.first_event_after(
                a,
                now,
                |e| matches!(e, Event::TagsChanged { sid: s } if *s == sid),
            );
            assert!(changed.is_some(), "seed {seed}: node {a}");
            let web = Resolver::resolve(&["web"]);
            let found: Vec<_> = c.node(a).unwrap().resolve(&web).map(|s| *s.sid()).collect();
            assert_eq!(found, [sid], "seed {seed}: node {a}");
        }
        // And removed again.
        let now = c.now();
        c.node_mut(2)
            .update_tags(now, &[TagOp::Remove("web")])
            .expect_seed(seed);
        c.run_for(Duration::from_millis(20));
        for a in (0..5).filter(|&a| a != 2) {
            let web = Resolver::resolve(&["web"]);
            assert_eq!(
                c.node(a).unwrap().resolve(&web).count(),
                0,
                "seed {seed}: node {a}"
            );
        }
    }
}

#[test]
fn a_dead_tcp_listener_fails_over_to_multicast_with_a_failed_report_and_is_reopened() {
    for seed in sim::seeds(0..16) {
        let mut b = ClusterBuilder::new(seed);
        let host = b.host();
        b.nodes_on_host(host, 3, &Config::lan_fast());
        b.trace(true);
        let mut c: Cluster = b.build();
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        c.run_for(Duration::from_millis(100));
        let target = c.sid(2).unwrap();
        let old_port = c.net().listener(sim::EndpointId(2));
        c.kill_listener(2);
        c.run_for(Duration::from_millis(10));
        let now = c.now();
        c.node_mut(0)
            .send(
                now,
                &SendRequest::new(Targets::services(&[target]), b"hello"),
            )
            .expect_seed(seed);
        c.run_until(
            |c| {
                let port = c.net().listener(sim::EndpointId(2));
                port.is_some()
                    && port != old_port
                    && c.node(0)
                        .and_then(|n| n.service(target.as_bytes()))
                        .is_some_and(|s| s.tcp_port() == port)
            },
            100_000,
        )
        .expect_seed(seed);
        // The event arrived (by multicast), the target was told its `t` failed.
        assert_eq!(messages_at(&c, 2, 0), 1, "seed {seed}");
        assert!(
            c.first_event_after(2, now, |e| matches!(e, Event::RefreshProtocol { .. }))
                .is_some(),
            "seed {seed}"
        );
        let sent: Vec<&Trace> = c
            .trace()
            .iter()
            .filter(|t| t.at() >= now && matches!(t, Trace::Sent { from, .. } if from.0 == 0))
            .collect();
        let kinds: Vec<_> = sent.iter().map(|t| t.kind()).collect();
        assert_eq!(
            kinds,
            [
                Some(MessageKind::Event),
                Some(MessageKind::Event),
                Some(MessageKind::Failed)
            ],
            "seed {seed}: {sent:?}"
        );
        assert!(
            matches!(
                sent[0],
                Trace::Sent {
                    dst: Destination::Service { .. },
                    ..
                }
            ),
            "seed {seed}"
        );
        for t in &sent[1..] {
            assert!(
                matches!(
                    t,
                    Trace::Sent {
                        dst: Destination::Group { send: Some(_) },
                        ..
                    }
                ),
                "seed {seed}: {t:?}"
            );
            assert!(t.filter_names(target.as_bytes()), "seed {seed}: {t:?}");
        }
        // TCP works again.
        let now = c.now();
        c.node_mut(0)
            .send(
                now,
                &SendRequest::new(Targets::services(&[target]), b"again"),
            )
            .expect_seed(seed);
        c.run_for(Duration::from_millis(20));
        assert_eq!(messages_at(&c, 2, 0), 2, "seed {seed}");
        let last = c
            .trace()
            .iter()
            .rev()
            .find(|t| t.kind() == Some(MessageKind::Event))
            .unwrap();
        assert!(
            matches!(
                last,
                Trace::Sent {
                    dst: Destination::Service { .. },
                    ..
                }
            ),
            "seed {seed}: {last:?}"
        );
    }
}

/// A node that never answers queries (its policy drops them on receive).
#[derive(Debug, Clone, Default)]
struct DropsQueries;

impl cluster_core::Policy for DropsQueries {
    fn on_receive(
        &mut self,
        msg: &cluster_core::wire::Message<'_>,
        _source: &cluster_core::Source,
        _payload: &mut cluster_core::PayloadMut<'_>,
    ) -> cluster_core::Verdict {
        if msg.kind == Some(MessageKind::Query) {
            cluster_core::Verdict::Reject
        } else {
            cluster_core::Verdict::Accept
        }
    }
}

/// Node bug: a query timing out pushes one `Missing` per silent target and then `Done` in one
/// `handle_timeout`; the event queue holds 4 events (`EVENT_QUEUE`), so with 4 or more silent
/// targets `Done` itself is dropped (only `Dropped { count }` is reported) and the
/// application never learns that the query ended.
#[test]
fn a_query_timing_out_on_many_silent_targets_still_reports_done() {
    for seed in sim::seeds(0..4) {
        let mut b = ClusterBuilder::new(seed).policy(DropsQueries);
        let host = b.host();
        b.nodes_on_host(host, 8, &Config::lan_fast());
        let mut c: Cluster<DropsQueries> = b.build();
        c.run_until(|c| c.all_know_each_other(), 100_000)
            .expect_seed(seed);
        let now = c.now();
        let everyone = Resolver::resolve(&[]);
        c.node_mut(0)
            .query(now, &QueryRequest::new(Targets::resolve(&everyone), b"q"))
            .expect_seed(seed);
        c.run_for(Duration::from_secs(3));
        let done = c.first_event_after(0, now, |e| {
            matches!(
                e,
                Event::Query(QueryEvent::Done {
                    missing: 7,
                    timed_out: true,
                    ..
                })
            )
        });
        assert!(done.is_some(), "seed {seed}: {:?}", c.events(0));
    }
}
