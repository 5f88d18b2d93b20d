//! [`Ready`]: the stream connections that have bytes to read, as their wakers report them.
//! A driver reads each connection's socket itself; the waker it polls a connection's
//! readiness with ([`Ready::waker`]) lists the connection and wakes the driver, so a wake-up
//! reads only the connections that have something. Shared by the host adapters' drivers.

use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Wake, Waker};

use cluster_core::ConnId;

/// The listed connections and the driver's waker. Shared by the driver and every
/// connection's waker.
#[derive(Debug, Default)]
pub struct Ready {
    ids: Mutex<Vec<ConnId>>,
    driver: Mutex<Option<Waker>>,
}

impl Ready {
    /// Puts `id` on the list and wakes the driver.
    pub fn push(&self, id: ConnId) {
        self.relist(id);
        if let Some(driver) = &*self.driver.lock().unwrap_or_else(PoisonError::into_inner) {
            driver.wake_by_ref();
        }
    }

    /// Puts `id` back on the list without waking anyone: the driver, which stopped
    /// reading it with bytes left, looks at the list again in its next round.
    pub fn relist(&self, id: ConnId) {
        self.ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
    }

    /// Swaps the listed connections into `into` (emptied first) and remembers `waker` as the
    /// driver's, for the next push.
    pub fn take(&self, into: &mut Vec<ConnId>, waker: &Waker) {
        {
            let mut driver = self.driver.lock().unwrap_or_else(PoisonError::into_inner);
            if !driver.as_ref().is_some_and(|w| w.will_wake(waker)) {
                *driver = Some(waker.clone());
            }
        }
        into.clear();
        std::mem::swap(
            &mut *self.ids.lock().unwrap_or_else(PoisonError::into_inner),
            into,
        );
    }

    /// The waker to poll connection `id`'s readiness with: waking it lists `id` and wakes
    /// the driver.
    #[must_use]
    pub fn waker(self: &Arc<Self>, id: ConnId) -> Waker {
        Waker::from(Arc::new(ConnWaker {
            id,
            ready: Arc::clone(self),
        }))
    }
}

/// The waker a connection's readiness is polled with: it lists the connection as ready.
#[derive(Debug)]
struct ConnWaker {
    id: ConnId,
    ready: Arc<Ready>,
}

impl Wake for ConnWaker {
    fn wake(self: Arc<Self>) {
        self.ready.push(self.id);
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.ready.push(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_woken_connection_is_listed_once_per_wake_and_wakes_the_driver() {
        let ready = Arc::new(Ready::default());
        let driver = Arc::new(Count(AtomicUsize::new(0)));
        let driver_waker = Waker::from(Arc::clone(&driver));
        let mut ids = Vec::new();
        ready.take(&mut ids, &driver_waker);
        assert!(ids.is_empty());
        ready.waker(ConnId(3)).wake_by_ref();
        ready.relist(ConnId(5));
        assert_eq!(driver.0.load(Ordering::Relaxed), 1, "relist wakes nobody");
        ready.take(&mut ids, &driver_waker);
        assert_eq!(ids, [ConnId(3), ConnId(5)]);
        ready.take(&mut ids, &driver_waker);
        assert!(ids.is_empty(), "taken once");
    }
}
