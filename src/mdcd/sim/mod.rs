//! A deterministic discrete-event simulator for guarded upgrades (mdcd.md
//! §3): it runs a deployment (DDD) and its role document with the MDCD
//! runtime (`crate::mdcd::runtime`) around simulated applications
//! (`apps`), injects a design fault into the new versions, and checks that
//! the world receives what the old system alone would have sent.
//!
//! Time is in integer steps. Every channel of the DDD is a pair of links
//! (one per direction), FIFO per link; each message's delay is drawn from a
//! hash of the seed, the channel, the direction and the message's sequence
//! number on it, so messages on different channels overtake each other, and
//! a shadow's link sees exactly the delays of its twin's (the paper's
//! premise that the shadows' message-passing events are those of G_low).
//! A message from G_act to a G_low process is delivered to the process and
//! to its shadow. Counter broadcasts (`int_mSN_Glow`, `int_mSN_Gsdw`) arrive
//! at once (the counters are shared); "passed AT" notifications travel with
//! a delay. `error_recovery` is carried out in the step the AT fails: G_low
//! stops, its messages in transit are delivered if an AT validated them and
//! dropped otherwise, every G_act and G_sdw process recovers with the
//! largest validated counters (notifications still in transit included),
//! and messages a rollback undid are dropped. docs/mdcd.md has the details.

mod apps;
mod engine;
mod report;
mod rng;

pub use apps::{AppKind, MsgKind, SimMsg};
pub use engine::{simulate, simulate_streamed, Run, RunOutcome, Scenario, StreamError, TraceEvent};
pub use report::{compare, Checks, Comparison, Report, RoleFigures};
pub use rng::{mix, Rng};
