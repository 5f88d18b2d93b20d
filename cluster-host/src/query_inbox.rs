//! The way of one query's news from the engine to its [`QueryStream`](crate::QueryStream):
//! [`QuerySink`] (the engine's end) and [`QueryInbox`] (the stream's end) share a queue
//! behind a lock. A query has at most one event per target plus its `Done`, so the queue
//! needs no bound; made per query, it costs one allocation and a second at the first event
//! (tokio's unbounded channel, used before, cost two, cache-line aligned, and its share of
//! the query round trip's profile was larger than a lock taken four times).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use crate::event::QueryEvent;

/// What both ends share.
#[derive(Debug, Default)]
struct Shared {
    events: VecDeque<QueryEvent>,
    /// The stream's task, waiting for an event.
    waker: Option<Waker>,
    /// The engine dropped its end: no event comes any more.
    sink_gone: bool,
    /// The stream was dropped: events have nowhere to go.
    inbox_gone: bool,
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    // Nothing panics while the lock is held; a poisoned lock still holds a sound queue.
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A new query's two ends.
pub(crate) fn inbox() -> (QuerySink, QueryInbox) {
    let shared = Arc::new(Mutex::new(Shared::default()));
    (QuerySink(Arc::clone(&shared)), QueryInbox(shared))
}

/// The engine's end: where it sends the query's events.
#[derive(Debug)]
pub(crate) struct QuerySink(Arc<Mutex<Shared>>);

impl QuerySink {
    /// Queues `event` and wakes the stream; gives it back when the stream was dropped.
    pub(crate) fn send(&self, event: QueryEvent) -> Result<(), QueryEvent> {
        let waker = {
            let mut shared = lock(&self.0);
            if shared.inbox_gone {
                return Err(event);
            }
            shared.events.push_back(event);
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
        Ok(())
    }
}

impl Drop for QuerySink {
    fn drop(&mut self) {
        let waker = {
            let mut shared = lock(&self.0);
            shared.sink_gone = true;
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// The stream's end.
#[derive(Debug)]
pub(crate) struct QueryInbox(Arc<Mutex<Shared>>);

impl QueryInbox {
    /// The next event, or `None` once the queue is empty and the engine dropped its end.
    pub(crate) fn poll_recv(&mut self, cx: &mut Context<'_>) -> Poll<Option<QueryEvent>> {
        let mut shared = lock(&self.0);
        if let Some(event) = shared.events.pop_front() {
            return Poll::Ready(Some(event));
        }
        if shared.sink_gone {
            return Poll::Ready(None);
        }
        match &mut shared.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// [`poll_recv`](Self::poll_recv) as a future.
    pub(crate) async fn recv(&mut self) -> Option<QueryEvent> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }
}

impl Drop for QueryInbox {
    fn drop(&mut self) {
        let mut shared = lock(&self.0);
        shared.inbox_gone = true;
        shared.events.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::QuerySummary;
    use crate::wakeups::CountingTask;

    fn done() -> QueryEvent {
        QueryEvent::Done(QuerySummary {
            answered: 0,
            missing: 1,
            timed_out: true,
        })
    }

    #[test]
    fn events_come_in_order_a_waiting_stream_is_woken_and_the_end_is_none() {
        let (wakes, waker) = CountingTask::waker();
        let cx = &mut Context::from_waker(&waker);
        let (sink, mut inbox) = inbox();
        assert!(inbox.poll_recv(cx).is_pending());
        let sid = cluster_core::Sid::new(b"a").unwrap();
        sink.send(QueryEvent::Missing { sid }).unwrap();
        assert_eq!(wakes.wakes(), 1);
        sink.send(done()).unwrap();
        assert_eq!(
            inbox.poll_recv(cx),
            Poll::Ready(Some(QueryEvent::Missing { sid }))
        );
        assert_eq!(inbox.poll_recv(cx), Poll::Ready(Some(done())));
        assert!(inbox.poll_recv(cx).is_pending());
        drop(sink);
        assert_eq!(wakes.wakes(), 2, "the end wakes the stream");
        assert_eq!(inbox.poll_recv(cx), Poll::Ready(None));
    }

    #[test]
    fn a_dropped_stream_gives_the_event_back() {
        let (sink, inbox) = inbox();
        drop(inbox);
        assert_eq!(sink.send(done()), Err(done()));
    }
}
