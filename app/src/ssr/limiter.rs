use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

/// Slows down password guessing: attempts are counted per client address
/// and per username, and either running out refuses the attempt.
pub struct LoginLimiter {
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_username: DefaultKeyedRateLimiter<String>,
}

impl LoginLimiter {
    /// `burst` attempts at once, then one more every `refill`, per key.
    pub fn new(ip_burst: u32, username_burst: u32, refill: Duration) -> Self {
        let quota = |burst: u32| {
            Quota::with_period(refill)
                .expect("refill period is not zero")
                .allow_burst(NonZeroU32::new(burst.max(1)).expect("burst is at least one"))
        };
        Self {
            per_ip: DefaultKeyedRateLimiter::keyed(quota(ip_burst)),
            per_username: DefaultKeyedRateLimiter::keyed(quota(username_burst)),
        }
    }

    /// Counts one attempt. `Err` holds how long to wait before the next.
    pub fn check(&self, ip: Option<IpAddr>, username: &str) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        if let Some(ip) = ip {
            self.per_ip
                .check_key(&ip)
                .map_err(|n| n.wait_time_from(now))?;
        }
        self.per_username
            .check_key(&username.to_lowercase())
            .map_err(|n| n.wait_time_from(now))
    }
}

impl Default for LoginLimiter {
    /// 20 attempts per address and 5 per username, then one per 12 s.
    fn default() -> Self {
        Self::new(20, 5, Duration::from_secs(12))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_run_out_independently_of_case() {
        let limiter = LoginLimiter::new(100, 2, Duration::from_secs(60));
        let ip = Some("127.0.0.1".parse().unwrap());
        assert!(limiter.check(ip, "alice").is_ok());
        assert!(limiter.check(ip, "ALICE").is_ok());
        assert!(limiter.check(ip, "alice").is_err());
        assert!(limiter.check(ip, "bob").is_ok());
    }

    #[test]
    fn addresses_run_out() {
        let limiter = LoginLimiter::new(2, 100, Duration::from_secs(60));
        let ip = Some("10.0.0.1".parse().unwrap());
        assert!(limiter.check(ip, "a").is_ok());
        assert!(limiter.check(ip, "b").is_ok());
        let wait = limiter.check(ip, "c").unwrap_err();
        assert!(wait > Duration::ZERO);
    }
}
