//! What the example router and client share: reading the wiring document
//! (docs/runspec.md), listening on every port, dialing the `to` end of every
//! channel this instance is the `from` end of, re-reading the wiring on
//! `SIGHUP` (or when the file changes), reconnecting with bounded back-off,
//! and writing delivery counters to `status.json` in `DELADAS_STATE_DIR`.
//!
//! Messages are lines: `MSG ORIGIN SEQ HOPS`. A connection carries messages
//! both ways, whichever end dialed.

#![allow(dead_code)] // each program uses part of it

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use deladas::enact::{env, Side, Wiring};

static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_hup(_: nix::libc::c_int) {
    HUP.store(true, Ordering::SeqCst);
}

/// A message.
#[derive(Clone, Debug)]
pub struct Msg {
    pub origin: String,
    pub seq: u64,
    pub hops: u32,
}

impl Msg {
    fn line(&self) -> String {
        format!("MSG {} {} {}\n", self.origin, self.seq, self.hops)
    }
    fn parse(line: &str) -> Option<Msg> {
        let mut w = line.split_whitespace();
        if w.next()? != "MSG" {
            return None;
        }
        Some(Msg { origin: w.next()?.to_string(), seq: w.next()?.parse().ok()?, hops: w.next()?.parse().ok()? })
    }
}

type Conns = BTreeMap<String, BTreeMap<u64, TcpStream>>;

/// The running instance: its wiring, its connections per port, its counters.
pub struct Node {
    pub instance: String,
    wiring_path: PathBuf,
    status_path: PathBuf,
    wiring: Mutex<Wiring>,
    conns: Mutex<Conns>,
    next_conn: AtomicU64,
    /// Dialers wanted now: (port, channel, peer host, peer port).
    wanted: Mutex<BTreeSet<(String, String, String, u16)>>,
    pub counters: Mutex<BTreeMap<String, u64>>,
    pub origins: Mutex<BTreeSet<String>>,
}

fn die(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

fn read_wiring(path: &PathBuf) -> Result<Wiring, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("`{}` is not a wiring document: {e}", path.display()))
}

impl Node {
    /// Reads the environment and the wiring, listens on every port.
    pub fn start(on_message: fn(&Arc<Node>, &str, u64, Msg)) -> Arc<Node> {
        let wiring_path =
            PathBuf::from(std::env::var(env::WIRING).unwrap_or_else(|_| die("DELADAS_WIRING is not set")));
        let wiring = read_wiring(&wiring_path).unwrap_or_else(|e| die(&e));
        let state_dir = std::env::var(env::STATE_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(|_| wiring_path.parent().map(PathBuf::from).unwrap_or_default());
        let instance = std::env::var(env::INSTANCE).unwrap_or_else(|_| wiring.instance.clone());
        // SIGHUP: re-read the wiring (its default action would end the process).
        let action = nix::sys::signal::SigAction::new(
            nix::sys::signal::SigHandler::Handler(on_hup),
            nix::sys::signal::SaFlags::SA_RESTART,
            nix::sys::signal::SigSet::empty(),
        );
        // SAFETY: the handler only stores to an atomic.
        if unsafe { nix::sys::signal::sigaction(nix::sys::signal::Signal::SIGHUP, &action) }.is_err() {
            die("cannot handle SIGHUP");
        }
        let node = Arc::new(Node {
            instance,
            wiring_path,
            status_path: state_dir.join("status.json"),
            wiring: Mutex::new(wiring.clone()),
            conns: Mutex::new(BTreeMap::new()),
            next_conn: AtomicU64::new(1),
            wanted: Mutex::new(BTreeSet::new()),
            counters: Mutex::new(BTreeMap::new()),
            origins: Mutex::new(BTreeSet::new()),
        });
        for (port, pw) in &wiring.ports {
            let addr = format!("{}:{}", pw.listen.host, pw.listen.port);
            // The port may still be held by a process that just ended: retry a while.
            let deadline = Instant::now() + Duration::from_secs(10);
            let listener = loop {
                match TcpListener::bind(&addr) {
                    Ok(l) => break l,
                    Err(e) if Instant::now() > deadline => die(&format!("cannot listen on {addr}: {e}")),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            let (n, port) = (node.clone(), port.clone());
            std::thread::spawn(move || {
                for s in listener.incoming().flatten() {
                    let (n, port) = (n.clone(), port.clone());
                    std::thread::spawn(move || n.serve(&port, s, on_message, None));
                }
            });
        }
        node.rewire(on_message);
        node
    }

    /// Adds a connection to a port and reads messages from it until it ends.
    fn serve(
        self: &Arc<Node>,
        port: &str,
        s: TcpStream,
        on_message: fn(&Arc<Node>, &str, u64, Msg),
        key: Option<&(String, String, String, u16)>,
    ) {
        let id = self.next_conn.fetch_add(1, Ordering::SeqCst);
        let _ = s.set_write_timeout(Some(Duration::from_millis(500)));
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let Ok(w) = s.try_clone() else { return };
        lock(&self.conns).entry(port.to_string()).or_default().insert(id, w);
        let mut r = BufReader::new(s);
        let mut line = String::new();
        loop {
            if let Some(k) = key {
                if !lock(&self.wanted).contains(k) {
                    break;
                }
            }
            line.clear();
            match r.read_line(&mut line) {
                Ok(0) => break,
                Ok(_) => {
                    if let Some(m) = Msg::parse(&line) {
                        on_message(self, port, id, m);
                    }
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => break,
            }
        }
        if let Some(s) = lock(&self.conns).get_mut(port).and_then(|m| m.remove(&id)) {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Starts a dialer for every `from` link that has none, and lets the
    /// others end.
    fn rewire(self: &Arc<Node>, on_message: fn(&Arc<Node>, &str, u64, Msg)) {
        let w = lock(&self.wiring).clone();
        let mut want = BTreeSet::new();
        for (port, pw) in &w.ports {
            for l in &pw.channels {
                if l.side == Side::From {
                    want.insert((port.clone(), l.channel.clone(), l.peer.endpoint.host.clone(), l.peer.endpoint.port));
                }
            }
        }
        let mut wanted = lock(&self.wanted);
        let new: Vec<_> = want.difference(&wanted).cloned().collect();
        *wanted = want;
        drop(wanted);
        for key in new {
            let n = self.clone();
            std::thread::spawn(move || {
                let mut backoff = Duration::from_millis(50);
                while lock(&n.wanted).contains(&key) {
                    let addr = (key.2.as_str(), key.3).to_socket_addrs().ok().and_then(|mut a| a.next());
                    if let Some(s) = addr.and_then(|a| TcpStream::connect_timeout(&a, Duration::from_millis(500)).ok())
                    {
                        backoff = Duration::from_millis(50);
                        n.serve(&key.0, s, on_message, Some(&key));
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            });
        }
    }

    /// Sends a message on every connection of a port, but `except` one.
    pub fn send(&self, port: &str, m: &Msg, except: Option<u64>) -> u64 {
        let line = m.line();
        let mut sent = 0;
        let mut conns = lock(&self.conns);
        if let Some(cs) = conns.get_mut(port) {
            cs.retain(|id, s| {
                if Some(*id) == except {
                    return true;
                }
                let ok = s.write_all(line.as_bytes()).is_ok();
                sent += u64::from(ok);
                if !ok {
                    let _ = s.shutdown(std::net::Shutdown::Both);
                }
                ok
            });
        }
        sent
    }

    pub fn count(&self, what: &str, n: u64) {
        *lock(&self.counters).entry(what.to_string()).or_default() += n;
    }

    /// The main loop: rewire on SIGHUP or a changed file, write the status,
    /// and call `tick` every `period`.
    pub fn run(
        self: &Arc<Node>,
        period: Duration,
        on_message: fn(&Arc<Node>, &str, u64, Msg),
        tick: impl Fn(&Arc<Node>),
    ) {
        let mtime = |p: &PathBuf| std::fs::metadata(p).and_then(|m| m.modified()).unwrap_or(SystemTime::UNIX_EPOCH);
        let mut seen = mtime(&self.wiring_path);
        loop {
            std::thread::sleep(period);
            let now = mtime(&self.wiring_path);
            if HUP.swap(false, Ordering::SeqCst) || now != seen {
                seen = now;
                if let Ok(w) = read_wiring(&self.wiring_path) {
                    let newer = w.generation >= lock(&self.wiring).generation;
                    if newer {
                        *lock(&self.wiring) = w;
                        self.rewire(on_message);
                    }
                }
            }
            tick(self);
            self.write_status();
        }
    }

    fn write_status(&self) {
        let conns: BTreeMap<String, usize> = lock(&self.conns).iter().map(|(p, m)| (p.clone(), m.len())).collect();
        let status = serde_json::json!({
            "instance": self.instance,
            "generation": lock(&self.wiring).generation,
            "pid": std::process::id(),
            "counters": *lock(&self.counters),
            "origins": *lock(&self.origins),
            "connections": conns,
        });
        let tmp = self.status_path.with_extension("json.tmp");
        if std::fs::write(&tmp, status.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, &self.status_path);
        }
    }
}

pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
