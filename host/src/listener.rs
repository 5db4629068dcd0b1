//! The listener: who may hold a connection, and for how long. Slow clients must not lock out the
//! CMSs: a client gets `header_read_timeout_secs` to send its request headers (at most
//! `max_header_bytes` of them) and `body_read_timeout_secs` to send its body; at most
//! `max_connections` connections are open, and when a new one arrives at the cap, the oldest
//! connection with no request in flight — one still trickling its headers, or idling on
//! keep-alive — is closed to make room. A slowloris attack therefore costs the attacker its own
//! connections, not a CMS's delivery.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

/// `[listener]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Connections open at once; past it the oldest idle one is closed.
    pub max_connections: usize,
    /// Time a client gets to send a request's headers.
    pub header_read_timeout_secs: u64,
    /// The largest request head (request line and headers) read.
    pub max_header_bytes: usize,
    /// Time a client gets to send a request's body.
    pub body_read_timeout_secs: u64,
    /// Authenticated deliveries a second per source (twice that in a burst); more are answered
    /// 429 + `Retry-After`. 0 turns the limit off.
    pub deliveries_per_source_per_second: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 4096,
            header_read_timeout_secs: 10,
            max_header_bytes: 16 << 10,
            body_read_timeout_secs: 15,
            deliveries_per_source_per_second: 200,
        }
    }
}

/// One open connection: how many of its requests are in flight, and how to close it.
struct Open {
    in_flight: Arc<AtomicUsize>,
    evict: oneshot::Sender<()>,
}

/// Open connections by arrival order (ids only grow), so the oldest comes first.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: BTreeMap<u64, Open>,
}

impl Connections {
    /// Makes room for one more under `cap`: closes the oldest connection with nothing in flight.
    /// False if every connection is busy (the new one is then refused).
    fn make_room(&mut self, cap: usize) -> bool {
        if self.open.len() < cap {
            return true;
        }
        let idle = self
            .open
            .iter()
            .find(|(_, c)| c.in_flight.load(Ordering::SeqCst) == 0)
            .map(|(id, _)| *id);
        match idle.and_then(|id| self.open.remove(&id)) {
            Some(oldest) => {
                let _ = oldest.evict.send(());
                crate::metrics::connection_evicted();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` until `stopped`, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    config: Config,
    stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        Duration::from_secs(config.body_read_timeout_secs.max(1)),
    ));
    let connections = Arc::new(Mutex::new(Connections::default()));
    let (shutdown, shutting_down) = watch::channel(false);
    let mut stopped = std::pin::pin!(stopped);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: wait a moment rather than spin.
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stopped => break,
        };
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (evict, evicted) = oneshot::channel();
        let id = {
            let mut open = connections.lock().expect("never poisoned");
            if !open.make_room(config.max_connections) {
                crate::metrics::connection_refused();
                continue; // dropping the stream closes it
            }
            let id = open.next_id;
            open.next_id += 1;
            open.open.insert(
                id,
                Open {
                    in_flight: in_flight.clone(),
                    evict,
                },
            );
            id
        };
        let service = Counted {
            inner: router.clone(),
            in_flight,
        };
        let http = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(config.header_read_timeout_secs.max(1)))
            .max_buf_size(config.max_header_bytes.max(8192))
            .clone();
        let connections = connections.clone();
        let mut shutting_down = shutting_down.clone();
        tasks.spawn(async move {
            let service = hyper_util::service::TowerToHyperService::new(service);
            let connection = http.serve_connection(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            let mut evicted = std::pin::pin!(evicted);
            tokio::select! {
                _ = connection.as_mut() => {}
                _ = &mut evicted => {}
                _ = shutting_down.changed() => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.as_mut().await;
                }
            }
            connections.lock().expect("never poisoned").open.remove(&id);
        });
        // Reap finished connection tasks as we go.
        while tasks.try_join_next().is_some() {}
    }
    let _ = shutdown.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The router, counting this connection's requests in flight (a connection with none may be
/// closed to make room).
#[derive(Clone)]
struct Counted {
    inner: axum::Router,
    in_flight: Arc<AtomicUsize>,
}

impl tower::Service<hyper::Request<hyper::body::Incoming>> for Counted {
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: hyper::Request<hyper::body::Incoming>) -> Self::Future {
        use tower::ServiceExt;
        let in_flight = self.in_flight.clone();
        in_flight.fetch_add(1, Ordering::SeqCst);
        let router = self.inner.clone();
        Box::pin(async move {
            let response = router.oneshot(request.map(axum::body::Body::new)).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            response
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let mut connections = Connections::default();
        let mut evicted = Vec::new();
        for id in 0..3 {
            let (evict, gone) = oneshot::channel();
            let in_flight = Arc::new(AtomicUsize::new(usize::from(id == 0)));
            connections.open.insert(id, Open { in_flight, evict });
            evicted.push(gone);
        }
        assert!(connections.make_room(3), "room made");
        assert!(
            evicted[1].try_recv().is_ok(),
            "the oldest idle one (0 is busy)"
        );
        assert!(evicted[0].try_recv().is_err() && evicted[2].try_recv().is_err());
        connections
            .open
            .get(&2)
            .unwrap()
            .in_flight
            .store(1, Ordering::SeqCst);
        assert!(
            !connections.make_room(2),
            "all busy: the newcomer is refused"
        );
    }
}
