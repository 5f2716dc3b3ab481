//! Helpers shared by the test binaries (each includes this with `mod common;`
//! and uses what it needs).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

/// The crate root.
pub fn manifest() -> PathBuf {
    PathBuf::from(env!("DELADAS_ROOT"))
}

/// Runs the binary in the crate root (so goal paths are relative and
/// stable), without colour and without debug output.
pub fn deladas(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_deladas"))
        .args(args)
        .current_dir(manifest())
        .env("NO_COLOR", "1")
        .env_remove("DELADAS_DEBUG")
        .output()
        .expect("the deladas binary runs")
}

pub fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit code, stdout and stderr, for assertion messages.
pub fn show(o: &Output) -> String {
    format!("exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}", code(o), stdout(o), stderr(o))
}

/// A sequence of choices drawn by proptest. Past its end every choice is 0,
/// and 0 always picks the simplest option, so shrinking the sequence (fewer
/// and smaller numbers) shrinks the goal.
pub struct Choices<'a> {
    pub data: &'a [u32],
    pub pos: usize,
}

impl Choices<'_> {
    /// A number in `0..n`.
    pub fn pick(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        let v = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        v as usize % n
    }

    /// An index into `weights`, each option with its weight (0 = simplest).
    pub fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.pick(total as usize) as u32;
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        0
    }

    /// True with `pct` percent probability (false on choice 0).
    pub fn chance(&mut self, pct: usize) -> bool {
        self.pick(100) >= 100 - pct
    }

    pub fn one_of<'s, T>(&mut self, v: &'s [T]) -> &'s T {
        &v[self.pick(v.len())]
    }
}

/// The `.deladas` files of a directory below the crate root, sorted.
pub fn deladas_files(dir: &str) -> Vec<PathBuf> {
    let dir = manifest().join(dir);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "deladas"))
        .collect();
    v.sort();
    v
}

/// A file's name without its extension.
pub fn stem(path: &std::path::Path) -> String {
    path.file_stem().expect("a file name").to_string_lossy().into_owned()
}
