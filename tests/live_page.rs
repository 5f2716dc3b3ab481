//! The manager's live page in a real browser (issue 18): headless Chromium,
//! driven through the Chrome DevTools Protocol over `--remote-debugging-pipe`
//! (JSON messages separated by NUL bytes on fds 3 and 4; no websocket, no
//! npm), runs inside the test bridge's network namespace and opens
//! `http://10.210.0.1:7420/#token=…` on a manager with 6 test hosts
//! (tests/common/cluster.rs). The page shows the 6 hosts; a host crashes; the
//! page marks it failed and shows the new instances without a reload (the
//! DOM, read through the protocol). A screenshot goes to
//! `target/artifacts/live-page.png` (CI keeps it as an artifact).
//!
//! Root only (network namespaces); skipped with a message without root or
//! without Chromium (failing instead under `CI=true`, where `.ci/run`
//! installs it). Every wait is bounded; Chromium's process group is killed
//! on drop, also on panic.

#[path = "common/cluster.rs"]
mod cluster;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use cluster::{lock, wait_for, Cluster, HOSTS, MANAGER, TOKEN};
use serde_json::{json, Value};

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/lib/chromium/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 writes two new descriptors into `fds`, which we own.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(r, 0, "pipe2: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just created and are not owned elsewhere.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// A headless Chromium and one page target, spoken to over the pipe.
struct Browser {
    child: Child,
    to: File,
    from: mpsc::Receiver<Value>,
    next: u64,
    session: String,
    profile: PathBuf,
}

impl Browser {
    /// Starts Chromium in network namespace `ns` and opens a page target.
    fn launch(exe: &Path, ns: &str, scratch: &Path) -> Browser {
        let profile = scratch.join("chromium-profile");
        std::fs::create_dir_all(&profile).expect("profile dir");
        let log = File::create(scratch.join("chromium.log")).expect("chromium log");
        // fd 3: what Chromium reads (our commands); fd 4: what it writes.
        let (cmd_r, cmd_w) = pipe();
        let (out_r, out_w) = pipe();
        let (a, b) = (cmd_r.as_raw_fd(), out_w.as_raw_fd());
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .arg(exe)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                "--remote-debugging-pipe",
                "--window-size=1400,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            // Its own process group, so that drop ends every Chromium process.
            .process_group(0);
        // SAFETY: only async-signal-safe calls (fcntl, dup2) between fork and exec.
        unsafe {
            command.pre_exec(move || {
                // Out of the way of 3 and 4 first, then onto them (dup2 clears CLOEXEC).
                let a2 = libc::fcntl(a, libc::F_DUPFD_CLOEXEC, 10);
                let b2 = libc::fcntl(b, libc::F_DUPFD_CLOEXEC, 10);
                if a2 < 0 || b2 < 0 || libc::dup2(a2, 3) < 0 || libc::dup2(b2, 4) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("chromium starts");
        drop((cmd_r, out_w));
        let (tx, from) = mpsc::channel();
        let mut reader = File::from(out_r);
        std::thread::spawn(move || {
            let mut buf = vec![];
            let mut chunk = [0u8; 65536];
            loop {
                match reader.read(&mut chunk) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
                while let Some(p) = buf.iter().position(|&c| c == 0) {
                    let msg: Vec<u8> = buf.drain(..=p).collect();
                    if let Ok(v) = serde_json::from_slice::<Value>(&msg[..p]) {
                        if tx.send(v).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        let mut b = Browser { child, to: File::from(cmd_w), from, next: 0, session: String::new(), profile };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}), false);
        let id = target["targetId"].as_str().expect("a target id").to_string();
        let attached = b.call("Target.attachToTarget", json!({"targetId": id, "flatten": true}), false);
        b.session = attached["sessionId"].as_str().expect("a session id").to_string();
        b
    }

    /// One command; its result (bounded wait).
    fn call(&mut self, method: &str, params: Value, on_page: bool) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if on_page {
            msg["sessionId"] = json!(self.session);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to.write_all(&bytes).unwrap_or_else(|e| panic!("{method}: cannot write to Chromium: {e}"));
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = self.from.recv_timeout(left).unwrap_or_else(|e| panic!("{method}: no answer from Chromium ({e})"));
            if m["id"].as_u64() == Some(id) {
                assert!(m["error"].is_null(), "{method}: {}", m["error"]);
                return m["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page; its value (JSON), or
    /// the exception (e.g. while the page is still loading).
    fn try_eval(&mut self, expr: &str) -> Result<Value, String> {
        let r = self.call("Runtime.evaluate", json!({"expression": expr, "returnByValue": true}), true);
        if r["exceptionDetails"].is_null() {
            Ok(r["result"]["value"].clone())
        } else {
            Err(r["exceptionDetails"].to_string())
        }
    }

    fn eval(&mut self, expr: &str) -> Value {
        self.try_eval(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole process group (the launcher, the browser, its helpers).
        let pgid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let bytes: Vec<u8> = s.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let v: Vec<u32> = chunk.iter().map(|&c| val(c) as u32).collect();
        let n = v.iter().enumerate().fold(0u32, |acc, (i, x)| acc | (x << (18 - 6 * i)));
        out.extend_from_slice(&n.to_be_bytes()[1..chunk.len()]);
    }
    out
}

/// What the page shows, read from its DOM.
const READ_DOM: &str = r#"JSON.stringify({
  hosts: [...document.querySelectorAll('#picture g.host')].map(g => g.dataset.host),
  failed: [...document.querySelectorAll('#picture g.host.failed')].map(g => g.dataset.host),
  listed_failed: [...document.querySelectorAll('#hosts li.failed')].map(l => l.dataset.host),
  instances: [...document.querySelectorAll('#picture g.instance')].map(g => g.dataset.instance),
  kinds: [...document.querySelectorAll('#timeline li')].map(l => l.className),
  last_plan: document.getElementById('last-plan').textContent,
  last_plan_meta: document.getElementById('last-plan-meta').textContent,
  pending_plan: document.getElementById('pending-plan').textContent,
  pending_plan_meta: document.getElementById('pending-plan-meta').textContent,
  status: document.getElementById('status').className,
  hash: location.hash,
  marker: window.__notReloaded || null,
  views: window.deladasPage ? window.deladasPage.views : 0,
})"#;

fn dom(b: &mut Browser) -> Value {
    let s = b.try_eval(READ_DOM).unwrap_or(Value::Null);
    serde_json::from_str(s.as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

/// Waits until the page's DOM satisfies `ok`, at most `limit`; on a
/// timeout, the last DOM read is in the message.
fn wait_dom(b: &mut Browser, what: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let t = Instant::now();
    loop {
        let v = dom(b);
        if ok(&v) {
            return v;
        }
        assert!(t.elapsed() < limit, "timed out after {limit:?} waiting for {what}; the page shows {v:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn strings(v: &Value) -> BTreeSet<String> {
    v.as_array().into_iter().flatten().filter_map(|x| x.as_str().map(String::from)).collect()
}

/// Saves a full-page screenshot as target/artifacts/NAME.
fn screenshot(b: &mut Browser, name: &str) {
    let height =
        b.eval("Math.ceil(document.documentElement.scrollHeight)").as_f64().unwrap_or(1000.0).clamp(600.0, 4000.0);
    let metrics = json!({"width": 1400, "height": height as u64, "deviceScaleFactor": 1, "mobile": false});
    b.call("Emulation.setDeviceMetricsOverride", metrics, true);
    let shot = b.call("Page.captureScreenshot", json!({"format": "png"}), true);
    let png = base64_decode(shot["data"].as_str().expect("PNG data"));
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    let out = cluster::root().join("target").join("artifacts");
    std::fs::create_dir_all(&out).expect("target/artifacts");
    let path = out.join(name);
    std::fs::write(&path, &png).expect("writes the screenshot");
    eprintln!("live page: screenshot {} ({} bytes)", path.display(), png.len());
}

/// Skips (with the reason) without root or Chromium; under CI a missing
/// Chromium fails.
fn prerequisites() -> Option<PathBuf> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("SKIPPED: the live-page test makes network namespaces and needs root (CI runs as root)");
        return None;
    }
    let Some(exe) = chromium() else {
        assert!(std::env::var("CI").is_err(), "Chromium is missing under CI: .ci/run installs Debian's `chromium`");
        eprintln!("SKIPPED: no Chromium (/usr/bin/chromium); `apt-get install chromium` (.ci/run does)");
        return None;
    };
    Some(exe)
}

/// Chromium in the bridge's namespace with the page open (with the token in
/// the fragment).
fn open_page(exe: &Path, c: &Cluster) -> Browser {
    let mut b = Browser::launch(exe, &c.br(), &c.dir);
    b.call("Page.enable", json!({}), true);
    let metrics = json!({"width": 1400, "height": 1000, "deviceScaleFactor": 1, "mobile": false});
    b.call("Emulation.setDeviceMetricsOverride", metrics, true);
    b.call("Page.navigate", json!({"url": format!("{MANAGER}/#token={TOKEN}")}), true);
    b
}

#[test]
fn the_live_page_marks_a_crashed_host_and_shows_the_repair_without_a_reload() {
    let _serial = lock();
    let Some(exe) = prerequisites() else { return };
    let Some(mut c) = Cluster::up(7, &[]) else { return };
    let d1 = c.wait_enacted(1, Duration::from_secs(90));

    // The page is public and holds no data; its data needs the token.
    let (s, html) = c.request("GET", "/", None, false).expect("answers");
    assert_eq!(s, 200, "{html}");
    assert!(html.contains("<script src=\"/page/app.js\""), "{html}");
    let (s, js) = c.request("GET", "/page/app.js", None, false).expect("answers");
    assert_eq!(s, 200, "{js}");
    for path in ["/page/view", "/page/stream", "/deployment"] {
        let (s, body) = c.request("GET", path, None, false).expect("answers");
        assert_eq!(s, 401, "{path} without the token: {body}");
    }
    let view = c.get("/page/view");
    assert_eq!(view["generation"], 1);
    assert_eq!(view["svg"].as_str().map(|s| s.matches("data-host=").count()), Some(6), "{view}");

    let mut b = open_page(&exe, &c);
    let ids1: BTreeSet<String> = d1.instances.iter().map(|i| i.id.clone()).collect();
    let first = wait_dom(&mut b, "the page to show the 6 hosts and every instance", Duration::from_secs(60), |v| {
        strings(&v["hosts"]).len() == 6 && strings(&v["instances"]) == ids1 && v["status"] == "status live"
    });
    let hosts: BTreeSet<String> = (1..=6).map(|i| format!("h{i}")).collect();
    assert_eq!(strings(&first["hosts"]), hosts);
    assert!(strings(&first["failed"]).is_empty(), "{first}");
    assert_eq!(first["hash"], "", "the token is taken out of the address bar");
    assert!(strings(&first["kinds"]).contains("plan-started"), "the timeline: {first}");
    // Set in this document: a reload would lose it.
    b.eval("window.__notReloaded = 'yes'");

    // Crash a host with a client.
    let victim = d1.instances.iter().find(|i| i.component == "Client").expect("a client").host.clone();
    let crashed = Instant::now();
    c.crash(Cluster::host_index(&victim));
    let marked = wait_dom(&mut b, "the page to mark the crashed host failed", Duration::from_secs(30), |v| {
        strings(&v["failed"]).contains(&victim)
    });
    let marked_after = crashed.elapsed();
    assert_eq!(marked["marker"], "yes", "no reload");
    let d2 = c.wait_enacted(2, Duration::from_secs(90));
    let new: BTreeSet<String> = d2.instances.iter().filter(|i| !ids1.contains(&i.id)).map(|i| i.id.clone()).collect();
    assert!(!new.is_empty(), "the repair starts new instances: {d2:?}");
    let ids2: BTreeSet<String> = d2.instances.iter().map(|i| i.id.clone()).collect();
    let after = wait_dom(&mut b, "the page to show the new instances", Duration::from_secs(30), |v| {
        strings(&v["instances"]) == ids2 && v["last_plan_meta"].as_str().is_some_and(|t| t.contains("done"))
    });
    let shown_after = crashed.elapsed();
    assert_eq!(after["marker"], "yes", "the page was not reloaded");
    assert_eq!(strings(&after["hosts"]), hosts, "every declared host still drawn");
    assert_eq!(strings(&after["failed"]), BTreeSet::from([victim.clone()]), "{after}");
    assert_eq!(strings(&after["listed_failed"]), BTreeSet::from([victim.clone()]), "{after}");
    let kinds = strings(&after["kinds"]);
    for k in ["host-failed", "resolved", "enacted"] {
        assert!(kinds.contains(k), "the timeline shows {k}: {kinds:?}");
    }
    let plan = after["last_plan"].as_str().unwrap_or("");
    assert!(plan.contains(&format!("failed: {victim}")), "{plan}");
    for id in &new {
        assert!(plan.contains(id.as_str()), "the last plan starts {id}: {plan}");
    }
    eprintln!(
        "live page: {victim} crashed; marked failed on the page after {} ms, the repair's {} new instance(s) shown after {} ms (grace 2 s); {} views",
        marked_after.as_millis(),
        new.len(),
        shown_after.as_millis(),
        after["views"]
    );

    // A dry run (`deladas plan`) shows as the pending plan, live too.
    let dry = json!({"ddd": deladas::ddd::to_xml(&d2)}).to_string();
    let (s, body) = c.request("POST", "/plan", Some(&dry), true).expect("answers");
    assert_eq!(s, 200, "{body}");
    let pending = wait_dom(&mut b, "the page to show the pending plan", Duration::from_secs(30), |v| {
        v["pending_plan_meta"].as_str().is_some_and(|t| t.contains("against generation 2 · pending"))
    });
    assert!(pending["pending_plan"].as_str().is_some_and(|t| t.contains("keep")), "{pending}");
    assert_eq!(pending["marker"], "yes", "the page was not reloaded");

    // The screenshot, for a person to look at (CI keeps it).
    screenshot(&mut b, "live-page.png");
    drop(b);
}

/// Hosts fail one by one until no configuration exists: the page shows the
/// explanation with the goal's lines of the conflicting clauses.
#[test]
fn the_live_page_explains_when_no_configuration_is_left() {
    let _serial = lock();
    let Some(exe) = prerequisites() else { return };
    let Some(mut c) = Cluster::up(8, &[]) else { return };
    c.wait_enacted(1, Duration::from_secs(90));
    let mut b = open_page(&exe, &c);
    wait_dom(&mut b, "the page to show the 6 hosts", Duration::from_secs(60), |v| strings(&v["hosts"]).len() == 6);
    assert_eq!(b.eval("document.getElementById('explanation').hidden"), json!(true), "no explanation yet");
    let mut generation = 1;
    let mut explanation = None;
    for victim in 1..HOSTS {
        c.crash(victim);
        let outcome = wait_for("a repair or an explanation", Duration::from_secs(60), || {
            let dep = c.try_get("/deployment").ok()?;
            if dep["generation"].as_u64() == Some(generation + 1) && dep["plan"].is_null() {
                return Some(None);
            }
            c.event("no-configuration", None).map(Some)
        });
        match outcome {
            None => generation += 1,
            Some(ev) => {
                explanation = Some(ev);
                break;
            }
        }
    }
    let ev = explanation.expect("the goal needs more than one host: no configuration is left at the end");
    let lines: BTreeSet<u64> = ev["data"]["explanation"]["conflict"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["line"].as_u64())
        .collect();
    assert!(!lines.is_empty(), "the conflicting clauses have lines: {ev}");
    let read = r#"JSON.stringify({
      hidden: document.getElementById('explanation').hidden,
      message: document.querySelector('#explanation .message').textContent,
      hits: [...document.querySelectorAll('#explanation .source .hit')].map(s => s.textContent),
      repairs: [...document.querySelectorAll('#explanation .repairs li')].map(l => l.textContent),
      marker: window.__notReloaded || null,
    })"#;
    b.eval("window.__notReloaded = 'yes'");
    let shown = wait_for("the page to show the explanation", Duration::from_secs(30), || {
        let v: Value = serde_json::from_str(b.try_eval(read).ok()?.as_str()?).ok()?;
        (v["hidden"] == false && v["hits"].as_array().is_some_and(|h| !h.is_empty())).then_some(v)
    });
    assert!(shown["message"].as_str().is_some_and(|m| m.contains("no configuration")), "{shown}");
    assert_eq!(shown["marker"], "yes", "no reload");
    // The repairs in the words `deladas explain` prints (help lines), not
    // the solver's data structures.
    let repairs = strings(&ev["data"]["explanation"]["repairs"]);
    assert!(!repairs.is_empty(), "adding a host like a failed one is a repair: {ev}");
    for r in &repairs {
        assert!(r.contains("makes") && r.contains("satisfiable") && !r.contains('{'), "a sentence: {r}");
    }
    let shown_repairs = strings(&shown["repairs"]);
    for r in &repairs {
        assert!(shown_repairs.contains(&format!("help: {r}")), "the page lists `{r}`: {shown_repairs:?}");
    }
    // Each highlighted line is the goal's line with that number.
    let goal = std::fs::read_to_string(cluster::root().join(cluster::GOAL)).expect("the goal");
    let goal_lines: Vec<&str> = goal.lines().collect();
    let hit_numbers: BTreeSet<u64> = strings(&shown["hits"])
        .iter()
        .map(|h| {
            let (n, text) = h.split_once(" | ").expect("NUMBER | text");
            let n: u64 = n.trim().parse().expect("a line number");
            assert_eq!(goal_lines[n as usize - 1], text, "line {n} of the goal");
            n
        })
        .collect();
    assert!(
        lines.is_subset(&hit_numbers),
        "every conflicting clause's first line is highlighted: {lines:?} in {hit_numbers:?}"
    );
    screenshot(&mut b, "live-page-explanation.png");
    drop(b);
}
