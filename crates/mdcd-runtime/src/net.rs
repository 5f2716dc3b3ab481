//! A transport over TCP (std::net, a thread per connection, no async
//! runtime): every process listens on one address, knows its peers' by
//! name, and sends [`Wire`] messages as lines of JSON on one connection per
//! peer, opened on first use. TCP keeps each connection FIFO, which the
//! protocol (and the marker flush of a recovery) relies on.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::wire::{decode, encode, Wire};

/// Connection attempts to a peer before a send fails, and the pause
/// between two.
const CONNECT_ATTEMPTS: u32 = 100;
const CONNECT_PAUSE: Duration = Duration::from_millis(20);

/// One process's end of the network.
pub struct Transport<M> {
    name: String,
    local: SocketAddr,
    peers: HashMap<String, SocketAddr>,
    conns: HashMap<String, TcpStream>,
    rx: Receiver<Wire<M>>,
    stop: Arc<AtomicBool>,
    malformed: Arc<AtomicU64>,
}

impl<M: Serialize + DeserializeOwned + Send + 'static> Transport<M> {
    /// Listens on `addr` (e.g. `127.0.0.1:0`) as process `name`.
    pub fn bind(name: &str, addr: &str) -> io::Result<Transport<M>> {
        let listener = TcpListener::bind(addr)?;
        let local = listener.local_addr()?;
        let (tx, rx) = mpsc::channel();
        let stop = Arc::new(AtomicBool::new(false));
        let malformed = Arc::new(AtomicU64::new(0));
        let (stop2, bad2) = (stop.clone(), malformed.clone());
        thread::Builder::new().name(format!("mdcd-accept-{name}")).spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (tx, stop, bad) = (tx.clone(), stop2.clone(), bad2.clone());
                let _ = thread::Builder::new().name("mdcd-read".into()).spawn(move || read_loop(conn, tx, stop, bad));
            }
        })?;
        Ok(Transport {
            name: name.to_string(),
            local,
            peers: HashMap::new(),
            conns: HashMap::new(),
            rx,
            stop,
            malformed,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// This process's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where process `name` listens.
    pub fn set_peer(&mut self, name: &str, addr: SocketAddr) {
        self.peers.insert(name.to_string(), addr);
        self.conns.remove(name);
    }

    /// Sends `w` to process `to` (connecting first if needed, with bounded
    /// retries while the peer starts).
    pub fn send(&mut self, to: &str, w: &Wire<M>) -> io::Result<()> {
        let bytes = encode(w)?;
        if !self.conns.contains_key(to) {
            let addr = *self
                .peers
                .get(to)
                .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("no address for process `{to}`")))?;
            let mut last = None;
            for _ in 0..CONNECT_ATTEMPTS {
                match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                        self.conns.insert(to.to_string(), s);
                        last = None;
                        break;
                    }
                    Err(e) => {
                        last = Some(e);
                        thread::sleep(CONNECT_PAUSE);
                    }
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
        let conn = self.conns.get_mut(to).ok_or_else(|| io::Error::other("connection vanished"))?;
        if let Err(e) = conn.write_all(&bytes) {
            self.conns.remove(to);
            return Err(e);
        }
        Ok(())
    }

    /// The next message, waiting at most `timeout`.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Wire<M>> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Lines that were not a [`Wire`] message (dropped).
    pub fn malformed(&self) -> u64 {
        self.malformed.load(Ordering::SeqCst)
    }
}

impl<M> Drop for Transport<M> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees `stop`.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_millis(200));
    }
}

/// How long one connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long one write may block on a peer that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest line a peer may send; a longer one ends the connection (a
/// peer cannot make this process buffer without limit).
pub const MAX_LINE: usize = 16 << 20;

fn read_loop<M: DeserializeOwned>(conn: TcpStream, tx: Sender<Wire<M>>, stop: Arc<AtomicBool>, bad: Arc<AtomicU64>) {
    let mut reader = BufReader::new(conn);
    let mut buf = Vec::new();
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        buf.clear();
        match (&mut reader).take(MAX_LINE as u64 + 1).read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        if buf.len() > MAX_LINE {
            bad.fetch_add(1, Ordering::SeqCst);
            return;
        }
        let Ok(line) = std::str::from_utf8(&buf) else {
            bad.fetch_add(1, Ordering::SeqCst);
            continue;
        };
        match decode(line.trim_end_matches(['\n', '\r'])) {
            Ok(w) => {
                if tx.send(w).is_err() {
                    return;
                }
            }
            Err(_) => {
                bad.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
}
