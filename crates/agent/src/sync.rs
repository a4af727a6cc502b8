//! Locks that outlive a panicked holder. The agent's shared state (the latest sample, the
//! findings, open incidents) is replaced whole by its writers, so a value seen after a
//! panic elsewhere is still a consistent one; taking it keeps the other stages running
//! instead of spreading one panic to every thread through `PoisonError`.

use std::sync::{Mutex, MutexGuard, PoisonError};

pub trait Locked<T> {
    /// The guard, whether or not a previous holder panicked.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::Locked;
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
