//! One rate limiter and one concurrency cap per provider, shared by every worker of this
//! process, in front of every call to it (submits and status reads alike). Provider 429s are
//! still possible (other clients share the account); they are honoured by the retry policy.

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Semaphore;

use super::{JobStatus, Provider, ProviderError, SubmitRequest, Submitted};

pub struct Throttled {
    inner: Arc<dyn Provider>,
    limiter: DefaultDirectRateLimiter,
    in_flight: Semaphore,
}

impl Throttled {
    /// At most `per_minute` calls a minute (in a steady flow, no burst beyond one call) and
    /// `concurrent` at once.
    pub fn new(inner: Arc<dyn Provider>, per_minute: u32, concurrent: usize) -> Throttled {
        let per_minute = NonZeroU32::new(per_minute.max(1)).expect("at least 1");
        Throttled {
            inner,
            limiter: RateLimiter::direct(
                Quota::per_minute(per_minute).allow_burst(NonZeroU32::MIN),
            ),
            in_flight: Semaphore::new(concurrent.max(1)),
        }
    }

    async fn admit(&self) -> tokio::sync::SemaphorePermit<'_> {
        let permit = self
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        self.limiter.until_ready().await;
        permit
    }
}

#[async_trait::async_trait]
impl Provider for Throttled {
    fn name(&self) -> &'static str {
        self.inner.name()
    }
    fn model(&self) -> &'static str {
        self.inner.model()
    }
    fn max_audio_seconds(&self, resolution: super::Resolution) -> f64 {
        self.inner.max_audio_seconds(resolution)
    }
    fn price(&self) -> super::Price {
        self.inner.price()
    }
    fn honours_idempotency_key(&self) -> bool {
        self.inner.honours_idempotency_key()
    }
    fn following(&self) -> super::Following {
        self.inner.following()
    }
    async fn verify_webhook(&self, headers: &http::HeaderMap, body: &[u8]) -> Result<(), String> {
        self.inner.verify_webhook(headers, body).await
    }
    fn announced_job(&self, body: &[u8]) -> Option<String> {
        self.inner.announced_job(body)
    }
    async fn submit(&self, request: &SubmitRequest) -> Result<Submitted, ProviderError> {
        let _permit = self.admit().await;
        self.inner.submit(request).await
    }
    async fn status(&self, job_id: &str) -> Result<JobStatus, ProviderError> {
        let _permit = self.admit().await;
        self.inner.status(job_id).await
    }
    async fn find_job(
        &self,
        audio_key: &str,
        since_ms: i64,
    ) -> Result<Option<String>, ProviderError> {
        let _permit = self.admit().await;
        self.inner.find_job(audio_key, since_ms).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Counts calls in flight and their peak; each call takes 50 ms.
    #[derive(Default)]
    struct Slow {
        now: AtomicUsize,
        peak: AtomicUsize,
    }

    #[async_trait::async_trait]
    impl Provider for Slow {
        fn name(&self) -> &'static str {
            "slow"
        }
        fn model(&self) -> &'static str {
            "slow"
        }
        fn price(&self) -> super::super::Price {
            super::super::Price::Free
        }
        fn honours_idempotency_key(&self) -> bool {
            true
        }
        fn following(&self) -> crate::generation::Following {
            crate::generation::Following::from_secs(false, 1, 1, None)
        }
        async fn submit(&self, _: &SubmitRequest) -> Result<Submitted, ProviderError> {
            unreachable!()
        }
        async fn status(&self, _: &str) -> Result<JobStatus, ProviderError> {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.now.fetch_sub(1, Ordering::SeqCst);
            Ok(JobStatus::Pending("processing".into()))
        }
    }

    #[tokio::test]
    async fn caps_concurrency_and_rate() {
        let slow = Arc::new(Slow::default());
        // 600 a minute = one every 100 ms; two at a time.
        let throttled = Arc::new(Throttled::new(slow.clone(), 600, 2));
        let started = std::time::Instant::now();
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let t = throttled.clone();
                tokio::spawn(async move { t.status("job").await })
            })
            .collect();
        for call in calls {
            call.await.unwrap().unwrap();
        }
        assert!(
            slow.peak.load(Ordering::SeqCst) <= 2,
            "peak {}",
            slow.peak.load(Ordering::SeqCst)
        );
        // Six calls at one per 100 ms: the last starts ≥ 500 ms after the first.
        assert!(
            started.elapsed() >= Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
    }
}
