//! A G_sdw process, P_i^hs (figure 4 of the paper): the old version of a
//! G_low process, running in the background with its output to G_act and
//! to the world suppressed and logged, until a recovery makes it take over.

use super::state::{Common, LogEntry, ProtocolStats, Recovery};
use super::{AcceptanceTest, Application, Counter, CounterGroup, Effect, Envelope, Link, Output, SharedCounter, Stamp};
use crate::Role;

/// A suppressed message in a shadow's sender-side logs, indexed by
/// `int_mSN_Gsdw` at the point it was generated.
#[derive(Debug, Clone)]
enum Logged<M> {
    Internal { link: usize, env: Envelope<M> },
    External { port: String, msg: M },
}

/// A G_sdw process wrapping the old version's application.
pub struct ShadowProcess<A: Application> {
    c: Common<A>,
    /// The local copy of the shadows' shared `int_mSN_Gsdw`, per slot (slot
    /// 0 shared by every shadow, or one slot per link: per-link validation).
    sdw_counter: Stamp,
    /// The shadows' shared count of generated external messages (the index
    /// of `ext_msg_log`, matched against `m.ext_mSN_Glow`).
    sdw_ext_counter: Counter,
    /// `iVR_low`: the last valid message of G_low, from "passed AT", per slot.
    ivr_low: Stamp,
    /// The last valid external message of G_low (`m.ext_mSN_Glow`).
    ivr_ext: Counter,
    /// `int_msg_log` (sender side): (slot, index, generation order,
    /// message); `ext_msg_log`: (index, generation order, message).
    int_log: Vec<(u32, Counter, u64, Logged<A::Msg>)>,
    ext_log: Vec<(Counter, u64, Logged<A::Msg>)>,
    generated: u64,
    /// After take-over: output to G_act and the world is live, except that
    /// it stays suppressed while its counter has not passed these.
    promoted: bool,
    suppress_until: Stamp,
    suppress_ext_until: Counter,
    /// Where `int_mSN_Gsdw` and the external count come from between OS
    /// processes (None: local copies and broadcasts).
    shared: Option<Box<dyn SharedCounter + Send>>,
    /// Per-link validation: the slot of link `l` is `base + l`.
    slot_base: Option<u32>,
}

impl<A: Application> ShadowProcess<A> {
    /// Wraps `app`, whose links lead to processes of the given roles (a link
    /// the twin has to a G_low process leads to that process's shadow).
    pub fn new(app: A, links: Vec<Link>) -> Self {
        ShadowProcess {
            c: Common::new(app, links),
            sdw_counter: Stamp::zero(),
            sdw_ext_counter: 0,
            ivr_low: Stamp::zero(),
            ivr_ext: 0,
            int_log: Vec::new(),
            ext_log: Vec::new(),
            generated: 0,
            promoted: false,
            suppress_until: Stamp::zero(),
            suppress_ext_until: 0,
            shared: None,
            slot_base: None,
        }
    }

    /// The application.
    pub fn app(&self) -> &A {
        &self.c.app
    }

    /// `dirty_bit`.
    pub fn dirty(&self) -> bool {
        self.c.dirty
    }

    /// `iVR_low` (the largest entry: exact with one shared slot).
    pub fn ivr_low(&self) -> Counter {
        self.ivr_low.scalar()
    }

    /// The local `int_mSN_Gsdw` (the largest entry).
    pub fn sdw_counter(&self) -> Counter {
        self.sdw_counter.scalar()
    }

    /// Per-link validation: the messages on link `l` to G_act are numbered
    /// in slot `base + l`, as its twin's ([`crate::LowProcess::set_link_slots`]
    /// with the same `base`; the shadow's links are its twin's).
    pub fn set_link_slots(&mut self, base: u32) {
        self.slot_base = Some(base);
    }

    /// Whether it has taken over from its twin.
    pub fn promoted(&self) -> bool {
        self.promoted
    }

    /// The indices of the checkpoint array.
    pub fn checkpoint_indices(&self) -> Vec<Counter> {
        self.c.ckpts.iter().map(|c| c.index.scalar()).collect()
    }

    /// Indices of the receiver-side log entries and of `int_msg_log` (all
    /// `int_mSN_Glow`-like counters).
    pub fn log_indices(&self) -> Vec<Counter> {
        let mut v: Vec<Counter> = self.c.ckpts.iter().flat_map(|c| c.log.iter().map(|e| e.index.scalar())).collect();
        v.extend(self.int_log.iter().map(|(_, i, _, _)| *i));
        v
    }

    /// Indices of `ext_msg_log` (external-message counters).
    pub fn ext_log_indices(&self) -> Vec<Counter> {
        self.ext_log.iter().map(|(i, _, _)| *i).collect()
    }

    /// The process's counters.
    pub fn stats(&self) -> &ProtocolStats {
        &self.c.stats
    }

    /// Takes `int_mSN_Gsdw` and the shadows' external count from a shared
    /// counter (shadows in several OS processes). When it is unreachable the
    /// local copy counts on (a shadow never starts recovery).
    pub fn set_shared_counter(&mut self, c: Box<dyn SharedCounter + Send>) {
        self.shared = Some(c);
    }

    fn bump(&mut self, group: CounterGroup) -> Counter {
        let cur = if group == CounterGroup::ShadowExt { self.sdw_ext_counter } else { self.sdw_counter.get(0) };
        let v = self.shared.as_mut().and_then(|c| c.next(group)).unwrap_or(cur + 1).max(cur + 1);
        if group == CounterGroup::ShadowExt {
            self.sdw_ext_counter = v;
        } else {
            self.sdw_counter.raise(0, v);
        }
        v
    }

    /// Another shadow broadcast `int_mSN_Gsdw`.
    pub fn on_counter(&mut self, value: Counter) {
        self.sdw_counter.raise(0, value);
    }

    /// Another shadow broadcast its external-message counter.
    pub fn on_ext_counter(&mut self, value: Counter) {
        self.sdw_ext_counter = self.sdw_ext_counter.max(value);
    }

    fn sender_log_len(&self) -> u64 {
        (self.int_log.len() + self.ext_log.len()) as u64
    }

    /// An application message arrives (figure 4, "application-purpose
    /// message"; from G_act, or from another shadow).
    pub fn on_message(
        &mut self,
        link: usize,
        env: Envelope<A::Msg>,
        _at: &mut dyn AcceptanceTest<A::Msg>,
    ) -> Vec<Effect<A::Msg>> {
        self.c.events += 1;
        self.c.stats.receipts += 1;
        let (sdw, sdw_ext) = (self.sdw_counter.clone(), self.sdw_ext_counter);
        let c = &mut self.c;
        let entry = LogEntry { index: c.int_msn_glow.clone(), link, env: env.clone() };
        if env.dirty && !c.recovered && !env.counter.le(&c.int_msn_glow) {
            // Figure 4: m.dirty_bit == 1 && m.int_mSN_Glow > int_mSN_Glow →
            // checkpointing(P_i^hs, ckpt_array); dirty_bit = 1.
            let index = c.int_msn_glow.joined(&env.counter);
            let mut trig = entry;
            trig.index = index.clone();
            c.checkpoint(index, sdw, sdw_ext, trig);
            c.dirty = true;
        } else if c.dirty && !c.recovered && (!env.dirty || env.counter.le(&c.int_msn_glow)) {
            // Figure 4: m.dirty_bit == 0 && dirty_bit == 1 → msg_logging
            // (receiver side); also a contaminated message with a counter
            // not larger than ours (see ActiveProcess).
            c.log(entry);
        }
        // application_msg_reception(m)
        let outs = c.app.on_message(link, env.msg);
        // int_mSN_Glow = max(m.int_mSN_Glow, int_mSN_Glow)
        c.int_msn_glow.join(&env.counter);
        let effects = self.outgoing(outs);
        let sl = self.sender_log_len();
        self.c.note_memory(sl);
        effects
    }

    /// A step of the application's own schedule.
    pub fn on_tick(&mut self) -> Vec<Effect<A::Msg>> {
        self.c.events += 1;
        let outs = self.c.app.on_tick();
        let effects = self.outgoing(outs);
        let sl = self.sender_log_len();
        self.c.note_memory(sl);
        effects
    }

    /// "passed AT" (figure 4): memory_reclamation({m.ext_mSN_Glow,
    /// m.int_mSN_Glow}, ckpt_array, msg_log) — checkpoints, receiver-side
    /// entries and `int_msg_log` up to `v`, `ext_msg_log` up to `ext`;
    /// dirty_bit = (size ≥ 1); iVR_low = max(m.int_mSN_Glow, iVR_low).
    pub fn on_passed_at(&mut self, v: impl Into<Stamp>, ext: Counter) {
        let v = v.into();
        self.c.reclaim(&v);
        self.int_log.retain(|(s, i, _, _)| *i > v.get(*s));
        self.ext_log.retain(|(i, _, _)| *i > ext);
        self.ivr_low.join(&v);
        self.ivr_ext = self.ivr_ext.max(ext);
    }

    fn outgoing(&mut self, outs: Vec<Output<A::Msg>>) -> Vec<Effect<A::Msg>> {
        let mut effects = Vec::new();
        for out in outs {
            self.generated += 1;
            let gen = self.generated;
            match out {
                Output::Internal { link, msg } => {
                    let to_active = self.c.links.get(link).is_some_and(|l| l.peer_role == Role::Active);
                    let seq = self.c.next_seq(link);
                    let dirty = self.c.dirty && !self.c.recovered;
                    let env = Envelope { msg, dirty, counter: self.c.int_msn_glow.clone(), seq };
                    if to_active {
                        // internal(m) && receiver(m) ∈ G_act: int_mSN_Gsdw++;
                        // msg_logging(m, int_mSN_Gsdw, int_msg_log); broadcast
                        // int_mSN_Gsdw to G_sdw − P_i. The message is suppressed
                        // (shadow mode), or after take-over sent unless the
                        // counter has not yet passed iVR_low. With per-link
                        // validation the counter is the link's own (its slot,
                        // as the twin numbers it): no broadcast.
                        let (slot, value) = match self.slot_base {
                            Some(base) => {
                                let slot = base + link as u32;
                                let value = self.sdw_counter.get(slot) + 1;
                                self.sdw_counter.raise(slot, value);
                                (slot, value)
                            }
                            None => {
                                let value = self.bump(CounterGroup::Shadow);
                                self.c.stats.counter_broadcasts += 1;
                                effects.push(Effect::BroadcastCounter { group: CounterGroup::Shadow, value });
                                (0, value)
                            }
                        };
                        if !self.promoted {
                            self.int_log.push((slot, value, gen, Logged::Internal { link, env }));
                            self.c.stats.sender_logged += 1;
                            self.c.stats.suppressed += 1;
                        } else if value <= self.suppress_until.get(slot) {
                            self.c.stats.suppressed += 1;
                        } else {
                            self.c.stats.internal_sent += 1;
                            effects.push(Effect::Send { link, env });
                        }
                    } else {
                        // A message to another shadow: the old versions talk
                        // among themselves in the old format (figure 4 is
                        // silent; without it the shadow cluster could not
                        // compute what G_low computes).
                        self.c.stats.internal_sent += 1;
                        effects.push(Effect::Send { link, env });
                    }
                }
                Output::External { port, msg } => {
                    // Figure 4: save the external message to ext_msg_log and
                    // broadcast the counter. The figure indexes it by
                    // int_mSN_Gsdw; several external messages can share that
                    // value while G_low's AT validated only some of them, so
                    // the log is indexed by the shadows' own count of
                    // external messages, matched against m.ext_mSN_Glow, the
                    // external counter figure 4 reclaims by. Shadows never
                    // run the AT.
                    self.bump(CounterGroup::ShadowExt);
                    self.c.stats.counter_broadcasts += 1;
                    effects
                        .push(Effect::BroadcastCounter { group: CounterGroup::ShadowExt, value: self.sdw_ext_counter });
                    if !self.promoted {
                        self.ext_log.push((self.sdw_ext_counter, gen, Logged::External { port, msg }));
                        self.c.stats.sender_logged += 1;
                        self.c.stats.suppressed += 1;
                    } else if self.sdw_ext_counter <= self.suppress_ext_until {
                        self.c.stats.suppressed += 1;
                    } else {
                        self.c.stats.external_sent += 1;
                        effects.push(Effect::External { port, msg });
                    }
                }
            }
        }
        effects
    }

    /// Error recovery (§3.2): reclaim up to the recovery's validated counters
    /// (as a "passed AT"), roll back to the smallest-index checkpoint if
    /// dirty (dropping the sender-log entries generated after it: the replay
    /// generates them again), then take over from the twin: where
    /// `iVR_low < int_mSN_Gsdw`, re-send what is left in `int_msg_log` (and
    /// likewise `ext_msg_log`) in the order it was generated; otherwise
    /// suppress new output until `int_mSN_Gsdw` reaches `iVR_low`. Finally
    /// replay the receiver-side log.
    pub fn recover(&mut self, validated: impl Into<Stamp>, validated_ext: Counter) -> Recovery<A::Msg> {
        let validated = validated.into();
        self.on_passed_at(validated.clone(), validated_ext);
        let rolled = self.c.rollback(&validated);
        self.c.recovered = true;
        let mut rec = Recovery {
            rolled_back: rolled.is_some(),
            distance: 0,
            checkpoint_index: None,
            send_seq: self.c.send_seq.clone(),
            effects: Vec::new(),
        };
        let mut replay = Vec::new();
        if let Some((ck, r)) = rolled {
            rec.distance = self.c.events.saturating_sub(ck.events_at);
            rec.checkpoint_index = Some(ck.index);
            rec.send_seq = ck.send_seq.clone();
            self.int_log.retain(|(s, i, _, _)| *i <= ck.sdw_counter.get(*s));
            self.ext_log.retain(|(i, _, _)| *i <= ck.sdw_ext_counter);
            self.sdw_counter = ck.sdw_counter.clone();
            self.sdw_ext_counter = ck.sdw_ext_counter;
            replay = r;
        }
        self.promoted = true;
        // iVR_low < int_mSN_Gsdw: re-send (the log holds exactly the
        // messages above iVR_low); otherwise suppress until the counter
        // passes iVR_low. The same for external messages.
        // Per slot (one slot with the paper's single counter).
        self.suppress_until = Stamp::zero();
        for &(s, v) in self.ivr_low.entries() {
            if v >= self.sdw_counter.get(s) {
                self.suppress_until.raise(s, v);
            }
        }
        self.suppress_ext_until = if self.ivr_ext < self.sdw_ext_counter { 0 } else { self.ivr_ext };
        let mut all: Vec<(u64, Logged<A::Msg>)> = Vec::new();
        all.extend(std::mem::take(&mut self.int_log).into_iter().map(|(_, _, g, l)| (g, l)));
        all.extend(std::mem::take(&mut self.ext_log).into_iter().map(|(_, g, l)| (g, l)));
        all.sort_by_key(|(g, _)| *g);
        for (_, l) in all {
            match l {
                Logged::Internal { link, mut env } => {
                    env.dirty = false;
                    self.c.stats.internal_sent += 1;
                    rec.effects.push(Effect::Send { link, env });
                }
                Logged::External { port, msg } => {
                    self.c.stats.external_sent += 1;
                    rec.effects.push(Effect::External { port, msg });
                }
            }
        }
        for e in replay {
            let outs = self.c.app.on_message(e.link, e.env.msg);
            self.c.int_msn_glow.join(&e.env.counter);
            rec.effects.extend(self.outgoing(outs));
        }
        rec
    }
}
