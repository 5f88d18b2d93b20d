//! Hooks: the [`Policy`] trait, called synchronously at each hook point of the reference.
//!
//! | reference hook | here |
//! | --- | --- |
//! | `broadcast`, `channel <N> send` | [`Policy::on_send`] |
//! | `evaluate receive`, `channel <N> receive` | [`Policy::on_receive`] |
//! | `evaluate service`, `service validate` | [`Policy::on_service`] |
//! | `tags changed` | [`Policy::on_tags_changed`] (and [`Event::TagsChanged`](crate::Event)) |
//! | `query` | [`Policy::answer_query`]; a [`Refusal`] becomes the response's `error` |
//! | `event` | [`Policy::on_event`] (and [`Event::Message`](crate::Event)) |
//! | `service discovered`, `service lost` | [`Policy::on_discovered`], [`Policy::on_lost`] (and the events) |
//!
//! Every method has a default that reproduces the reference with no hook set: accept
//! everything and answer every query with an empty `data`.

use core::fmt;

use heapless::vec::VecView;

use crate::event::{LostReason, PayloadShape};
use crate::identity::{InlineStr, Sid};
use crate::service::Service;
use crate::transmit::Source;
use crate::wire::{Message, MessageKind};

/// A hook's decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Verdict {
    /// Go on.
    #[default]
    Accept,
    /// Drop the frame (receive side) or cancel the send (send side).
    Reject,
}

/// The application payload of a frame being sent or received, which a hook may rewrite
/// (for example to encrypt `data` into `raw` and back, as in the reference README's
/// channel-5 example). Writes are bounded by the node's `DATA` capacity.
///
/// A received frame's payload is read where it lies in the frame; the first write copies it
/// into a free slot of the node's payload pool (4 slots shared with queued sends, whose
/// kept answers are given up first when every slot is taken), and the rest of the pipeline
/// sees the rewritten payload. With every slot taken by queued sends, a write fails with
/// [`PayloadFull`] and the payload stays as received.
#[derive(Debug)]
pub struct PayloadMut<'p> {
    /// Where writes go; `None` when the node had no free buffer.
    buf: Option<PayloadBuf<'p>>,
    /// The received `data` and `raw`, read in the frame until the first write copies them
    /// into `buf`.
    unread: Option<Fields<'p>>,
    changed: bool,
}

/// A payload's `data` and `raw` fields, where they lie.
type Fields<'p> = (Option<&'p [u8]>, Option<&'p [u8]>);

/// A payload buffer of the node, lent to a [`PayloadMut`].
#[derive(Debug)]
struct PayloadBuf<'p> {
    bytes: &'p mut VecView<u8>,
    shape: &'p mut PayloadShape,
}

impl PayloadBuf<'_> {
    fn data(&self) -> Option<&[u8]> {
        self.shape.data_len().and_then(|len| self.bytes.get(..len))
    }

    fn raw(&self) -> Option<&[u8]> {
        if self.shape.has_raw() {
            self.bytes.get(self.shape.data_len().unwrap_or(0)..)
        } else {
            None
        }
    }
}

/// The payload did not fit in the node's `DATA` capacity; it was left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadFull;

impl fmt::Display for PayloadFull {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payload larger than the node's capacity")
    }
}

impl core::error::Error for PayloadFull {}

impl<'p> PayloadMut<'p> {
    /// A view of the payload in a node's buffer.
    pub(crate) fn new(bytes: &'p mut VecView<u8>, shape: &'p mut PayloadShape) -> Self {
        Self {
            buf: Some(PayloadBuf { bytes, shape }),
            unread: None,
            changed: false,
        }
    }

    /// A view of a received payload, `data` and `raw` (together at most the capacity of
    /// `buf`), read where they lie until the first write copies them into `buf` (writes fail
    /// without one).
    pub(crate) fn received(
        buf: Option<(&'p mut VecView<u8>, &'p mut PayloadShape)>,
        data: Option<&'p [u8]>,
        raw: Option<&'p [u8]>,
    ) -> Self {
        Self {
            buf: buf.map(|(bytes, shape)| PayloadBuf { bytes, shape }),
            unread: Some((data, raw)),
            changed: false,
        }
    }

    /// True once any setter ran.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    /// The buffer, holding the payload (a received one copied in at the first write).
    fn writable(&mut self) -> Result<&mut PayloadBuf<'p>, PayloadFull> {
        let buf = self.buf.as_mut().ok_or(PayloadFull)?;
        if let Some((data, raw)) = self.unread {
            buf.bytes.clear();
            for part in [data, raw].into_iter().flatten() {
                buf.bytes.extend_from_slice(part).map_err(|_| PayloadFull)?;
            }
            *buf.shape = PayloadShape::new(data.map(<[u8]>::len), raw.is_some());
            self.unread = None;
        }
        Ok(buf)
    }

    /// The `data` field, when present.
    #[must_use]
    pub fn data(&self) -> Option<&[u8]> {
        match (&self.unread, &self.buf) {
            (Some((data, _)), _) => *data,
            (None, Some(buf)) => buf.data(),
            (None, None) => None,
        }
    }

    /// The `raw` field, when present.
    #[must_use]
    pub fn raw(&self) -> Option<&[u8]> {
        match (&self.unread, &self.buf) {
            (Some((_, raw)), _) => *raw,
            (None, Some(buf)) => buf.raw(),
            (None, None) => None,
        }
    }

    /// Replaces both fields at once (`None` removes a field).
    ///
    /// # Errors
    ///
    /// [`PayloadFull`] when they do not fit; the payload is then unchanged.
    pub fn set(&mut self, data: Option<&[u8]>, raw: Option<&[u8]>) -> Result<(), PayloadFull> {
        let total = data.map_or(0, <[u8]>::len) + raw.map_or(0, <[u8]>::len);
        let buf = self.writable()?;
        if total > buf.bytes.capacity() {
            return Err(PayloadFull);
        }
        buf.bytes.clear();
        for part in [data, raw].into_iter().flatten() {
            buf.bytes.extend_from_slice(part).map_err(|_| PayloadFull)?;
        }
        *buf.shape = PayloadShape::new(data.map(<[u8]>::len), raw.is_some());
        self.changed = true;
        Ok(())
    }

    /// Replaces `data`, keeping `raw`.
    ///
    /// # Errors
    ///
    /// [`PayloadFull`], leaving the payload unchanged.
    pub fn set_data(&mut self, data: Option<&[u8]>) -> Result<(), PayloadFull> {
        let buf = self.writable()?;
        let raw_len = buf.raw().map_or(0, <[u8]>::len);
        let old_data = buf.shape.data_len().unwrap_or(0);
        let new_data = data.map_or(0, <[u8]>::len);
        if raw_len + new_data > buf.bytes.capacity() {
            return Err(PayloadFull);
        }
        // Move raw (right after the old data) to right after the new data, then write the
        // new data before it: one move, no rotation.
        let raw_at = old_data.min(buf.bytes.len());
        let new_len = new_data + raw_len;
        if new_len > buf.bytes.len() {
            buf.bytes.resize(new_len, 0).map_err(|_| PayloadFull)?;
        }
        buf.bytes.copy_within(raw_at..raw_at + raw_len, new_data);
        buf.bytes.truncate(new_len);
        if let Some(head) = buf.bytes.get_mut(..new_data) {
            head.copy_from_slice(data.unwrap_or_default());
        }
        buf.shape.set_data_len(data.map(<[u8]>::len));
        self.changed = true;
        Ok(())
    }

    /// The buffer with `raw` removed (only `data` left) and the raw flag, for appending a new
    /// `raw` in place; [`PayloadFull`] without a buffer.
    #[cfg(feature = "serde")]
    pub(crate) fn raw_parts(
        &mut self,
    ) -> Result<(&mut VecView<u8>, &mut PayloadShape), PayloadFull> {
        self.changed = true;
        let buf = self.writable()?;
        let data_len = buf.shape.data_len().unwrap_or(0);
        buf.bytes.truncate(data_len);
        buf.shape.set_raw(false);
        Ok((&mut *buf.bytes, &mut *buf.shape))
    }

    /// Replaces `raw`, keeping `data`.
    ///
    /// # Errors
    ///
    /// [`PayloadFull`], leaving the payload unchanged.
    pub fn set_raw(&mut self, raw: Option<&[u8]>) -> Result<(), PayloadFull> {
        let buf = self.writable()?;
        let data_len = buf.shape.data_len().unwrap_or(0);
        if data_len + raw.map_or(0, <[u8]>::len) > buf.bytes.capacity() {
            return Err(PayloadFull);
        }
        buf.bytes.truncate(data_len);
        buf.bytes
            .extend_from_slice(raw.unwrap_or_default())
            .map_err(|_| PayloadFull)?;
        buf.shape.set_raw(raw.is_some());
        self.changed = true;
        Ok(())
    }
}

/// A frame this node is about to send, as [`Policy::on_send`] sees it.
#[derive(Debug)]
pub struct Outgoing<'p> {
    /// Its kind (event, query, ...).
    pub kind: MessageKind,
    /// Its channel.
    pub channel: u64,
    /// True for a multicast broadcast, false for direct sends to services.
    pub broadcast: bool,
    /// Its payload, which the hook may rewrite.
    pub payload: PayloadMut<'p>,
}

/// The answer to a query being built by [`Policy::answer_query`]: starts with an empty
/// `data`, as the reference answers with no query hook.
#[derive(Debug)]
pub struct Reply<'p> {
    pub(crate) payload: PayloadMut<'p>,
}

impl<'p> Reply<'p> {
    /// Sets the answer's `data` (and clears nothing else).
    ///
    /// # Errors
    ///
    /// [`PayloadFull`] when it does not fit.
    pub fn set_data(&mut self, data: &[u8]) -> Result<(), PayloadFull> {
        self.payload.set_data(Some(data))
    }

    /// Sets the answer's `raw` bytes.
    ///
    /// # Errors
    ///
    /// [`PayloadFull`] when they do not fit.
    pub fn set_raw(&mut self, raw: &[u8]) -> Result<(), PayloadFull> {
        self.payload.set_raw(Some(raw))
    }

    /// The payload being built.
    pub fn payload(&mut self) -> &mut PayloadMut<'p> {
        &mut self.payload
    }
}

impl fmt::Write for Reply<'_> {
    /// Appends text to `data`.
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let buf = self.payload.writable().map_err(|_| fmt::Error)?;
        let current = buf.data().map_or(0, <[u8]>::len);
        let raw_len = buf.raw().map_or(0, <[u8]>::len);
        if raw_len != 0 || current + s.len() > buf.bytes.capacity() {
            return Err(fmt::Error);
        }
        buf.bytes
            .extend_from_slice(s.as_bytes())
            .map_err(|_| fmt::Error)?;
        buf.shape.set_data_len(Some(current + s.len()));
        self.payload.changed = true;
        Ok(())
    }
}

/// A refused query: the text becomes the response's `error` field (at most 96 bytes; longer
/// text is cut at a character boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal(InlineStr<96>);

impl Refusal {
    /// A refusal with this error text.
    #[must_use]
    pub fn new(text: &str) -> Self {
        let mut end = text.len().min(96);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        Self(InlineStr::new(text.as_bytes().get(..end).unwrap_or_default()).unwrap_or_default())
    }

    /// The error text.
    #[must_use]
    pub fn text(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

/// Hooks, one method per hook point. All methods have defaults that behave as the reference
/// does when no hook is registered.
pub trait Policy {
    /// Before a frame with an application payload (event, query, response) is sent.
    /// [`Verdict::Reject`] cancels the send.
    fn on_send(&mut self, out: &mut Outgoing<'_>) -> Verdict {
        let _ = out;
        Verdict::Accept
    }

    /// Every decoded frame on a subscribed channel, before any state changes. `payload` holds
    /// the frame's `data` and `raw`; rewriting it changes what the rest of the pipeline sees.
    fn on_receive(
        &mut self,
        msg: &Message<'_>,
        source: &Source,
        payload: &mut PayloadMut<'_>,
    ) -> Verdict {
        let _ = (msg, source, payload);
        Verdict::Accept
    }

    /// Before the sender's service is looked up (`known` is `None` for a new service).
    fn on_service(&mut self, known: Option<&Service>, msg: &Message<'_>) -> Verdict {
        let _ = (known, msg);
        Verdict::Accept
    }

    /// A known service's tags are about to change. Reject to drop the frame.
    fn on_tags_changed(&mut self, service: &Service, msg: &Message<'_>) -> Verdict {
        let _ = (service, msg);
        Verdict::Accept
    }

    /// Whether [`on_receive`](Self::on_receive), [`on_service`](Self::on_service) and
    /// [`on_tags_changed`](Self::on_tags_changed) must see every frame. True by default; a
    /// policy that keeps those three hooks as they are (accepting everything, unchanged) may
    /// answer false, which lets a node built with the feature `heartbeat-fast-path` handle a
    /// periodic heartbeat that repeats, byte for byte, the last one it accepted from that
    /// service without decoding it again and without calling them.
    fn sees_every_frame(&self) -> bool {
        true
    }

    /// Answer a query from `from`. The default answers with an empty `data`.
    ///
    /// # Errors
    ///
    /// A [`Refusal`], whose text the response carries as `error`.
    fn answer_query(
        &mut self,
        from: &Service,
        query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        let _ = (from, query, reply);
        Ok(())
    }

    /// An event (type 6) from `from`. Reject to suppress its [`Event::Message`](crate::Event).
    fn on_event(&mut self, from: &Service, msg: &Message<'_>) -> Verdict {
        let _ = (from, msg);
        Verdict::Accept
    }

    /// A service was discovered (same moment as [`Event::Discovered`](crate::Event)).
    fn on_discovered(&mut self, service: &Service) {
        let _ = service;
    }

    /// A service was removed (same moment as [`Event::Lost`](crate::Event)).
    fn on_lost(&mut self, sid: &Sid, reason: LostReason) {
        let _ = (sid, reason);
    }
}

/// Answers every accepted query with the same `data`, the bytes of `T` (`&'static str`,
/// `String`, `heapless::Vec<u8, N>`, ...), and keeps every other default; an answer larger
/// than the node's payload capacity is refused (the response carries the refusal as
/// `error`). The default policy answers with an empty `data`.
///
/// ```
/// use cluster_core::{Answer, Node};
/// let mut node: Node<Answer<&str>> = Node::new(
///     cluster_core::Config::lan_fast(), "02:00:00:00:00:01", Answer("all good"), 7,
///     cluster_core::Instant::ZERO,
/// )?;
/// assert_eq!(node.policy_mut().text(), &"all good");
/// # Ok::<(), cluster_core::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Answer<T>(pub T);

impl<T> Answer<T> {
    /// Answers `text`.
    #[must_use]
    pub fn new(text: impl Into<T>) -> Self {
        Self(text.into())
    }

    /// The answer.
    #[must_use]
    pub fn text(&self) -> &T {
        &self.0
    }
}

impl<T: AsRef<[u8]>> Policy for Answer<T> {
    fn sees_every_frame(&self) -> bool {
        false
    }

    fn answer_query(
        &mut self,
        _from: &Service,
        _query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        reply
            .set_data(self.0.as_ref())
            .map_err(|_| Refusal::new("answer larger than the node's payload capacity"))
    }
}

/// The policy of a node with no hooks: the reference's behaviour.
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultPolicy;

impl Policy for DefaultPolicy {
    fn sees_every_frame(&self) -> bool {
        false
    }
}

impl<P: Policy + ?Sized> Policy for &mut P {
    fn on_send(&mut self, out: &mut Outgoing<'_>) -> Verdict {
        (**self).on_send(out)
    }
    fn on_receive(&mut self, m: &Message<'_>, s: &Source, p: &mut PayloadMut<'_>) -> Verdict {
        (**self).on_receive(m, s, p)
    }
    fn on_service(&mut self, known: Option<&Service>, msg: &Message<'_>) -> Verdict {
        (**self).on_service(known, msg)
    }
    fn on_tags_changed(&mut self, service: &Service, msg: &Message<'_>) -> Verdict {
        (**self).on_tags_changed(service, msg)
    }
    fn sees_every_frame(&self) -> bool {
        (**self).sees_every_frame()
    }
    fn answer_query(
        &mut self,
        from: &Service,
        query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        (**self).answer_query(from, query, reply)
    }
    fn on_event(&mut self, from: &Service, msg: &Message<'_>) -> Verdict {
        (**self).on_event(from, msg)
    }
    fn on_discovered(&mut self, service: &Service) {
        (**self).on_discovered(service);
    }
    fn on_lost(&mut self, sid: &Sid, reason: LostReason) {
        (**self).on_lost(sid, reason);
    }
}

#[cfg(test)]
mod tests {
    use super::PayloadMut;
    use crate::event::PayloadShape;

    /// `set_data` against a model: every old and new length of `data`, with and without
    /// `raw`, up to the capacity, keeps `raw` and refuses what does not fit.
    #[test]
    fn set_data_replaces_data_and_keeps_raw() {
        const CAP: usize = 8;
        let texts: [&[u8]; 5] = [b"", b"a", b"bc", b"defgh", b"ijklmnop"];
        for old in texts.iter().map(|t| Some(*t)).chain([None]) {
            for raw in texts.iter().map(|t| Some(*t)).chain([None]) {
                for new in texts.iter().map(|t| Some(*t)).chain([None]) {
                    let mut bytes = heapless::Vec::<u8, CAP>::new();
                    let mut shape = PayloadShape::NONE;
                    let mut payload = PayloadMut::new(bytes.as_mut_view(), &mut shape);
                    if payload.set(old, raw).is_err() {
                        continue;
                    }
                    let fits = new.map_or(0, <[u8]>::len) + raw.map_or(0, <[u8]>::len) <= CAP;
                    assert_eq!(
                        payload.set_data(new).is_ok(),
                        fits,
                        "{old:?} {raw:?} {new:?}"
                    );
                    let data = if fits { new } else { old };
                    assert_eq!(payload.data(), data, "{old:?} {raw:?} {new:?}");
                    assert_eq!(payload.raw(), raw, "{old:?} {raw:?} {new:?}");
                }
            }
        }
    }
}
