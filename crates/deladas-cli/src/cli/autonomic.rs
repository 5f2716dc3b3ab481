//! The command-line arguments of `deladas manage`, `agent`, `status`,
//! `events`, `plan` and `enact`; the work is in the front ends `crate::manage`,
//! `crate::agent` and `crate::client` (docs/manager.md).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

fn default_manager() -> String {
    std::env::var("DELADAS_MANAGER").unwrap_or_else(|_| "http://127.0.0.1:7420".into())
}

fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if v.is_finite() && v >= 0.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("`{s}` is not a number of seconds"))
    }
}

#[derive(Args, Debug)]
pub(super) struct ManageCli {
    /// The goal file (`.deladas`); components need a `command` (docs/runspec.md).
    goal: PathBuf,
    /// Address to listen on; anything but loopback needs `--token-file`.
    #[arg(long, default_value = "127.0.0.1:7420")]
    listen: String,
    /// The store: one redb file (default: beside the goal, `GOAL.manager.redb`),
    /// or `etcd://HOST:PORT,HOST:PORT,...[/PREFIX]` (several managers, one elected leader).
    #[arg(long)]
    store: Option<PathBuf>,
    /// With an etcd store: seconds of the leader's lease (another manager takes over about this long after the leader dies).
    #[arg(long, default_value = "2", value_parser = secs)]
    lease_ttl: Duration,
    /// A file holding the token agents and clients must send.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Seconds of silence after which a host is failed (agents fence after half of it).
    #[arg(long, default_value = "5", value_parser = secs)]
    grace: Duration,
    /// Freeze instead of re-solving when more than this share of live hosts (and at least 2) fall silent at once.
    #[arg(long, default_value_t = 0.5)]
    freeze_share: f64,
    /// Re-solve at most once per this many seconds.
    #[arg(long, default_value = "1", value_parser = secs)]
    min_resolve_interval: Duration,
    /// Do not deploy the goal by itself once every host's agent reports (wait for `deladas enact`).
    #[arg(long)]
    no_auto_deploy: bool,
    /// Hold every plan step at least this many seconds (for tests of a manager killed mid-plan).
    #[arg(long, default_value = "0", value_parser = secs, hide = true)]
    step_delay: Duration,
}

impl ManageCli {
    pub(super) fn run(self) -> i32 {
        crate::manage::run_manage(crate::manage::ManageArgs {
            goal: self.goal,
            listen: self.listen,
            store: self.store,
            token_file: self.token_file,
            grace: self.grace,
            freeze_share: self.freeze_share,
            min_resolve_interval: self.min_resolve_interval,
            auto_deploy: !self.no_auto_deploy,
            step_delay: self.step_delay,
            lease_ttl: self.lease_ttl,
        })
    }
}

#[derive(Args, Debug)]
pub(super) struct AgentCli {
    /// The host this agent runs (a host the goal declares).
    #[arg(long)]
    host: String,
    /// The manager's URL; several, comma-separated, when managers share an etcd store (the agent follows the leader).
    #[arg(long, default_value_t = default_manager())]
    manager: String,
    /// `etcd://HOST:PORT,...[/PREFIX]`, the managers' etcd store: the agent keeps a lease on its host's key (its liveness).
    #[arg(long)]
    etcd: Option<String>,
    /// Seconds of the host's lease in etcd.
    #[arg(long, default_value = "2", value_parser = secs)]
    lease_ttl: Duration,
    /// A file holding the manager's token.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// The address other hosts reach this one at (goes into peers' wiring).
    #[arg(long, default_value = "127.0.0.1")]
    address: String,
    /// Where instances' wiring, pid files and logs go; default: a directory per host under the system's temporary directory.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Relative program paths of run specs are resolved against this directory.
    #[arg(long, default_value = ".")]
    bundle_dir: PathBuf,
    /// Seconds between heartbeats.
    #[arg(long, default_value = "0.3", value_parser = secs)]
    heartbeat: Duration,
}

impl AgentCli {
    pub(super) fn run(self) -> i32 {
        let state_dir =
            self.state_dir.unwrap_or_else(|| std::env::temp_dir().join(format!("deladas-agent-{}", self.host)));
        let bundle_dir = std::fs::canonicalize(&self.bundle_dir).unwrap_or(self.bundle_dir);
        crate::agent::run_agent(crate::agent::AgentArgs {
            host: self.host,
            manager: self.manager,
            token_file: self.token_file,
            address: self.address,
            state_dir,
            bundle_dir,
            heartbeat: self.heartbeat.max(Duration::from_millis(20)),
            etcd: self.etcd,
            lease_ttl: self.lease_ttl,
        })
    }
}

#[derive(Args, Debug)]
pub(super) struct ConnArgs {
    /// The manager's URL (default: $DELADAS_MANAGER, else http://127.0.0.1:7420).
    #[arg(long, default_value_t = default_manager())]
    manager: String,
    /// A file holding the manager's token.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

impl ConnArgs {
    fn conn(self) -> crate::client::ManagerConnArgs {
        crate::client::ManagerConnArgs { manager: self.manager, token_file: self.token_file }
    }
}

#[derive(Args, Debug)]
pub(super) struct StatusCli {
    #[command(flatten)]
    conn: ConnArgs,
    /// One JSON object instead of a table.
    #[arg(long)]
    json: bool,
}

impl StatusCli {
    pub(super) fn run(self) -> i32 {
        crate::client::run_client(&self.conn.conn(), crate::client::ClientArgs::Status { json: self.json })
    }
}

#[derive(Args, Debug)]
pub(super) struct EventsCli {
    #[command(flatten)]
    conn: ConnArgs,
    /// Keep streaming new events.
    #[arg(long, short)]
    follow: bool,
    /// Start at this event number.
    #[arg(long, default_value_t = 0)]
    since: u64,
}

impl EventsCli {
    pub(super) fn run(self) -> i32 {
        let cmd = crate::client::ClientArgs::Events { follow: self.follow, since: self.since };
        crate::client::run_client(&self.conn.conn(), cmd)
    }
}

#[derive(Args, Debug)]
pub(super) struct PlanCli {
    /// The DDD to plan for.
    ddd: PathBuf,
    #[command(flatten)]
    conn: ConnArgs,
}

impl PlanCli {
    pub(super) fn run(self) -> i32 {
        crate::client::run_client(&self.conn.conn(), crate::client::ClientArgs::Plan { ddd: self.ddd })
    }
}

#[derive(Args, Debug)]
pub(super) struct EnactCli {
    /// The DDD to enact.
    ddd: PathBuf,
    /// The generation the plan was made against (default: plan now and enact that).
    #[arg(long)]
    generation: Option<u64>,
    #[command(flatten)]
    conn: ConnArgs,
}

impl EnactCli {
    pub(super) fn run(self) -> i32 {
        let cmd = crate::client::ClientArgs::Enact { ddd: self.ddd, generation: self.generation };
        crate::client::run_client(&self.conn.conn(), cmd)
    }
}
