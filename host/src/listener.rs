//! The listener: who may hold a connection, and for how long. Slow clients must not lock out the
//! CMSs: a client gets `header_read_timeout_secs` to send its request headers (at most
//! `max_header_bytes` of them) and `body_read_timeout_secs` to send its body; at most
//! `max_connections` connections are open, and when a new one arrives at the cap, the oldest
//! connection with no request in flight — one still trickling its headers, or idling on
//! keep-alive — is closed to make room. A slowloris attack therefore costs the attacker its own
//! connections, not a CMS's delivery.
//!
//! A connection accepted a moment ago is idle too (its request head is still on its way), so
//! under a flood it could be closed by the next few newcomers before it is read. Connections
//! younger than [`NEWCOMER_GRACE`] are therefore closed only when every idle connection is that
//! young: a flood then evicts its own older connections first.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// How long a just-accepted connection is spared while older idle ones remain.
const NEWCOMER_GRACE: Duration = Duration::from_millis(500);

/// The listen backlog: connections the kernel completes before we accept them. A short backlog
/// under a flood leaves handshakes half-done, to arrive seconds later behind real clients.
const LISTEN_BACKLOG: u32 = 4096;

/// Binds `addr` with [`LISTEN_BACKLOG`].
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// One open connection: when it was accepted, how many of its requests are in flight, and how
/// to close it.
struct Open {
    accepted: Instant,
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
    /// Makes room for one more under `cap`: closes the oldest connection with nothing in flight,
    /// sparing those accepted within [`NEWCOMER_GRACE`] of `now` while an older one is idle.
    /// False if every connection is busy (the new one is then refused).
    fn make_room(&mut self, cap: usize, now: Instant) -> bool {
        if self.open.len() < cap {
            return true;
        }
        let idle = || {
            self.open
                .iter()
                .filter(|(_, c)| c.in_flight.load(Ordering::SeqCst) == 0)
        };
        let victim = idle()
            .find(|(_, c)| now.duration_since(c.accepted) >= NEWCOMER_GRACE)
            .or_else(|| idle().next())
            .map(|(id, _)| *id);
        match victim.and_then(|id| self.open.remove(&id)) {
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
            let now = Instant::now();
            if !open.make_room(config.max_connections, now) {
                crate::metrics::connection_refused();
                continue; // dropping the stream closes it
            }
            let id = open.next_id;
            open.next_id += 1;
            open.open.insert(
                id,
                Open {
                    accepted: now,
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

    /// Connections accepted at the given ages before `now`, busy where `busy`; with the
    /// receivers that see each one's eviction.
    fn open(now: Instant, ages_ms: &[(u64, bool)]) -> (Connections, Vec<oneshot::Receiver<()>>) {
        let mut connections = Connections::default();
        let mut evicted = Vec::new();
        for (id, &(age_ms, busy)) in ages_ms.iter().enumerate() {
            let (evict, gone) = oneshot::channel();
            let open = Open {
                accepted: now - Duration::from_millis(age_ms),
                in_flight: Arc::new(AtomicUsize::new(usize::from(busy))),
                evict,
            };
            connections.open.insert(id as u64, open);
            evicted.push(gone);
        }
        (connections, evicted)
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let now = Instant::now();
        let (mut connections, mut evicted) =
            open(now, &[(3000, true), (2000, false), (1000, false)]);
        assert!(connections.make_room(3, now), "room made");
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
            !connections.make_room(2, now),
            "all busy: the newcomer is refused"
        );
    }

    #[test]
    fn a_just_accepted_connection_is_spared_while_an_older_one_is_idle() {
        let now = Instant::now();
        // 0: accepted a moment ago (its request still on its way); 1: idle for seconds.
        let (mut connections, mut evicted) = open(now, &[(10, false), (5000, false)]);
        assert!(connections.make_room(2, now));
        assert!(evicted[1].try_recv().is_ok(), "the one past its grace");
        assert!(evicted[0].try_recv().is_err(), "the newcomer is spared");
    }

    #[test]
    fn when_every_idle_connection_is_new_the_oldest_still_makes_room() {
        let now = Instant::now();
        let (mut connections, mut evicted) = open(now, &[(20, false), (10, false)]);
        assert!(
            connections.make_room(2, now),
            "a flood is not refused outright"
        );
        assert!(evicted[0].try_recv().is_ok());
        assert!(evicted[1].try_recv().is_err());
    }
}
