//! A worker's claim on one render while a step runs. The heartbeat renews it; the step asks it
//! two questions: "may I start the paid call?" (not if the lease was lost or a renewal failed),
//! and, once the paid call has started, the heartbeat no longer cancels the step when the lease
//! is lost: the call's answer (a paid job's id) must be recorded, not dropped mid-flight.

use std::sync::atomic::{AtomicBool, Ordering};

pub struct Lease {
    owner: String,
    /// Another worker owns the render now (a renewal matched no row).
    lost: AtomicBool,
    /// A renewal failed (database unreachable): the lease may expire under us.
    doubtful: AtomicBool,
    /// The paid call has started: from here the step runs to its end whatever the lease does.
    paying: AtomicBool,
}

impl Lease {
    pub fn new(owner: &str) -> Lease {
        Lease {
            owner: owner.to_string(),
            lost: AtomicBool::new(false),
            doubtful: AtomicBool::new(false),
            paying: AtomicBool::new(false),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub(super) fn renewed(&self) {
        self.doubtful.store(false, Ordering::SeqCst);
    }

    pub(super) fn renewal_failed(&self) {
        self.doubtful.store(true, Ordering::SeqCst);
    }

    /// Marks the lease lost; true if the step may be cancelled (it is not in the paid call).
    pub(super) fn lose(&self) -> bool {
        self.lost.store(true, Ordering::SeqCst);
        !self.paying.load(Ordering::SeqCst)
    }

    /// Called right before the paid call. False (stop, commit nothing) when the lease was lost
    /// or its last renewal failed; true marks the step as not cancellable from now on.
    pub fn begin_paid_call(&self) -> bool {
        if self.lost.load(Ordering::SeqCst) || self.doubtful.load(Ordering::SeqCst) {
            return false;
        }
        self.paying.store(true, Ordering::SeqCst);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_or_doubtful_lease_stops_the_paid_call_and_a_started_call_is_never_cancelled() {
        let lease = Lease::new("w/0");
        lease.renewal_failed();
        assert!(!lease.begin_paid_call(), "renewal failed: do not pay");
        lease.renewed();
        assert!(lease.begin_paid_call());
        assert!(!lease.lose(), "in the paid call: not cancellable");

        let lost = Lease::new("w/1");
        assert!(lost.lose(), "before the paid call: cancel");
        assert!(!lost.begin_paid_call());
    }
}
