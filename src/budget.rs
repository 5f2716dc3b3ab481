//! The limits of one run: a deadline, a memory cap and cancellation, kept
//! over the *whole* run (grounding, every solver call, cores, parsimony,
//! repair search), not only inside solver calls.
//!
//! * A [`Budget`] is installed on the solver thread by
//!   `solve::in_fresh_context`; [`check`] (an atomic load) lets grounding and
//!   search loops stop promptly.
//! * A *watchdog* thread beside the solver thread polls the clock, the
//!   process's memory (`/proc/self/statm`) and the cancel flag every few
//!   milliseconds. When a limit is reached it records which
//!   ([`LimitHit`], with the phase and the numbers) and interrupts Z3.
//! * Cancellation is process-wide ([`cancel`], async-signal-safe): the
//!   command line's SIGINT/SIGTERM handler calls it.
//! * The memory cap is process-wide too ([`set_memory_limit`], default
//!   [`default_memory_limit`]); it also bounds the size of a grounding
//!   ([`node_budget`]) and is handed to Z3 (`memory_max_size`,
//!   `memory_high_watermark`).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// 0: not cancelled; otherwise the signal number (or -1 without one).
static CANCEL: AtomicI32 = AtomicI32::new(0);
/// Whether the process ends right after a stopped run (see [`set_exit_after_stop`]).
static EXIT_AFTER_STOP: AtomicBool = AtomicBool::new(false);
/// The memory cap in bytes; 0: the default.
static MEMORY_LIMIT: AtomicU64 = AtomicU64::new(0);

/// Cancels every run in this process (and every later one). Only an atomic
/// store: safe to call from a signal handler. `signal` is reported back by
/// [`cancelled`] (use -1 for none).
pub fn cancel(signal: i32) {
    CANCEL.store(if signal == 0 { -1 } else { signal }, Ordering::SeqCst);
}

/// The signal (or -1) [`cancel`] was called with, if it was.
pub fn cancelled() -> Option<i32> {
    match CANCEL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Says that this process ends as soon as a run is stopped by a limit (a
/// command line, not a server): a stopped run then leaves its solver and
/// grounding for the operating system to free, instead of spending time
/// after the limit freeing them piece by piece.
pub fn set_exit_after_stop(yes: bool) {
    EXIT_AFTER_STOP.store(yes, Ordering::SeqCst);
}

/// How long a run stopped by a limit may take to wind down (Z3 can take
/// seconds to notice an interrupt inside its preprocessing) before the
/// hook of [`on_overrun`] ends the process.
pub const OVERRUN_GRACE: Duration = Duration::from_millis(300);

static OVERRUN: std::sync::OnceLock<fn(&LimitHit) -> !> = std::sync::OnceLock::new();

/// For a process that ends after a stopped run ([`set_exit_after_stop`]):
/// when a run has not returned [`OVERRUN_GRACE`] after its limit was
/// reached, the watchdog calls `hook` (which reports the limit and exits)
/// instead of waiting for the solver. The first hook set stays.
pub fn on_overrun(hook: fn(&LimitHit) -> !) {
    let _ = OVERRUN.set(hook);
}

/// Whether [`set_exit_after_stop`] was set.
pub fn exit_after_stop() -> bool {
    EXIT_AFTER_STOP.load(Ordering::SeqCst)
}

/// Sets the process's memory cap (bytes; 0 restores the default).
pub fn set_memory_limit(bytes: u64) {
    MEMORY_LIMIT.store(bytes, Ordering::SeqCst);
}

/// A cancellation of the runs started under it (see
/// [`with_cancel_token`]), for a caller that runs several in turn and must
/// stop a stale one: the language server cancels the check of an old state
/// of a document when a newer one arrives. Cheap to clone and to poll.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    pub fn new() -> CancelToken {
        CancelToken::default()
    }
    /// Stops every run started under this token (within the watchdog's
    /// polling interval), now or later.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

thread_local! {
    static TOKEN: RefCell<Option<CancelToken>> = const { RefCell::new(None) };
}

/// Runs `f` with `token` attached to every run (every [`Budget`]) it starts
/// on this thread: cancelling the token ends them as Ctrl-C would, with
/// [`LimitHit::Cancelled`].
pub fn with_cancel_token<R>(token: &CancelToken, f: impl FnOnce() -> R) -> R {
    let old = TOKEN.with(|t| t.borrow_mut().replace(token.clone()));
    let r = f();
    TOKEN.with(|t| *t.borrow_mut() = old);
    r
}

/// The memory cap in force: the one set, else [`default_memory_limit`]. Never
/// above half the address-space limit (`ulimit -v`), which counts reserved
/// as well as used memory.
pub fn memory_limit() -> u64 {
    let set = MEMORY_LIMIT.load(Ordering::SeqCst);
    let base = if set == 0 { default_memory_limit() } else { set };
    match address_space_limit() {
        Some(av) => base.min(av / 2),
        None => base,
    }
}

/// 4 GiB, or half the machine's memory when it has less than 8 GiB.
pub fn default_memory_limit() -> u64 {
    const GIB: u64 = 1 << 30;
    match total_ram() {
        Some(ram) => (4 * GIB).min(ram / 2).max(GIB / 4),
        None => 4 * GIB,
    }
}

fn total_ram() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The address-space limit (`ulimit -v`, RLIMIT_AS) in bytes, if any.
pub fn address_space_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with("Max address space"))?;
    let soft = line.split_whitespace().nth(3)?;
    soft.parse().ok()
}

/// (resident, virtual) bytes of this process, where the system tells.
pub fn memory_in_use() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/self/statm").ok()?;
    let mut it = text.split_whitespace();
    let size: u64 = it.next()?.parse().ok()?;
    let resident: u64 = it.next()?.parse().ok()?;
    const PAGE: u64 = 4096;
    Some((resident * PAGE, size * PAGE))
}

/// How many ground nodes a grounding may have within the memory cap (each
/// node costs its ground form, its index entry and its solver term).
pub fn node_budget() -> usize {
    const BYTES_PER_NODE: u64 = 250;
    usize::try_from(memory_limit() / BYTES_PER_NODE).unwrap_or(usize::MAX)
}

/// Which limit stopped a run, where, and the numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitHit {
    /// The time limit ran out.
    Time { phase: &'static str, limit: Duration },
    /// The memory cap was reached.
    Memory { phase: &'static str, used: u64, limit: u64 },
    /// The run was cancelled (Ctrl-C, SIGTERM, an editor's newer request).
    Cancelled { phase: &'static str },
    /// The solver answered but its model could not be read (an evaluation
    /// failed, as Z3's do once it is interrupted): no configuration is
    /// claimed from it.
    ModelUnreadable { phase: &'static str },
}

fn gib(b: u64) -> String {
    if b >= 1 << 30 {
        format!("{:.1} GiB", b as f64 / (1u64 << 30) as f64)
    } else {
        format!("{} MiB", b >> 20)
    }
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::Time { phase, limit } => {
                write!(f, "out of time while {phase} (the limit is {:.1} s)", limit.as_secs_f64())
            }
            LimitHit::Memory { phase, used, limit } => {
                write!(f, "out of memory while {phase}: {} in use, the limit is {}", gib(*used), gib(*limit))
            }
            LimitHit::Cancelled { phase } => write!(f, "cancelled while {phase}"),
            LimitHit::ModelUnreadable { phase } => {
                write!(f, "the solver's model could not be read while {phase} (its evaluation failed)")
            }
        }
    }
}

/// The limits of one run.
#[derive(Debug)]
pub struct Budget {
    start: Instant,
    timeout: Option<Duration>,
    memory: u64,
    /// Virtual size allowed (from `ulimit -v`), when there is such a limit.
    virtual_max: Option<u64>,
    tripped: AtomicBool,
    hit: Mutex<Option<LimitHit>>,
    phase: Mutex<&'static str>,
    /// The caller's cancellation, if it runs under one ([`with_cancel_token`]).
    token: Option<CancelToken>,
}

impl Budget {
    /// A budget starting now, with this time limit and the process's memory cap.
    pub fn new(timeout: Option<Duration>) -> Budget {
        Budget {
            start: Instant::now(),
            timeout,
            memory: memory_limit(),
            virtual_max: address_space_limit().map(|l| l / 10 * 8),
            tripped: AtomicBool::new(false),
            hit: Mutex::new(None),
            phase: Mutex::new("starting"),
            token: TOKEN.with(|t| t.borrow().clone()),
        }
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The deadline, if there is a time limit.
    pub fn deadline(&self) -> Option<Instant> {
        self.timeout.map(|t| self.start + t)
    }

    /// The limit that stopped the run, if one did.
    pub fn hit(&self) -> Option<LimitHit> {
        if !self.tripped.load(Ordering::Acquire) {
            return None;
        }
        self.hit.lock().ok().and_then(|h| h.clone())
    }

    fn phase(&self) -> &'static str {
        self.phase.lock().map(|p| *p).unwrap_or("solving")
    }

    fn trip(&self, hit: LimitHit) {
        if let Ok(mut h) = self.hit.lock() {
            if h.is_none() {
                *h = Some(hit);
            }
        }
        self.tripped.store(true, Ordering::Release);
    }

    /// Checks every limit now (clock, cancel flag, memory); records the
    /// first one reached.
    pub fn poll(&self) -> bool {
        if self.tripped.load(Ordering::Acquire) {
            return true;
        }
        let phase = self.phase();
        if cancelled().is_some() || self.token.as_ref().is_some_and(CancelToken::is_cancelled) {
            self.trip(LimitHit::Cancelled { phase });
        } else if let (Some(t), true) = (self.timeout, self.deadline().is_some_and(|d| Instant::now() >= d)) {
            self.trip(LimitHit::Time { phase, limit: t });
        } else if let Some((rss, vsz)) = memory_in_use() {
            if rss > self.memory {
                self.trip(LimitHit::Memory { phase, used: rss, limit: self.memory });
            } else if let Some(vmax) = self.virtual_max {
                if vsz > vmax {
                    self.trip(LimitHit::Memory { phase, used: vsz, limit: vmax });
                }
            }
        }
        self.tripped.load(Ordering::Acquire)
    }

    /// After a panic inside the solver: the limit that explains it, if any
    /// (Z3's allocations fail once its memory cap is reached).
    pub(crate) fn explain_panic(&self) -> Option<LimitHit> {
        if let Some(h) = self.hit() {
            return Some(h);
        }
        let phase = self.phase();
        let (rss, vsz) = memory_in_use()?;
        if rss > self.memory / 2 {
            return Some(LimitHit::Memory { phase, used: rss, limit: self.memory });
        }
        if self.virtual_max.is_some_and(|v| vsz > v / 2) {
            return Some(LimitHit::Memory { phase, used: vsz, limit: self.virtual_max.unwrap_or(0) });
        }
        None
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Budget>>> = const { RefCell::new(None) };
}

/// Makes `b` the budget of this thread's run.
pub(crate) fn install(b: Arc<Budget>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(b));
}

/// The budget of this thread's run, if one is installed.
pub fn current() -> Option<Arc<Budget>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Whether a panic on this thread is one that a reached limit explains (Z3's
/// bindings unwrap the null a failed allocation returns): the run then
/// reports the limit (E0802), so a panic hook need not print the panic.
/// `CURRENT.try_with`: a panic while the thread is being torn down has no
/// budget.
pub fn panic_explained_by_limit() -> bool {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|b| b.clone()))
        .ok()
        .flatten()
        .is_some_and(|b| b.explain_panic().is_some())
}

/// Whether this thread's run must stop; cheap enough for inner loops.
pub fn check() -> Result<(), LimitHit> {
    CURRENT.with(|c| match &*c.borrow() {
        Some(b) if b.tripped.load(Ordering::Relaxed) => {
            Err(b.hit().unwrap_or(LimitHit::Cancelled { phase: "solving" }))
        }
        Some(_) => Ok(()),
        None => match cancelled() {
            Some(_) => Err(LimitHit::Cancelled { phase: "solving" }),
            None => Ok(()),
        },
    })
}

/// Whether this thread's run must stop.
pub fn stopped() -> bool {
    check().is_err()
}

/// The limit that stopped this thread's run, if one did.
pub fn hit() -> Option<LimitHit> {
    check().err()
}

/// Names the phase this thread's run is in (for the message when a limit is reached).
pub fn set_phase(phase: &'static str) {
    CURRENT.with(|c| {
        if let Some(b) = &*c.borrow() {
            if let Ok(mut p) = b.phase.lock() {
                *p = phase;
            }
        }
    });
}

/// The phase this thread's run is in ("solving" outside a run).
pub fn phase() -> &'static str {
    CURRENT.with(|c| match &*c.borrow() {
        Some(b) => b.phase(),
        None => "solving",
    })
}

/// The deadline of this thread's run, if any.
pub fn deadline() -> Option<Instant> {
    current().and_then(|b| b.deadline())
}

/// Polls `budget` until `done`, calling `interrupt` (repeatedly) once a
/// limit is reached. Runs on the watchdog thread.
///
/// `done` is set by whoever ends the run: the solver thread when it
/// returns, or this watchdog when it hands an overrun to the hook of
/// [`on_overrun`] (the solver thread then waits for the process to end).
pub(crate) fn watch(budget: &Budget, done: &AtomicBool, interrupt: &dyn Fn()) {
    let mut told = false;
    let mut tripped_at: Option<Instant> = None;
    while !done.load(Ordering::Acquire) {
        if budget.poll() {
            if !told && std::env::var_os("DELADAS_DEBUG").is_some() {
                eprintln!("limit reached at {:?}: {:?}", budget.elapsed(), budget.hit());
                told = true;
            }
            interrupt();
            let at = *tripped_at.get_or_insert_with(Instant::now);
            if at.elapsed() >= OVERRUN_GRACE && exit_after_stop() {
                if let (Some(hook), Some(hit)) = (OVERRUN.get(), budget.hit()) {
                    if done.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok() {
                        if std::env::var_os("DELADAS_DEBUG").is_some() {
                            eprintln!("run overran its limit at {:?}: the process ends", budget.elapsed());
                        }
                        hook(&hit);
                    }
                }
            }
        }
        std::thread::park_timeout(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_budget_trips_on_its_deadline_and_names_the_phase() {
        let b = Budget::new(Some(Duration::from_millis(1)));
        *b.phase.lock().expect("lock") = "grounding";
        std::thread::sleep(Duration::from_millis(5));
        assert!(b.poll());
        let hit = b.hit().expect("tripped");
        assert!(matches!(hit, LimitHit::Time { phase: "grounding", .. }), "{hit:?}");
        assert!(hit.to_string().contains("grounding"), "{hit}");
    }

    #[test]
    fn a_cancel_token_stops_the_runs_started_under_it_only() {
        let token = CancelToken::new();
        let under = with_cancel_token(&token, || Budget::new(None));
        let outside = Budget::new(None);
        assert!(!under.poll());
        token.cancel();
        assert!(under.poll());
        assert!(matches!(under.hit(), Some(LimitHit::Cancelled { .. })));
        assert!(!outside.poll());
    }

    #[test]
    fn memory_figures_are_read() {
        let (rss, vsz) = memory_in_use().expect("/proc/self/statm");
        assert!(rss > 0 && vsz >= rss);
        assert!(memory_limit() > 0);
    }
}
