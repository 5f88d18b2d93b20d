//! Answered queries, remembered for [`Config::answer_memory`](crate::Config::answer_memory).
//!
//! An asker retransmits a query its target has not answered ([`retry`](super::retry)), and a
//! lossy or duplicating network may deliver a query twice. A copy must be answered (the first
//! answer may be what was lost) but the policy must not be asked twice: its answer may have
//! effects. So the node remembers the queries it answered lately, each by a 64-bit digest of
//! the asker's sid, the query id (`ruid`), the channel and the payload, with a reference on
//! the answer's payload, and answers a copy from there, over the protocol the copy came on.
//!
//! The payload is part of the key because reference askers give every query of a node the
//! same id (spec 6, Q3): a reference node that asks again with other text is answered anew;
//! one that asks again with the same text within `answer_memory` gets the remembered answer.
//! A query without an id is never remembered.
//!
//! The memory holds [`ANSWERS`] queries, the oldest going first. The answers' payloads live
//! in the node's small payload pool, and sends come first: when the pool needs room the
//! oldest remembered payload is given up ([`hold`](super::hold)). A copy of a query whose
//! answer was given up is not answered (counted in `copies_dropped`): the policy is never
//! asked twice.
//!
//! A copy may also come much later than `answer_memory`: TCP holds a segment it lost several
//! times in a row for seconds (200 ms, then 400, 800, ...), and everything written after it on
//! that connection waits behind it. For this project's askers, whose ids end in a counter
//! (`q<s0><s2>#<slast>.<n>`, spec 7.2 Q3), the node also keeps, for the last [`ASKERS`]
//! askers (by a digest of their sid), the highest counter it answered and which of the
//! [`WINDOW`] below it: a copy of
//! one of those, or of an id further below, is not answered (`copies_dropped`), however late
//! it comes. A query first seen that far below the highest is dropped the same way; its
//! asker, which has sent `WINDOW` queries since, has given up on it in all but contrived
//! cases.

use super::Core;
use super::hold::LOSS_RECOVERY;
use crate::policy::Policy;
use crate::time::{Instant, millis_ceil};
use crate::wire::Message;

/// Queries remembered at once, with their answers (none without the feature
/// `loss-recovery`: the node then carries no memory at all).
const ANSWERS: usize = if LOSS_RECOVERY { 16 } else { 0 };
/// Askers whose counters are tracked: enough for a few seconds of short-lived askers (a
/// `cluster query` process is a node of its own), whose copies TCP may still deliver after
/// they left (none without the feature `loss-recovery`).
const ASKERS: usize = if LOSS_RECOVERY { 16 } else { 0 };
/// Counters tracked below an asker's highest.
const WINDOW: u32 = 32;

/// The counters of one asker's queries answered lately.
#[derive(Debug, Clone, Copy)]
struct AskerWindow {
    /// FNV-1a of the asker's sid (16 bytes a window instead of 40).
    asker: u64,
    highest: u32,
    /// Bit `i`: the query with counter `highest - i` was answered.
    answered: u32,
}

impl AskerWindow {
    /// Whether counter `n` was answered, or is too far below the highest to tell.
    fn answered(&self, n: u32) -> bool {
        match self.highest.checked_sub(n) {
            None => false,
            Some(below) if below >= WINDOW => true,
            Some(below) => self.answered & (1 << below) != 0,
        }
    }

    fn mark(&mut self, n: u32) {
        if n > self.highest {
            let shift = n - self.highest;
            self.answered = if shift >= WINDOW {
                0
            } else {
                self.answered << shift
            };
            self.highest = n;
        }
        if let Some(below) = self.highest.checked_sub(n).filter(|b| *b < WINDOW) {
            self.answered |= 1 << below;
        }
    }
}

/// The counter of an id this project's node with sid `asker` generates,
/// `q<s0><s2>#<slast>.<n>` (`None` past `u32::MAX`, four billion queries of one node).
fn generated_counter(asker: &[u8], ruid: &[u8]) -> Option<u32> {
    let (&first, _) = asker.split_first()?;
    let third = *asker.get(2)?;
    let (&last, _) = asker.split_last()?;
    let rest = ruid.strip_prefix(&[b'q', first, third, b'#', last, b'.'])?;
    if rest.is_empty() || rest.len() > 10 || !rest.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = rest.iter().fold(0u64, |n, d| n * 10 + u64::from(d - b'0'));
    u32::try_from(n).ok()
}

/// FNV-1a of `bytes`, continuing from `hash`.
fn fnv(mut hash: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

const FNV_START: u64 = 0xcbf2_9ce4_8422_2325;

/// One answered query.
#[derive(Debug, Clone, Copy)]
struct Remembered {
    key: u64,
    until: Instant,
    /// The answer's payload slot, until given up.
    payload: Option<u8>,
    error: bool,
}

/// The answered queries, oldest first (a `Vec`, which is sound with no capacity, as heapless'
/// `Deque` is not).
#[derive(Debug)]
pub(crate) struct AnswerMemory {
    entries: heapless::Vec<Remembered, ANSWERS>,
    /// The askers' counters, the one used last at the end.
    askers: heapless::Vec<AskerWindow, ASKERS>,
}

impl AnswerMemory {
    pub(crate) const fn new() -> Self {
        Self {
            entries: heapless::Vec::new(),
            askers: heapless::Vec::new(),
        }
    }

    /// Forgets everything without releasing payloads (the pool is cleared with it).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.askers.clear();
    }

    /// Whether `asker`'s query with counter `n` was answered (or is too old to tell).
    fn counter_answered(&self, asker: &[u8], n: u32) -> bool {
        let key = fnv(FNV_START, asker);
        self.askers.iter().any(|w| w.asker == key && w.answered(n))
    }

    /// Notes that `asker`'s query with counter `n` was answered.
    fn mark_counter(&mut self, asker: &[u8], n: u32) {
        let key = fnv(FNV_START, asker);
        let mut window = match self.askers.iter().position(|w| w.asker == key) {
            Some(index) => self.askers.remove(index),
            None => AskerWindow {
                asker: key,
                highest: n,
                answered: 0,
            },
        };
        window.mark(n);
        if self.askers.is_full() && !self.askers.is_empty() {
            self.askers.remove(0);
        }
        let _ = self.askers.push(window);
    }
}

/// A query as the memory knows it: the digest of its asker, id, channel and payload, and the
/// counter of its id when the asker is one of this project's nodes. Kept by a query held open
/// ([`held`](super::held)), so that its answer is remembered when the application gives it
/// and copies that arrive while it is pending are recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct QueryKey {
    key: u64,
    counter: Option<u32>,
}

impl QueryKey {
    /// The key of query `msg` from `asker` on `channel`; `None` for a query without an id,
    /// which is never remembered, and without the feature `loss-recovery`.
    pub(crate) fn of(asker: &[u8], channel: u64, msg: &Message<'_>) -> Option<Self> {
        if !LOSS_RECOVERY {
            return None;
        }
        let ruid = msg.ruid?;
        Some(Self {
            key: key(asker, ruid.as_bytes(), channel, msg),
            counter: generated_counter(asker, ruid.as_bytes()),
        })
    }
}

/// An answer to send: its payload slot (with a reference for the send) and whether it is an
/// `error`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Recalled {
    pub(crate) payload: u8,
    pub(crate) error: bool,
}

/// What the memory knows of a query.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Recall {
    /// Not answered lately: ask the policy. Carries the query's key (`None` without an id or
    /// without the memory), computed once here for the answer's remembering or the hold, as
    /// the digest costs about 400 instructions a query on a host.
    New(Option<QueryKey>),
    /// Answered: send this again.
    Again(Recalled),
    /// Answered, but the answer was given up to make room, or is no longer remembered (or the
    /// query is too old): not answered again.
    Forgotten,
}

/// FNV-1a over the asker, the id, the channel, `data` and `raw`, each length-prefixed.
fn key(asker: &[u8], ruid: &[u8], channel: u64, msg: &Message<'_>) -> u64 {
    let mut hash = FNV_START;
    let mut feed = |bytes: &[u8]| hash = fnv(hash, bytes);
    feed(&channel.to_le_bytes());
    let parts = [
        Some(asker),
        Some(ruid),
        msg.data.map(|d| d.as_bytes()),
        msg.raw,
    ];
    for part in parts {
        match part {
            Some(bytes) => {
                feed(&[1]);
                feed(&(bytes.len() as u64).to_le_bytes());
                feed(bytes);
            }
            None => feed(&[0]),
        }
    }
    hash
}

impl<P: Policy, const SERVICES: usize, const DATA: usize, const EVENTS: usize>
    Core<P, SERVICES, DATA, EVENTS>
{
    /// What is remembered of this copy of a query from `asker` (`New` when the memory is
    /// off or the query has no id).
    pub(super) fn recall_answer(
        &mut self,
        now: Instant,
        asker: &[u8],
        channel: u64,
        msg: &Message<'_>,
    ) -> Recall {
        if !LOSS_RECOVERY {
            return Recall::New(None);
        }
        self.forget_old_answers(now);
        let Some(query) = QueryKey::of(asker, channel, msg) else {
            return Recall::New(None);
        };
        let Some(found) = self
            .answers
            .entries
            .iter()
            .find(|e| e.key == query.key)
            .copied()
        else {
            let answered = query
                .counter
                .is_some_and(|n| self.answers.counter_answered(asker, n));
            return if answered {
                Recall::Forgotten
            } else {
                Recall::New(Some(query))
            };
        };
        match found.payload {
            Some(payload) if self.payloads.add_refs(payload, 1) => Recall::Again(Recalled {
                payload,
                error: found.error,
            }),
            _ => Recall::Forgotten,
        }
    }

    /// Remembers the answer in `answer` to query `query` from `asker` (taking a reference on
    /// its payload); nothing without an id (`None`) or with the memory off.
    pub(super) fn remember_answer(
        &mut self,
        now: Instant,
        asker: &[u8],
        query: Option<QueryKey>,
        answer: Recalled,
    ) {
        if !LOSS_RECOVERY {
            return;
        }
        let memory = millis_ceil(self.config.answer_memory);
        let Some(query) = query.filter(|_| memory > 0) else {
            return;
        };
        if let Some(n) = query.counter {
            self.answers.mark_counter(asker, n);
        }
        self.forget_old_answers(now);
        if self.answers.entries.is_full() {
            self.forget_oldest_answer();
        }
        let entry = Remembered {
            key: query.key,
            until: now.saturating_add_millis(memory),
            payload: self
                .payloads
                .add_refs(answer.payload, 1)
                .then_some(answer.payload),
            error: answer.error,
        };
        if let Err(entry) = self.answers.entries.push(entry)
            && let Some(payload) = entry.payload
        {
            self.payloads.release(payload);
        }
    }

    /// Gives up the oldest remembered answer's payload (its query stays remembered); false
    /// when no payload is held.
    pub(super) fn release_answer_hold(&mut self) -> bool {
        if !LOSS_RECOVERY {
            return false;
        }
        let held = self
            .answers
            .entries
            .iter_mut()
            .find_map(|e| e.payload.take());
        match held {
            Some(payload) => {
                self.payloads.release(payload);
                true
            }
            None => false,
        }
    }

    fn forget_oldest_answer(&mut self) {
        if self.answers.entries.is_empty() {
            return;
        }
        if let Some(payload) = self.answers.entries.remove(0).payload {
            self.payloads.release(payload);
        }
    }

    /// Forgets the queries answered longer than `answer_memory` ago.
    fn forget_old_answers(&mut self, now: Instant) {
        while self.answers.entries.first().is_some_and(|e| e.until <= now) {
            self.forget_oldest_answer();
        }
    }
}
