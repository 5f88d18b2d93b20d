//! Queries answered later (feature `held`): the [`Handle`] commands on the queries the node
//! holds open, each named by the [`ReplyToken`] of its
//! [`Event::QueryHeld`](crate::Event::QueryHeld).

use cluster_core::{HeldRoom, HeldStats, Policy, ReplyToken};
use embassy_sync::blocking_mutex::raw::RawMutex;

use crate::error::CommandError;
use crate::handle::Handle;
use crate::time::now;

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
> Handle<'_, M, P, SERVICES, DATA, EVENTS, SUBSCRIBERS, ANSWERS, QUERIES, H>
{
    /// Holds every query that arrives from now on open, as
    /// [`Node::hold_queries`](cluster_core::Node::hold_queries): each is published as
    /// [`Event::QueryHeld`](crate::Event::QueryHeld) with a [`ReplyToken`] instead of being
    /// answered by the policy, and any task answers it later with [`answer`](Self::answer),
    /// [`refuse`](Self::refuse) or [`drop_held`](Self::drop_held). `on` false gives the
    /// queries back to the policy (those held stay held). Returns false, holding nothing,
    /// when the state has no room for held queries (`H` is [`NoHeld`](cluster_core::NoHeld)).
    ///
    /// One task hands the tokens to another, which answers when it has the answer:
    ///
    /// ```no_run
    /// use cluster_core::{DefaultPolicy, HeldTable, ReplyToken};
    /// use cluster_embassy::{Event, Handle, State};
    /// use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex as Cs;
    /// use embassy_sync::channel::Channel;
    ///
    /// // Room for 4 queries held open (about 120 bytes each), the other parameters the
    /// // defaults; started with `cluster_embassy::new` as in the crate's documentation.
    /// type Cluster = State<Cs, DefaultPolicy, 32, 512, 4, 2, 4, 1, HeldTable<4>>;
    /// type ClusterHandle = Handle<'static, Cs, DefaultPolicy, 32, 512, 4, 2, 4, 1, HeldTable<4>>;
    ///
    /// // The tokens go to the task that knows the answers.
    /// static TOKENS: Channel<Cs, ReplyToken, 4> = Channel::new();
    ///
    /// #[embassy_executor::task]
    /// async fn listen(cluster: ClusterHandle) {
    ///     let mut events = cluster.events().unwrap();
    ///     cluster.hold_queries(true).await.unwrap();
    ///     loop {
    ///         if let Event::QueryHeld { token, .. } = events.next().await {
    ///             TOKENS.send(token).await;
    ///         }
    ///     }
    /// }
    ///
    /// #[embassy_executor::task]
    /// async fn measure(cluster: ClusterHandle) {
    ///     loop {
    ///         let token = TOKENS.receive().await;
    ///         let reading = read_sensor().await;
    ///         if cluster.answer(token, reading, None).await.is_err() {
    ///             // too late or unknown: nothing was sent (counted in `held_stats`)
    ///         }
    ///     }
    /// }
    /// # async fn read_sensor() -> &'static [u8] { b"21.5" }
    /// # fn main() {}
    /// ```
    ///
    /// # Errors
    ///
    /// [`CommandError::Left`].
    pub async fn hold_queries(&self, on: bool) -> Result<bool, CommandError> {
        Ok(self.node().await?.node.hold_queries(on))
    }

    /// Answers the held query `token` with `data` (and `raw`, when given), as
    /// [`Node::answer`](cluster_core::Node::answer); the response leaves at the runner's next pass.
    ///
    /// # Errors
    ///
    /// [`CommandError::Answer`]: the token is unknown (answered, dropped or expired
    /// already), late (the node's `query_timeout` passed: nothing is sent, counted), or the
    /// answer does not fit (the query stays held). [`CommandError::Left`].
    pub async fn answer(
        &self,
        token: ReplyToken,
        data: &[u8],
        raw: Option<&[u8]>,
    ) -> Result<(), CommandError> {
        let result = self.node().await?.node.answer(now(), token, data, raw);
        self.wake();
        Ok(result?)
    }

    /// Refuses the held query `token`: the asker gets `error` as the answer's error text,
    /// as [`Node::refuse`](cluster_core::Node::refuse).
    ///
    /// # Errors
    ///
    /// As [`answer`](Self::answer).
    pub async fn refuse(&self, token: ReplyToken, error: &str) -> Result<(), CommandError> {
        let result = self.node().await?.node.refuse(now(), token, error);
        self.wake();
        Ok(result?)
    }

    /// Lets the held query `token` go unanswered, as
    /// [`Node::drop_held`](cluster_core::Node::drop_held): its asker gets the error
    /// `query dropped unanswered` at once instead of waiting for its timeout, and the drop is
    /// counted (`dropped` in [`held_stats`](Self::held_stats)).
    ///
    /// # Errors
    ///
    /// As [`answer`](Self::answer).
    pub async fn drop_held(&self, token: ReplyToken) -> Result<(), CommandError> {
        let result = self.node().await?.node.drop_held(now(), token);
        self.wake();
        Ok(result?)
    }

    /// The counters of held queries (held, answered, refused, dropped, busy, expired,
    /// late), as [`Node::held_stats`](cluster_core::Node::held_stats).
    pub async fn held_stats(&self) -> HeldStats {
        self.state.inner.lock().await.node.held_stats()
    }

    /// The number of queries held open now, as [`Node::held`](cluster_core::Node::held).
    pub async fn held(&self) -> usize {
        self.state.inner.lock().await.node.held()
    }
}
