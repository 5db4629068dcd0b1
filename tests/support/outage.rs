//! A loopback TCP relay in front of a contract server that can be taken down and brought back
//! on the same port, as a host's API goes down mid-run: while down, new connections are refused
//! (nothing reaches the server, so nothing is created) and open ones are cut (a call in flight
//! may have been acted on: the client cannot tell).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

pub struct Outage {
    /// `http://127.0.0.1:PORT`: the relay's address, to use in place of the server's.
    pub url: String,
    addr: SocketAddr,
    target: SocketAddr,
    running: Arc<Mutex<Option<JoinSet<()>>>>,
}

impl Outage {
    /// A relay to `server` (`http://127.0.0.1:PORT…`), up.
    pub async fn start(server: &str) -> Outage {
        let target: SocketAddr = server
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let outage = Outage {
            url: format!("http://{addr}"),
            addr,
            target,
            running: Arc::new(Mutex::new(None)),
        };
        outage.serve(listener);
        outage
    }

    fn serve(&self, listener: TcpListener) {
        let target = self.target;
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            // Dropped with this task: every open connection is cut.
            let mut connections = JoinSet::new();
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        *self.running.lock().unwrap() = Some(tasks);
    }

    /// Down: the listener closes (connections refused) and open connections are cut.
    pub fn down(&self) {
        // Dropping the set aborts the accept loop, which drops the listener and the set of
        // open connections with it.
        self.running.lock().unwrap().take();
    }

    /// Up again, on the same port.
    pub async fn up(&self) {
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => break listener,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            }
        };
        self.serve(listener);
    }
}
