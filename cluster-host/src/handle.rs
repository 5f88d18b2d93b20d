//! [`Handle`]: how the application talks to the task that owns the node, [`Events`], and
//! [`Driver`], that task as a future. The same on every runtime: the channels (tokio's
//! `sync` module, without its runtime) need no particular executor.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

#[cfg(feature = "seal")]
use cluster_core::KeyRing;
use cluster_core::{HeldStats, Hid, Sid, Stats};

use crate::command::{COMMAND_QUEUE, Command, Reply};
use crate::error::CommandError;
use crate::event::{Event, ServiceInfo};
use crate::held::IncomingQueries;
use crate::json::JoinedInfo;
use crate::query::{QueryStart, QueryStream};
use crate::request::{QuerySpec, Selector, SendSpec, TagEdit};
use crate::transports::TransportStats;
use tokio::sync::{broadcast, mpsc, oneshot};

/// Events kept for a subscriber that does not keep up; beyond that it gets
/// [`Event::Dropped`].
pub const EVENT_BUFFER: usize = 1024;

/// The driver's ends of a new handle's channels: the commands to take (each goes to
/// [`Engine::command`](crate::Engine::command)) and the events' sender.
#[derive(Debug)]
pub struct Front {
    /// The commands of every clone of the handle; closed once all are dropped.
    pub commands: mpsc::Receiver<Command>,
    /// The events' fan-out to every subscription.
    pub events: broadcast::Sender<Event>,
}

/// A handle on the node `sid`, `hid`, and the driver's ends of its channels.
#[must_use]
pub fn front(sid: Sid, hid: Hid, event_buffer: usize) -> (Handle, Front) {
    let (commands_tx, commands) = mpsc::channel(COMMAND_QUEUE);
    // A full buffer drops a slow subscriber's oldest event (it is told); with no subscriber
    // an event has nowhere to go.
    let (events, first) = broadcast::channel(event_buffer.max(1));
    let template = first.resubscribe();
    let handle = Handle {
        commands: commands_tx,
        shared: Arc::new(Shared {
            sid,
            hid,
            first: Mutex::new(Some(first)),
            template,
            lagged: Arc::default(),
        }),
    };
    (handle, Front { commands, events })
}

/// What every clone of a handle shares.
#[derive(Debug)]
struct Shared {
    sid: Sid,
    hid: Hid,
    /// All events since the join, for the first call to [`Handle::events`].
    first: Mutex<Option<broadcast::Receiver<Event>>>,
    /// Never read: the source of later subscriptions.
    template: broadcast::Receiver<Event>,
    /// Events the subscriptions missed (`TransportStats::events_lagged`).
    lagged: Arc<AtomicU64>,
}

/// A cheap-to-clone handle on a running node. Commands go to the task that owns the node
/// over a bounded channel; replies come back on one-shot channels. Its futures run on any
/// executor.
///
/// Dropping the last handle makes the node leave (it sends its disconnect), exactly as
/// [`leave`](Self::leave) does. Event subscriptions and query streams do not keep it alive.
#[derive(Debug, Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

impl Handle {
    /// This node's sid (new at every join).
    #[must_use]
    pub fn sid(&self) -> Sid {
        self.shared.sid
    }

    /// This node's hid.
    #[must_use]
    pub fn hid(&self) -> Hid {
        self.shared.hid
    }

    /// The stream of events. The first call gets every event since the join (up to 1024
    /// unread ones); later calls get the events from then on.
    #[must_use]
    pub fn events(&self) -> Events {
        let first = self
            .shared
            .first
            .lock()
            .ok()
            .and_then(|mut first| first.take());
        Events {
            rx: first.unwrap_or_else(|| self.shared.template.resubscribe()),
            lagged: Arc::clone(&self.shared.lagged),
        }
    }

    async fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, CommandError> {
        let (tx, rx): (Reply<T>, _) = oneshot::channel();
        self.command(make(tx)).await?;
        rx.await.map_err(|_| CommandError::Closed)
    }

    /// Queues `command` for the driver: without waiting when the queue has room (the common
    /// case), else in turn.
    async fn command(&self, command: Command) -> Result<(), CommandError> {
        match self.commands.try_send(command) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(command)) => self
                .commands
                .send(command)
                .await
                .map_err(|_| CommandError::Closed),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(CommandError::Closed),
        }
    }

    /// A snapshot of the known services, in the order first heard from.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`] when the node is no longer running.
    pub async fn services(&self) -> Result<Vec<ServiceInfo>, CommandError> {
        self.ask(Command::Services).await
    }

    /// The sids of the known services `selector` selects, in table order.
    ///
    /// # Errors
    ///
    /// [`CommandError::Resolve`] for invalid resolver arguments; [`CommandError::Closed`].
    pub async fn resolve(&self, selector: Selector) -> Result<Vec<Sid>, CommandError> {
        self.ask(|r| Command::Resolve(selector, r)).await?
    }

    /// Sends an event (type 6) to the selected services (spec 5.13).
    ///
    /// Returns once the node has queued it; each direct send then fails over on its own
    /// (`t`, then `c` with a filter, then the ping logic).
    ///
    /// # Errors
    ///
    /// [`CommandError::Send`] (for example no service matched) or
    /// [`CommandError::Resolve`]; [`CommandError::Closed`].
    pub async fn send(&self, spec: SendSpec) -> Result<(), CommandError> {
        self.ask(|r| Command::Send(spec, r)).await?
    }

    /// Sends an event (type 6) to the selected services without waiting for the node's
    /// verdict: returns once the send is in the handle's command queue, which the node
    /// takes in order with the other commands (a later [`flush`](Self::flush) or
    /// [`send`](Self::send) comes after it). When [`COMMAND_QUEUE`] commands are already
    /// waiting it waits for room (backpressure), so a caller that sends faster than the
    /// node can never grows the queue.
    ///
    /// What [`send`](Self::send) would have returned as an error (for example no service
    /// matched, or bad resolver arguments) is published instead as [`Event::SendFailed`]
    /// to the event subscriptions and counted in [`TransportStats::queued_sends_refused`]. Use
    /// [`send`](Self::send) when the caller needs the verdict of each send; this one lets
    /// a caller queue many sends while the node works through them, without a round trip
    /// to the node's task per send.
    ///
    /// [`TransportStats::queued_sends_refused`]: crate::TransportStats::queued_sends_refused
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`] when the node is no longer running (the send was not
    /// queued).
    pub async fn send_queued(&self, spec: SendSpec) -> Result<(), CommandError> {
        match self.commands.try_send(Command::SendQueued(spec)) {
            Ok(()) => Ok(()),
            Err(mpsc::error::TrySendError::Full(command)) => self
                .commands
                .send(command)
                .await
                .map_err(|_| CommandError::Closed),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(CommandError::Closed),
        }
    }

    /// Starts a query; its answers arrive on the returned [`QueryStream`].
    ///
    /// # Errors
    ///
    /// [`CommandError::Query`] (for example no service matched) or
    /// [`CommandError::Resolve`]; [`CommandError::Closed`].
    pub async fn query(&self, spec: QuerySpec) -> Result<QueryStream, CommandError> {
        // The verdict comes back on the query's own inbox: no reply channel is made.
        let (start, pending) = QueryStart::new();
        self.command(Command::Query(spec, start)).await?;
        pending.started().await
    }

    /// Holds the queries that arrive from now on open for the application: each comes on the
    /// returned stream with a [`Responder`](crate::Responder) that answers it later, from any
    /// task (see [`held`](crate::held)), instead of the node's policy answering on the spot.
    /// A later call takes over (the earlier stream ends). Once the stream is dropped, the
    /// next query is answered with an error (`query dropped unanswered`) and the ones after
    /// it by the policy again. At most [`HELD`](crate::HELD) queries are held at once; beyond
    /// that, and while the stream holds that many unread, new ones are refused as busy.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn incoming_queries(&self) -> Result<IncomingQueries, CommandError> {
        let weak = self.commands.downgrade();
        self.ask(|r| Command::Hold(weak, r)).await
    }

    /// Publishes `pairs` as this node's data, replacing what it published before as a whole;
    /// returns the new version. Every peer reads it in its `services()` (and gets
    /// [`Event::DataChanged`]) within about a heartbeat interval, or at the next one under
    /// loss. At most [`DATA`](crate::DATA) bytes with the node's protocol props (values that
    /// are not UTF-8 count twice).
    ///
    /// # Errors
    ///
    /// [`CommandError::Data`]; [`CommandError::Closed`].
    pub async fn set_data<K, V>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Result<u16, CommandError>
    where
        K: Into<String>,
        V: Into<Vec<u8>>,
    {
        let pairs = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        self.ask(|r| Command::SetData(pairs, r)).await?
    }

    /// The counters of held queries: held, answered, refused, late, dropped, expired, busy.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn held_stats(&self) -> Result<HeldStats, CommandError> {
        self.ask(Command::HeldStats).await
    }

    /// Edits this node's tags; a full heartbeat follows. Returns whether they changed.
    ///
    /// # Errors
    ///
    /// [`CommandError::Tags`]; the tags are unchanged. [`CommandError::Closed`].
    pub async fn update_tags(
        &self,
        edits: impl IntoIterator<Item = TagEdit>,
    ) -> Result<bool, CommandError> {
        let edits = edits.into_iter().collect();
        self.ask(|r| Command::Tags(edits, r)).await?
    }

    /// This node's tags.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn tags(&self) -> Result<Vec<String>, CommandError> {
        self.ask(Command::OwnTags).await
    }

    /// Broadcasts a discovery unless one went out too recently; returns whether one did.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn discover(&self) -> Result<bool, CommandError> {
        self.ask(Command::Discover).await
    }

    /// Sends a full heartbeat now.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn heartbeat(&self) -> Result<(), CommandError> {
        self.ask(Command::Heartbeat).await
    }

    /// Subscribes to a channel; false when the channel table is full.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn subscribe(&self, channel: u64) -> Result<bool, CommandError> {
        self.ask(|r| Command::Subscribe(channel, r)).await
    }

    /// What this node advertises: sid, hid, group, protocols, TCP port, unix path.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn info(&self) -> Result<JoinedInfo, CommandError> {
        self.ask(Command::Info).await
    }

    /// The node's counters and the adapter's transport counters: every limit of the core
    /// and of the adapter has one (see the "Limits" tables of `cluster_core` and
    /// `cluster_host`).
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn stats(&self) -> Result<(Stats, TransportStats), CommandError> {
        let (node, mut transport) = self.ask(Command::Stats).await?;
        transport.events_lagged = self.shared.lagged.load(Ordering::Relaxed);
        Ok((node, transport))
    }

    /// Seals every frame sent from now on with `keys`' send key and accepts only frames
    /// sealed with one of its keys; `None` turns sealing off. It takes effect at once, for
    /// the next frame either way, and returns once the node uses the new ring.
    ///
    /// Rotate a cluster's key without downtime in three steps, each done on every node
    /// before the next: add the new key to the ring; make it the send key; remove the old
    /// key ([`KeyRing`]). At every moment each node accepts what every other node sends.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    #[cfg(feature = "seal")]
    pub async fn set_keys(&self, keys: Option<KeyRing>) -> Result<(), CommandError> {
        self.ask(|r| Command::SetKeys(keys, r)).await
    }

    /// Waits until every direct send queued so far has been written (or has failed and
    /// been failed over): call it before [`leave`](Self::leave) so that a send just made is
    /// not cut short. Sends queued later, and the ping logic, are not waited for.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`].
    pub async fn flush(&self) -> Result<(), CommandError> {
        self.ask(Command::Flush).await
    }

    /// Leaves: broadcasts the disconnect (spec 7.2 Q1), reports every service lost with
    /// reason `left`, closes the sockets and removes the unix socket file. Returns once the
    /// disconnect was sent. Every clone of the handle is then closed.
    ///
    /// # Errors
    ///
    /// [`CommandError::Closed`] when the node had already stopped.
    pub async fn leave(&self) -> Result<(), CommandError> {
        self.ask(Command::Leave).await
    }

    /// True once the node stopped (left, or its driver ended or was dropped).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.commands.is_closed()
    }
}

/// A subscription to a node's [`Event`]s.
#[derive(Debug)]
pub struct Events {
    rx: broadcast::Receiver<Event>,
    lagged: Arc<AtomicU64>,
}

impl Events {
    /// `count` events were missed: counted, and told as [`Event::Dropped`].
    fn dropped(&self, count: u64) -> Event {
        self.lagged.fetch_add(count, Ordering::Relaxed);
        Event::Dropped { count }
    }

    /// The next event, or `None` once the node stopped and every event was read. A
    /// subscriber that fell more than 1024 events behind gets [`Event::Dropped`] first.
    pub async fn next(&mut self) -> Option<Event> {
        match self.rx.recv().await {
            Ok(event) => Some(event),
            Err(broadcast::error::RecvError::Lagged(count)) => Some(self.dropped(count)),
            Err(broadcast::error::RecvError::Closed) => None,
        }
    }

    /// An event already waiting, without waiting.
    pub fn try_next(&mut self) -> Option<Event> {
        match self.rx.try_recv() {
            Ok(event) => Some(event),
            Err(broadcast::error::TryRecvError::Lagged(count)) => Some(self.dropped(count)),
            Err(_) => None,
        }
    }
}

/// The task that owns a node, as a future: spawn it (or await it) for the node to run. It
/// is `Send` and `'static`. Dropping it before it ends stops the node without a disconnect,
/// as a crash would (the unix socket file is still removed).
#[must_use = "the node does nothing unless its driver is spawned or awaited"]
pub struct Driver {
    inner: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Driver {
    /// Wraps an adapter's driver future.
    pub fn new(driver: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(driver),
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.inner.as_mut().poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send<T: Send + 'static>() {}
    fn send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn the_driver_and_handles_move_between_threads_and_executors() {
        send::<Driver>();
        send_sync::<Handle>();
        send::<Events>();
        send::<QueryStream>();
        send::<Command>();
    }
}
