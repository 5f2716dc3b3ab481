//! `deladas fmt FILE… [--check]`: formats goal files in place, in the house
//! style of `deladas::syntax::format`.
//!
//! Exit codes: 0 when every file is formatted (or, with `--check`, already
//! was); 1 with `--check` when some file would change (each is named on
//! stdout); 2 when a file cannot be read, is not UTF-8, has a syntax error
//! (its diagnostics are printed, the file is left alone) or cannot be
//! written. Files are replaced atomically: the new text goes to a temporary
//! file beside the original, which is then renamed over it.

use std::path::Path;

use deladas::diagnostics::{render, Diagnostic, Label, Sources};
use deladas::syntax::format::{format, FormatError};

use super::{EXIT_BAD_INPUT, EXIT_NO, EXIT_OK};

pub(super) fn cmd_fmt(files: &[std::path::PathBuf], check: bool) -> i32 {
    let mut bad = false;
    let mut changed = false;
    for file in files {
        match fmt_one(file, check) {
            Ok(c) => changed |= c,
            Err(()) => bad = true,
        }
    }
    if bad {
        EXIT_BAD_INPUT
    } else if check && changed {
        EXIT_NO
    } else {
        EXIT_OK
    }
}

/// Formats one file; true when its text changed (or would, with `check`).
fn fmt_one(file: &Path, check: bool) -> Result<bool, ()> {
    let name = file.display().to_string();
    let bytes = std::fs::read(file).map_err(|e| eprintln!("error: cannot read `{name}`: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| eprintln!("error: `{name}` is not valid UTF-8"))?;
    let formatted = match format(&text) {
        Ok(f) => f,
        Err(FormatError::Syntax(diags)) => {
            let mut sources = Sources::new();
            let id = sources.add(name.clone(), text.clone());
            let diags: Vec<Diagnostic> = diags.into_iter().map(|d| refile(d, id)).collect();
            render::to_stderr(&diags, &sources);
            eprintln!("error: `{name}` has syntax errors and was not formatted");
            return Err(());
        }
        Err(e) => {
            eprintln!("error: `{name}`: {e}");
            return Err(());
        }
    };
    if formatted == text {
        return Ok(false);
    }
    if check {
        println!("{name}");
        return Ok(true);
    }
    write_atomically(file, &formatted).map_err(|e| eprintln!("error: cannot write `{name}`: {e}"))?;
    Ok(true)
}

/// The diagnostic with its labels in file `id`.
fn refile(mut d: Diagnostic, id: usize) -> Diagnostic {
    d.labels = d.labels.into_iter().map(|l| Label { file: id, ..l }).collect();
    d
}

/// Replaces `path`'s content: a temporary file in the same folder, renamed over it
/// (keeping the original's permissions). A symbolic link stays one: the file
/// it points to is replaced.
fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let target;
    let path = if std::fs::symlink_metadata(path)?.file_type().is_symlink() {
        target = std::fs::canonicalize(path)?;
        target.as_path()
    } else {
        path
    };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{base}.fmt-{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
