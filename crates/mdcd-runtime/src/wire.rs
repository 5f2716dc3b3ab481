//! What processes of a guarded upgrade send each other between OS
//! processes: one [`Wire`] message, serialised as one line of JSON.
//!
//! Every message carries the sender's recovery epoch. An epoch ends with a
//! recovery (coordinated by messages, [`crate::node`]); a receiver discards
//! an application message from an earlier epoch that arrives after it
//! resumed (the recovery already decided what happens to messages that were
//! in flight, by flushing every link with a marker).

use std::collections::BTreeMap;
use std::io;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::{Counter, CounterGroup, Envelope, Stamp};

/// A message between two processes (or a process and the coordinator).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wire<M> {
    /// The sender's recovery epoch (0 until the first recovery).
    pub epoch: u64,
    /// The sending process.
    pub from: String,
    /// What it says.
    pub body: Body<M>,
}

/// The kinds of [`Wire`] messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body<M> {
    /// An application message with the protocol's piggybacked fields, sent
    /// on the sender's link `from_link`, arriving on the receiver's `to_link`.
    App {
        /// The sender's link.
        from_link: usize,
        /// The receiver's link.
        to_link: usize,
        /// The message and what the protocol piggybacks on it.
        env: Envelope<M>,
    },
    /// A shared counter's new value (figures 2 and 4).
    Counter {
        /// Which counter.
        group: CounterGroup,
        /// Its value.
        value: Counter,
    },
    /// "passed AT" with the validated counters.
    PassedAt {
        /// `int_mSN_Glow`, per slot.
        value: Stamp,
        /// `ext_mSN_Glow`.
        ext: Counter,
    },
    /// To the coordinator: an AT failed and compensation is not feasible.
    Fail,
    /// From the coordinator: stop, flush every outgoing link with a
    /// [`Body::Marker`], and answer [`Body::Frozen`] once every incoming
    /// link is flushed. `epoch` is the new epoch.
    Freeze,
    /// The end of a link's messages before a recovery.
    Marker,
    /// To the coordinator: frozen and flushed; the largest counters any
    /// "passed AT" this process sent or received validated.
    Frozen {
        /// Largest validated `int_mSN_Glow` (the join of every stamp).
        validated: Stamp,
        /// Largest validated `ext_mSN_Glow`.
        validated_ext: Counter,
    },
    /// From the coordinator: recover with this recovery line.
    Recover {
        /// The recovery line's `int_mSN_Glow`.
        validated: Stamp,
        /// The recovery line's `ext_mSN_Glow`.
        validated_ext: Counter,
    },
    /// To the coordinator: recovered; messages sent on link `l` with a
    /// sequence number at or above `send_seq[l]` were undone.
    Recovered {
        /// Per-link send sequence numbers after the rollback.
        send_seq: Vec<u64>,
        /// Whether it rolled back.
        rolled_back: bool,
    },
    /// From the coordinator: every process recovered; `cuts` has each one's
    /// `send_seq` (in-flight messages at or above it are dropped). Resume.
    Resume {
        /// Per process, per link: the first undone sequence number.
        cuts: BTreeMap<String, Vec<u64>>,
    },
    /// From the coordinator: the guarded period is over. G_low is promoted,
    /// G_act reclaims everything and treats every message as clean, G_sdw
    /// retires.
    EndGuard,
}

/// One line of JSON (with its `\n`).
pub fn encode<M: Serialize>(w: &Wire<M>) -> io::Result<Vec<u8>> {
    let mut v = serde_json::to_vec(w).map_err(io::Error::other)?;
    v.push(b'\n');
    Ok(v)
}

/// Reads one line of JSON.
pub fn decode<M: DeserializeOwned>(line: &str) -> Result<Wire<M>, serde_json::Error> {
    serde_json::from_str(line)
}
