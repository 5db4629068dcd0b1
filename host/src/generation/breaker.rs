//! A circuit breaker per video host: after consecutive submits the host provably did not accept
//! (refused connections, documented not-billed refusals, rate limits past the wait budget), the
//! host is skipped for a cool-off, so renders go straight to the next host of their source
//! instead of each finding out again. After the cool-off one submit is let through (half open):
//! its success closes the breaker, its failure opens it again. Ambiguous outcomes (a job may
//! exist) never count: they say nothing about whether the host is refusing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Consecutive provable refusals that open the breaker.
pub const OPENS_AFTER: u32 = 3;
/// How long an open breaker skips its host.
pub const COOL_OFF: Duration = Duration::from_secs(30);

#[derive(Debug, Default)]
pub struct Breaker {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    failures: u32,
    open_until: Option<Instant>,
}

impl Breaker {
    /// True while the host is skipped (open and cooling off).
    pub fn is_open(&self) -> bool {
        self.is_open_at(Instant::now())
    }

    fn is_open_at(&self, now: Instant) -> bool {
        let state = self.state.lock().expect("never poisoned");
        state.open_until.is_some_and(|until| now < until)
    }

    /// A submit the host accepted: the breaker closes.
    pub fn succeeded(&self) {
        *self.state.lock().expect("never poisoned") = State::default();
    }

    /// A submit the host provably did not accept. Returns true when this opened the breaker.
    pub fn refused(&self) -> bool {
        self.refused_at(Instant::now())
    }

    fn refused_at(&self, now: Instant) -> bool {
        let mut state = self.state.lock().expect("never poisoned");
        state.failures += 1;
        let half_open = state.open_until.is_some_and(|until| now >= until);
        if state.failures >= OPENS_AFTER || half_open {
            state.open_until = Some(now + COOL_OFF);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_consecutive_refusals_and_lets_one_through_after_the_cool_off() {
        let breaker = Breaker::default();
        let start = Instant::now();
        assert!(!breaker.refused_at(start));
        assert!(!breaker.refused_at(start));
        assert!(!breaker.is_open_at(start));
        assert!(breaker.refused_at(start), "the third opens it");
        assert!(breaker.is_open_at(start + COOL_OFF / 2));
        // Half open: one try goes through; refused again, it opens again at once.
        let later = start + COOL_OFF;
        assert!(!breaker.is_open_at(later));
        assert!(breaker.refused_at(later));
        assert!(breaker.is_open_at(later + COOL_OFF / 2));
        // A success closes it and forgets the count.
        breaker.succeeded();
        assert!(!breaker.is_open_at(later));
        assert!(!breaker.refused_at(later));
    }
}
