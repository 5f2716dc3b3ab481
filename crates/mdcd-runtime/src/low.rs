//! A G_low process, P_i^low (figure 2 of the paper): the new,
//! low-confidence version. Its `dirty_bit` is constantly 1; it takes no
//! checkpoints (on recovery it is stopped and its shadow takes over).

use super::state::ProtocolStats;
use super::{AcceptanceTest, Application, Counter, CounterGroup, Effect, Envelope, Link, Output, SharedCounter, Stamp};
use crate::Role;

/// A G_low process wrapping the new version's application.
pub struct LowProcess<A: Application> {
    app: A,
    links: Vec<Link>,
    /// The local copy of the cluster's shared `int_mSN_Glow`.
    counter: Counter,
    /// The local copy of the shared `ext_mSN_Glow`.
    ext_counter: Counter,
    send_seq: Vec<u64>,
    stats: ProtocolStats,
    exited: bool,
    /// Where the shared counters come from between OS processes (None: the
    /// local copies and their broadcasts, as in the simulator).
    shared: Option<Box<dyn SharedCounter + Send>>,
    /// The guarded period is over: an ordinary process (no AT, clean).
    promoted: bool,
    /// Per-link validation ([`LowProcess::set_link_slots`]): the slot of
    /// link `l` is `base + l`.
    slot_base: Option<u32>,
}

impl<A: Application> LowProcess<A> {
    /// Wraps `app`, whose links lead to processes of the given roles.
    pub fn new(app: A, links: Vec<Link>) -> Self {
        let n = links.len();
        LowProcess {
            app,
            links,
            counter: 0,
            ext_counter: 0,
            send_seq: vec![0; n],
            stats: ProtocolStats::default(),
            exited: false,
            shared: None,
            promoted: false,
            slot_base: None,
        }
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.app
    }

    /// The local copy of `int_mSN_Glow`.
    pub fn counter(&self) -> Counter {
        self.counter
    }

    /// `exit(error)` happened: the process failed an AT it could not compensate.
    pub fn exited(&self) -> bool {
        self.exited
    }

    /// The process's counters.
    pub fn stats(&self) -> &ProtocolStats {
        &self.stats
    }

    /// Takes `int_mSN_Glow` and `ext_mSN_Glow` from a shared counter (for
    /// G_low processes in several OS processes, whose concurrent increments
    /// must not give two messages one number): each increment is the
    /// counter's `next`. When the counter is unreachable the process can no
    /// longer be guarded: it exits and starts recovery.
    pub fn set_shared_counter(&mut self, c: Box<dyn SharedCounter + Send>) {
        self.shared = Some(c);
    }

    /// Per-link validation (docs/mdcd.md, "Several G_low senders"): each
    /// link `l` to G_act numbers its messages in its own slot `base + l`
    /// (1, 2, … in send order) instead of the cluster's shared
    /// `int_mSN_Glow`, so no shared counter is needed for them; the twin's
    /// shadow numbers its messages on the same link in the same slot
    /// ([`crate::ShadowProcess::set_link_slots`] with the same `base`).
    pub fn set_link_slots(&mut self, base: u32) {
        self.slot_base = Some(base);
    }

    /// What this process's messages to G_act are numbered up to, per slot
    /// (per-link validation), or the shared counter.
    fn stamp(&self) -> Stamp {
        match self.slot_base {
            Some(base) => {
                let mut st = Stamp::zero();
                for (l, link) in self.links.iter().enumerate() {
                    if link.peer_role == Role::Active {
                        st.raise(base + l as u32, self.send_seq[l]);
                    }
                }
                st
            }
            None => Stamp::from(self.counter),
        }
    }

    /// The end of the guarded period: the new version is promoted, an
    /// ordinary process from now on (no AT, no counters, clean messages).
    pub fn promote(&mut self) {
        self.promoted = true;
    }

    /// Whether [`LowProcess::promote`] happened.
    pub fn promoted(&self) -> bool {
        self.promoted
    }

    fn bump(&mut self, group: CounterGroup) -> Option<Counter> {
        let cur = if group == CounterGroup::LowExt { self.ext_counter } else { self.counter };
        // A shared counter's value is above every value handed out before
        // (it is linearisable); the local copy only counts up.
        let v = match &mut self.shared {
            Some(c) => c.next(group)?,
            None => cur + 1,
        };
        if group == CounterGroup::LowExt {
            self.ext_counter = v;
        } else {
            self.counter = v;
        }
        Some(v)
    }

    /// Another G_low process broadcast the shared counter (figure 2,
    /// `msg_sending(int_mSN_Glow, {G_low − P_i})`).
    pub fn on_counter(&mut self, value: Counter) {
        self.counter = self.counter.max(value);
    }

    /// Another G_low process broadcast `ext_mSN_Glow`.
    pub fn on_ext_counter(&mut self, value: Counter) {
        self.ext_counter = self.ext_counter.max(value);
    }

    /// An application message arrives: figure 2 hands it to the
    /// application as it is (`application_msg_reception(m)`).
    pub fn on_message(
        &mut self,
        link: usize,
        env: Envelope<A::Msg>,
        at: &mut dyn AcceptanceTest<A::Msg>,
    ) -> Vec<Effect<A::Msg>> {
        if self.exited {
            return Vec::new();
        }
        self.stats.receipts += 1;
        let outs = self.app.on_message(link, env.msg);
        self.outgoing(outs, at)
    }

    /// A step of the application's own schedule.
    pub fn on_tick(&mut self, at: &mut dyn AcceptanceTest<A::Msg>) -> Vec<Effect<A::Msg>> {
        if self.exited {
            return Vec::new();
        }
        let outs = self.app.on_tick();
        self.outgoing(outs, at)
    }

    fn outgoing(&mut self, outs: Vec<Output<A::Msg>>, at: &mut dyn AcceptanceTest<A::Msg>) -> Vec<Effect<A::Msg>> {
        let mut effects = Vec::new();
        if self.promoted {
            for out in outs {
                match out {
                    Output::External { port, msg } => {
                        self.stats.external_sent += 1;
                        effects.push(Effect::External { port, msg });
                    }
                    Output::Internal { link, msg } => {
                        let seq = self.send_seq[link];
                        self.send_seq[link] += 1;
                        self.stats.internal_sent += 1;
                        let counter = Stamp::zero();
                        effects.push(Effect::Send { link, env: Envelope { msg, dirty: false, counter, seq } });
                    }
                }
            }
            return effects;
        }
        for out in outs {
            match out {
                Output::External { port, msg } => {
                    // receiver(m) == device: the AT guards every external message.
                    self.stats.at_runs += 1;
                    let passed = at.accept(&msg);
                    let msg = if passed {
                        Some(msg)
                    } else {
                        // error_compensation(m); the compensated message must
                        // pass the AT in turn.
                        self.stats.at_failures += 1;
                        self.app.compensate(&msg).filter(|m| at.accept(m))
                    };
                    let Some(msg) = msg else {
                        // error_recovery({G_act, G_sdw, G_low}); exit(error).
                        self.exited = true;
                        effects.push(Effect::StartRecovery);
                        return effects;
                    };
                    // msg_sending(m, device). ext_mSN_Glow counts what the
                    // world received from G_low (shadows reclaim and
                    // suppress their external log by it), compensated
                    // messages included.
                    let Some(value) = self.bump(CounterGroup::LowExt) else {
                        self.exited = true;
                        effects.push(Effect::StartRecovery);
                        return effects;
                    };
                    self.stats.counter_broadcasts += 1;
                    effects.push(Effect::BroadcastCounter { group: CounterGroup::LowExt, value });
                    self.stats.external_sent += 1;
                    effects.push(Effect::External { port, msg });
                    if passed {
                        // AT(m) == success only (figure 2): "passed AT" with
                        // int_mSN_Glow and ext_mSN_Glow to {G_act, G_sdw}. A
                        // compensated message validates nothing.
                        self.stats.passed_at_sent += 1;
                        effects.push(Effect::PassedAt { value: self.stamp(), ext: self.ext_counter });
                    }
                }
                Output::Internal { link, msg } => {
                    // receiver(m) ∈ G_act: int_mSN_Glow++ and broadcast it to
                    // G_low − P_i.
                    let to_active = self.links.get(link).is_some_and(|l| l.peer_role == Role::Active);
                    let seq = self.send_seq[link];
                    if let (Some(base), true) = (self.slot_base, to_active) {
                        // Per-link validation: the link's own number.
                        self.send_seq[link] += 1;
                        self.stats.internal_sent += 1;
                        let counter = Stamp::of(base + link as u32, seq + 1);
                        effects.push(Effect::Send { link, env: Envelope { msg, dirty: true, counter, seq } });
                        continue;
                    }
                    if to_active {
                        let Some(value) = self.bump(CounterGroup::Low) else {
                            self.exited = true;
                            effects.push(Effect::StartRecovery);
                            return effects;
                        };
                        self.stats.counter_broadcasts += 1;
                        effects.push(Effect::BroadcastCounter { group: CounterGroup::Low, value });
                    }
                    // msg_sending(m, dirty_bit = 1, int_mSN_Glow, receiver(m)).
                    self.send_seq[link] += 1;
                    self.stats.internal_sent += 1;
                    let counter = match self.slot_base {
                        Some(_) => Stamp::zero(),
                        None => Stamp::from(self.counter),
                    };
                    effects.push(Effect::Send { link, env: Envelope { msg, dirty: true, counter, seq } });
                }
            }
        }
        effects
    }
}
