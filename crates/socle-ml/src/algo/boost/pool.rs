//! A pool of worker threads kept for a whole fit, so that each parallel step (a node's
//! histograms and split search, feature by feature) costs a wake-up rather than starting
//! threads: on a busy or virtualised machine, starting and joining a thread can take
//! hundreds of microseconds, more than the work of a small node.
//!
//! The workers live in a `std::thread::scope` ([`with_pool`]). A step ([`Pool::run`]) is a
//! job `f(i)` over items `0..n`: the calling thread and the workers claim items one at a
//! time, so a worker that wakes late holds nobody up, and `run` returns once every item is
//! done. Each item is processed whole by one thread: results do not depend on the number of
//! threads. A job shares data through `Sync` state that outlives the pool (locks for what
//! the calling thread changes between steps).

use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

/// A step's work: called once for each item.
pub(crate) type Job<'env> = Arc<dyn Fn(usize) + Send + Sync + 'env>;

/// The step being run, and who has done what.
struct Board<'env> {
    /// Incremented for each step, so that a worker never takes items of a later step for
    /// the one it read.
    step: u64,
    job: Option<Job<'env>>,
    items: usize,
    next: usize,
    finished: usize,
    /// A panic of a worker's item, passed on to the caller of `run`.
    panic: Option<Box<dyn std::any::Any + Send>>,
    shutdown: bool,
}

/// Worker threads and the step they share.
pub(crate) struct Pool<'env> {
    board: Mutex<Board<'env>>,
    wake: Condvar,
    done: Condvar,
    workers: usize,
}

/// Runs `f` with a pool of `n_threads − 1` workers (none when `n_threads ≤ 1`), which are
/// stopped and joined when `f` returns or panics.
pub(crate) fn with_pool<'env, R>(n_threads: usize, f: impl FnOnce(&Pool<'env>) -> R) -> R {
    let pool = Pool {
        board: Mutex::new(Board {
            step: 0,
            job: None,
            items: 0,
            next: 0,
            finished: 0,
            panic: None,
            shutdown: false,
        }),
        wake: Condvar::new(),
        done: Condvar::new(),
        workers: n_threads.saturating_sub(1),
    };
    std::thread::scope(|s| {
        for _ in 0..pool.workers {
            s.spawn(|| pool.work());
        }
        // Stops the workers however `f` ends, so that the scope can join them.
        struct Stop<'p, 'env>(&'p Pool<'env>);
        impl Drop for Stop<'_, '_> {
            fn drop(&mut self) {
                self.0.lock().shutdown = true;
                self.0.wake.notify_all();
            }
        }
        let _stop = Stop(&pool);
        f(&pool)
    })
}

impl<'env> Pool<'env> {
    /// Whether there are workers besides the calling thread.
    pub(crate) fn is_parallel(&self) -> bool {
        self.workers > 0
    }

    fn lock(&self) -> MutexGuard<'_, Board<'env>> {
        self.board.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `job(i)` for every `i` in `0..items`, with the workers; returns when all are
    /// done. A panic in an item is raised here.
    pub(crate) fn run(&self, items: usize, job: Job<'env>) {
        if self.workers == 0 || items <= 1 {
            for i in 0..items {
                job(i);
            }
            return;
        }
        let step = {
            let mut b = self.lock();
            b.step += 1;
            b.job = Some(job.clone());
            b.items = items;
            b.next = 0;
            b.finished = 0;
            b.step
        };
        self.wake.notify_all();
        self.claim_and_run(step, &job);
        let mut b = self.lock();
        while b.finished < b.items {
            b = self.done.wait(b).unwrap_or_else(PoisonError::into_inner);
        }
        b.job = None;
        if let Some(p) = b.panic.take() {
            drop(b);
            resume_unwind(p);
        }
    }

    /// Takes items of step `step` until there are none left.
    fn claim_and_run(&self, step: u64, job: &Job<'env>) {
        loop {
            let i = {
                let mut b = self.lock();
                if b.step != step || b.next >= b.items {
                    return;
                }
                b.next += 1;
                b.next - 1
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| job(i)));
            let mut b = self.lock();
            if let Err(p) = outcome {
                b.panic.get_or_insert(p);
            }
            b.finished += 1;
            if b.finished == b.items {
                self.done.notify_all();
            }
        }
    }

    /// A worker's loop: wait for a step, help with it, until shut down.
    fn work(&self) {
        let mut seen = 0;
        loop {
            let (step, job) = {
                let mut b = self.lock();
                while !b.shutdown && (b.step == seen || b.job.is_none()) {
                    b = self.wake.wait(b).unwrap_or_else(PoisonError::into_inner);
                }
                if b.shutdown {
                    return;
                }
                seen = b.step;
                match &b.job {
                    Some(job) => (b.step, job.clone()),
                    None => continue,
                }
            };
            self.claim_and_run(step, &job);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn every_item_of_every_step_runs_once() {
        let counts: Vec<AtomicUsize> = (0..50).map(|_| AtomicUsize::new(0)).collect();
        for threads in [1, 2, 4] {
            with_pool(threads, |pool| {
                for step in 0..200 {
                    let n = step % 50 + 1;
                    let c = &counts;
                    pool.run(
                        n,
                        Arc::new(move |i| {
                            c[i].fetch_add(1, Ordering::Relaxed);
                        }),
                    );
                }
            });
        }
        // Item i runs in the steps with n > i: 200 − 4i of them per pool size (i < 50).
        for (i, c) in counts.iter().enumerate() {
            assert_eq!(c.load(Ordering::Relaxed), 3 * (200 - 4 * i), "item {i}");
        }
    }

    #[test]
    fn a_panicking_item_reaches_the_caller_and_the_pool_still_stops() {
        let caught = catch_unwind(AssertUnwindSafe(|| {
            with_pool(2, |pool| {
                pool.run(8, Arc::new(|i| assert!(i != 5, "item five")));
            })
        }));
        assert!(caught.is_err());
    }
}
