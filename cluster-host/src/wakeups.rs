//! Which of a driver task's sources woke it: each source (commands, datagrams, a listener,
//! …) is polled with a waker of its own ([`Wakeups::wakers`]), which notes the source's bit
//! before waking the task, so that a poll of the task asks only the sources with news instead
//! of every one. Shared by the host adapters' drivers.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

/// Which sources woke the driver task since it last looked, and the task's waker.
#[derive(Debug)]
pub struct Wakeups {
    /// One bit per source; every source at first.
    sources: AtomicU8,
    task: Mutex<Option<Waker>>,
}

impl Wakeups {
    /// `sources` sources (at most 8), every one noted for the first poll.
    #[must_use]
    pub fn new(sources: u8) -> Arc<Self> {
        Arc::new(Self {
            sources: AtomicU8::new(u8::MAX >> (8 - sources.min(8))),
            task: Mutex::new(None),
        })
    }

    /// One waker per source, in the order of their bits: waking the one of bit `i` notes
    /// source `i`, then wakes the task.
    #[must_use]
    pub fn wakers(self: &Arc<Self>, sources: u8) -> Arc<[Waker]> {
        (0..sources.min(8))
            .map(|source| {
                Waker::from(Arc::new(SourceWaker {
                    bit: 1 << source,
                    wakeups: Arc::clone(self),
                }))
            })
            .collect()
    }

    /// Notes `sources` (bits) for the next poll.
    pub fn note(&self, sources: u8) {
        self.sources.fetch_or(sources, Ordering::AcqRel);
    }

    /// Remembers `task` as the task's waker and takes the sources noted since last time.
    pub fn take(&self, task: &Waker) -> u8 {
        {
            let mut current = self.task.lock().unwrap_or_else(PoisonError::into_inner);
            if !current.as_ref().is_some_and(|w| w.will_wake(task)) {
                *current = Some(task.clone());
            }
        }
        self.sources.swap(0, Ordering::AcqRel)
    }
}

/// The waker one source is polled with: it notes the source, then wakes the task.
#[derive(Debug)]
struct SourceWaker {
    bit: u8,
    wakeups: Arc<Wakeups>,
}

impl Wake for SourceWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakeups.note(self.bit);
        let task = self
            .wakeups
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = &*task {
            task.wake_by_ref();
        }
    }
}

/// A waker that counts its wake-ups, for the crate's tests of wake-up paths.
#[cfg(test)]
pub(crate) struct CountingTask(std::sync::atomic::AtomicUsize);

#[cfg(test)]
impl CountingTask {
    /// The counter and a waker that bumps it.
    pub(crate) fn waker() -> (Arc<Self>, Waker) {
        let counter = Arc::new(Self(std::sync::atomic::AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&counter));
        (counter, waker)
    }

    /// How many times the waker was woken.
    pub(crate) fn wakes(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
impl Wake for CountingTask {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_source_is_noted_at_first_then_only_those_woken() {
        let wakeups = Wakeups::new(3);
        let wakers = wakeups.wakers(3);
        let (counter, task) = CountingTask::waker();
        assert_eq!(wakeups.take(&task), 0b111);
        assert_eq!(wakeups.take(&task), 0);
        wakers[2].wake_by_ref();
        wakers[0].wake_by_ref();
        assert_eq!(counter.wakes(), 2);
        assert_eq!(wakeups.take(&task), 0b101);
        wakeups.note(0b010);
        assert_eq!(wakeups.take(&task), 0b010);
    }
}
