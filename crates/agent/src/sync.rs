//! Locks that outlive a panicked holder. The agent's shared state (the latest sample, the
//! findings, open incidents) is replaced whole by its writers, so a value seen after a
//! panic elsewhere is still a consistent one; taking it keeps the other stages running
//! instead of spreading one panic to every thread through `PoisonError`.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

pub trait Locked<T> {
    /// The guard, whether or not a previous holder panicked.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A value one stage publishes and others read: replaced whole by its writer, read as an
/// `Arc` snapshot, so no reader holds a lock while it works with the value (the
/// Prometheus-style "publish a snapshot" rather than a shared mutable bag).
pub struct Published<T>(RwLock<Arc<T>>);

impl<T> Published<T> {
    pub fn new(value: T) -> Published<T> {
        Published(RwLock::new(Arc::new(value)))
    }

    /// The current snapshot.
    pub fn get(&self) -> Arc<T> {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the snapshot; readers holding the old one keep it until they drop it.
    pub fn publish(&self, value: T) {
        self.publish_arc(Arc::new(value));
    }

    pub fn publish_arc(&self, value: Arc<T>) {
        *self.0.write().unwrap_or_else(PoisonError::into_inner) = value;
    }
}

impl<T: Default> Default for Published<T> {
    fn default() -> Self {
        Published::new(T::default())
    }
}

#[cfg(test)]
mod tests {
    use super::{Locked, Published};

    #[test]
    fn a_reader_keeps_its_snapshot_while_a_new_one_is_published() {
        let published = Published::new(vec![1, 2]);
        let before = published.get();
        published.publish(vec![3]);
        assert_eq!(*before, vec![1, 2]);
        assert_eq!(*published.get(), vec![3]);
    }

    use std::sync::{Arc, Mutex};

    #[test]
    fn a_panicked_holder_does_not_poison_the_value_for_others() {
        let shared = Arc::new(Mutex::new(vec![1]));
        let holder = Arc::clone(&shared);
        let result = std::thread::spawn(move || {
            let mut guard = holder.lock().unwrap();
            guard.push(2);
            panic!("a stage panicked while holding the lock");
        })
        .join();
        assert!(result.is_err());
        assert!(shared.lock().is_err(), "std's lock reports the poison");
        assert_eq!(*shared.locked(), vec![1, 2]);
    }
}
