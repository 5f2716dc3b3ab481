//! Shared counters (`int_mSN_Glow`, `ext_mSN_Glow`, `int_mSN_Gsdw`, the
//! shadows' external count) between OS processes.
//!
//! Figures 2 and 4 increment a counter shared by a group and broadcast it;
//! between real processes two concurrent increments would give two messages
//! the same number. A [`CounterServer`] (run by the coordinator, or any one
//! process) hands out numbers: each `next` is one atomic increment, so the
//! values are unique and increase in the order the server serves the
//! requests (linearisable). [`LocalCounters`] is the same for threads of one
//! process.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::{Counter, CounterGroup};

/// A counter shared by a group of processes.
pub trait SharedCounter {
    /// Increments the group's counter and returns the new value; `None` when
    /// the counter cannot be reached.
    fn next(&mut self, group: CounterGroup) -> Option<Counter>;
}

/// Shared counters for threads of one process (clones share them).
#[derive(Debug, Clone, Default)]
pub struct LocalCounters(Arc<Mutex<HashMap<CounterGroup, Counter>>>);

impl SharedCounter for LocalCounters {
    fn next(&mut self, group: CounterGroup) -> Option<Counter> {
        let mut m = self.0.lock().ok()?;
        let c = m.entry(group).or_insert(0);
        *c += 1;
        Some(*c)
    }
}

/// A counter service on TCP: one line `{"group": "low"}` in, one line
/// `{"value": N}` out.
pub struct CounterServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    counters: LocalCounters,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Request {
    group: CounterGroup,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Reply {
    value: Counter,
}

impl CounterServer {
    /// Serves on `addr` (e.g. `127.0.0.1:0`) until dropped.
    pub fn start(addr: &str) -> io::Result<CounterServer> {
        let listener = TcpListener::bind(addr)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = LocalCounters::default();
        let (stop2, c2) = (stop.clone(), counters.clone());
        thread::Builder::new().name("mdcd-counter".into()).spawn(move || {
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let mut c = c2.clone();
                let _ = thread::Builder::new().name("mdcd-counter-conn".into()).spawn(move || {
                    let Ok(mut w) = conn.try_clone() else { return };
                    for line in BufReader::new(conn).lines() {
                        let Ok(line) = line else { return };
                        let Ok(req) = serde_json::from_str::<Request>(&line) else { return };
                        let Some(value) = c.next(req.group) else { return };
                        let Ok(mut out) = serde_json::to_vec(&Reply { value }) else { return };
                        out.push(b'\n');
                        if w.write_all(&out).is_err() {
                            return;
                        }
                    }
                });
            }
        })?;
        Ok(CounterServer { addr, stop, counters })
    }

    /// Its address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The current value of a group's counter.
    pub fn value(&self, group: CounterGroup) -> Counter {
        self.counters.0.lock().map(|m| m.get(&group).copied().unwrap_or(0)).unwrap_or(0)
    }
}

impl Drop for CounterServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// A client of a [`CounterServer`]: one connection, one request at a time.
pub struct CounterClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl CounterClient {
    /// Connects to the server at `addr`.
    pub fn connect(addr: SocketAddr) -> io::Result<CounterClient> {
        let s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(CounterClient { reader: BufReader::new(s.try_clone()?), writer: s })
    }
}

impl SharedCounter for CounterClient {
    fn next(&mut self, group: CounterGroup) -> Option<Counter> {
        let mut req = serde_json::to_vec(&Request { group }).ok()?;
        req.push(b'\n');
        self.writer.write_all(&req).ok()?;
        let mut line = String::new();
        self.reader.read_line(&mut line).ok()?;
        serde_json::from_str::<Reply>(&line).ok().map(|r| r.value)
    }
}
