//! [`Handle`]: how the application's tasks talk to the node; [`Events`] and [`QueryStream`].

use cluster_core::{
    DefaultPolicy, HeldRoom, Hid, NoHeld, Node, Policy, QueryEvent, QueryId, QueryRequest,
    SendRequest, Service, Sid, Stats as NodeStats, TagList, TagOp,
};
use embassy_futures::select::{Either, select};
use embassy_sync::blocking_mutex::raw::{CriticalSectionRawMutex, RawMutex};
use embassy_sync::mutex::MutexGuard;
use embassy_sync::pubsub::{DynSubscriber, WaitResult};
use embassy_time::{Duration, Instant as EmbassyInstant, Timer};

use crate::error::CommandError;
use crate::event::Event;
use crate::state::{Inner, State, Stats};
use crate::time::{embassy_instant, now};

/// How long after its timeout a [`QueryStream`] waits for the query's end before it gives up
/// (the end, [`QueryEvent::Done`], was lost: the stream fell behind the answers channel).
const QUERY_GRACE: Duration = Duration::from_secs(1);

/// A handle on a running node, for any task: commands, snapshots, event subscriptions and
/// query streams. It is `Copy` (a reference to the [`State`] and the node's identity).
///
/// Each command takes the node's lock (waiting while the runner is in a pass), makes one
/// call on the node and wakes the runner, which sends the frames the node now owes. After
/// [`leave`](Self::leave) every command fails with [`CommandError::Left`].
pub struct Handle<
    'd,
    M: RawMutex = CriticalSectionRawMutex,
    P: Policy = DefaultPolicy,
    const SERVICES: usize = 32,
    const DATA: usize = 512,
    const EVENTS: usize = 4,
    const SUBSCRIBERS: usize = 2,
    const ANSWERS: usize = 4,
    const QUERIES: usize = 1,
    H: HeldRoom = NoHeld,
> {
    pub(crate) state: &'d State<M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>,
    sid: Sid,
    hid: Hid,
}

impl<
    M: RawMutex,
    P: Policy,
    const SERVICES: usize,
    const DATA: usize,
    const EVENTS: usize,
    const SUBSCRIBERS: usize,
    const ANSWERS: usize,
    const QUERIES: usize,
    H: HeldRoom,
> Clone for Handle<'_, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
    fn clone(&self) -> Self {
        *self
    }
}

impl<
    M: RawMutex,
    P: Policy,
    const SERVICES: usize,
    const DATA: usize,
    const EVENTS: usize,
    const SUBSCRIBERS: usize,
    const ANSWERS: usize,
    const QUERIES: usize,
    H: HeldRoom,
> Copy for Handle<'_, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
}

impl<
    M: RawMutex,
    P: Policy,
    const SERVICES: usize,
    const DATA: usize,
    const EVENTS: usize,
    const SUBSCRIBERS: usize,
    const ANSWERS: usize,
    const QUERIES: usize,
    H: HeldRoom,
> core::fmt::Debug for Handle<'_, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Handle")
            .field("sid", &self.sid)
            .field("hid", &self.hid)
            .finish_non_exhaustive()
    }
}

impl<
    'd,
    M: RawMutex,
    P: Policy,
    const SERVICES: usize,
    const DATA: usize,
    const EVENTS: usize,
    const SUBSCRIBERS: usize,
    const ANSWERS: usize,
    const QUERIES: usize,
    H: HeldRoom,
> Handle<'d, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
    /// The handle of a started node (its sid and hid are read once).
    pub(crate) fn new(
        state: &'d State<M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>,
    ) -> Self {
        // Not locked by anyone yet: `new` just started the node.
        let (sid, hid) = state.inner.try_lock().map_or_else(
            |_| (Sid::EMPTY, Hid::EMPTY),
            |inner| (*inner.node.sid(), *inner.node.hid()),
        );
        Self { state, sid, hid }
    }

    /// This node's sid (new at every join).
    #[must_use]
    pub fn sid(&self) -> Sid {
        self.sid
    }

    /// This node's hid: the stack's MAC address.
    #[must_use]
    pub fn hid(&self) -> Hid {
        self.hid
    }

    /// A subscription to the node's [`Event`]s from now on. Subscribe before spawning the
    /// runner to see every event since the join.
    ///
    /// # Errors
    ///
    /// [`CommandError::NoSubscriber`] when `SUBSCRIBERS` subscriptions exist already.
    pub fn events(&self) -> Result<Events<'d, DATA>, CommandError> {
        let subscriber = self
            .state
            .events
            .dyn_subscriber()
            .map_err(|_| CommandError::NoSubscriber)?;
        Ok(Events {
            subscriber,
            lagged: 0,
        })
    }

    /// The node, locked, unless it left.
    pub(crate) async fn node(
        &self,
    ) -> Result<MutexGuard<'d, M, Inner<P, SERVICES, DATA, H>>, CommandError> {
        let inner = self.state.inner.lock().await;
        if inner.node.has_left() {
            return Err(CommandError::Left);
        }
        Ok(inner)
    }

    /// Wakes the runner: the node may owe frames.
    pub(crate) fn wake(&self) {
        self.state.wake.signal(());
    }

    /// Sends an event (type 6), as [`Node::send`]: to the services `request` selects, by
    /// multicast (this node runs `c` only; a peer that cannot be reached directly gets it
    /// through a filtered multicast frame). The frames leave at the runner's next pass.
    ///
    /// # Errors
    ///
    /// [`CommandError::Send`]; nothing was queued. [`CommandError::Left`].
    pub async fn send(&self, request: &SendRequest<'_>) -> Result<(), CommandError> {
        let result = self.node().await?.node.send(now(), request);
        self.wake();
        Ok(result?)
    }

    /// Starts a query, as [`Node::query`], and returns the stream of its answers: each
    /// response or error as it arrives, then at its timeout (`request.timeout`, or the
    /// configuration's `query_timeout`) a `Missing` for each target that did not answer,
    /// and last [`QueryEvent::Done`].
    ///
    /// # Errors
    ///
    /// [`CommandError::NoSubscriber`] when `QUERIES` streams exist already;
    /// [`CommandError::Query`], no query was created; [`CommandError::Left`].
    pub async fn query(
        &self,
        request: &QueryRequest<'_>,
    ) -> Result<QueryStream<'d, DATA>, CommandError> {
        // Subscribed before the query exists, so that no answer can come first.
        let subscriber = self
            .state
            .answers
            .dyn_subscriber()
            .map_err(|_| CommandError::NoSubscriber)?;
        let mut inner = self.node().await?;
        let at = now();
        let timeout = request.timeout.unwrap_or(inner.node.config().query_timeout);
        let id = inner.node.query(at, request);
        drop(inner);
        self.wake();
        let id = id?;
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let give_up = embassy_instant(at)
            .saturating_add(Duration::from_millis(millis))
            .saturating_add(QUERY_GRACE);
        Ok(QueryStream {
            subscriber,
            id,
            give_up,
            done: None,
            dropped: 0,
        })
    }

    /// Ends a query early, as [`Node::cancel_query`]: its stream gets `Missing` for each
    /// target that did not answer, then `Done`. Returns false when no live query has this
    /// id.
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    pub async fn cancel_query(&self, id: &str) -> Result<bool, CommandError> {
        let found = self.node().await?.node.cancel_query(now(), id);
        self.wake();
        Ok(found)
    }

    /// Edits this node's tags, as [`Node::update_tags`]; a full heartbeat follows. Returns
    /// whether they changed.
    ///
    /// # Errors
    ///
    /// [`CommandError::Tags`]; the tags are unchanged. [`CommandError::Left`].
    pub async fn update_tags(&self, ops: &[TagOp<'_>]) -> Result<bool, CommandError> {
        let result = self.node().await?.node.update_tags(now(), ops);
        self.wake();
        Ok(result?)
    }

    /// This node's tags.
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    pub async fn tags(&self) -> Result<TagList, CommandError> {
        Ok(self.node().await?.node.tags().clone())
    }

    /// Broadcasts a discovery unless one went out recently, as [`Node::discover`]. Returns
    /// whether one was queued.
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    pub async fn discover(&self) -> Result<bool, CommandError> {
        let queued = self.node().await?.node.discover(now());
        self.wake();
        Ok(queued)
    }

    /// Sends a full heartbeat now.
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    pub async fn heartbeat(&self) -> Result<(), CommandError> {
        self.node().await?.node.heartbeat(now());
        self.wake();
        Ok(())
    }

    /// Subscribes the node to an event channel, as [`Node::subscribe`]. Returns false when
    /// the channel table is full.
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    pub async fn subscribe(&self, channel: u64) -> Result<bool, CommandError> {
        Ok(self.node().await?.node.subscribe(channel))
    }

    /// A snapshot of a known service.
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    pub async fn service(&self, sid: &[u8]) -> Result<Option<Service>, CommandError> {
        Ok(self.node().await?.node.service(sid).cloned())
    }

    /// Reads the node under its lock, for what the handle does not copy out (the services in
    /// table order, the resolver, ...): `f` runs while the runner waits, so keep it short.
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    pub async fn with_node<R>(
        &self,
        f: impl FnOnce(&Node<P, SERVICES, DATA, H>) -> R,
    ) -> Result<R, CommandError> {
        Ok(f(&self.node().await?.node))
    }

    /// The node's counters and the adapter's.
    pub async fn stats(&self) -> (NodeStats, Stats) {
        let inner = self.state.inner.lock().await;
        (inner.node.stats(), inner.stats)
    }

    /// Seals every frame from now on with the send key of `keys`, and accepts only frames
    /// sealed with one of its keys, as [`Node::set_keys`]; `None` turns sealing off (feature
    /// `seal`). To seal the join frames too, set the keys on the node before
    /// [`new`](crate::new) ([`State::node_mut`]). Called later, it rotates the keys at once.
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    #[cfg(feature = "seal")]
    #[cfg_attr(docsrs, doc(cfg(feature = "seal")))]
    pub async fn set_keys(&self, keys: Option<cluster_core::KeyRing>) -> Result<(), CommandError> {
        self.node().await?.node.set_keys(keys);
        self.wake();
        Ok(())
    }

    /// Leaves the cluster, as [`Node::leave`]: every known service is reported
    /// [`Lost`](Event::Lost) with reason `Left`, the runner sends the disconnect (type 0),
    /// leaves the multicast group and returns. Later commands fail with
    /// [`CommandError::Left`]; leaving twice does nothing.
    pub async fn leave(&self) {
        let mut inner = self.state.inner.lock().await;
        if !inner.node.has_left() {
            inner.node.leave(now());
        }
        drop(inner);
        self.wake();
    }

    /// True after [`leave`](Self::leave).
    pub async fn has_left(&self) -> bool {
        self.state.inner.lock().await.node.has_left()
    }
}

/// A subscription to a node's [`Event`]s ([`Handle::events`]). Dropping it frees its slot.
pub struct Events<'d, const DATA: usize> {
    subscriber: DynSubscriber<'d, Event<DATA>>,
    lagged: u64,
}

impl<const DATA: usize> core::fmt::Debug for Events<'_, DATA> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Events")
            .field("lagged", &self.lagged)
            .finish_non_exhaustive()
    }
}

impl<const DATA: usize> Events<'_, DATA> {
    /// The next event, waiting for it. A subscription that fell more than `EVENTS` events
    /// behind gets [`Event::Dropped`] with the number it missed first.
    ///
    /// Unlike the host adapters' `Events::next`, it never ends: after the node left, the last
    /// events are the [`Lost`](Event::Lost) ones with reason `Left`, and then it waits
    /// forever (select it against the runner's end, or [`Handle::has_left`]).
    pub async fn next(&mut self) -> Event<DATA> {
        match self.subscriber.next_message().await {
            WaitResult::Message(event) => event,
            WaitResult::Lagged(count) => self.dropped(count),
        }
    }

    /// An event already waiting, without waiting.
    pub fn try_next(&mut self) -> Option<Event<DATA>> {
        match self.subscriber.try_next_message()? {
            WaitResult::Message(event) => Some(event),
            WaitResult::Lagged(count) => Some(self.dropped(count)),
        }
    }

    /// Events this subscription missed because it fell behind.
    #[must_use]
    pub fn lagged(&self) -> u64 {
        self.lagged
    }

    fn dropped(&mut self, count: u64) -> Event<DATA> {
        self.lagged = self.lagged.saturating_add(count);
        Event::Dropped { count }
    }
}

/// The answers to one query ([`Handle::query`]), as they come: [`next`](Self::next) yields
/// each [`QueryEvent`] and ends after [`QueryEvent::Done`].
///
/// Streams share one answers channel of depth `ANSWERS`: a stream that falls further behind
/// loses the oldest answers, and counts them in [`dropped`](Self::dropped). Should it lose
/// the `Done` itself, it ends one second after the query's timeout. Dropping the stream
/// does not cancel the query ([`Handle::cancel_query`] does).
pub struct QueryStream<'d, const DATA: usize> {
    subscriber: DynSubscriber<'d, QueryEvent<DATA>>,
    id: QueryId,
    give_up: EmbassyInstant,
    done: Option<QueryEvent<DATA>>,
    dropped: u64,
}

impl<const DATA: usize> core::fmt::Debug for QueryStream<'_, DATA> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("QueryStream")
            .field("id", &self.id)
            .field("done", &self.done.is_some())
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// The query a piece of news is about.
fn query_id<const DATA: usize>(event: &QueryEvent<DATA>) -> &QueryId {
    match event {
        QueryEvent::Response { id, .. }
        | QueryEvent::Error { id, .. }
        | QueryEvent::Missing { id, .. }
        | QueryEvent::Done { id, .. } => id,
    }
}

impl<const DATA: usize> QueryStream<'_, DATA> {
    /// The query id (the `ruid` the targets echo).
    #[must_use]
    pub fn id(&self) -> &str {
        self.id.as_str().unwrap_or_default()
    }

    /// The query's end ([`QueryEvent::Done`]), once [`next`](Self::next) yielded it.
    #[must_use]
    pub fn done(&self) -> Option<&QueryEvent<DATA>> {
        self.done.as_ref()
    }

    /// Answers of this query the stream missed because it fell behind the answers channel
    /// (a lower bound: the channel's lag counts every query's news).
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The next news of the query, waiting for it; `None` after [`QueryEvent::Done`] (or,
    /// when the `Done` was lost, a second after the query's timeout).
    pub async fn next(&mut self) -> Option<QueryEvent<DATA>> {
        if self.done.is_some() {
            return None;
        }
        loop {
            let news = match select(self.subscriber.next_message(), Timer::at(self.give_up)).await {
                Either::First(WaitResult::Message(news)) => news,
                Either::First(WaitResult::Lagged(count)) => {
                    self.dropped = self.dropped.saturating_add(count);
                    continue;
                }
                Either::Second(()) => return None,
            };
            if query_id(&news) != &self.id {
                continue;
            }
            if matches!(news, QueryEvent::Done { .. }) {
                self.done = Some(news.clone());
            }
            return Some(news);
        }
    }
}
