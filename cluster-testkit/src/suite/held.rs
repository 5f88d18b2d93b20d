//! Queries held open and answered later: [`Handle::incoming_queries`] and its responders,
//! over real sockets on loopback.

use crate::common::{Runtime, discovered, fresh_port, options, within};
use cluster_host::prelude::{Answer, Handle, IncomingQueries, QueryEvent, QuerySpec, Selector};

/// `asker` queries `target` with `text` and returns the first answer (or refusal).
async fn ask(asker: &Handle, target: &Handle, text: &str) -> QueryEvent {
    let mut stream = asker
        .query(QuerySpec::new(Selector::service(target.sid()), text))
        .await
        .unwrap();
    let first = within("the answer", stream.next()).await.unwrap();
    let done = within("the end of the query", stream.next()).await;
    assert!(matches!(done, Some(QueryEvent::Done(s)) if s.answered == 1));
    first
}

/// A server whose queries are held (read from its incoming stream) and a client that has
/// discovered it; the client asks `text` from a task of its own, whose answer comes through
/// the returned channel.
async fn held_query(
    rt: impl Runtime,
    text: &'static str,
) -> (
    Handle,
    IncomingQueries,
    Handle,
    async_channel::Receiver<QueryEvent>,
) {
    let port = fresh_port();
    let server = rt.join(options(port)).await;
    let incoming = server.incoming_queries().await.unwrap();
    let client = rt.join(options(port)).await;
    discovered(&mut client.events(), server.sid()).await;
    let asking = {
        let (client, server) = (client.clone(), server.clone());
        async move { ask(&client, &server, text).await }
    };
    let (answer_tx, answer_rx) = async_channel::bounded(1);
    rt.spawn(async move {
        let _ = answer_tx.send(asking.await).await;
    });
    (server, incoming, client, answer_rx)
}

pub async fn a_held_query_is_answered_later_from_another_task(rt: impl Runtime) {
    let (server, mut incoming, client, answer_rx) = held_query(rt, "slow?").await;
    let query = within("the held query", incoming.next()).await.unwrap();
    assert_eq!(query.sid, client.sid());
    assert_eq!(query.text(), "slow?");
    // Nothing answered it on the spot: the asker is still waiting.
    assert!(answer_rx.try_recv().is_err());
    // Answered from another task, after awaiting the node in between.
    let worker = server.clone();
    rt.spawn(async move {
        let known = worker.services().await.unwrap().len();
        let text = format!("done later, {known} known: {}", query.text());
        query.responder.answer(text).await.unwrap();
    });
    let answer = within("the answer", answer_rx.recv()).await.unwrap();
    assert_eq!(
        answer,
        QueryEvent::Response {
            sid: server.sid(),
            payload: cluster_host::Payload::text("done later, 1 known: slow?"),
        }
    );
    let stats = server.held_stats().await.unwrap();
    assert_eq!((stats.held, stats.answered, stats.dropped), (1, 1, 0));
    client.leave().await.unwrap();
    server.leave().await.unwrap();
}

pub async fn a_dropped_responder_answers_with_an_error_and_is_counted(rt: impl Runtime) {
    let (server, mut incoming, client, answer_rx) = held_query(rt, "anyone?").await;
    let query = within("the held query", incoming.next()).await.unwrap();
    drop(query);
    let answer = within("the error", answer_rx.recv()).await.unwrap();
    assert_eq!(
        answer,
        QueryEvent::Error {
            sid: server.sid(),
            error: "query dropped unanswered".into(),
        }
    );
    let stats = server.held_stats().await.unwrap();
    assert_eq!((stats.held, stats.dropped, stats.answered), (1, 1, 0));
    client.leave().await.unwrap();
    server.leave().await.unwrap();
}

pub async fn queries_go_back_to_the_policy_once_the_stream_is_dropped(rt: impl Runtime) {
    let port = fresh_port();
    let server = rt
        .join_with(options(port), Answer::new("on the spot"))
        .await;
    let incoming = server.incoming_queries().await.unwrap();
    let client = rt.join(options(port)).await;
    discovered(&mut client.events(), server.sid()).await;
    drop(incoming);
    // The first query after the drop finds no reader: it is let go with an error.
    assert_eq!(
        ask(&client, &server, "one").await,
        QueryEvent::Error {
            sid: server.sid(),
            error: "query dropped unanswered".into(),
        }
    );
    // The policy answers again.
    assert_eq!(
        ask(&client, &server, "two").await,
        QueryEvent::Response {
            sid: server.sid(),
            payload: cluster_host::Payload::text("on the spot"),
        }
    );
    client.leave().await.unwrap();
    server.leave().await.unwrap();
}
