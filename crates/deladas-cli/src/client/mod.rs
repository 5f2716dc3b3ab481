//! Client commands against a running manager (kubectl/nomad style):
//! `deladas status`, `deladas events [--follow]`, `deladas plan DDD`,
//! `deladas enact DDD`. Exit codes as cli.md: 0 ok, 1 refused (a conflict:
//! stale generation, no configuration), 2 bad input or no manager.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

/// Where the manager is and how to authenticate.
pub struct ManagerConnArgs {
    pub manager: String,
    pub token_file: Option<PathBuf>,
}

/// A client command.
pub enum ClientArgs {
    Status { json: bool },
    Events { follow: bool, since: u64 },
    Plan { ddd: PathBuf },
    Enact { ddd: PathBuf, generation: Option<u64> },
}

struct Client {
    base: String,
    token: Option<String>,
    http: ureq::Agent,
}

impl Client {
    fn new(c: &ManagerConnArgs, timeout: Option<Duration>) -> Result<Client, String> {
        let token = match &c.token_file {
            None => None,
            Some(p) => Some(
                std::fs::read_to_string(p)
                    .map_err(|e| format!("cannot read the token file `{}`: {e}", p.display()))?
                    .trim()
                    .to_string(),
            ),
        };
        let http = ureq::Agent::config_builder()
            .timeout_global(timeout)
            .timeout_connect(Some(Duration::from_secs(3)))
            .http_status_as_error(false)
            .build()
            .into();
        Ok(Client { base: c.manager.trim_end_matches('/').to_string(), token, http })
    }

    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<(u16, String), String> {
        let url = format!("{}{path}", self.base);
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let r = if method == "GET" {
            let mut req = self.http.get(&url);
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.call()
        } else {
            let mut req = self.http.post(&url).header("Content-Type", "application/json");
            if let Some(a) = &auth {
                req = req.header("Authorization", a);
            }
            req.send(body.map(|b| b.to_string()).unwrap_or_default().as_str())
        };
        let mut resp = r.map_err(|e| format!("cannot reach the manager at {}: {e}", self.base))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().map_err(|e| format!("cannot read the manager's answer: {e}"))?;
        Ok((status, text))
    }
}

fn fail(status: u16, text: &str) -> i32 {
    // The manager's errors are diagnostics as JSON: print them as they are.
    eprintln!("error: the manager answered {status}");
    eprintln!("{text}");
    if status == 409 {
        1
    } else {
        2
    }
}

fn read_ddd(p: &Path) -> Result<String, i32> {
    std::fs::read_to_string(p).map_err(|e| {
        eprintln!("error: cannot read `{}`: {e}", p.display());
        2
    })
}

/// Runs a client command; returns the exit code.
pub fn run_client(conn: &ManagerConnArgs, cmd: ClientArgs) -> i32 {
    let timeout = match cmd {
        ClientArgs::Events { follow: true, .. } => None,
        _ => Some(Duration::from_secs(60)),
    };
    let c = match Client::new(conn, timeout) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    match run(&c, cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn run(c: &Client, cmd: ClientArgs) -> Result<i32, String> {
    match cmd {
        ClientArgs::Status { json } => {
            let (s1, dep) = c.call("GET", "/deployment", None)?;
            if s1 != 200 {
                return Ok(fail(s1, &dep));
            }
            let (s2, res) = c.call("GET", "/resources", None)?;
            if s2 != 200 {
                return Ok(fail(s2, &res));
            }
            let dep: Value = serde_json::from_str(&dep).map_err(|e| e.to_string())?;
            let res: Value = serde_json::from_str(&res).map_err(|e| e.to_string())?;
            if json {
                println!("{}", json!({"deployment": dep, "resources": res}));
                return Ok(0);
            }
            println!(
                "generation {}  step {}  plan {}{}",
                dep["generation"],
                dep["step"],
                if dep["plan"].is_null() { "none" } else { "in progress" },
                dep["frozen"].as_str().map(|f| format!("  FROZEN: {f}")).unwrap_or_default()
            );
            println!("{:<10} {:<8} {:<16} INSTANCES", "HOST", "STATE", "ADDRESS");
            for h in res["hosts"].as_array().into_iter().flatten() {
                let insts: Vec<String> = h["instances"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|i| {
                        format!(
                            "{} ({}, {} restarts)",
                            i["id"].as_str().unwrap_or("?"),
                            i["state"].as_str().unwrap_or("?"),
                            i["restarts"]
                        )
                    })
                    .collect();
                println!(
                    "{:<10} {:<8} {:<16} {}",
                    h["host"].as_str().unwrap_or("?"),
                    h["state"].as_str().unwrap_or("?"),
                    h["address"].as_str().unwrap_or("-"),
                    insts.join(", ")
                );
            }
            Ok(0)
        }
        ClientArgs::Events { follow: false, since } => {
            let (s, text) = c.call("GET", &format!("/events?since={since}"), None)?;
            if s != 200 {
                return Ok(fail(s, &text));
            }
            let evs: Vec<Value> = serde_json::from_str(&text).map_err(|e| e.to_string())?;
            for e in evs {
                println!("{e}");
            }
            Ok(0)
        }
        ClientArgs::Events { follow: true, since } => {
            let url = format!("{}/events?follow=true&since={since}", c.base);
            let mut req = c.http.get(&url);
            if let Some(t) = &c.token {
                req = req.header("Authorization", &format!("Bearer {t}"));
            }
            let resp = req.call().map_err(|e| format!("cannot reach the manager at {}: {e}", c.base))?;
            if resp.status().as_u16() != 200 {
                let s = resp.status().as_u16();
                let text = resp.into_body().read_to_string().unwrap_or_default();
                return Ok(fail(s, &text));
            }
            let reader = BufReader::new(resp.into_body().into_reader());
            for line in reader.lines() {
                let line = line.map_err(|e| format!("the event stream ended: {e}"))?;
                if let Some(data) = line.strip_prefix("data:") {
                    println!("{}", data.trim());
                }
            }
            Ok(0)
        }
        ClientArgs::Plan { ddd } => {
            let xml = match read_ddd(&ddd) {
                Ok(x) => x,
                Err(code) => return Ok(code),
            };
            let (s, text) = c.call("POST", "/plan", Some(&json!({"ddd": xml})))?;
            if s != 200 {
                return Ok(fail(s, &text));
            }
            println!("{text}");
            Ok(0)
        }
        ClientArgs::Enact { ddd, generation } => {
            let xml = match read_ddd(&ddd) {
                Ok(x) => x,
                Err(code) => return Ok(code),
            };
            let generation = match generation {
                Some(g) => g,
                None => {
                    let (s, text) = c.call("POST", "/plan", Some(&json!({"ddd": xml})))?;
                    if s != 200 {
                        return Ok(fail(s, &text));
                    }
                    let v: Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
                    v["generation"].as_u64().ok_or("the manager's plan has no generation")?
                }
            };
            let (s, text) = c.call("POST", "/enact", Some(&json!({"ddd": xml, "generation": generation})))?;
            if s != 200 {
                return Ok(fail(s, &text));
            }
            println!("{text}");
            Ok(0)
        }
    }
}
