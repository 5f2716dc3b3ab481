//! Fuzz target: any UTF-8 text as a goal file, loaded and checked.
//!
//! The goal is loaded through `deladas::check::load` with an in-memory file
//! system holding one library file (`lib.deladas`), so inputs that import
//! `"lib"` exercise imports too; `"patterns"` comes from the embedded
//! standard library. Loading, checking and rendering the diagnostics must
//! never panic, and a goal that checks without errors must only use indices
//! that are in range.
#![no_main]

use std::path::{Path, PathBuf};

use deladas::check::ir::{FormulaKind, Sort};
use deladas::check::{self, FileSystem};
use libfuzzer_sys::fuzz_target;

const LIB: &str = r#"
component Lib(code = "lib.xml", ports = {a[], b: input, c: output}, w = 1)
host libhost = host(zone = "eu", memory = 4)
constraintset libpat(component T, port p, int k) = constraintset {
    card(instancesof T in deployment) <= k
    forall T x in deployment ( exists Lib l in deployment ( x.p connectsto l.a ) )
}
"#;

struct MemFs;

impl FileSystem for MemFs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        if path == Path::new("lib.deladas") {
            Ok(LIB.as_bytes().to_vec())
        } else if path == Path::new("cycle.deladas") {
            Ok(b"import \"goal\"\nhost cyc = host()\n".to_vec())
        } else {
            Err(std::io::Error::from(std::io::ErrorKind::NotFound))
        }
    }
    fn canonical(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let loaded = check::load(Path::new("goal.deladas"), Some(text), &MemFs);
    let (sources, checked) = check::check_loaded(loaded);
    let _ = deladas::diagnostics::render::to_text(&checked.diags, &sources);
    let _ = deladas::diagnostics::render::to_json(&checked.diags, &sources);
    if !checked.has_errors() {
        // Spot-check the IR that later stages index without checks.
        let p = &checked.program;
        for v in &p.vars {
            if let Sort::Instance(c) = v.sort {
                assert!(c < p.components.len());
            }
        }
        for c in &p.clauses {
            assert!(!matches!(c.formula.kind, FormulaKind::Error));
        }
    }
});
