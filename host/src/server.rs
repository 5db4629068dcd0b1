//! A running vidhook: the HTTP server plus the workers, over one [`App`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::config::Config;
use crate::jobs::{spawn_workers, Workers};
use crate::store::Backend;

pub struct Server {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    http: tokio::task::JoinHandle<std::io::Result<()>>,
    stop_http: tokio::sync::oneshot::Sender<()>,
    workers: Workers,
    /// Catch-up sweeps and digest schedule checks.
    loops: crate::background::Loops,
}

impl Server {
    /// Binds, builds the app, resumes interrupted work, and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let listener = crate::listener::bind(config.listen)
            .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
        let addr = listener.local_addr()?;
        let public_url = config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let workers = config.workers;
        crate::metrics::install();
        let app = App::build(config, public_url).await?;
        if app.store.backend() == Backend::Sqlite {
            // One process owns an SQLite queue: any lease still recorded belongs to a process
            // that died, and its render resumes now from its last committed step.
            app.store.release_catch_up_leases().await?;
            let released = app.store.release_all_leases().await?;
            if released > 0 {
                tracing::info!(released, "resuming renders interrupted by a previous stop");
            }
        }
        // The configuration (budgets) may have changed: held renders look again now.
        app.store
            .recheck_held(crate::jobs::Category::OverBudget.as_str())
            .await?;
        let router = crate::ingress::router(app.clone());
        let (stop_http, stopped) = tokio::sync::oneshot::channel::<()>();
        let limits = app.config.listener.clone();
        let http = tokio::spawn(crate::listener::serve(listener, router, limits, stopped));
        let workers = spawn_workers(app.clone(), workers);
        let mut loops = crate::background::Loops::default();
        crate::catch_up::spawn(&app, &mut loops);
        crate::digests::spawn(&app, &mut loops);
        crate::media::retention::spawn(&app, &mut loops);
        Ok(Server {
            app,
            addr,
            http,
            stop_http,
            workers,
            loops,
        })
    }

    /// Stops accepting requests and claiming work; in-flight steps get `grace` to commit, then
    /// are abandoned with their leases released (see [`Workers::shutdown`]).
    pub async fn shutdown(self, grace: Duration) {
        let _ = self.stop_http.send(());
        self.loops.shutdown().await;
        self.workers.shutdown(grace).await;
        // Requests in flight finish within the same grace; open keep-alive connections close.
        let _ = tokio::time::timeout(grace, self.http).await;
    }
}
