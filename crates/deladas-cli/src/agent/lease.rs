//! The agent's liveness in etcd (`deladas agent --etcd etcd://...`): a lease
//! on `/PREFIX/hosts/HOST`, kept alive through etcd's JSON gateway, trying
//! every endpoint in turn. The managers count a host whose key is gone for
//! their grace period as failed (docs/manager.md, "Several managers").
//!
//! The agent fences (stops its instances) when its lease has not been
//! renewed for the fence period — except while an etcd member answers that
//! it has no leader: without a quorum no lease can expire, and the next etcd
//! leader renews every lease, so the agent keeps running what it has.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn b64(data: &[u8]) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            out.push(if k <= chunk.len() { B64[((n >> (18 - 6 * k)) & 63) as usize] as char } else { '=' });
        }
    }
    out
}

fn num(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

/// `etcd://HOST:PORT,...[/PREFIX]` → endpoints and prefix.
pub fn parse_url(s: &str) -> Result<(Vec<String>, String), String> {
    let bad = || format!("`{s}` is not `etcd://HOST:PORT,HOST:PORT,...[/PREFIX]`");
    let rest = s.strip_prefix("etcd://").ok_or_else(bad)?;
    let (hosts, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let endpoints: Vec<String> = hosts.split(',').map(|h| format!("http://{}", h.trim())).collect();
    if hosts.split(',').any(|h| !h.trim().contains(':')) {
        return Err(bad());
    }
    let prefix = prefix.trim_matches('/');
    Ok((endpoints, if prefix.is_empty() { "deladas".into() } else { prefix.into() }))
}

struct Client {
    endpoints: Vec<String>,
    current: usize,
    http: ureq::Agent,
}

impl Client {
    fn one(&self, e: &str, path: &str, body: &Value) -> Result<Value, String> {
        let mut r = self
            .http
            .post(&format!("{e}{path}"))
            .header("Content-Type", "application/json")
            .send(body.to_string().as_str())
            .map_err(|x| x.to_string())?;
        let status = r.status().as_u16();
        let v: Value = serde_json::from_str(&r.body_mut().read_to_string().map_err(|x| x.to_string())?)
            .map_err(|x| x.to_string())?;
        if status != 200 || v.get("error").is_some() {
            return Err(format!("{status}: {v}"));
        }
        Ok(v)
    }

    fn call(&mut self, path: &str, body: &Value) -> Result<Value, String> {
        let n = self.endpoints.len();
        let mut last = String::new();
        for k in 0..n {
            let i = (self.current + k) % n;
            match self.one(&self.endpoints[i], path, body) {
                Ok(v) => {
                    self.current = i;
                    return Ok(v);
                }
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// Whether some member answers that it has no leader (no quorum).
    fn no_quorum(&self) -> bool {
        self.endpoints.iter().any(|e| {
            self.one(e, "/v3/maintenance/status", &json!({}))
                .ok()
                .is_some_and(|v| num(&v["leader"]) == 0 || v.get("errors").is_some())
        })
    }
}

/// The lease's state, shared with the agent's loop.
pub struct Lease {
    ok_at: Arc<Mutex<Instant>>,
    /// Its own client, for the agent loop's last check before fencing.
    check: Client,
}

impl Lease {
    /// Asked right before fencing: whether some member answers that etcd
    /// has no leader. The lease thread notices this too, but only after its
    /// keep-alive timed out, which on a loaded machine can come after the
    /// fence deadline; without a quorum no lease can expire, so nothing of
    /// this host can have been started elsewhere.
    pub fn quorum_lost(&self) -> bool {
        self.check.no_quorum()
    }

    /// How long since the lease was last renewed (or etcd last said it has no quorum).
    pub fn since_ok(&self) -> Duration {
        self.ok_at.lock().map(|t| t.elapsed()).unwrap_or(Duration::MAX)
    }
}

/// Starts keeping the host's lease (a thread of its own).
pub fn start(
    url: &str,
    host: &str,
    address: &str,
    ttl: Duration,
    stop: &'static std::sync::atomic::AtomicBool,
) -> Result<Lease, String> {
    let (endpoints, prefix) = parse_url(url)?;
    let http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(1000)))
        .http_status_as_error(false)
        .build()
        .into();
    let check_http: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_millis(500)))
        .http_status_as_error(false)
        .build()
        .into();
    let check = Client { endpoints: endpoints.clone(), current: 0, http: check_http };
    let mut c = Client { endpoints, current: 0, http };
    let key = b64(format!("/{prefix}/hosts/{host}").as_bytes());
    let value = b64(json!({"address": address}).to_string().as_bytes());
    let ttl_secs = ttl.as_secs().max(1);
    // Counted as renewed at start: a fresh agent has stopped nothing yet.
    let ok_at = Arc::new(Mutex::new(Instant::now()));
    let shared = ok_at.clone();
    let host = host.to_string();
    std::thread::spawn(move || {
        let mut lease: Option<u64> = None;
        let mut warned = false;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let sent = Instant::now();
            let renewed = match lease {
                None => c.call("/v3/lease/grant", &json!({"TTL": ttl_secs})).and_then(|v| {
                    let id = num(&v["ID"]);
                    c.call("/v3/kv/put", &json!({"key": key, "value": value, "lease": id.to_string()}))?;
                    lease = Some(id);
                    Ok(true)
                }),
                Some(id) => c.call("/v3/lease/keepalive", &json!({"ID": id.to_string()})).map(|v| {
                    let alive = num(&v["result"]["TTL"]) > 0;
                    if !alive {
                        eprintln!("agent {host}: the host's lease expired; taking a new one");
                        lease = None;
                    }
                    alive
                }),
            };
            match renewed {
                Ok(true) => {
                    warned = false;
                    if let Ok(mut t) = shared.lock() {
                        *t = sent;
                    }
                }
                Ok(false) => continue,
                Err(e) => {
                    if c.no_quorum() {
                        if !warned {
                            eprintln!("agent {host}: etcd has no quorum ({e}); keeping what runs");
                            warned = true;
                        }
                        if let Ok(mut t) = shared.lock() {
                            *t = Instant::now();
                        }
                    }
                }
            }
            std::thread::sleep((ttl / 4).clamp(Duration::from_millis(50), Duration::from_millis(1000)));
        }
        if let Some(id) = lease {
            let _ = c.call("/v3/lease/revoke", &json!({"ID": id.to_string()}));
        }
    });
    Ok(Lease { ok_at, check })
}
