//! Giving the CPU to a thread that waits for it, between messages, on the threads that ask
//! for it: the replication workers (src/napi/worker.rs).
//!
//! With more busy threads than cores, a thread woken for the JS event loop waits until
//! the kernel preempts the one running, at its next tick: up to 4 ms here, the event loop's
//! late ticks (docs/DECISIONS.md §73). A worker that yields every 100 µs while it holds the
//! engine lets it in within that. A yield with nothing waiting returns at once.

use std::cell::Cell;
use std::time::{Duration, Instant};

thread_local! {
    /// how often this thread yields while it works, if it does
    static EVERY: Cell<Option<Duration>> = const { Cell::new(None) };
    static LAST: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// This thread yields between messages, at most every `every`.
pub fn yield_every(every: Duration) {
    EVERY.with(|e| e.set(Some(every)));
}

/// Between two messages: yields if this thread asked to and its time since the last has
/// passed. `now` is the caller's clock reading, so a message costs no second one.
pub fn point(now: Instant) {
    let Some(every) = EVERY.with(Cell::get) else {
        return;
    };
    LAST.with(|last| {
        if last.get().is_some_and(|t| now.duration_since(t) < every) {
            return;
        }
        std::thread::yield_now();
        last.set(Some(Instant::now()));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_thread_that_asked_yields() {
        let before = Instant::now();
        point(before);
        assert!(LAST.with(Cell::get).is_none(), "this thread did not ask");
        std::thread::spawn(|| {
            yield_every(Duration::from_secs(3600));
            let start = Instant::now();
            point(start);
            let first = LAST.with(Cell::get);
            assert!(first.is_some(), "the first point yields");
            point(Instant::now());
            assert_eq!(
                LAST.with(Cell::get),
                first,
                "no second yield within the hour"
            );
        })
        .join()
        // a test's own thread: it panics only when one of its assertions fails
        .expect("the thread ran");
    }
}
