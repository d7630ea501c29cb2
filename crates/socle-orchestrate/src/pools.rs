//! Concurrency pools: named numbers of slots (`pools:` in `socle.yml`) shared by every
//! pipeline run of a process (the scheduler daemon runs them all). A task with `pool: x`
//! holds one slot of `x` while an attempt runs; when tasks wait for a slot, the one with
//! the highest `priority` gets it first (then the one that waited longest).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// The pools of a project.
#[derive(Debug, Default)]
pub struct Pools {
    pools: BTreeMap<String, Arc<Pool>>,
}

impl Pools {
    pub fn new(slots: &BTreeMap<String, u32>) -> Arc<Self> {
        Arc::new(Self {
            pools: slots
                .iter()
                .map(|(name, n)| {
                    (
                        name.clone(),
                        Arc::new(Pool {
                            state: Mutex::new(State {
                                free: *n,
                                waiting: BinaryHeap::new(),
                                seq: 0,
                            }),
                        }),
                    )
                })
                .collect(),
        })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Pool>> {
        self.pools.get(name)
    }
}

#[derive(Debug)]
pub struct Pool {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    free: u32,
    waiting: BinaryHeap<Waiter>,
    seq: u64,
}

#[derive(Debug)]
struct Waiter {
    priority: i32,
    seq: u64,
    tx: oneshot::Sender<Slot>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Waiter {}
impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Waiter {
    /// Higher priority first, then the earlier arrival.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A held slot; dropping it gives the slot to the next waiter.
#[derive(Debug)]
pub struct Slot {
    pool: Arc<Pool>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        Pool::release(&self.pool);
    }
}

impl Pool {
    /// Waits for a slot.
    pub async fn acquire(self: &Arc<Self>, priority: i32) -> Slot {
        let rx = {
            let mut s = self.state.lock().expect("pool lock");
            if s.free > 0 && s.waiting.is_empty() {
                s.free -= 1;
                return Slot { pool: self.clone() };
            }
            let (tx, rx) = oneshot::channel();
            s.seq += 1;
            let seq = s.seq;
            s.waiting.push(Waiter { priority, seq, tx });
            rx
        };
        // The sender is only dropped with the pool, which outlives its users.
        rx.await.expect("pool alive")
    }

    /// Slots free now (for tests and metrics).
    pub fn free(&self) -> u32 {
        self.state.lock().expect("pool lock").free
    }

    fn release(pool: &Arc<Pool>) {
        loop {
            let waiter = {
                let mut s = pool.state.lock().expect("pool lock");
                match s.waiting.pop() {
                    Some(w) => w,
                    None => {
                        s.free += 1;
                        return;
                    }
                }
            };
            match waiter.tx.send(Slot { pool: pool.clone() }) {
                Ok(()) => return,
                // That waiter gave up; the slot (not dropped: that would release again)
                // goes to the next one.
                Err(slot) => std::mem::forget(slot),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn slots_go_to_the_highest_priority_then_the_longest_waiting() {
        let pools = Pools::new(&[("db".to_string(), 1)].into());
        let pool = pools.get("db").unwrap().clone();
        let held = pool.acquire(0).await;
        assert_eq!(pool.free(), 0);
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut handles = Vec::new();
        for (name, priority) in [("low", 1), ("high", 10), ("mid", 5), ("high2", 10)] {
            let (pool, order) = (pool.clone(), order.clone());
            handles.push(tokio::spawn(async move {
                let _slot = pool.acquire(priority).await;
                order.lock().unwrap().push(name);
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }));
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        // A waiter that gives up does not swallow a slot.
        let quitter = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let _ = pool.acquire(100).await;
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        quitter.abort();
        let _ = quitter.await;
        drop(held);
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["high", "high2", "mid", "low"]);
        assert_eq!(pool.free(), 1);
    }
}
