//! A rate limit per bearer token on the matching endpoints (`/v1/match`
//! and the HMA ones): the distance oracle.
//!
//! A matcher that answers as often as asked lets a caller tune an altered
//! copy of a listed image, one change at a time, until it stops matching.
//! The token limits how many callers there are; this limits how fast each
//! one can probe: a token bucket per token, `rate` requests a second with
//! bursts of up to `rate` (one second's worth), answered 429 with
//! `Retry-After` beyond. Without a token configured (loopback development),
//! every caller shares one bucket. `--rate-limit 0` (the default) is no
//! limit. Buckets are held in memory, one per token seen (the tokens are
//! the operator's, so there are few).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Token buckets, one per bearer token.
#[derive(Debug)]
pub struct RateLimit {
    rate: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimit {
    /// `per_second` requests a second per token; 0 is no limit.
    pub fn new(per_second: u32) -> Self {
        RateLimit {
            rate: f64::from(per_second),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `token`'s bucket at `now`: `Ok` when allowed,
    /// else the whole seconds until one is.
    pub fn take(&self, token: &str, now: Instant) -> Result<(), u64> {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let (level, last) = buckets.entry(token.to_owned()).or_insert((self.rate, now));
        let refill = now.saturating_duration_since(*last).as_secs_f64() * self.rate;
        *level = (*level + refill).min(self.rate);
        *last = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *level) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn each_token_gets_its_rate_and_a_burst_of_one_second() {
        let limit = RateLimit::new(2);
        let t0 = Instant::now();
        assert_eq!(limit.take("a", t0), Ok(()));
        assert_eq!(limit.take("a", t0), Ok(()));
        assert_eq!(limit.take("a", t0), Err(1));
        // Another token has its own bucket.
        assert_eq!(limit.take("b", t0), Ok(()));
        // Half a second refills one request.
        assert_eq!(limit.take("a", t0 + Duration::from_millis(500)), Ok(()));
        assert!(limit.take("a", t0 + Duration::from_millis(500)).is_err());
        // A long pause refills no more than the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(limit.take("a", later), Ok(()));
        assert_eq!(limit.take("a", later), Ok(()));
        assert!(limit.take("a", later).is_err());
        // 0 is no limit.
        let none = RateLimit::new(0);
        assert!((0..1000).all(|_| none.take("a", t0).is_ok()));
    }
}
