//! The manager's durable state: one redb file. Every change (state and the
//! events it emits) is one write transaction, so a manager killed at any
//! point restarts from the last committed state, nothing half-written.

use std::path::Path;

use redb::{Database, TableDefinition};
use serde_json::Value;

const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// Events kept at most (older ones are dropped).
pub const MAX_EVENTS: u64 = 10_000;

/// Where the manager keeps its durable state: this redb file, or etcd
/// (`etcd.rs`). The manager's logic is the same over both.
pub trait StateStore: Send {
    /// The saved state, if any.
    fn load(&mut self) -> Result<Option<Value>, String>;
    /// Events with a sequence number from `since` on, at most `limit`.
    fn events(&self, since: u64, limit: usize) -> Result<Vec<Value>, String>;
    /// Saves the state and appends events `(seq, event)`, atomically; an
    /// error means nothing was written.
    fn commit(&mut self, state: &Value, events: &[(u64, Value)]) -> Result<(), String>;
}

impl StateStore for Store {
    fn load(&mut self) -> Result<Option<Value>, String> {
        Store::load(self)
    }
    fn events(&self, since: u64, limit: usize) -> Result<Vec<Value>, String> {
        Store::events(self, since, limit)
    }
    fn commit(&mut self, state: &Value, events: &[(u64, Value)]) -> Result<(), String> {
        Store::commit(self, state, events)
    }
}

pub struct Store {
    db: Database,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Store {
    pub fn open(path: &Path) -> Result<Store, String> {
        let db = Database::create(path).map_err(|e| format!("cannot open the store `{}`: {e}", path.display()))?;
        Ok(Store { db })
    }

    /// The saved state, if any.
    pub fn load(&self) -> Result<Option<Value>, String> {
        let rx = self.db.begin_read().map_err(err)?;
        let t = match rx.open_table(STATE) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(err(e)),
        };
        match t.get("state").map_err(err)? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(v.value()).map(Some).map_err(err),
        }
    }

    /// Events with a sequence number from `since` on, at most `limit`.
    pub fn events(&self, since: u64, limit: usize) -> Result<Vec<Value>, String> {
        let rx = self.db.begin_read().map_err(err)?;
        let t = match rx.open_table(EVENTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(vec![]),
            Err(e) => return Err(err(e)),
        };
        let mut out = vec![];
        for row in t.range(since..).map_err(err)?.take(limit) {
            let (_, v) = row.map_err(err)?;
            out.push(serde_json::from_slice(v.value()).map_err(err)?);
        }
        Ok(out)
    }

    /// Saves the state and appends events `(seq, event)`, atomically.
    pub fn commit(&self, state: &Value, events: &[(u64, Value)]) -> Result<(), String> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut t = tx.open_table(STATE).map_err(err)?;
            let bytes = serde_json::to_vec(state).map_err(err)?;
            t.insert("state", bytes.as_slice()).map_err(err)?;
            let mut e = tx.open_table(EVENTS).map_err(err)?;
            for (seq, ev) in events {
                let bytes = serde_json::to_vec(ev).map_err(err)?;
                e.insert(*seq, bytes.as_slice()).map_err(err)?;
                if *seq >= MAX_EVENTS {
                    e.remove(*seq - MAX_EVENTS).map_err(err)?;
                }
            }
        }
        tx.commit().map_err(err)
    }
}
