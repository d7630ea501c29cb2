//! Sign-in throttling: a growing, capped delay after wrong passwords, per account and per
//! client address.
//!
//! - The first [`FREE`] wrong passwords of an account (or from an address) cost nothing;
//!   each one after makes it wait [`BASE`], then twice as long, up to [`CAP`], counted
//!   from the last wrong password. A wrong password is forgotten after [`FORGET`] without
//!   another; a right one clears the account's and the address's count.
//! - While a wait runs, a sign-in is answered `429` with `Retry-After` at once, before any
//!   password is checked: no worker thread, no lock and no hash is spent on it, so other
//!   users are not slowed, and guesses cannot go faster than the delay allows.
//! - Never a lock-out: the wait is at most [`CAP`]. An address from which an account
//!   signed in before (since the server started) is not held back by that account's
//!   wait, only by its own address's: somebody guessing the admin's password elsewhere
//!   does not keep the admin out.
//!
//! - One password check at a time per client address ([`Throttle::one_check`]): a burst
//!   of guesses from one address, sent before any of them failed, queues behind its own
//!   checks (each re-asks for the wait once its turn comes) instead of taking every core
//!   from the users of other addresses.
//!
//! The counts live in the server's memory (a restart forgets them) behind one mutex held
//! for a map look-up, never across an await or a delay.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Wrong passwords allowed without a wait.
pub const FREE: u32 = 5;
/// The first wait.
pub const BASE: Duration = Duration::from_millis(500);
/// The longest wait.
pub const CAP: Duration = Duration::from_secs(30);
/// A count is forgotten this long after its last wrong password.
pub const FORGET: Duration = Duration::from_secs(15 * 60);
/// Above this many entries, forgotten ones are swept on the next wrong password.
const SWEEP_ABOVE: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

impl Failures {
    /// When the next sign-in may be tried.
    fn until(&self) -> Instant {
        if self.count <= FREE {
            return self.last;
        }
        let doublings = (self.count - FREE - 1).min(16);
        self.last + (BASE * 2u32.pow(doublings)).min(CAP)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(IpAddr),
}

#[derive(Default)]
struct Counts {
    failures: HashMap<Key, Failures>,
    /// (account, address) pairs that signed in, with when.
    known: HashMap<(String, IpAddr), Instant>,
}

/// The counts of one server, and the addresses' turns to have a password checked.
#[derive(Default)]
pub struct Throttle(
    Mutex<Counts>,
    Mutex<HashMap<IpAddr, Arc<tokio::sync::Semaphore>>>,
);

fn account(name: &str) -> Key {
    Key::Account(name.trim().to_lowercase())
}

impl Throttle {
    /// How long `user` from `from` must wait before a password is checked; `None` when it
    /// may be checked now.
    pub fn wait(&self, user: &str, from: IpAddr) -> Option<Duration> {
        let now = Instant::now();
        let counts = self.0.lock().expect("throttle");
        let known = counts
            .known
            .contains_key(&(user.trim().to_lowercase(), from));
        let mut keys = vec![Key::Address(from)];
        if !known {
            keys.push(account(user));
        }
        keys.iter()
            .filter_map(|k| counts.failures.get(k))
            .map(|f| f.until().saturating_duration_since(now))
            .max()
            .filter(|d| !d.is_zero())
    }

    /// Waits for `from`'s turn to have a password checked (one at a time per address);
    /// the turn lasts as long as the returned permit.
    pub async fn one_check(&self, from: IpAddr) -> tokio::sync::OwnedSemaphorePermit {
        let turn = {
            let mut turns = self.1.lock().expect("throttle turns");
            if turns.len() > SWEEP_ABOVE {
                // Addresses nobody holds or waits for.
                turns.retain(|_, t| Arc::strong_count(t) > 1);
            }
            turns
                .entry(from)
                .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(1)))
                .clone()
        };
        turn.acquire_owned().await.expect("never closed")
    }

    /// Counts a wrong password for `user` from `from`.
    pub fn failed(&self, user: &str, from: IpAddr) {
        let now = Instant::now();
        let mut counts = self.0.lock().expect("throttle");
        if counts.failures.len() > SWEEP_ABOVE {
            counts
                .failures
                .retain(|_, f| now.duration_since(f.last) < FORGET);
            counts
                .known
                .retain(|_, at| now.duration_since(*at) < FORGET * 96);
        }
        for key in [account(user), Key::Address(from)] {
            let f = counts.failures.entry(key).or_insert(Failures {
                count: 0,
                last: now,
            });
            if now.duration_since(f.last) >= FORGET {
                f.count = 0;
            }
            f.count = f.count.saturating_add(1);
            f.last = now;
        }
    }

    /// A right password: clears the counts of `user` and of `from`, and remembers that
    /// `user` signs in from `from`.
    pub fn succeeded(&self, user: &str, from: IpAddr) {
        let mut counts = self.0.lock().expect("throttle");
        counts.failures.remove(&account(user));
        counts.failures.remove(&Key::Address(from));
        counts
            .known
            .insert((user.trim().to_lowercase(), from), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_grow_from_the_sixth_wrong_password_and_are_capped() {
        let t0 = Instant::now();
        let wait = |count| {
            Failures { count, last: t0 }
                .until()
                .duration_since(t0)
                .as_millis()
        };
        assert_eq!(wait(5), 0);
        assert_eq!(wait(6), 500);
        assert_eq!(wait(7), 1000);
        assert_eq!(wait(10), 8000);
        assert_eq!(wait(12), 30_000);
        assert_eq!(wait(u32::MAX), 30_000);
    }

    #[tokio::test]
    async fn one_address_has_one_check_at_a_time() {
        let t = Throttle::default();
        let (a, b): (IpAddr, IpAddr) = ("127.0.0.1".parse().unwrap(), "::1".parse().unwrap());
        let first = t.one_check(a).await;
        let second = tokio::time::timeout(Duration::from_millis(50), t.one_check(a)).await;
        assert!(second.is_err(), "the same address waits for its turn");
        let other = tokio::time::timeout(Duration::from_millis(50), t.one_check(b)).await;
        assert!(other.is_ok(), "another address does not");
        drop(first);
        assert!(
            tokio::time::timeout(Duration::from_millis(50), t.one_check(a))
                .await
                .is_ok()
        );
    }

    #[test]
    fn accounts_and_addresses_are_held_apart() {
        let t = Throttle::default();
        let (a, b, c): (IpAddr, IpAddr, IpAddr) = (
            "127.0.0.1".parse().unwrap(),
            "127.0.0.2".parse().unwrap(),
            "::1".parse().unwrap(),
        );
        t.succeeded("Admin", c);
        for _ in 0..FREE {
            t.failed("admin", a);
            assert_eq!(t.wait("admin", a), None);
        }
        t.failed("admin", a);
        assert!(t.wait("admin", a).is_some_and(|d| d <= BASE));
        // The account waits from another address, the address for another account.
        assert!(t.wait("admin", b).is_some());
        assert!(t.wait("other", a).is_some());
        // Not another account from another address, nor the account from a known address.
        assert_eq!(t.wait("other", b), None);
        assert_eq!(t.wait("ADMIN", c), None);
        t.succeeded("admin", c);
        assert_eq!(t.wait("admin", b), None);
    }
}
