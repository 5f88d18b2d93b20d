//! The way of one query's news from the engine to its [`QueryStream`](crate::QueryStream):
//! [`QuerySink`] (the engine's end) and [`QueryInbox`] (the stream's end) share a queue
//! behind a lock. The asking handle makes both and sends the sink with its command; the
//! node's verdict on the query (its id and targets, or an error) comes back the same way,
//! ahead of the events, so starting a query needs no reply channel of its own.
//!
//! A query has at most one event per target plus its `Done`, so the queue needs no bound;
//! made per query, it costs one allocation (tokio's unbounded channel, used before, cost
//! two, cache-line aligned, and its share of the query round trip's profile was larger than
//! a lock taken four times). The first two events queued at once (a one-target query's
//! answer and its `Done`) are kept inline; more wait behind them in a second queue.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};

use cluster_core::{QueryId, Sid};

use crate::error::CommandError;
use crate::event::QueryEvent;

/// The node's verdict on a query a handle asked for: its id and targets, or why none was
/// made.
pub(crate) type Verdict = Result<(QueryId, SidList), CommandError>;

/// A query's targets: one kept inline (a query to one service, the common case, makes no
/// allocation for them), more in a `Vec`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SidList {
    One(Sid),
    Many(Vec<Sid>),
}

impl SidList {
    /// No sid.
    pub(crate) const EMPTY: Self = Self::Many(Vec::new());

    /// Adds `sid` at the end.
    pub(crate) fn push(&mut self, sid: Sid) {
        match self {
            Self::Many(sids) if sids.is_empty() => *self = Self::One(sid),
            Self::Many(sids) => sids.push(sid),
            Self::One(first) => *self = Self::Many(vec![*first, sid]),
        }
    }

    /// The sids, in order.
    pub(crate) fn as_slice(&self) -> &[Sid] {
        match self {
            Self::One(sid) => std::slice::from_ref(sid),
            Self::Many(sids) => sids,
        }
    }
}

impl FromIterator<Sid> for SidList {
    fn from_iter<I: IntoIterator<Item = Sid>>(sids: I) -> Self {
        let mut list = Self::EMPTY;
        for sid in sids {
            list.push(sid);
        }
        list
    }
}

/// Events in order: up to [`INLINE`] in place, the rest behind them on the heap.
#[derive(Debug, Default)]
struct Events {
    inline: [Option<QueryEvent>; INLINE],
    /// Where the oldest inline event is.
    front: usize,
    /// How many inline slots hold events (from `front`, wrapping).
    len: usize,
    /// The events queued while the inline slots were full, or after such events.
    spilled: VecDeque<QueryEvent>,
}

/// Events kept without an allocation: a one-target query's answer and its `Done`.
const INLINE: usize = 2;

impl Events {
    fn push_back(&mut self, event: QueryEvent) {
        if self.spilled.is_empty()
            && self.len < INLINE
            && let Some(slot) = self.inline.get_mut((self.front + self.len) % INLINE)
        {
            *slot = Some(event);
            self.len += 1;
        } else {
            self.spilled.push_back(event);
        }
    }

    fn pop_front(&mut self) -> Option<QueryEvent> {
        if self.len == 0 {
            return self.spilled.pop_front();
        }
        let event = self.inline.get_mut(self.front).and_then(Option::take);
        self.front = (self.front + 1) % INLINE;
        self.len -= 1;
        event
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

/// What both ends share.
#[derive(Debug, Default)]
struct Shared {
    /// The verdict, from the driver until the asking handle takes it.
    verdict: Option<Verdict>,
    events: Events,
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
    /// Hands the node's verdict to the asking handle and wakes it; the query's events, if
    /// any, follow.
    pub(crate) fn start(&self, verdict: Verdict) {
        let waker = {
            let mut shared = lock(&self.0);
            shared.verdict = Some(verdict);
            shared.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

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
    /// The node's verdict, once the driver gave it; [`CommandError::Closed`] when the
    /// driver dropped the query unanswered (the node left).
    pub(crate) fn poll_verdict(&mut self, cx: &mut Context<'_>) -> Poll<Verdict> {
        let mut shared = lock(&self.0);
        if let Some(verdict) = shared.verdict.take() {
            return Poll::Ready(verdict);
        }
        if shared.sink_gone {
            return Poll::Ready(Err(CommandError::Closed));
        }
        match &mut shared.waker {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// [`poll_verdict`](Self::poll_verdict) as a future.
    pub(crate) async fn verdict(&mut self) -> Verdict {
        std::future::poll_fn(|cx| self.poll_verdict(cx)).await
    }

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
        let sid = Sid::new(b"a").unwrap();
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
    fn events_beyond_the_inline_slots_keep_their_order_however_pushes_and_pops_interleave() {
        let missing = |n: u8| QueryEvent::Missing {
            sid: Sid::new(&[b'a' + n]).unwrap(),
        };
        let mut events = Events::default();
        let (mut pushed, mut popped) = (0, 0);
        // Pushes and pops in runs of changing lengths, crossing the inline slots' edge.
        for (pushes, pops) in [(1, 0), (3, 1), (0, 2), (2, 1), (1, 3), (4, 2), (0, 2)] {
            for _ in 0..pushes {
                events.push_back(missing(pushed));
                pushed += 1;
            }
            for _ in 0..pops {
                assert_eq!(events.pop_front(), Some(missing(popped)));
                popped += 1;
            }
        }
        assert_eq!(pushed, popped);
        assert_eq!(events.pop_front(), None);
        events.push_back(missing(0));
        assert!(
            events.spilled.is_empty(),
            "an emptied queue starts inline again"
        );
        assert_eq!(events.pop_front(), Some(missing(0)));
    }

    #[test]
    fn the_verdict_wakes_the_asker_and_comes_before_the_events() {
        let (wakes, waker) = CountingTask::waker();
        let cx = &mut Context::from_waker(&waker);
        let (sink, mut inbox) = inbox();
        assert!(inbox.poll_verdict(cx).is_pending());
        let id = QueryId::new(b"q1").unwrap();
        let sid = Sid::new(b"a").unwrap();
        sink.start(Ok((id, SidList::One(sid))));
        sink.send(done()).unwrap();
        assert_eq!(wakes.wakes(), 1);
        assert_eq!(
            inbox.poll_verdict(cx),
            Poll::Ready(Ok((id, SidList::One(sid))))
        );
        assert_eq!(inbox.poll_recv(cx), Poll::Ready(Some(done())));
    }

    #[test]
    fn a_query_the_driver_dropped_unanswered_is_closed() {
        let cx = &mut Context::from_waker(Waker::noop());
        let (sink, mut inbox) = inbox();
        assert!(inbox.poll_verdict(cx).is_pending());
        drop(sink);
        assert_eq!(
            inbox.poll_verdict(cx),
            Poll::Ready(Err(CommandError::Closed))
        );
    }

    #[test]
    fn a_dropped_stream_gives_the_event_back() {
        let (sink, inbox) = inbox();
        drop(inbox);
        assert_eq!(sink.send(done()), Err(done()));
    }
}
