//! Typed messages through the handles, over real sockets on loopback: a typed query and its
//! typed answers, an answer that does not decode (a typed error for that answer only), a
//! held typed query, and an event stream of one type.

use crate::common::{Runtime, discovered, discovered_all, fresh_port, options, within};
use cluster_core::wire::Message;
use cluster_core::{Policy, Refusal, Reply, Service};
use cluster_host::prelude::{
    Answer, Handle, Selector, SendSpec, Typed, TypedAnswer, TypedError, TypedQueryEvent,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Ping {
    n: u32,
    note: String,
}

impl Typed for Ping {
    const KIND: &'static str = "ping";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Pong {
    n: u64,
    from: String,
}

impl Typed for Pong {
    const KIND: &'static str = "pong";
}

fn doubler(name: &'static str) -> impl Policy + Send + 'static {
    TypedAnswer::new(move |ping: Ping| {
        Ok::<_, String>(Pong {
            n: u64::from(ping.n) * 2,
            from: format!("{name}: {}", ping.note),
        })
    })
}

/// Claims to answer a `Pong`, with bytes that are not one.
struct Garbled;

impl Policy for Garbled {
    fn answer_query(
        &mut self,
        _: &Service,
        _: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        reply.set_data(Pong::KIND.as_bytes()).unwrap();
        reply.set_raw(&[0xff, 0xff, 0xff]).unwrap();
        Ok(())
    }
}

async fn leave_all(nodes: impl IntoIterator<Item = Handle>) {
    for node in nodes {
        node.leave().await.unwrap();
    }
}

pub async fn a_typed_query_round_trips_through_a_typed_answer_policy(rt: impl Runtime) {
    let port = fresh_port();
    let server = rt.join_with(options(port), doubler("a")).await;
    let client = rt.join(options(port)).await;
    discovered(&mut client.events(), server.sid()).await;
    let ping = Ping {
        n: 21,
        note: "hi".into(),
    };
    let stream = client
        .query_typed::<Ping, Pong>(Selector::service(server.sid()), &ping)
        .await
        .unwrap();
    let outcome = within("the typed answer", stream.collect()).await;
    assert_eq!(
        outcome.answers,
        [(
            server.sid(),
            Pong {
                n: 42,
                from: "a: hi".into()
            }
        )]
    );
    assert!(outcome.errors.is_empty());
    assert_eq!(outcome.summary.answered, 1);
    leave_all([client, server]).await;
}

pub async fn a_bad_typed_answer_is_an_error_and_the_other_answers_still_arrive(rt: impl Runtime) {
    let port = fresh_port();
    let good = rt.join_with(options(port), doubler("good")).await;
    let garbled = rt.join_with(options(port), Garbled).await;
    let text = rt.join_with(options(port), Answer::new("plain text")).await;
    let client = rt.join(options(port)).await;
    discovered_all(
        &mut client.events(),
        &[good.sid(), garbled.sid(), text.sid()],
    )
    .await;
    let ping = Ping {
        n: 1,
        note: "x".into(),
    };
    let mut stream = client
        .query_typed::<Ping, Pong>(Selector::all(), &ping)
        .await
        .unwrap();
    let mut answers = Vec::new();
    while let Some(event) = within("the typed answers", stream.next()).await {
        if let TypedQueryEvent::Answer { sid, value } = event {
            answers.push((sid, value));
        }
    }
    let of = |h: &Handle| {
        answers
            .iter()
            .find(|(s, _)| *s == h.sid())
            .unwrap()
            .1
            .clone()
    };
    assert_eq!(
        of(&good),
        Ok(Pong {
            n: 2,
            from: "good: x".into()
        })
    );
    assert_eq!(of(&garbled), Err(TypedError::Decode { kind: "pong" }));
    assert_eq!(
        of(&text),
        Err(TypedError::OtherKind {
            expected: "pong",
            found: Some("plain text".into())
        })
    );
    leave_all([client, good, garbled, text]).await;
}

pub async fn a_held_typed_query_is_answered_later(rt: impl Runtime) {
    let port = fresh_port();
    let server = rt.join(options(port)).await;
    let mut incoming = server.incoming_queries().await.unwrap();
    let client = rt.join(options(port)).await;
    discovered(&mut client.events(), server.sid()).await;
    let ping = Ping {
        n: 5,
        note: "later".into(),
    };
    let stream = client
        .query_typed::<Ping, Pong>(Selector::service(server.sid()), &ping)
        .await
        .unwrap();
    let query = within("the held query", incoming.next()).await.unwrap();
    let request: Ping = query.typed().unwrap();
    assert_eq!(request, ping);
    rt.spawn(async move {
        let pong = Pong {
            n: u64::from(request.n) + 1,
            from: request.note,
        };
        query.responder.answer_typed(&pong).await.unwrap();
    });
    let outcome = within("the typed answer", stream.collect()).await;
    assert_eq!(
        outcome.answers,
        [(
            server.sid(),
            Pong {
                n: 6,
                from: "later".into()
            }
        )]
    );
    leave_all([client, server]).await;
}

pub async fn typed_events_carry_only_their_type(rt: impl Runtime) {
    let port = fresh_port();
    let listener = rt.join(options(port).tag("sink").unwrap()).await;
    let mut pings = listener.typed_events::<Ping>();
    let sender = rt.join(options(port)).await;
    discovered(&mut sender.events(), listener.sid()).await;
    let sink = || Selector::resolve(["sink"]);
    sender
        .send(SendSpec::new(sink(), "not typed"))
        .await
        .unwrap();
    let ping = Ping {
        n: 9,
        note: "typed".into(),
    };
    sender.send_typed(sink(), &ping).await.unwrap();
    let mut bad = SendSpec::new(sink(), Ping::KIND);
    bad.raw = Some(vec![0x80]);
    sender.send(bad).await.unwrap();
    let first = within("the typed event", pings.next()).await.unwrap();
    let message = first.unwrap();
    assert_eq!((message.sid, message.value), (sender.sid(), ping));
    let second = within("the bad typed event", pings.next()).await.unwrap();
    assert_eq!(
        second.unwrap_err(),
        (sender.sid(), TypedError::Decode { kind: "ping" })
    );
    leave_all([sender, listener]).await;
}
