//! Loading a goal: the root file and, transitively, everything it imports.
//!
//! `import "x"` resolves relative to the importing file (`x`, then
//! `x.deladas`), then in the standard library embedded in the binary
//! (`stdlib/`). Each file is parsed once however often it is imported; a cycle
//! is an error that shows the chain. Unreadable and non-UTF-8 files become
//! diagnostics, never panics.

use std::path::{Path, PathBuf};

use crate::diagnostics::{Code, Diagnostic, FileId, Sources};
use crate::syntax::ast::{DeclKind, SourceFile, Span};

/// The standard library: `(name, text)` of every file in `stdlib/`.
pub const STDLIB: &[(&str, &str)] = &[("patterns", include_str!("../../stdlib/patterns.deladas"))];

/// Reads files for the loader: the real file system, or memory in tests and
/// the language server.
pub trait FileSystem {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// A canonical identity for the file, so two spellings load once.
    fn canonical(&self, path: &Path) -> PathBuf {
        path.to_path_buf()
    }
}

/// The real file system.
pub struct RealFs;

impl FileSystem for RealFs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        read_input(path).map_err(InputError::into_io)
    }
    fn canonical(&self, path: &Path) -> PathBuf {
        std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
    }
}

/// The largest input file read (goal, import, DDD, role document) unless
/// `DELADAS_MAX_INPUT_BYTES` says otherwise: 64 MiB.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 64 << 20;

/// The size limit for input files: `DELADAS_MAX_INPUT_BYTES` (a number of
/// bytes) when set and valid, else [`DEFAULT_MAX_INPUT_BYTES`].
pub fn max_input_bytes() -> u64 {
    std::env::var("DELADAS_MAX_INPUT_BYTES")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_INPUT_BYTES)
}

/// Why an input file was not read.
#[derive(Debug)]
pub enum InputError {
    /// The operating system's error (no such file, permission, a directory).
    Io(std::io::Error),
    /// Something that is not a regular file, a directory or a symbolic link
    /// to one: a FIFO (reading it could block forever), a device such as
    /// `/dev/zero` (endless), a socket. Holds what it is.
    NotAFile(&'static str),
    /// Larger than the limit ([`max_input_bytes`]).
    TooLarge { limit: u64 },
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::Io(e) => write!(f, "{e}"),
            InputError::NotAFile(what) => write!(f, "it is {what}, not a regular file"),
            InputError::TooLarge { limit } => {
                write!(f, "it is larger than {} (set DELADAS_MAX_INPUT_BYTES to raise the limit)", show_bytes(*limit))
            }
        }
    }
}

impl std::error::Error for InputError {}

impl InputError {
    /// As an `io::Error` (for [`FileSystem::read`]); the loader recognises it
    /// again with [`InputError::of_io`].
    pub fn into_io(self) -> std::io::Error {
        match self {
            InputError::Io(e) => e,
            e => std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
        }
    }
    /// The refusal carried by an `io::Error` made by [`InputError::into_io`].
    pub fn of_io(e: &std::io::Error) -> Option<&InputError> {
        e.get_ref().and_then(|inner| inner.downcast_ref::<InputError>())
    }
    /// The diagnostic code: E0011 for a refusal, E0009 for an I/O error.
    pub fn code(&self) -> Code {
        match self {
            InputError::Io(_) => Code::Unreadable,
            _ => Code::NotAFileOrTooLarge,
        }
    }
}

fn show_bytes(n: u64) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else {
        format!("{n} bytes")
    }
}

/// Reads an input file whole, refusing what is not a regular file (before
/// opening it, so a FIFO cannot block) and anything over [`max_input_bytes`]
/// (also when it grows while being read). Directories are left to the
/// operating system's "is a directory".
pub fn read_input(path: &Path) -> Result<Vec<u8>, InputError> {
    use std::io::Read;
    let limit = max_input_bytes();
    let meta = std::fs::metadata(path).map_err(InputError::Io)?;
    let ft = meta.file_type();
    if !ft.is_file() && !ft.is_dir() {
        return Err(InputError::NotAFile(special_kind(&ft)));
    }
    if meta.len() > limit {
        return Err(InputError::TooLarge { limit });
    }
    let f = std::fs::File::open(path).map_err(InputError::Io)?;
    let mut bytes = Vec::with_capacity(meta.len().min(1 << 20) as usize);
    f.take(limit.saturating_add(1)).read_to_end(&mut bytes).map_err(InputError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge { limit });
    }
    Ok(bytes)
}

#[cfg(unix)]
fn special_kind(ft: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else if ft.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::FileType) -> &'static str {
    "a special file"
}

/// One parsed file of the goal.
#[derive(Debug, Clone)]
pub struct ParsedFile {
    pub id: FileId,
    pub ast: SourceFile,
    /// `None` for standard-library files.
    pub path: Option<PathBuf>,
}

/// Everything loaded for one goal.
#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: Sources,
    /// Parsed files; the root is first when it could be read.
    pub files: Vec<ParsedFile>,
    pub diags: Vec<Diagnostic>,
    pub root: Option<FileId>,
    /// Every import that resolved: the importing file, the span of the
    /// path string, and the file it loaded (for editor navigation).
    pub imports: Vec<(FileId, Span, FileId)>,
    /// Host inventories read for `import hosts from "…"` (`check::inventory`).
    pub inventories: Vec<super::inventory::Inventory>,
}

/// Loads a goal file from disk.
pub fn load_path(path: &Path) -> Loaded {
    load(path, None, &RealFs)
}

/// Loads a goal whose root text is given (an editor buffer); imports are
/// read through `fs`.
pub fn load(path: &Path, root_text: Option<&str>, fs: &dyn FileSystem) -> Loaded {
    let mut l = Loader { fs, out: Loaded::default(), stack: vec![], done: vec![] };
    let bytes = match root_text {
        Some(t) => Ok(t.as_bytes().to_vec()),
        None => fs.read(path),
    };
    match bytes {
        Ok(bytes) => {
            let canon = fs.canonical(path);
            if let Some(id) = l.add_file(path.display().to_string(), bytes, Some(path.to_path_buf()), None) {
                l.out.root = Some(id);
                l.visit(id, canon);
                let root = &l.out.files[0];
                if root.ast.decls.is_empty() && l.out.diags.iter().all(|d| !d.is_error()) {
                    let text_len = l.out.sources.text(id).len();
                    let d = Diagnostic::new(Code::EmptyGoal, "the goal file declares nothing")
                        .primary(id, Span::new(0, text_len.min(1)), "no declarations in this file")
                        .help("a goal declares components (`component C(code = \"…\", ports = {…})`), hosts and constraintsets");
                    l.out.diags.push(d);
                }
            }
        }
        Err(e) => l.out.diags.push(match InputError::of_io(&e) {
            Some(refused) => Diagnostic::new(refused.code(), format!("cannot read `{}`: {refused}", path.display()))
                .note("goal files are regular files of at most the size limit"),
            None => Diagnostic::new(Code::Unreadable, format!("cannot read `{}`: {}", path.display(), io_reason(&e)))
                .note("the goal file is the first argument, e.g. `deladas check examples/p2p.deladas`"),
        }),
    }
    l.out
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        // `is a directory` and friends read better than the OS message.
        k => match k.to_string() {
            s if s.contains("other") || s.contains("uncategorized") => e.to_string(),
            s => s,
        },
    }
}

/// `a/b/../c` as `a/c`, for display only (the file system is asked about the
/// path as written).
fn tidy(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component> = vec![];
    for c in p.components() {
        match c {
            Component::CurDir if !out.is_empty() => {}
            Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.iter().collect()
}

struct Loader<'a> {
    fs: &'a dyn FileSystem,
    out: Loaded,
    /// Files being visited (for cycle detection): identity and file id.
    stack: Vec<(PathBuf, FileId)>,
    /// Files already loaded: identity and file id.
    done: Vec<(PathBuf, FileId)>,
}

impl Loader<'_> {
    /// Decodes and parses a file; `None` if it is not UTF-8 (reported, with
    /// the import that asked for it when there is one).
    fn add_file(
        &mut self,
        name: String,
        bytes: Vec<u8>,
        path: Option<PathBuf>,
        imported_at: Option<(FileId, Span)>,
    ) -> Option<FileId> {
        match String::from_utf8(bytes) {
            Ok(text) => {
                let id = self.out.sources.add(name, text);
                let (ast, diags) = crate::syntax::parse(self.out.sources.text(id), id);
                self.out.diags.extend(diags);
                self.out.files.push(ParsedFile { id, ast, path });
                Some(id)
            }
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let byte = e.as_bytes().get(at).copied().unwrap_or(0);
                // The lossy text has U+FFFD (3 bytes) where the bad sequence
                // was, so offsets before it are the file's own.
                let lossy = String::from_utf8_lossy(e.as_bytes()).into_owned();
                let id = self.out.sources.add(name.clone(), lossy);
                let mut d = Diagnostic::new(Code::NotUtf8, format!("`{name}` is not valid UTF-8"))
                    .primary(id, Span::new(at, at + 3), format!("invalid byte 0x{byte:02X} at offset {at}"))
                    .note("Deladas source is UTF-8 text; re-save the file as UTF-8");
                if let Some((from, span)) = imported_at {
                    d = d.secondary(from, span, "imported here");
                }
                self.out.diags.push(d);
                None
            }
        }
    }

    fn visit(&mut self, id: FileId, identity: PathBuf) {
        self.stack.push((identity.clone(), id));
        self.done.push((identity, id));
        let Some(pf) = self.out.files.iter().find(|f| f.id == id) else { return };
        let dir = pf.path.as_ref().and_then(|p| p.parent().map(Path::to_path_buf));
        let imports: Vec<(String, Span)> = pf
            .ast
            .decls
            .iter()
            .filter_map(|d| match &d.kind {
                DeclKind::Import { path, path_span } => Some((path.clone(), *path_span)),
                _ => None,
            })
            .collect();
        for (spec, span) in imports {
            self.import(id, dir.as_deref(), &spec, span);
        }
        let inventories: Vec<(String, Span, crate::syntax::ast::Ident, crate::syntax::ast::Ident)> = self
            .out
            .files
            .iter()
            .find(|f| f.id == id)
            .map(|pf| {
                pf.ast
                    .decls
                    .iter()
                    .filter_map(|d| match &d.kind {
                        DeclKind::ImportHosts { what, from, path, path_span } => {
                            Some((path.clone(), *path_span, what.clone(), from.clone()))
                        }
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        for (spec, span, what, from) in inventories {
            self.inventory(id, dir.as_deref(), &spec, span, &what, &from);
        }
        self.stack.pop();
    }

    /// `import hosts from "inventory.csv"`: reads and parses the inventory
    /// (relative to the importing file, through the bounded reader).
    fn inventory(
        &mut self,
        from: FileId,
        dir: Option<&Path>,
        spec: &str,
        span: Span,
        what: &crate::syntax::ast::Ident,
        word: &crate::syntax::ast::Ident,
    ) {
        use super::inventory::{parse_csv, parse_json, Inventory};
        for (w, want) in [(what, "hosts"), (word, "from")] {
            if w.name != want {
                self.out.diags.push(
                    Diagnostic::new(Code::BadInventory, format!("expected `{want}`, found `{}`", w.name))
                        .primary(from, w.span, format!("expected `{want}`"))
                        .note("an inventory is imported with `import hosts from \"inventory.csv\"` (or `.json`)"),
                );
                return;
            }
        }
        let Some(dir) = dir else {
            self.out.diags.push(
                Diagnostic::new(Code::BadInventory, "the standard library imports no inventories")
                    .primary(from, span, "here"),
            );
            return;
        };
        let path = dir.join(spec);
        let kind = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        if !matches!(kind.as_deref(), Some("csv" | "json")) {
            self.out.diags.push(
                Diagnostic::new(Code::BadInventory, format!("`{spec}` is neither a `.csv` nor a `.json` inventory"))
                    .primary(from, span, "the file name decides the format")
                    .help("name the inventory `….csv` (a header row of attribute names, then one host per line) or `….json` (an array of objects)"),
            );
            return;
        }
        let bytes = match self.fs.read(&path) {
            Ok(b) => b,
            Err(e) => {
                let (code, why) = match InputError::of_io(&e) {
                    Some(refused) => (refused.code(), refused.to_string()),
                    None => (Code::Unreadable, io_reason(&e)),
                };
                self.out.diags.push(
                    Diagnostic::new(code, format!("cannot read the inventory `{}`: {why}", tidy(&path).display()))
                        .primary(from, span, "this inventory")
                        .note("an inventory path is relative to the file that imports it"),
                );
                return;
            }
        };
        let name = tidy(&path).display().to_string();
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let id = self.out.sources.add(name.clone(), String::from_utf8_lossy(e.as_bytes()).into_owned());
                self.out.diags.push(
                    Diagnostic::new(Code::NotUtf8, format!("`{name}` is not valid UTF-8"))
                        .primary(id, Span::new(at, at + 3), format!("invalid byte at offset {at}"))
                        .secondary(from, span, "imported here"),
                );
                return;
            }
        };
        let id = self.out.sources.add(name, text);
        let (hosts, diags) = if kind.as_deref() == Some("csv") {
            parse_csv(self.out.sources.text(id), id)
        } else {
            parse_json(self.out.sources.text(id), id)
        };
        self.out.diags.extend(diags);
        self.out.imports.push((from, span, id));
        self.out.inventories.push(Inventory { from, at: span, file: id, hosts });
    }

    fn import(&mut self, from: FileId, dir: Option<&Path>, spec: &str, span: Span) {
        // Relative to the importing file first (not for stdlib files).
        let mut candidates = vec![];
        if let Some(dir) = dir {
            let p = dir.join(spec);
            candidates.push(p.clone());
            if p.extension().is_none() {
                candidates.push(p.with_extension("deladas"));
            }
        }
        // A candidate that exists but cannot be read (a directory, no
        // permission): reported if nothing else matches.
        let mut unreadable: Option<(PathBuf, std::io::Error)> = None;
        for cand in &candidates {
            match self.fs.read(cand) {
                Ok(bytes) => {
                    let identity = self.fs.canonical(cand);
                    self.enter(from, span, identity, tidy(cand).display().to_string(), bytes, Some(cand.clone()));
                    return;
                }
                Err(e) if e.kind() != std::io::ErrorKind::NotFound && unreadable.is_none() => {
                    unreadable = Some((cand.clone(), e));
                }
                Err(_) => {}
            }
        }
        let stem = spec.strip_suffix(".deladas").unwrap_or(spec);
        if let Some((name, text)) = STDLIB.iter().find(|(n, _)| *n == stem) {
            let identity = PathBuf::from(format!("<stdlib>/{name}.deladas"));
            let display = identity.display().to_string();
            self.enter(from, span, identity, display, text.as_bytes().to_vec(), None);
            return;
        }
        if let Some((cand, e)) = unreadable {
            if let Some(refused) = InputError::of_io(&e) {
                self.out.diags.push(
                    Diagnostic::new(
                        refused.code(),
                        format!("cannot read the import `{spec}`: `{}`: {refused}", tidy(&cand).display()),
                    )
                    .primary(
                        from,
                        span,
                        "this import names something that is not a regular file of a sane size",
                    ),
                );
                return;
            }
            self.out.diags.push(
                Diagnostic::new(
                    Code::Unreadable,
                    format!("cannot read the import `{spec}`: `{}`: {}", tidy(&cand).display(), io_reason(&e)),
                )
                .primary(from, span, "this import names something that is not a readable file")
                .note("an import names a `.deladas` file, relative to the importing file, or a standard-library file"),
            );
            return;
        }
        let tried: Vec<String> = candidates.iter().map(|c| format!("`{}`", tidy(c).display())).collect();
        let mut d = Diagnostic::new(Code::ImportNotFound, format!("cannot find the import `{spec}`")).primary(
            from,
            span,
            "no such file, and no standard-library file of this name",
        );
        if !tried.is_empty() {
            d = d.note(format!("looked for {}", tried.join(" and ")));
        }
        let names: Vec<&str> = STDLIB.iter().map(|(n, _)| *n).collect();
        d = match crate::diagnostics::did_you_mean(stem, names.iter().copied()) {
            Some(s) => d.help(format!("did you mean the standard library's `\"{s}\"`?")),
            None => d.note(format!("the standard library has: {}", names.join(", "))),
        };
        self.out.diags.push(d);
    }

    fn enter(
        &mut self,
        from: FileId,
        span: Span,
        identity: PathBuf,
        name: String,
        bytes: Vec<u8>,
        path: Option<PathBuf>,
    ) {
        if let Some(pos) = self.stack.iter().position(|(p, _)| *p == identity) {
            let chain: Vec<String> = self.stack[pos..]
                .iter()
                .map(|(_, id)| format!("`{}`", self.out.sources.name_of(*id)))
                .chain(std::iter::once(format!("`{name}`")))
                .collect();
            self.out.diags.push(
                Diagnostic::new(Code::ImportCycle, "import cycle")
                    .primary(from, span, "this import leads back to a file that is still being imported")
                    .note(format!("the cycle: {}", chain.join(" imports ")))
                    .help("move the shared declarations into a file that both import"),
            );
            return;
        }
        if let Some((_, id)) = self.done.iter().find(|(p, _)| *p == identity) {
            self.out.imports.push((from, span, *id));
            return;
        }
        if let Some(id) = self.add_file(name, bytes, path, Some((from, span))) {
            self.out.imports.push((from, span, id));
            self.visit(id, identity);
        }
    }
}
