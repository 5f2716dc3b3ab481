//! A G_act process, P_i^ha (figure 3 of the paper): in service, unchanged,
//! and the one that keeps contamination from G_low recoverable.

use super::state::{Common, LogEntry, Persisted, ProtocolStats, Recovery};
use super::{AcceptanceTest, Application, Counter, Effect, Envelope, Link, Output, Stamp};
use crate::Role;

/// A G_act process wrapping its application: `dirty_bit`, `prgt_bit`, the
/// local `int_mSN_Glow`, the checkpoint array and the receiver-side log.
pub struct ActiveProcess<A: Application> {
    c: Common<A>,
    /// `prgt_bit`: the process has "propagated out" (sent a message to a
    /// high-confidence process) since its last checkpoint, or that
    /// checkpoint was caused by a message from outside G_low (rule S2).
    prgt: bool,
}

impl<A: Application> ActiveProcess<A> {
    /// Wraps `app`, whose links lead to processes of the given roles.
    pub fn new(app: A, links: Vec<Link>) -> Self {
        ActiveProcess { c: Common::new(app, links), prgt: false }
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.c.app
    }

    /// `dirty_bit`: the state is potentially contaminated.
    pub fn dirty(&self) -> bool {
        self.c.dirty
    }

    /// The local `int_mSN_Glow` as the paper's scalar (its largest entry;
    /// exact with one shared slot).
    pub fn int_msn_glow(&self) -> Counter {
        self.c.int_msn_glow.scalar()
    }

    /// The local `int_mSN_Glow`, per slot.
    pub fn glow(&self) -> &Stamp {
        &self.c.int_msn_glow
    }

    /// The indices of the checkpoint array (scalars, see
    /// [`ActiveProcess::int_msn_glow`]).
    pub fn checkpoint_indices(&self) -> Vec<Counter> {
        self.c.ckpts.iter().map(|c| c.index.scalar()).collect()
    }

    /// The indices of the checkpoint array, per slot.
    pub fn checkpoint_stamps(&self) -> Vec<Stamp> {
        self.c.ckpts.iter().map(|c| c.index.clone()).collect()
    }

    /// Receiver-side log entries held, with their indices (scalars).
    pub fn log_indices(&self) -> Vec<Counter> {
        self.c.ckpts.iter().flat_map(|c| c.log.iter().map(|e| e.index.scalar())).collect()
    }

    /// The process's counters.
    pub fn stats(&self) -> &ProtocolStats {
        &self.c.stats
    }

    /// Everything to keep across a restart: write it with serde (e.g.
    /// `serde_json::to_writer`) after each event, and
    /// [`ActiveProcess::restore_persisted`] it in the new OS process.
    pub fn persist(&self) -> Persisted<A> {
        Persisted {
            dirty: self.c.dirty,
            int_msn_glow: self.c.int_msn_glow.clone(),
            prgt: self.prgt,
            send_seq: self.c.send_seq.clone(),
            events: self.c.events,
            ext_sent: self.c.ext_sent,
            app: self.c.app.snapshot(),
            checkpoints: self.c.ckpts.clone(),
        }
    }

    /// Puts back what [`ActiveProcess::persist`] saved.
    pub fn restore_persisted(&mut self, p: Persisted<A>) {
        self.c.dirty = p.dirty;
        self.c.int_msn_glow = p.int_msn_glow;
        self.prgt = p.prgt;
        self.c.send_seq = p.send_seq;
        self.c.events = p.events;
        self.c.ext_sent = p.ext_sent;
        self.c.app.restore(&p.app);
        self.c.ckpts = p.checkpoints;
    }

    /// The end of the guarded period: the new versions are trusted, so
    /// everything up to now is valid (checkpoints and logs are reclaimed)
    /// and every message is clean from now on.
    pub fn end_guarded_period(&mut self) {
        let all = self.c.ckpts.iter().fold(self.c.int_msn_glow.clone(), |a, c| a.joined(&c.index));
        self.c.reclaim(&all);
        self.prgt = false;
        self.c.recovered = true;
    }

    /// A new guarded period (a new upgrade after a recovery or an end):
    /// messages from G_low are potentially contaminating again.
    pub fn begin_guarded_period(&mut self) {
        self.c.recovered = false;
    }

    /// An application message arrives on `link` (figure 3, "incoming
    /// message queue nonempty", not a "passed AT").
    pub fn on_message(
        &mut self,
        link: usize,
        env: Envelope<A::Msg>,
        at: &mut dyn AcceptanceTest<A::Msg>,
    ) -> Vec<Effect<A::Msg>> {
        self.c.events += 1;
        self.c.stats.receipts += 1;
        let c = &mut self.c;
        let contaminating = env.dirty && !c.recovered && !env.counter.le(&c.int_msn_glow);
        let entry = LogEntry { index: c.int_msn_glow.clone(), link, env: env.clone() };
        if contaminating && (!c.dirty || self.prgt) {
            // Figure 3: `(m.dirty_bit == 1 && m.int_mSN_Glow > int_mSN_Glow) &&
            // (dirty_bit == 0 || prgt_bit == 1)`: rule S1 (a clean state
            // about to become potentially contaminated) or S2 (further
            // contamination by a larger counter after propagating out).
            let index = c.int_msn_glow.joined(&env.counter);
            let mut trig = entry;
            trig.index = index.clone();
            c.checkpoint(index, Stamp::zero(), 0, trig);
            c.dirty = true;
            // "propagating in": prgt_bit = (sender(m) ∉ G_low).
            self.prgt = c.links.get(link).is_some_and(|l| l.peer_role != Role::Low);
        } else if contaminating {
            // Further contamination without S2 (nothing propagated since the
            // last checkpoint): the figure takes no checkpoint, so the last
            // one stays the recovery point for this message too. Clarification
            // (the paper's reclamation by index would otherwise delete it
            // while this larger counter is still unvalidated): raise its
            // index to this counter and log the messages it now covers.
            let mut e = entry;
            e.index = c.int_msn_glow.joined(&env.counter);
            c.reindex_last(e);
        } else if c.dirty && !c.recovered && (!env.dirty || env.counter.le(&c.int_msn_glow)) {
            // Figure 3: `m.dirty_bit == 0 && dirty_bit == 1` → msg_logging(m,
            // int_mSN_Glow, int_msg_log): receiver-side logging of a clean
            // message, whose sender will not roll back to resend it. Also
            // (clarification) a contaminated message whose counter is not
            // larger than ours: it may be validated while a rollback undoes
            // it, and then no one would send it again.
            c.log(entry);
        }
        // application_msg_reception(m); the figure omits it after a
        // checkpoint, but the message is of course still delivered.
        let outs = c.app.on_message(link, env.msg);
        // int_mSN_Glow = max(m.int_mSN_Glow, int_mSN_Glow)
        c.int_msn_glow.join(&env.counter);
        let effects = self.outgoing(outs, at);
        self.c.note_memory(0);
        effects
    }

    /// A step of the application's own schedule.
    pub fn on_tick(&mut self, at: &mut dyn AcceptanceTest<A::Msg>) -> Vec<Effect<A::Msg>> {
        self.c.events += 1;
        let outs = self.c.app.on_tick();
        self.outgoing(outs, at)
    }

    /// A "passed AT" notification with `m.int_mSN_Glow == v` (figure 3):
    /// memory_reclamation(v, ckpt_array, msg_log); dirty_bit = (size ≥ 1).
    pub fn on_passed_at(&mut self, v: impl Into<Stamp>) {
        self.c.reclaim(&v.into());
        if self.c.ckpts.is_empty() {
            self.prgt = false;
        }
    }

    /// Figure 3, "outgoing message m ready", for each message the
    /// application has ready.
    fn outgoing(&mut self, outs: Vec<Output<A::Msg>>, at: &mut dyn AcceptanceTest<A::Msg>) -> Vec<Effect<A::Msg>> {
        let mut effects = Vec::new();
        for out in outs {
            match out {
                Output::External { port, msg } => {
                    if self.c.replay_skip > 0 {
                        // A replay regenerates an external message the world
                        // already has (sent, compensated, after the
                        // checkpoint rolled back to): not again.
                        self.c.replay_skip -= 1;
                        self.c.stats.suppressed += 1;
                        continue;
                    }
                    if self.c.dirty {
                        self.c.stats.at_runs += 1;
                        if at.accept(&msg) {
                            // AT(m) == success: memory_reclamation(int_mSN_Glow, …);
                            // dirty_bit = (size(ckpt_array) ≥ 1); send to the
                            // device; "passed AT" with int_mSN_Glow to
                            // {G_act − P_i, G_sdw} (the `notify` list).
                            let v = self.c.int_msn_glow.clone();
                            self.on_passed_at(v.clone());
                            self.c.send_external();
                            effects.push(Effect::External { port, msg });
                            self.c.stats.passed_at_sent += 1;
                            effects.push(Effect::PassedAt { value: v, ext: 0 });
                            continue;
                        }
                        self.c.stats.at_failures += 1;
                        // error_compensation(m); a compensated message must
                        // pass the AT in turn. Figure 3 reclaims memory and
                        // sends "passed AT" only on AT(m) == success: a
                        // compensated message validates nothing, so the
                        // process stays dirty and keeps its checkpoints.
                        match self.c.app.compensate(&msg).filter(|m| at.accept(m)) {
                            Some(fixed) => {
                                self.c.send_external();
                                effects.push(Effect::External { port, msg: fixed });
                            }
                            None => {
                                // Compensation is not feasible:
                                // error_recovery({G_act, G_sdw, G_low}).
                                effects.push(Effect::StartRecovery);
                                return effects;
                            }
                        }
                    } else {
                        // External message from a clean state.
                        self.c.send_external();
                        effects.push(Effect::External { port, msg });
                    }
                }
                Output::Internal { link, msg } => {
                    // Figure 3 sets prgt_bit = dirty_bit ("propagating out")
                    // when receiver(m) ∈ G_act. A message to a G_low process
                    // also reaches its shadow, a high-confidence process that
                    // keeps it, so it propagates out too; so does one to a
                    // shadow. Every internal message therefore counts.
                    if self.c.dirty {
                        self.prgt = true;
                    }
                    let seq = self.c.next_seq(link);
                    let env = Envelope { msg, dirty: self.c.dirty, counter: self.c.int_msn_glow.clone(), seq };
                    self.c.stats.internal_sent += 1;
                    effects.push(Effect::Send { link, env });
                }
            }
        }
        effects
    }

    /// Error recovery (§3.2): "every dirty G_act process rolls back to the
    /// checkpoint with the smallest index and replays its internal log".
    /// `validated` is the largest counter any "passed AT" has validated; the
    /// process first reclaims up to it (notifications still in transit are
    /// part of the recovery line). After recovery G_low is gone and every
    /// message is clean.
    pub fn recover(&mut self, validated: impl Into<Stamp>, at: &mut dyn AcceptanceTest<A::Msg>) -> Recovery<A::Msg> {
        let validated = validated.into();
        self.on_passed_at(validated.clone());
        let rolled = self.c.rollback(&validated);
        self.c.recovered = true;
        self.prgt = false;
        let mut rec = Recovery {
            rolled_back: rolled.is_some(),
            distance: 0,
            checkpoint_index: None,
            send_seq: self.c.send_seq.clone(),
            effects: Vec::new(),
        };
        if let Some((ck, replay)) = rolled {
            rec.distance = self.c.events.saturating_sub(ck.events_at);
            rec.checkpoint_index = Some(ck.index);
            rec.send_seq = ck.send_seq.clone();
            // Resume normal computation and replay the message log. External
            // messages the world received after the checkpoint (compensated
            // ones: a passed AT would have reclaimed the checkpoint) are not
            // sent again when the replay regenerates them.
            self.c.replay_skip = self.c.ext_sent.saturating_sub(ck.ext_sent_at);
            self.c.ext_sent = ck.ext_sent_at;
            for e in replay {
                let outs = self.c.app.on_message(e.link, e.env.msg);
                self.c.int_msn_glow.join(&e.env.counter);
                let eff = self.outgoing(outs, at);
                rec.effects.extend(eff);
            }
            self.c.replay_skip = 0;
        }
        rec
    }
}
