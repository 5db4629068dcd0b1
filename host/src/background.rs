//! The service's background loops (catch-up sweeps, digest schedule checks): spawned beside the
//! workers, told to stop together at shutdown, each between two of its steps.

use std::future::Future;

use tokio::sync::watch;
use tokio::task::JoinSet;

pub struct Loops {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
}

impl Default for Loops {
    fn default() -> Self {
        Loops {
            stop: watch::channel(false).0,
            tasks: JoinSet::new(),
        }
    }
}

impl Loops {
    /// Runs `body` with a receiver that changes when the loops are told to stop.
    pub fn spawn<F, Fut>(&mut self, body: F)
    where
        F: FnOnce(watch::Receiver<bool>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(body(self.stop.subscribe()));
    }

    /// Tells every loop to stop and waits for them.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
    }
}
