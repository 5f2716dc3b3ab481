//! The autonomic cycle's timings (docs/manager.md), with real processes on
//! loopback: a manager, one agent per host (each at its own 127.x.y.z
//! address), the example router and client as instances.
//!
//! `cargo bench -p deladas-cli --bench manager -- [repair N…] [heartbeats N]`
//!
//! - `repair N` (default 6, 50, 200): deploy the peers' P2P goal on N hosts,
//!   then 3 times crash a host (SIGKILL its agent and instances) and time the
//!   repair from the manager's `enacted` event: detection (silence until the
//!   host is failed; the grace period is 2 s), re-solve, planning, enactment
//!   (the plan's two steps until every agent reports it done). Medians.
//!   With `DELADAS_BENCH_ETCD=etcd://HOST:PORT,...` the manager's store is
//!   that etcd (a prefix per run) and agents hold leases there
//!   (docs/manager.md, "Several managers"); /work/shared/recipes'
//!   etcd-cluster.sh starts one on loopback.
//! - `heartbeats N` (default 1000): a manager tracking N hosts' heartbeats
//!   (every 0.3, 1 and 2 s, or `DELADAS_BENCH_HEARTBEAT=0.5,5`; sent by this
//!   program) for 10 s: its CPU use, in % of one core (from /proc/PID/stat).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_deladas"))
}

fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn get(a: &ureq::Agent, url: &str) -> Option<Value> {
    let mut r = a.get(url).call().ok()?;
    serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()
}

fn address(i: usize) -> String {
    format!("127.1.{}.{}", i / 200, i % 200 + 1)
}

fn goal(n: usize, dir: &Path) -> PathBuf {
    let text = deladas::bench_goals::p2p(n, deladas::bench_goals::Variant::Satisfy)
        .replace("code = \"c.xml\",", "code = \"c.xml\", command = \"p2p-client\",")
        .replace("code = \"r.xml\",", "code = \"r.xml\", command = \"p2p-router\",");
    let p = dir.join(format!("p2p-{n}.deladas"));
    std::fs::write(&p, text).expect("writes the goal");
    p
}

struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ =
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(c.id() as i32), nix::sys::signal::Signal::SIGTERM);
        }
        for c in &mut self.0 {
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn wait<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if let Some(x) = f() {
            return Some(x);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn repair(n: usize, port: u16) {
    let dir = std::env::temp_dir().join(format!("deladas-bench-manager-{n}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let goal = goal(n, &dir);
    let url = format!("http://127.0.0.1:{port}");
    let path = format!("{}:{}", bin().parent().expect("dir").display(), std::env::var("PATH").unwrap_or_default());
    let log = |name: &str| Stdio::from(std::fs::File::create(dir.join(name)).expect("log"));
    let mut procs = Procs(vec![]);
    // The etcd store, when asked for: a prefix of this run's own.
    let etcd = std::env::var("DELADAS_BENCH_ETCD").ok().map(|u| format!("{u}/bench-{n}-{}", std::process::id()));
    let store = etcd.clone().unwrap_or_else(|| dir.join("store.redb").display().to_string());
    let etcd_args: Vec<String> = etcd.iter().flat_map(|u| ["--etcd".to_string(), u.clone()]).collect();
    procs.0.push(
        Command::new(bin())
            .args(["manage", &goal.display().to_string(), "--listen", &format!("127.0.0.1:{port}"), "--grace", "2"])
            .args(["--store", &store, "--min-resolve-interval", "0"])
            .stdout(Stdio::null())
            .stderr(log("manager.log"))
            .spawn()
            .expect("manager"),
    );
    let mut agents = vec![];
    for i in 1..=n {
        let state = dir.join(format!("h{i}"));
        let c = Command::new(bin())
            .args(["agent", "--host", &format!("h{i}"), "--manager", &url, "--address", &address(i)])
            .args(["--state-dir", &state.display().to_string(), "--heartbeat", "0.3"])
            .args(&etcd_args)
            .env("PATH", &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("agent");
        agents.push(c.id());
        procs.0.push(c);
    }
    let a = http();
    let enacted = |g: u64| {
        wait(Duration::from_secs(300), || {
            let d = get(&a, &format!("{url}/deployment"))?;
            (d["generation"].as_u64() == Some(g) && d["plan"].is_null()).then_some(d)
        })
    };
    let t = Instant::now();
    let Some(d) = enacted(1) else {
        println!("N={n}: the first deployment did not complete in 300 s");
        return;
    };
    println!("N={n}: first deployment running after {:.1} s", t.elapsed().as_secs_f64());
    let ddd = deladas::ddd::from_xml(d["ddd"].as_str().unwrap_or("")).expect("a DDD");
    // The hosts to crash: ones that run an instance (the generated goal's
    // parsimonious configurations are often routers only).
    let mut clients: Vec<usize> =
        ddd.instances.iter().filter_map(|i| i.host.trim_start_matches('h').parse().ok()).collect();
    clients.dedup();
    let (mut det, mut res, mut pla, mut ena, mut total) = (vec![], vec![], vec![], vec![], vec![]);
    for rep in 0..3 {
        let Some(&h) = clients.get((rep * 3 + 1) % clients.len().max(1)) else { break };
        // Crash host h: its agent and every instance it started.
        let _ =
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(agents[h - 1] as i32), nix::sys::signal::Signal::SIGKILL);
        if let Ok(entries) = std::fs::read_dir(dir.join(format!("h{h}")).join("instances")) {
            for e in entries.flatten() {
                if let Ok(pid) = std::fs::read_to_string(e.path().join("pid")).unwrap_or_default().trim().parse::<i32>()
                {
                    let _ =
                        nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
        let crashed = Instant::now();
        let g = 2 + rep as u64;
        if enacted(g).is_none() {
            println!("N={n}: repair {rep} did not complete");
            break;
        }
        total.push(crashed.elapsed().as_secs_f64() * 1000.0);
        let evs = get(&a, &format!("{url}/events")).unwrap_or(json!([]));
        let ev = evs.as_array().into_iter().flatten().rev().find(|e| e["kind"] == "enacted" && e["generation"] == g);
        if let Some(tm) = ev.map(|e| &e["data"]["timings"]) {
            det.push(tm["detection_ms"].as_f64().unwrap_or(f64::NAN));
            res.push(tm["resolve_ms"].as_f64().unwrap_or(f64::NAN));
            pla.push(tm["planning_ms"].as_f64().unwrap_or(f64::NAN));
            ena.push(tm["enactment_ms"].as_f64().unwrap_or(f64::NAN));
        }
    }
    println!(
        "| {n} | {:.0} | {:.1} | {:.2} | {:.0} | {:.0} | {} |",
        median(det),
        median(res),
        median(pla),
        median(ena),
        median(total),
        ddd.instances.len()
    );
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime) are the 12th and 13th after the name.
    f.get(11).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0)
}

fn heartbeats(n: usize, port: u16, every: Duration) {
    let dir = std::env::temp_dir().join(format!("deladas-bench-hb-{n}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let goal = goal(n, &dir);
    let url = format!("http://127.0.0.1:{port}");
    let mut procs = Procs(vec![]);
    let m = Command::new(bin())
        .args(["manage", &goal.display().to_string(), "--listen", &format!("127.0.0.1:{port}"), "--no-auto-deploy"])
        .args(["--store", &dir.join("store.redb").display().to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("manager");
    let pid = m.id();
    procs.0.push(m);
    let a = http();
    if wait(Duration::from_secs(30), || get(&a, &format!("{url}/health"))).is_none() {
        println!("the manager did not start");
        return;
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let threads = 8;
    let mut hs = vec![];
    for t in 0..threads {
        let (url, stop) = (url.clone(), stop.clone());
        hs.push(std::thread::spawn(move || {
            let a = http();
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let round = Instant::now();
                for i in (1 + t..=n).step_by(threads) {
                    let hb = json!({"host": format!("h{i}"), "address": address(i),
                                    "epoch": {"generation": 0, "step": 0}, "instances": []});
                    if a.post(&format!("{url}/agent/heartbeat")).send(hb.to_string().as_str()).is_ok() {
                        sent += 1;
                    }
                }
                std::thread::sleep(every.saturating_sub(round.elapsed()));
            }
            sent
        }));
    }
    std::thread::sleep(Duration::from_secs(2));
    let (c0, t0) = (cpu_ticks(pid), Instant::now());
    std::thread::sleep(Duration::from_secs(10));
    let (c1, secs) = (cpu_ticks(pid), t0.elapsed().as_secs_f64());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let sent: u64 = hs.into_iter().map(|h| h.join().unwrap_or(0)).sum();
    let hz = 100.0; // USER_HZ on Linux
    println!(
        "heartbeats: {n} hosts every {:.1} s ({sent} answered in ~12 s): manager CPU {:.1} % of one core",
        every.as_secs_f64(),
        (c1 - c0) as f64 / hz / secs * 100.0
    );
    drop(procs);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let mut sizes = vec![];
    let mut hb = vec![];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "repair" => sizes.extend(it.clone().map_while(|x| x.parse::<usize>().ok())),
            "heartbeats" => hb.extend(it.clone().map_while(|x| x.parse::<usize>().ok())),
            _ => {}
        }
    }
    if args.is_empty() {
        sizes = vec![6, 50, 200];
        hb = vec![1000];
    }
    if !sizes.is_empty() {
        println!("| N | detection ms | re-solve ms | planning ms | enactment ms | crash → repaired ms | instances |");
        println!("|---:|---:|---:|---:|---:|---:|---:|");
    }
    for (k, n) in sizes.into_iter().enumerate() {
        repair(n, 17500 + k as u16);
    }
    let every: Vec<f64> = std::env::var("DELADAS_BENCH_HEARTBEAT")
        .ok()
        .map(|v| v.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![0.3, 1.0, 2.0]);
    for (k, n) in hb.into_iter().enumerate() {
        for (j, e) in every.iter().enumerate() {
            heartbeats(n, 17600 + (k * 10 + j) as u16, Duration::from_secs_f64(*e));
        }
    }
}
