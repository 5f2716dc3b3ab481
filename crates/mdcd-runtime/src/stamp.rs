//! [`Stamp`]: what the protocol's `int_mSN_Glow` counts, per link.
//!
//! The paper numbers every message from G_low to G_act with one counter
//! shared by the whole cluster, `int_mSN_Glow`, and a "passed AT" validates
//! every message up to a value of it. That is exact when the shadows, which
//! number the same messages with their own shared counter `int_mSN_Gsdw`,
//! count them in the same order — always in the simulator (its shared
//! counters are global and instant), between real processes only when one
//! G_low process sends to G_act. With several G_low senders, their
//! increments and the shadows' interleave differently, and a recovery could
//! re-send or drop the wrong messages.
//!
//! A stamp is a vector of counters indexed by a *slot*: one entry per
//! numbering. A slot can be shared by several links (the paper's single
//! counter is slot 0 shared by every link from G_low to G_act: what the
//! simulator uses, where a stamp has one entry and orders exactly like the
//! scalar) or belong to one sender→receiver link (per-link validation: the
//! value is the link's own sequence number, 1 for its first message; what
//! the runtime between OS processes uses, [`crate::LowProcess::set_link_slots`]).
//! The order is the product order: `a ≤ b` when every entry of `a` is at
//! most `b`'s (a missing entry is 0). A process's `int_mSN_Glow` is the join
//! (entry-wise maximum) of the stamps of the messages that influenced it, so
//! a "passed AT" with it validates exactly, per link, the prefix of each
//! link's messages that influenced the accepted state.

use super::Counter;

/// A vector of counters by slot (see the module's documentation): entries
/// sorted by slot, none zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Stamp(Vec<(u32, Counter)>);

impl Stamp {
    /// The empty stamp (every slot 0): influenced by no message of G_low.
    pub fn zero() -> Self {
        Stamp(Vec::new())
    }

    /// A stamp with one entry.
    pub fn of(slot: u32, value: Counter) -> Self {
        if value == 0 {
            Stamp::zero()
        } else {
            Stamp(vec![(slot, value)])
        }
    }

    /// The value of `slot` (0 when absent).
    pub fn get(&self, slot: u32) -> Counter {
        match self.0.binary_search_by_key(&slot, |(s, _)| *s) {
            Ok(i) => self.0[i].1,
            Err(_) => 0,
        }
    }

    /// Raises `slot` to at least `value`.
    pub fn raise(&mut self, slot: u32, value: Counter) {
        if value == 0 {
            return;
        }
        match self.0.binary_search_by_key(&slot, |(s, _)| *s) {
            Ok(i) => self.0[i].1 = self.0[i].1.max(value),
            Err(i) => self.0.insert(i, (slot, value)),
        }
    }

    /// Entry-wise maximum with `other`, in place.
    pub fn join(&mut self, other: &Stamp) {
        for &(s, v) in &other.0 {
            self.raise(s, v);
        }
    }

    /// Entry-wise maximum.
    pub fn joined(&self, other: &Stamp) -> Stamp {
        let mut j = self.clone();
        j.join(other);
        j
    }

    /// `self ≤ other` in the product order.
    pub fn le(&self, other: &Stamp) -> bool {
        self.0.iter().all(|&(s, v)| v <= other.get(s))
    }

    /// Whether every slot is 0.
    pub fn is_zero(&self) -> bool {
        self.0.is_empty()
    }

    /// The largest entry: with one shared slot (the simulator), the paper's
    /// scalar counter.
    pub fn scalar(&self) -> Counter {
        self.0.iter().map(|(_, v)| *v).max().unwrap_or(0)
    }

    /// The entries, by slot.
    pub fn entries(&self) -> &[(u32, Counter)] {
        &self.0
    }
}

impl From<Counter> for Stamp {
    /// The paper's scalar counter: slot 0.
    fn from(v: Counter) -> Self {
        Stamp::of(0, v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn product_order_and_join() {
        let a = Stamp::of(1, 3);
        let mut b = Stamp::of(2, 5);
        assert!(!a.le(&b) && !b.le(&a));
        b.join(&a);
        assert!(a.le(&b));
        assert_eq!(b.entries(), &[(1, 3), (2, 5)]);
        assert_eq!(b.get(7), 0);
        assert!(Stamp::zero().le(&a));
        assert_eq!(Stamp::from(0), Stamp::zero());
        assert_eq!(Stamp::from(4).scalar(), 4);
        assert_eq!(serde_json::to_string(&b).ok().as_deref(), Some("[[1,3],[2,5]]"));
    }
}
