//! Test hosts for the autonomic cycle: network namespaces on a bridge, a
//! `deladas manage` in the bridge's namespace and one `deladas agent` per host
//! (docs/manager.md). Shared by the test binaries that run real managers and
//! agents; include it with `#[path = "common/cluster.rs"] mod cluster;`.
//! Each cluster's bridge lives in its own namespace, so clusters of different
//! test binaries never clash; within one binary, tests take `lock()`.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

static SERIAL: Mutex<()> = Mutex::new(());

pub const GOAL: &str = "examples/p2p-run.deladas";
pub const HOSTS: usize = 6;
pub const MANAGER: &str = "http://10.210.0.1:7420";
pub const TOKEN: &str = "s3cret-test-token";

pub fn root() -> PathBuf {
    PathBuf::from(env!("DELADAS_ROOT"))
}

pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_deladas")).parent().expect("bin dir").to_path_buf()
}

pub fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().expect("runs ip");
    assert!(o.status.success(), "ip {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr));
}

/// Waits for `f` to give `Some`, at most `limit`.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let t = Instant::now();
    loop {
        if let Some(x) = f() {
            return x;
        }
        assert!(t.elapsed() < limit, "timed out after {limit:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Test hosts: PREFIX-br holds the bridge (10.210.0.1, where the manager
/// listens), PREFIXhI is host hI at 10.210.0.(10+I). Dropping it kills every
/// process inside and deletes the namespaces, also on panic.
pub struct Cluster {
    pub prefix: String,
    pub dir: PathBuf,
    pub manager: Option<Child>,
    pub agents: BTreeMap<usize, Child>,
    pub manager_args: Vec<String>,
    /// With an etcd store: its members (in the bridge's namespace).
    pub etcd: Option<Etcd>,
    /// Managers in namespaces of their own (`PREFIXmK` at 10.210.0.(2+K)).
    pub managers: BTreeMap<usize, Child>,
    /// Where requests go (the leading manager).
    pub url: String,
    /// The goal the manager runs (default [`GOAL`]).
    pub goal: String,
    /// Environment variables for every agent (and so for every instance it starts).
    pub agent_env: Vec<(String, String)>,
}

/// A 3-member etcd cluster (3.4, `--pre-vote`) in the bridge's namespace:
/// member I listens for clients on 10.210.0.1:(2300+I), for peers on
/// 10.210.0.1:(2400+I). Killed with the cluster.
pub struct Etcd {
    pub members: BTreeMap<usize, Child>,
}

pub const ETCD_MEMBERS: usize = 3;

pub fn etcd_url() -> String {
    let eps: Vec<String> = (1..=ETCD_MEMBERS).map(|i| format!("10.210.0.1:{}", 2300 + i)).collect();
    format!("etcd://{}", eps.join(","))
}

/// Why the etcd tests cannot run here, if they cannot.
pub fn etcd_missing() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("the etcd tests make network namespaces and need root (CI runs as root)".into());
    }
    for tool in ["etcd", "etcdctl"] {
        let found =
            std::env::var("PATH").unwrap_or_default().split(':').any(|d| std::path::Path::new(d).join(tool).is_file());
        if !found {
            return Some(format!(
                "`{tool}` is not installed (Debian: etcd-server, etcd-client; .ci/run installs them)"
            ));
        }
    }
    None
}

/// The URL of manager K in its own namespace.
pub fn manager_url(k: usize) -> String {
    format!("http://10.210.0.{}:7420", 2 + k)
}

impl Cluster {
    pub fn new(tag: u32, manager_args: &[&str]) -> Option<Cluster> {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIPPED: the manager tests make network namespaces and need root (CI runs as root)");
            return None;
        }
        let prefix = format!("dm{:03}{tag}", std::process::id() % 1000);
        let dir = std::env::temp_dir().join(format!("deladas-manager-test-{prefix}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        std::fs::write(dir.join("token"), TOKEN).expect("token");
        let c = Cluster {
            prefix: prefix.clone(),
            dir,
            manager: None,
            agents: BTreeMap::new(),
            manager_args: manager_args.iter().map(|s| s.to_string()).collect(),
            etcd: None,
            managers: BTreeMap::new(),
            url: MANAGER.to_string(),
            goal: GOAL.to_string(),
            agent_env: Vec::new(),
        };
        let br = c.br();
        ip(&["netns", "add", &br]);
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"]);
        ip(&["-n", &br, "addr", "add", "10.210.0.1/24", "dev", "br0"]);
        ip(&["-n", &br, "link", "set", "br0", "up"]);
        ip(&["-n", &br, "link", "set", "lo", "up"]);
        for i in 1..=HOSTS {
            let ns = c.ns(i);
            let veth = c.veth(i);
            ip(&["netns", "add", &ns]);
            ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
            ip(&["link", "set", &veth, "netns", &br]);
            ip(&["-n", &br, "link", "set", &veth, "master", "br0"]);
            ip(&["-n", &br, "link", "set", &veth, "up"]);
            ip(&["-n", &ns, "addr", "add", &format!("10.210.0.{}/24", 10 + i), "dev", "eth0"]);
            ip(&["-n", &ns, "link", "set", "eth0", "up"]);
            ip(&["-n", &ns, "link", "set", "lo", "up"]);
        }
        Some(c)
    }

    pub fn br(&self) -> String {
        format!("{}-br", self.prefix)
    }
    pub fn ns(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }
    pub fn veth(&self, i: usize) -> String {
        format!("{}v{i}", self.prefix)
    }
    pub fn store(&self) -> PathBuf {
        self.dir.join("manager.redb")
    }
    pub fn mns(&self, k: usize) -> String {
        format!("{}m{k}", self.prefix)
    }
    pub fn mveth(&self, k: usize) -> String {
        format!("{}w{k}", self.prefix)
    }

    fn etcd_args(&self, i: usize) -> Vec<String> {
        let cluster: Vec<String> = (1..=ETCD_MEMBERS).map(|j| format!("n{j}=http://10.210.0.1:{}", 2400 + j)).collect();
        let peer = format!("http://10.210.0.1:{}", 2400 + i);
        let client = format!("http://10.210.0.1:{}", 2300 + i);
        [
            "--name",
            &format!("n{i}"),
            "--data-dir",
            &self.dir.join(format!("etcd-n{i}")).display().to_string(),
            "--pre-vote",
            "--listen-peer-urls",
            &peer,
            "--initial-advertise-peer-urls",
            &peer,
            "--listen-client-urls",
            &client,
            "--advertise-client-urls",
            &client,
            "--initial-cluster",
            &cluster.join(","),
            "--initial-cluster-state",
            "new",
            "--initial-cluster-token",
            &self.prefix,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    }

    /// Starts (or restarts, on its data) etcd member I.
    pub fn start_etcd_member(&mut self, i: usize) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("etcd-n{i}.log")))
            .expect("log");
        let child = Command::new("ip")
            .args(["netns", "exec", &self.br(), "etcd"])
            .args(self.etcd_args(i))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawns etcd");
        self.etcd.get_or_insert_with(|| Etcd { members: BTreeMap::new() }).members.insert(i, child);
    }

    pub fn kill_etcd_member(&mut self, i: usize) {
        if let Some(mut m) = self.etcd.as_mut().and_then(|e| e.members.remove(&i)) {
            let _ = m.kill();
            let _ = m.wait();
        }
    }

    /// A call to etcd member I's JSON gateway from the bridge's namespace.
    pub fn etcd_call(&self, i: usize, path: &str, body: &str) -> Result<Value, String> {
        let url = format!("http://10.210.0.1:{}{path}", 2300 + i);
        let (s, text) = self.request_url("POST", &url, Some(body), false, Duration::from_secs(2))?;
        if s != 200 {
            return Err(format!("{s}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    /// The member id of etcd's leader and the raft term, as member I sees them.
    pub fn etcd_leader(&self, i: usize) -> Option<(String, u64)> {
        let v = self.etcd_call(i, "/v3/maintenance/status", "{}").ok()?;
        let leader = v["leader"].as_str()?.to_string();
        let member = v["header"]["member_id"].as_str()?.to_string();
        let _ = member;
        Some((leader, v["raftTerm"].as_str()?.parse().ok()?))
    }

    /// Which member (1..=3) leads etcd now.
    pub fn etcd_leader_member(&self) -> Option<usize> {
        let alive: Vec<usize> = self.etcd.as_ref()?.members.keys().copied().collect();
        let (leader, _) = alive.iter().find_map(|&i| self.etcd_leader(i))?;
        alive.into_iter().find(|&i| {
            self.etcd_call(i, "/v3/maintenance/status", "{}")
                .ok()
                .is_some_and(|v| v["header"]["member_id"].as_str() == Some(leader.as_str()))
        })
    }

    pub fn start_etcd(&mut self) {
        for i in 1..=ETCD_MEMBERS {
            self.start_etcd_member(i);
        }
        wait_for("etcd to elect a leader", Duration::from_secs(30), || self.etcd_leader(1));
    }

    /// A namespace of its own for manager K, on the bridge at 10.210.0.(2+K).
    pub fn add_manager_ns(&self, k: usize) {
        let (br, ns, veth) = (self.br(), self.mns(k), self.mveth(k));
        ip(&["netns", "add", &ns]);
        ip(&["link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns]);
        ip(&["link", "set", &veth, "netns", &br]);
        ip(&["-n", &br, "link", "set", &veth, "master", "br0"]);
        ip(&["-n", &br, "link", "set", &veth, "up"]);
        ip(&["-n", &ns, "addr", "add", &format!("10.210.0.{}/24", 2 + k), "dev", "eth0"]);
        ip(&["-n", &ns, "link", "set", "eth0", "up"]);
        ip(&["-n", &ns, "link", "set", "lo", "up"]);
    }

    fn manager_cmd(&self, listen: &str) -> Vec<String> {
        let store = match &self.etcd {
            Some(_) => etcd_url(),
            None => self.store().display().to_string(),
        };
        let mut args: Vec<String> = vec![
            "manage".into(),
            self.goal.clone(),
            "--listen".into(),
            listen.into(),
            "--token-file".into(),
            self.dir.join("token").display().to_string(),
            "--store".into(),
            store,
            "--grace".into(),
            "2".into(),
        ];
        args.extend(self.manager_args.iter().cloned());
        args
    }

    /// Starts manager K (1, 2, ...) in its own namespace.
    pub fn start_manager_k(&mut self, k: usize) {
        let args = self.manager_cmd(&format!("10.210.0.{}:7420", 2 + k));
        let child = self.spawn_in(&self.mns(k), &args, &format!("manager-m{k}.log"));
        self.managers.insert(k, child);
    }

    pub fn kill_manager_k(&mut self, k: usize) {
        if let Some(mut m) = self.managers.remove(&k) {
            let _ = m.kill();
            let _ = m.wait();
        }
    }

    /// The manager (1, 2, ...) whose /health says it leads.
    pub fn leader_k(&self) -> Option<usize> {
        let leaders: Vec<usize> = self
            .managers
            .keys()
            .copied()
            .filter(|&k| {
                self.request_url("GET", &format!("{}/health", manager_url(k)), None, false, Duration::from_secs(2))
                    .ok()
                    .and_then(|(_, t)| serde_json::from_str::<Value>(&t).ok())
                    .is_some_and(|v| v["role"] == "leader")
            })
            .collect();
        (leaders.len() == 1).then(|| leaders[0])
    }

    /// A cluster on an etcd store: 3 etcd members, one manager (in the
    /// bridge's namespace, as `up`), agents with leases.
    pub fn up_etcd(tag: u32, manager_args: &[&str]) -> Option<Cluster> {
        if let Some(why) = etcd_missing() {
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let mut c = Cluster::new(tag, manager_args)?;
        c.start_etcd();
        c.start_manager();
        for i in 1..=HOSTS {
            c.start_agent(i);
        }
        Some(c)
    }

    /// [`Cluster::up_etcd`] with another goal.
    pub fn up_etcd_with(tag: u32, goal: &str) -> Option<Cluster> {
        if let Some(why) = etcd_missing() {
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let mut c = Cluster::new(tag, &[])?;
        c.goal = goal.to_string();
        c.start_etcd();
        c.start_manager();
        for i in 1..=HOSTS {
            c.start_agent(i);
        }
        Some(c)
    }

    /// A cluster on an etcd store with `n` managers, each in its own namespace.
    pub fn up_managers(tag: u32, n: usize, manager_args: &[&str]) -> Option<Cluster> {
        if let Some(why) = etcd_missing() {
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let mut c = Cluster::new(tag, manager_args)?;
        c.start_etcd();
        for k in 1..=n {
            c.add_manager_ns(k);
            c.start_manager_k(k);
        }
        for i in 1..=HOSTS {
            c.start_agent(i);
        }
        let k = wait_for("a manager to lead", Duration::from_secs(30), || c.leader_k());
        c.url = manager_url(k);
        Some(c)
    }

    pub fn spawn_in(&self, ns: &str, args: &[String], log: &str) -> Child {
        self.spawn_in_env(ns, args, log, &[])
    }

    /// [`Cluster::spawn_in`] with more environment variables.
    pub fn spawn_in_env(&self, ns: &str, args: &[String], log: &str, env: &[(String, String)]) -> Child {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join(log)).expect("log");
        let path = format!("{}:{}", bin_dir().display(), std::env::var("PATH").unwrap_or_default());
        Command::new("ip")
            .args(["netns", "exec", ns])
            .arg(bin_dir().join("deladas"))
            .args(args)
            .env("PATH", path)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .current_dir(root())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("spawns")
    }

    pub fn start_manager(&mut self) {
        let args = self.manager_cmd("10.210.0.1:7420");
        let child = self.spawn_in(&self.br(), &args, "manager.log");
        self.manager = Some(child);
        // With etcd, it answers once elected (after an earlier leader's lease lapsed).
        wait_for("the manager to answer", Duration::from_secs(30), || self.try_get("/health").ok());
    }

    pub fn kill_manager(&mut self) {
        if let Some(mut m) = self.manager.take() {
            let _ = m.kill();
            let _ = m.wait();
        }
    }

    pub fn start_agent(&mut self, i: usize) {
        let managers = if self.managers.is_empty() {
            MANAGER.to_string()
        } else {
            self.managers.keys().map(|&k| manager_url(k)).collect::<Vec<_>>().join(",")
        };
        let mut args: Vec<String> = vec![
            "agent".into(),
            "--host".into(),
            format!("h{i}"),
            "--manager".into(),
            managers,
            "--token-file".into(),
            self.dir.join("token").display().to_string(),
            "--address".into(),
            format!("10.210.0.{}", 10 + i),
            "--state-dir".into(),
            self.state(i).display().to_string(),
            "--heartbeat".into(),
            "0.2".into(),
        ];
        if self.etcd.is_some() {
            args.extend(["--etcd".into(), etcd_url()]);
        }
        let child = self.spawn_in_env(&self.ns(i), &args, &format!("agent-h{i}.log"), &self.agent_env);
        self.agents.insert(i, child);
    }

    pub fn state(&self, i: usize) -> PathBuf {
        self.dir.join(format!("h{i}"))
    }

    pub fn up(tag: u32, manager_args: &[&str]) -> Option<Cluster> {
        Cluster::up_with(tag, GOAL, manager_args, &[])
    }

    /// [`Cluster::up`] with another goal and environment variables for the agents.
    pub fn up_with(tag: u32, goal: &str, manager_args: &[&str], agent_env: &[(&str, &str)]) -> Option<Cluster> {
        let mut c = Cluster::new(tag, manager_args)?;
        c.goal = goal.to_string();
        c.agent_env = agent_env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        c.start_manager();
        for i in 1..=HOSTS {
            c.start_agent(i);
        }
        Some(c)
    }

    /// A request to the manager, from a thread inside the bridge's namespace.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>, token: bool) -> Result<(u16, String), String> {
        self.request_url(method, &format!("{}{path}", self.url), body, token, Duration::from_secs(30))
    }

    /// A request to any URL, from a thread inside the bridge's namespace.
    pub fn request_url(
        &self,
        method: &str,
        url: &str,
        body: Option<&str>,
        token: bool,
        timeout: Duration,
    ) -> Result<(u16, String), String> {
        let ns = std::fs::File::open(format!("/var/run/netns/{}", self.br())).map_err(|e| e.to_string())?;
        std::thread::scope(|s| {
            s.spawn(|| {
                nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())?;
                let http: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(timeout))
                    .http_status_as_error(false)
                    .build()
                    .into();
                let auth = format!("Bearer {TOKEN}");
                let r = if method == "GET" {
                    let mut r = http.get(url);
                    if token {
                        r = r.header("Authorization", &auth);
                    }
                    r.call()
                } else {
                    let mut r = http.post(url).header("Content-Type", "application/json");
                    if token {
                        r = r.header("Authorization", &auth);
                    }
                    r.send(body.unwrap_or(""))
                };
                let mut resp = r.map_err(|e| e.to_string())?;
                let status = resp.status().as_u16();
                Ok((status, resp.body_mut().read_to_string().map_err(|e| e.to_string())?))
            })
            .join()
            .map_err(|_| "the request thread panicked".to_string())?
        })
    }

    pub fn try_get(&self, path: &str) -> Result<Value, String> {
        let (s, text) = self.request("GET", path, None, true)?;
        if s != 200 {
            return Err(format!("{s}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| e.to_string())
    }

    pub fn get(&self, path: &str) -> Value {
        self.try_get(path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    pub fn events(&self) -> Vec<Value> {
        self.get("/events").as_array().cloned().unwrap_or_default()
    }

    pub fn event(&self, kind: &str, generation: Option<u64>) -> Option<Value> {
        self.events()
            .into_iter()
            .find(|e| e["kind"] == kind && generation.is_none_or(|g| e["generation"].as_u64() == Some(g)))
    }

    /// Waits until generation `g` is enacted (plan done); returns the DDD.
    pub fn wait_enacted(&self, g: u64, limit: Duration) -> deladas::ddd::Deployment {
        wait_for(&format!("generation {g} enacted"), limit, || {
            let d = self.try_get("/deployment").ok()?;
            if d["generation"].as_u64() == Some(g) && d["plan"].is_null() {
                deladas::ddd::from_xml(d["ddd"].as_str()?).ok()
            } else {
                None
            }
        })
    }

    /// The status file of an instance running on host `i`.
    pub fn status(&self, i: usize, id: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.state(i).join("instances").join(id).join("status.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    pub fn host_index(host: &str) -> usize {
        host.trim_start_matches('h').parse().expect("host hN")
    }

    /// Every client of `d` receives new messages from every other client.
    pub fn wait_traffic(&self, d: &deladas::ddd::Deployment, limit: Duration) {
        let clients: Vec<(usize, String)> = d
            .instances
            .iter()
            .filter(|i| i.component == "Client")
            .map(|i| (Cluster::host_index(&i.host), i.id.clone()))
            .collect();
        assert!(clients.len() >= 2, "the goal has clients");
        let before: BTreeMap<String, u64> = clients
            .iter()
            .map(|(h, id)| {
                (id.clone(), self.status(*h, id).and_then(|s| s["counters"]["received"].as_u64()).unwrap_or(0))
            })
            .collect();
        wait_for("messages from every client to reach every other client", limit, || {
            clients
                .iter()
                .all(|(h, id)| {
                    let Some(s) = self.status(*h, id) else { return false };
                    let got = s["counters"]["received"].as_u64().unwrap_or(0);
                    let origins: BTreeSet<String> = s["origins"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|o| o.as_str().map(String::from))
                        .collect();
                    got > before[id] + 10 && clients.iter().all(|(_, o)| o == id || origins.contains(o))
                })
                .then_some(())
        });
    }

    /// SIGKILL every process in host `i`'s namespace, as a crash would.
    pub fn crash(&mut self, i: usize) {
        kill_all_in(&self.ns(i));
        if let Some(mut a) = self.agents.remove(&i) {
            let _ = a.wait();
        }
    }

    /// Instance ids of every process running on any host, with repeats.
    pub fn running_instances(&self) -> Vec<String> {
        let mut ids = vec![];
        for i in 1..=HOSTS {
            for pid in pids_in(&self.ns(i)) {
                let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
                for v in environ.split(|&b| b == 0) {
                    if let Some(id) = v.strip_prefix(b"DELADAS_INSTANCE=") {
                        ids.push(String::from_utf8_lossy(id).into_owned());
                    }
                }
            }
        }
        ids.sort();
        ids
    }
}

pub fn pids_in(ns: &str) -> Vec<i32> {
    let o = Command::new("ip").args(["netns", "pids", ns]).output();
    o.map(|o| String::from_utf8_lossy(&o.stdout).split_whitespace().filter_map(|p| p.parse().ok()).collect())
        .unwrap_or_default()
}

pub fn kill_all_in(ns: &str) {
    for pid in pids_in(ns) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_manager();
        for k in self.managers.keys().copied().collect::<Vec<_>>() {
            self.kill_manager_k(k);
        }
        if let Some(e) = self.etcd.take() {
            for (_, mut m) in e.members {
                let _ = m.kill();
                let _ = m.wait();
            }
        }
        let mut spaces: Vec<String> = (1..=HOSTS).map(|i| self.ns(i)).collect();
        spaces
            .extend((1..=4).map(|k| self.mns(k)).filter(|ns| std::path::Path::new("/var/run/netns").join(ns).exists()));
        spaces.push(self.br());
        for ns in &spaces {
            kill_all_in(ns);
        }
        for (_, mut a) in std::mem::take(&mut self.agents) {
            let _ = a.kill();
            let _ = a.wait();
        }
        for ns in &spaces {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        if std::thread::panicking() {
            eprintln!("logs kept in {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn lock() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn kept(old: &deladas::ddd::Deployment, new: &deladas::ddd::Deployment) -> BTreeSet<(String, String, String)> {
    let b = |d: &deladas::ddd::Deployment| -> BTreeSet<(String, String, String)> {
        d.instances.iter().map(|i| (i.id.clone(), i.component.clone(), i.host.clone())).collect()
    };
    b(old).intersection(&b(new)).cloned().collect()
}

/// The instances `/resources` reports for host `h`.
pub fn observed(c: &Cluster, host: &str) -> Vec<Value> {
    let r = c.get("/resources");
    r["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["host"] == host)
        .map(|h| h["instances"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}
