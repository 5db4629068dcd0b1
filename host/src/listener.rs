//! The listener: who may hold a connection, and for how long. Slow clients must not lock out the
//! CMSs or `/healthz`:
//! - a client gets `header_read_timeout_secs` to send its request headers (at most
//!   `max_header_bytes` of them) and `body_read_timeout_secs` *in total* to send its body (a
//!   deadline from the request head, not an idle timer a byte every few seconds would reset);
//! - one source address holds at most `max_connections_per_address` connections;
//! - at most `max_connections` are open; when a new one arrives at the cap, room is made by
//!   closing, in this order, the oldest idle connection (one still trickling its headers, or
//!   idling on keep-alive, or streaming a response such as server-sent events, which is not a
//!   request in flight), then the one that has been sending its body the longest. A request
//!   whose body has arrived is never closed: it is real work, and a signed delivery's body
//!   arrives in milliseconds. A slow-body or slowloris attack therefore costs the attacker its
//!   own connections, not a CMS's delivery.
//!
//! At the global cap the connection closed is the best candidate of the address holding the most
//! connections (then of all): a flood from a few addresses closes its own connections before a
//! CMS's or a health probe's lone one, even one the server has not yet had time to read.
//!
//! A connection accepted a moment ago is idle too (its request head is still on its way), so
//! under a flood it could be closed by the next few newcomers before it is read. Connections
//! younger than [`NEWCOMER_GRACE`] are therefore closed only when every other candidate is that
//! young: a flood then evicts its own older connections first.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
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
    /// Connections open at once; past it the oldest idle (then slowest) one is closed.
    pub max_connections: usize,
    /// Connections one source address may hold; past it that address's newcomers are refused.
    pub max_connections_per_address: usize,
    /// Time a client gets to send a request's headers.
    pub header_read_timeout_secs: u64,
    /// The largest request head (request line and headers) read.
    pub max_header_bytes: usize,
    /// Time a client gets to send a request's whole body, counted from its request head.
    pub body_read_timeout_secs: u64,
    /// Authenticated deliveries a second per source (twice that in a burst); more are answered
    /// 429 + `Retry-After`. 0 turns the limit off.
    pub deliveries_per_source_per_second: u32,
    /// Workspace sign-ins a minute per source address (as many in a burst); more are answered
    /// 429 + `Retry-After`, so tokens cannot be guessed at speed. 0 turns the limit off.
    pub sign_ins_per_address_per_minute: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_connections: 4096,
            max_connections_per_address: 256,
            header_read_timeout_secs: 10,
            max_header_bytes: 16 << 10,
            body_read_timeout_secs: 15,
            deliveries_per_source_per_second: 200,
            sign_ins_per_address_per_minute: 20,
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

/// What a connection is doing, as far as making room goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Activity {
    /// No request (headers on their way, keep-alive) or only a response still streaming.
    Idle,
    /// A request whose body is still arriving.
    ReadingBody,
    /// A request whose body has arrived (or that has none) is being handled.
    Handling,
}

/// A connection's [`Activity`] and when it began, shared between the accept loop and the
/// request being served.
struct Shared(std::sync::Mutex<(Activity, Instant)>);

impl Shared {
    fn new(activity: Activity, since: Instant) -> Shared {
        Shared(std::sync::Mutex::new((activity, since)))
    }

    fn set(&self, activity: Activity) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = (activity, Instant::now());
    }

    fn get(&self) -> (Activity, Instant) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One open connection: when it was accepted, from where, what it is doing, and how to close it.
struct Open {
    accepted: Instant,
    address: IpAddr,
    shared: Arc<Shared>,
    evict: oneshot::Sender<()>,
}

/// Open connections by arrival order (ids only grow), so the oldest comes first.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: BTreeMap<u64, Open>,
    per_address: HashMap<IpAddr, usize>,
}

impl Connections {
    /// Makes room for one more from `address`: at the per-address cap, closes that address's
    /// best candidate (see [`Connections::victim`]) or refuses; at the global cap, closes the
    /// best candidate of all. False if the newcomer must be refused.
    fn make_room(&mut self, caps: (usize, usize), address: IpAddr, now: Instant) -> bool {
        let (cap, per_address_cap) = caps;
        if self.per_address.get(&address).copied().unwrap_or(0) >= per_address_cap.max(1) {
            let Some(id) = self.victim(now, Some(address)) else {
                return false;
            };
            self.evict(id);
        }
        if self.open.len() < cap {
            return true;
        }
        // The address holding the most connections gives one up first: a flood pays for itself
        // before a CMS's or a probe's single connection is touched, however slowly it is read.
        let heaviest = self
            .per_address
            .iter()
            .max_by_key(|(_, n)| **n)
            .map(|(a, _)| *a);
        let victim = heaviest
            .and_then(|a| self.victim(now, Some(a)))
            .or_else(|| self.victim(now, None));
        match victim {
            Some(id) => {
                self.evict(id);
                true
            }
            None => false,
        }
    }

    /// The connection to close (of `address`, when given): the oldest idle one past its
    /// newcomer grace, else the one sending its body the longest (past the grace), else the
    /// oldest idle one, else the one sending its body the longest however briefly; never one
    /// whose request is being handled. The last tier matters when the server, short of CPU,
    /// has just read a whole flood's request heads at once: every one of them is then a body
    /// younger than the grace, and without it the newcomer (a probe, a CMS) would be refused.
    fn victim(&self, now: Instant, address: Option<IpAddr>) -> Option<u64> {
        let candidates = || {
            self.open
                .iter()
                .filter(move |(_, c)| address.is_none_or(|a| c.address == a))
                .map(|(id, c)| (*id, c, c.shared.get()))
        };
        let past_grace = |c: &Open| now.duration_since(c.accepted) >= NEWCOMER_GRACE;
        let longest_body = |at_least: Duration| {
            candidates()
                .filter(|(_, _, (a, since))| {
                    *a == Activity::ReadingBody && now.duration_since(*since) >= at_least
                })
                .min_by_key(|(_, _, (_, since))| *since)
                .map(|(id, _, _)| id)
        };
        candidates()
            .find(|(_, c, (a, _))| *a == Activity::Idle && past_grace(c))
            .map(|(id, _, _)| id)
            .or_else(|| longest_body(NEWCOMER_GRACE))
            .or_else(|| {
                candidates()
                    .find(|(_, _, (a, _))| *a == Activity::Idle)
                    .map(|(id, _, _)| id)
            })
            .or_else(|| longest_body(Duration::ZERO))
    }

    fn evict(&mut self, id: u64) {
        if let Some(victim) = self.remove(id) {
            let _ = victim.evict.send(());
            crate::metrics::connection_evicted();
        }
    }

    fn insert(&mut self, open: Open) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        *self.per_address.entry(open.address).or_default() += 1;
        self.open.insert(id, open);
        id
    }

    fn remove(&mut self, id: u64) -> Option<Open> {
        let open = self.open.remove(&id)?;
        if let Some(count) = self.per_address.get_mut(&open.address) {
            *count -= 1;
            if *count == 0 {
                self.per_address.remove(&open.address);
            }
        }
        Some(open)
    }
}

/// Serves `router` on `listener` until `stopped`, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    config: Config,
    stopped: oneshot::Receiver<()>,
) -> std::io::Result<()> {
    let body_deadline = Duration::from_secs(config.body_read_timeout_secs.max(1));
    let caps = (config.max_connections, config.max_connections_per_address);
    let connections = Arc::new(Mutex::new(Connections::default()));
    let (shutdown, shutting_down) = watch::channel(false);
    let mut stopped = std::pin::pin!(stopped);
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
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
        let (evict, evicted) = oneshot::channel();
        let now = Instant::now();
        let shared = Arc::new(Shared::new(Activity::Idle, now));
        let id = {
            let mut open = connections.lock().expect("never poisoned");
            if !open.make_room(caps, peer.ip(), now) {
                crate::metrics::connection_refused();
                continue; // dropping the stream closes it
            }
            open.insert(Open {
                accepted: now,
                address: peer.ip(),
                shared: shared.clone(),
                evict,
            })
        };
        let service = Counted {
            inner: router.clone(),
            shared,
            peer,
            body_deadline,
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
            connections.lock().expect("never poisoned").remove(id);
        });
        // Reap finished connection tasks as we go.
        while tasks.try_join_next().is_some() {}
    }
    let _ = shutdown.send(true);
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The router, keeping this connection's [`Activity`] current, giving each request body its
/// total deadline, and telling handlers who is calling ([`Peer`]).
#[derive(Clone)]
struct Counted {
    inner: axum::Router,
    shared: Arc<Shared>,
    peer: std::net::SocketAddr,
    body_deadline: Duration,
}

/// The address a request came from (a request extension), for limits kept per caller address.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub std::net::SocketAddr);

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
        use hyper::body::Body as _;
        use tower::ServiceExt;
        let shared = self.shared.clone();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(Peer(self.peer));
        shared.set(if body.is_end_stream() {
            Activity::Handling
        } else {
            Activity::ReadingBody
        });
        let body = DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(self.body_deadline)),
            limit: self.body_deadline,
            shared: shared.clone(),
        };
        let request = hyper::Request::from_parts(parts, axum::body::Body::new(body));
        let router = self.inner.clone();
        Box::pin(async move {
            let response = router.oneshot(request).await;
            // What is left (a streamed response) is not a request in flight.
            shared.set(Activity::Idle);
            response
        })
    }
}

/// A request body that must arrive in full within `limit` of its request head; reaching its
/// end marks the connection as handling a request (no longer one to close to make room).
struct DeadlineBody {
    inner: hyper::body::Incoming,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
    shared: Arc<Shared>,
}

/// A request body that did not arrive within `[listener] body_read_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimedOut(pub Duration);

impl hyper::body::Body for DeadlineBody {
    type Data = hyper::body::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        if std::future::Future::poll(self.deadline.as_mut(), cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut(self.limit)))));
        }
        let frame = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &frame {
            Poll::Ready(None) => self.shared.set(Activity::Handling),
            Poll::Ready(Some(Ok(_))) if self.inner.is_end_stream() => {
                self.shared.set(Activity::Handling)
            }
            _ => {}
        }
        frame.map(|f| f.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// True when `err` (a body read error, through its sources) is a [`BodyTimedOut`].
pub fn is_body_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(err) = next {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        next = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const HERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const THERE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 2));

    /// Connections accepted at the given ages before `now`, each with an activity (set at its
    /// acceptance) and an address; with the receivers that see each one's eviction.
    fn open(
        now: Instant,
        rows: &[(u64, Activity, IpAddr)],
    ) -> (Connections, Vec<oneshot::Receiver<()>>) {
        let mut connections = Connections::default();
        let mut evicted = Vec::new();
        for &(age_ms, activity, address) in rows {
            let (evict, gone) = oneshot::channel();
            let accepted = now - Duration::from_millis(age_ms);
            let shared = Arc::new(Shared::new(activity, accepted));
            connections.insert(Open {
                accepted,
                address,
                shared,
                evict,
            });
            evicted.push(gone);
        }
        (connections, evicted)
    }

    use Activity::{Handling, Idle, ReadingBody};

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let now = Instant::now();
        let (mut connections, mut evicted) = open(
            now,
            &[
                (3000, Handling, HERE),
                (2000, Idle, HERE),
                (1000, Idle, HERE),
            ],
        );
        assert!(connections.make_room((3, 100), HERE, now), "room made");
        assert!(
            evicted[1].try_recv().is_ok(),
            "the oldest idle one (0 is busy)"
        );
        assert!(evicted[0].try_recv().is_err() && evicted[2].try_recv().is_err());
        connections.open.get(&2).unwrap().shared.set(Handling);
        assert!(
            !connections.make_room((2, 100), HERE, now),
            "all handling: the newcomer is refused"
        );
    }

    #[test]
    fn the_address_holding_the_most_connections_makes_room_first() {
        let now = Instant::now();
        // 0: a lone probe, idle past its grace (not read yet); 1-2: a flood's slow bodies.
        let (mut connections, mut evicted) = open(
            now,
            &[
                (2000, Idle, HERE),
                (1500, ReadingBody, THERE),
                (1000, ReadingBody, THERE),
            ],
        );
        assert!(connections.make_room((3, 100), THERE, now));
        assert!(evicted[0].try_recv().is_err(), "the lone connection stays");
        assert!(
            evicted[1].try_recv().is_ok(),
            "the flood's oldest body goes"
        );
    }

    #[test]
    fn a_slow_body_makes_room_but_a_request_being_handled_never_does() {
        let now = Instant::now();
        // 0: handled for long; 1: body trickling for 4 s; 2: body trickling for 2 s.
        let (mut connections, mut evicted) = open(
            now,
            &[
                (9000, Handling, HERE),
                (4000, ReadingBody, THERE),
                (2000, ReadingBody, THERE),
            ],
        );
        assert!(connections.make_room((3, 100), HERE, now));
        assert!(evicted[1].try_recv().is_ok(), "the slowest body goes first");
        assert!(evicted[0].try_recv().is_err() && evicted[2].try_recv().is_err());
    }

    #[test]
    fn one_address_cannot_take_every_connection() {
        let now = Instant::now();
        let (mut connections, mut evicted) = open(
            now,
            &[
                (3000, Handling, THERE),
                (2000, ReadingBody, THERE),
                (1000, Idle, HERE),
            ],
        );
        // THERE is at its cap of 2: its own slow body makes room, not HERE's idle connection.
        assert!(connections.make_room((100, 2), THERE, now));
        assert!(evicted[1].try_recv().is_ok());
        assert!(evicted[2].try_recv().is_err());
        // Now both of THERE's are being handled: its next newcomer is refused; HERE's is not.
        connections.insert(Open {
            accepted: now,
            address: THERE,
            shared: Arc::new(Shared::new(Activity::Idle, now)),
            evict: oneshot::channel().0,
        });
        connections.open.values().for_each(|c| {
            if c.address == THERE {
                c.shared.set(Handling)
            }
        });
        assert!(!connections.make_room((100, 2), THERE, now));
        assert!(connections.make_room((100, 2), HERE, now));
    }

    #[test]
    fn a_flood_whose_heads_were_all_just_read_still_makes_room() {
        let now = Instant::now();
        // A flood's bodies, every head read a moment ago (the server was starved of CPU).
        let (mut connections, mut evicted) =
            open(now, &[(100, ReadingBody, THERE), (50, ReadingBody, THERE)]);
        assert!(
            connections.make_room((2, 100), HERE, now),
            "a probe is not refused because the flood's bodies are young"
        );
        assert!(
            evicted[0].try_recv().is_ok(),
            "the flood's longest body goes"
        );
        assert!(evicted[1].try_recv().is_err());
    }

    #[test]
    fn a_just_accepted_connection_is_spared_while_an_older_one_is_idle() {
        let now = Instant::now();
        // 0: accepted a moment ago (its request still on its way); 1: idle for seconds.
        let (mut connections, mut evicted) = open(now, &[(10, Idle, HERE), (5000, Idle, HERE)]);
        assert!(connections.make_room((2, 100), HERE, now));
        assert!(evicted[1].try_recv().is_ok(), "the one past its grace");
        assert!(evicted[0].try_recv().is_err(), "the newcomer is spared");
    }

    #[test]
    fn when_every_idle_connection_is_new_the_oldest_still_makes_room() {
        let now = Instant::now();
        let (mut connections, mut evicted) = open(now, &[(20, Idle, HERE), (10, Idle, HERE)]);
        assert!(
            connections.make_room((2, 100), HERE, now),
            "a flood is not refused outright"
        );
        assert!(evicted[0].try_recv().is_ok());
        assert!(evicted[1].try_recv().is_err());
    }
}
