//! The sign-in limiter. Attempts are counted per client address, and per
//! username *at* that address: a stranger guessing an administrator's
//! password runs out of attempts without locking the administrator out
//! elsewhere. Usernames are kept only as fixed-size hashes, and keys that
//! have gone idle are evicted, so what the limiter holds stays small
//! whatever strangers send.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};

/// Longest username a sign-in may name, in bytes; anything longer is refused
/// before it is hashed, counted or looked up (accounts' own names are far
/// shorter).
pub const MAX_USERNAME_BYTES: usize = 150;

/// A username as the limiter keeps it: the hash of its lowercase form.
type UsernameKey = [u8; 32];

type Keyed<K, C> =
    RateLimiter<K, DefaultKeyedStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Slows down password guessing: either running out refuses the attempt.
pub struct LoginLimiter<C: Clock = DefaultClock> {
    clock: C,
    per_ip: Keyed<IpAddr, C>,
    per_username_at_ip: Keyed<(UsernameKey, Option<IpAddr>), C>,
}

impl LoginLimiter {
    /// `burst` attempts at once, then one more every `refill`, per key.
    pub fn new(ip_burst: u32, username_burst: u32, refill: Duration) -> Self {
        Self::with_clock(ip_burst, username_burst, refill, DefaultClock::default())
    }

    /// Evicts idle keys every `period` while the limiter is in use.
    pub fn evict_idle_every(self: &Arc<Self>, period: Duration) {
        let limiter: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(limiter) = limiter.upgrade() else {
                    return;
                };
                limiter.evict_idle();
            }
        });
    }
}

impl<C: Clock + Clone> LoginLimiter<C> {
    /// The limiter on a given clock (tests move a fake one).
    pub fn with_clock(ip_burst: u32, username_burst: u32, refill: Duration, clock: C) -> Self {
        let quota = |burst: u32| {
            Quota::with_period(refill)
                .expect("refill period is not zero")
                .allow_burst(NonZeroU32::new(burst.max(1)).expect("burst is at least one"))
        };
        Self {
            per_ip: RateLimiter::new(quota(ip_burst), Default::default(), clock.clone()),
            per_username_at_ip: RateLimiter::new(
                quota(username_burst),
                Default::default(),
                clock.clone(),
            ),
            clock,
        }
    }

    /// Counts one attempt. `Err` holds how long to wait before the next.
    /// The caller has refused usernames over [`MAX_USERNAME_BYTES`].
    pub fn check(&self, ip: Option<IpAddr>, username: &str) -> Result<(), Duration> {
        let now = self.clock.now();
        if let Some(ip) = ip {
            self.per_ip
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(now))?;
        }
        let username: UsernameKey = Sha256::digest(username.to_lowercase().as_bytes()).into();
        self.per_username_at_ip
            .check_key(&(username, ip))
            .map_err(|n| n.wait_time_from(now))
    }

    /// Forgets keys whose attempts have all been refilled (they would be
    /// fresh anyway) and gives back the memory they took.
    pub fn evict_idle(&self) {
        self.per_ip.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_username_at_ip.retain_recent();
        self.per_username_at_ip.shrink_to_fit();
    }

    /// How many addresses and usernames the limiter holds.
    pub fn tracked_keys(&self) -> usize {
        self.per_ip.len() + self.per_username_at_ip.len()
    }
}

impl Default for LoginLimiter {
    /// 20 attempts per address and 5 per username at an address, then one
    /// per 12 s.
    fn default() -> Self {
        Self::new(20, 5, Duration::from_secs(12))
    }
}

#[cfg(test)]
mod tests {
    use governor::clock::FakeRelativeClock;

    use super::*;

    const HERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1)));
    const THERE: Option<IpAddr> = Some(IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)));

    #[test]
    fn usernames_run_out_independently_of_case() {
        let limiter = LoginLimiter::new(100, 2, Duration::from_secs(60));
        assert!(limiter.check(HERE, "alice").is_ok());
        assert!(limiter.check(HERE, "ALICE").is_ok());
        assert!(limiter.check(HERE, "alice").is_err());
        assert!(limiter.check(HERE, "bob").is_ok());
    }

    #[test]
    fn a_username_run_out_at_one_address_is_open_at_another() {
        let limiter = LoginLimiter::new(100, 2, Duration::from_secs(60));
        assert!(limiter.check(HERE, "alice").is_ok());
        assert!(limiter.check(HERE, "alice").is_ok());
        assert!(limiter.check(HERE, "alice").is_err());
        assert!(limiter.check(THERE, "alice").is_ok());
    }

    #[test]
    fn addresses_run_out() {
        let limiter = LoginLimiter::new(2, 100, Duration::from_secs(60));
        assert!(limiter.check(HERE, "a").is_ok());
        assert!(limiter.check(HERE, "b").is_ok());
        let wait = limiter.check(HERE, "c").unwrap_err();
        assert!(wait > Duration::ZERO);
    }

    #[test]
    fn idle_keys_are_evicted_and_busy_ones_kept() {
        let clock = FakeRelativeClock::default();
        let limiter = LoginLimiter::with_clock(20, 5, Duration::from_secs(12), clock.clone());
        for i in 0..20 {
            limiter.check(HERE, &format!("user{i}")).unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 21);

        // Not yet refilled: nothing may be forgotten.
        clock.advance(Duration::from_secs(12));
        limiter.evict_idle();
        assert_eq!(limiter.tracked_keys(), 21);

        // Every attempt refilled: nothing worth keeping.
        clock.advance(Duration::from_secs(20 * 12));
        limiter.evict_idle();
        assert_eq!(limiter.tracked_keys(), 0);
    }
}
