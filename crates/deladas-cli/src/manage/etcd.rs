//! etcd as the manager's store, failure detector and leader election
//! (docs/manager.md, "Several managers: the etcd store").
//!
//! The client is etcd's JSON gateway (`/v3/kv/*`, `/v3/lease/*`,
//! `/v3/maintenance/status`) over plain HTTP with `ureq`, blocking, from the
//! manager's own thread: no protoc and no gRPC stack at build time (the
//! `etcd-client` crate needs `protobuf-compiler`), and every call tries each
//! endpoint in turn, so a dead or partitioned member is skipped.
//!
//! Keys under `/PREFIX/` (default `deladas`): `state` (the durable state as
//! JSON), `events/SEQ` (20 digits), `leader` (the leading manager's URL, on
//! its lease; its creation revision is the leader's term), `hosts/NAME` (on
//! each agent's lease: present while the host lives).

use std::time::Duration;

use serde_json::{json, Value};

/// A parsed `etcd://HOST:PORT,HOST:PORT[/PREFIX]`.
#[derive(Clone, Debug)]
pub struct EtcdUrl {
    pub endpoints: Vec<String>,
    pub prefix: String,
}

/// Parses `etcd://HOST:PORT,...[/PREFIX]`; `None` when `s` is not an etcd URL.
pub fn parse_url(s: &str) -> Option<Result<EtcdUrl, String>> {
    let rest = s.strip_prefix("etcd://")?;
    let (hosts, prefix) = match rest.split_once('/') {
        Some((h, p)) => (h, p.trim_matches('/')),
        None => (rest, ""),
    };
    let endpoints: Vec<String> =
        hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(|h| format!("http://{h}")).collect();
    if endpoints.is_empty() || hosts.split(',').any(|h| !h.trim().contains(':')) {
        return Some(Err(format!("`{s}` is not `etcd://HOST:PORT,HOST:PORT,...[/PREFIX]`")));
    }
    let prefix = if prefix.is_empty() { "deladas".to_string() } else { prefix.to_string() };
    Some(Ok(EtcdUrl { endpoints, prefix }))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub fn b64(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for k in 0..4 {
            if k <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * k)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

pub fn unb64(s: &str) -> Option<Vec<u8>> {
    let mut out = vec![];
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        if c == b'=' {
            break;
        }
        let v = B64.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// The key just after every key starting with `prefix` (etcd's range end).
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
}

fn num(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_str().and_then(|s| s.parse().ok())).unwrap_or(0)
}

/// A key-value pair of a range answer.
pub struct Kv {
    pub key: String,
    pub value: Vec<u8>,
    pub mod_revision: u64,
}

/// The JSON gateway of an etcd cluster, trying every endpoint in turn.
pub struct Gateway {
    endpoints: Vec<String>,
    current: std::sync::atomic::AtomicUsize,
    http: ureq::Agent,
}

impl Gateway {
    pub fn new(endpoints: Vec<String>, timeout: Duration) -> Gateway {
        let http: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        Gateway { endpoints, current: std::sync::atomic::AtomicUsize::new(0), http }
    }

    /// One call to one endpoint: the JSON answer, or why not.
    pub fn call_one(&self, endpoint: &str, path: &str, body: &Value) -> Result<Value, String> {
        let url = format!("{endpoint}{path}");
        let mut resp = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_str())
            .map_err(|e| format!("{endpoint}: {e}"))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|e| format!("{endpoint}: {e}"))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("{endpoint}: {e}: {text}"))?;
        if status != 200 || v.get("error").is_some() {
            return Err(format!("{endpoint}: {status} {}", v.get("message").or(v.get("error")).unwrap_or(&v)));
        }
        Ok(v)
    }

    /// A call to the first endpoint that answers, starting with the last one that did.
    pub fn call(&self, path: &str, body: &Value) -> Result<Value, String> {
        use std::sync::atomic::Ordering;
        let n = self.endpoints.len();
        let start = self.current.load(Ordering::Relaxed);
        let mut errors = vec![];
        for k in 0..n {
            let i = (start + k) % n;
            match self.call_one(&self.endpoints[i], path, body) {
                Ok(v) => {
                    self.current.store(i, Ordering::Relaxed);
                    return Ok(v);
                }
                Err(e) => errors.push(e),
            }
        }
        Err(errors.join("; "))
    }

    pub fn range(&self, key: &str) -> Result<Option<Kv>, String> {
        let v = self.call("/v3/kv/range", &json!({"key": b64(key.as_bytes())}))?;
        Ok(kvs(&v).into_iter().next())
    }

    /// Keys starting with `prefix`, from `from` on (inclusive), at most `limit` (0: all).
    pub fn range_prefix(&self, prefix: &str, from: Option<&str>, limit: u64) -> Result<Vec<Kv>, String> {
        let start = from.unwrap_or(prefix);
        let v = self.call(
            "/v3/kv/range",
            &json!({"key": b64(start.as_bytes()), "range_end": b64(&prefix_end(prefix)), "limit": limit}),
        )?;
        Ok(kvs(&v))
    }

    /// A transaction: whether it succeeded and the revision after it.
    pub fn txn(&self, compare: Vec<Value>, success: Vec<Value>) -> Result<(bool, u64), String> {
        let v = self.call("/v3/kv/txn", &json!({"compare": compare, "success": success}))?;
        Ok((v["succeeded"].as_bool().unwrap_or(false), num(&v["header"]["revision"])))
    }

    pub fn grant(&self, ttl_secs: u64) -> Result<u64, String> {
        let v = self.call("/v3/lease/grant", &json!({"TTL": ttl_secs}))?;
        let id = num(&v["ID"]);
        if id == 0 {
            return Err(format!("no lease granted: {v}"));
        }
        Ok(id)
    }

    /// Keeps a lease alive once: `Ok(false)` when it has expired.
    pub fn keepalive(&self, lease: u64) -> Result<bool, String> {
        let v = self.call("/v3/lease/keepalive", &json!({"ID": lease.to_string()}))?;
        Ok(num(&v["result"]["TTL"]) > 0)
    }

    pub fn revoke(&self, lease: u64) {
        let _ = self.call("/v3/lease/revoke", &json!({"ID": lease.to_string()}));
    }

    /// Every endpoint's view of the raft leader and term (`None` for one that
    /// does not answer or knows no leader).
    pub fn leaders(&self) -> Vec<Option<(u64, u64)>> {
        self.endpoints
            .iter()
            .map(|e| {
                let v = self.call_one(e, "/v3/maintenance/status", &json!({})).ok()?;
                let leader = num(&v["leader"]);
                (leader != 0 && v.get("errors").is_none()).then(|| (leader, num(&v["raftTerm"])))
            })
            .collect()
    }
}

fn kvs(v: &Value) -> Vec<Kv> {
    v["kvs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|kv| {
            Some(Kv {
                key: String::from_utf8(unb64(kv["key"].as_str()?)?).ok()?,
                value: kv["value"].as_str().and_then(unb64).unwrap_or_default(),
                mod_revision: num(&kv["mod_revision"]),
            })
        })
        .collect()
}

pub fn put(key: &str, value: &[u8], lease: u64) -> Value {
    let mut p = json!({"key": b64(key.as_bytes()), "value": b64(value)});
    if lease != 0 {
        p["lease"] = json!(lease.to_string());
    }
    json!({"request_put": p})
}

pub fn delete(key: &str) -> Value {
    json!({"request_delete_range": {"key": b64(key.as_bytes())}})
}

pub fn compare_mod(key: &str, rev: u64) -> Value {
    json!({"key": b64(key.as_bytes()), "target": "MOD", "result": "EQUAL", "mod_revision": rev.to_string()})
}

pub fn compare_create(key: &str, rev: u64) -> Value {
    json!({"key": b64(key.as_bytes()), "target": "CREATE", "result": "EQUAL", "create_revision": rev.to_string()})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "a", "ab", "abc", "abcd", "/deladas/hosts/h1", "\u{00ff}\u{0000}x"] {
            assert_eq!(unb64(&b64(s.as_bytes())).as_deref(), Some(s.as_bytes()), "{s}");
        }
        assert_eq!(b64(b"a"), "YQ==");
        assert_eq!(prefix_end("/a/"), b"/a0".to_vec());
    }

    #[test]
    fn urls() {
        let u = parse_url("etcd://10.0.0.1:2379,10.0.0.2:2379/x").and_then(Result::ok).expect("parses");
        assert_eq!(u.endpoints, ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
        assert_eq!(u.prefix, "x");
        assert!(parse_url("etcd://nohost").is_some_and(|r| r.is_err()));
        assert!(parse_url("file.redb").is_none());
    }
}
