//! One analysis of an open document: its buffer loaded as the goal's root
//! (imports read from other open buffers first, then the disk), checked by
//! the same code as `deladas check`, and its diagnostics converted to LSP.
//!
//! Files of the standard library are embedded in the binary; so that an
//! editor can open them (go to definition into `star`), the server writes a
//! read-only copy to a cache folder and links there.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use lsp_types::{
    DiagnosticRelatedInformation, DiagnosticSeverity, DiagnosticTag, Location, NumberOrString, Range, Uri,
};

use super::convert::{path_to_uri, LineIndex};
use deladas::check::load::ParsedFile;
use deladas::check::{self, Checked, FileSystem, RealFs};
use deladas::diagnostics::{Code, Diagnostic, FileId, Severity, Sources};
use deladas::syntax::ast::Span;

/// Reads files for the loader: an open editor buffer when there is one for
/// the path, the disk otherwise.
pub struct Overlay<'a> {
    /// Canonical path → buffer text.
    pub buffers: HashMap<PathBuf, &'a str>,
}

/// The largest file read from disk; a goal is a few kilobytes, and an
/// import of `/dev/zero` must not keep the server reading forever.
const MAX_FILE: u64 = 64 << 20;

impl FileSystem for Overlay<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        if let Some(text) = self.buffers.get(&RealFs.canonical(path)) {
            return Ok(text.as_bytes().to_vec());
        }
        let f = std::fs::File::open(path)?;
        let meta = f.metadata()?;
        if !meta.is_file() {
            let what = if meta.is_dir() { "is a directory" } else { "is not a regular file" };
            return Err(std::io::Error::other(what));
        }
        let mut bytes = vec![];
        f.take(MAX_FILE + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_FILE {
            return Err(std::io::Error::other(format!("larger than {} MiB", MAX_FILE >> 20)));
        }
        Ok(bytes)
    }
    fn canonical(&self, path: &Path) -> PathBuf {
        RealFs.canonical(path)
    }
}

/// The folder file names are shown relative to (the workspace's), as the
/// CLI shows them relative to where it runs; `/`-terminated.
static DISPLAY_ROOT: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Sets the folder names are shown relative to (once).
pub fn set_display_root(root: &Path) {
    let mut r = root.display().to_string();
    if !r.ends_with('/') {
        r.push('/');
    }
    let _ = DISPLAY_ROOT.set(r);
}

/// A text with the paths under the workspace folder made relative to it.
pub fn display(text: &str) -> String {
    match DISPLAY_ROOT.get() {
        Some(root) if root.len() > 1 => text.replace(root.as_str(), ""),
        _ => text.to_string(),
    }
}

/// Where the standard library's files are linked to: a copy on disk.
#[derive(Debug, Default, Clone)]
pub struct Stdlib {
    /// Library file name (`patterns`) → URI of its copy.
    pub uris: HashMap<String, Uri>,
}

impl Stdlib {
    /// Writes the standard library to a cache folder (once per content) and
    /// records the URIs; files that cannot be written are not linked.
    pub fn materialize() -> Stdlib {
        use sha2::Digest;
        let mut hasher = sha2::Sha256::new();
        for (n, t) in check::load::STDLIB {
            hasher.update(n.as_bytes());
            hasher.update(t.as_bytes());
        }
        let tag: String = hasher.finalize().iter().take(6).map(|b| format!("{b:02x}")).collect();
        let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).unwrap_or_else(std::env::temp_dir);
        let dir = base.join(format!("deladas-stdlib-{tag}"));
        let mut uris = HashMap::new();
        if std::fs::create_dir_all(&dir).is_err() {
            return Stdlib { uris };
        }
        for (name, text) in check::load::STDLIB {
            let path = dir.join(format!("{name}.deladas"));
            let same = std::fs::read(&path).is_ok_and(|b| b == text.as_bytes());
            if same || std::fs::write(&path, text).is_ok() {
                if let Some(u) = path_to_uri(&path) {
                    uris.insert(name.to_string(), u);
                }
            }
        }
        Stdlib { uris }
    }
}

/// The loaded files of one analysis, with what is needed to turn spans
/// into LSP locations (cheap to clone for the solver thread).
#[derive(Debug, Clone)]
pub struct Files {
    pub sources: Sources,
    /// URI of every file, by id (`None` when it has none, e.g. not UTF-8).
    pub uris: Vec<Option<Uri>>,
    pub root: FileId,
    /// Resolved imports: importing file, span of the path, imported file.
    pub imports: Vec<(FileId, Span, FileId)>,
    /// Line starts of each file, computed when first needed.
    lines: Vec<std::sync::OnceLock<Vec<usize>>>,
}

impl Files {
    /// The line index of a file (built once).
    pub fn lines(&self, file: FileId) -> LineIndex<'_> {
        let text = self.sources.text(file);
        match self.lines.get(file) {
            Some(cell) => LineIndex::with_starts(text, cell.get_or_init(|| super::convert::line_starts(text))),
            None => LineIndex::new(text),
        }
    }

    pub fn range(&self, file: FileId, span: Span) -> Range {
        self.lines(file).range(span)
    }

    pub fn location(&self, file: FileId, span: Span) -> Option<Location> {
        let uri = self.uris.get(file)?.clone()?;
        Some(Location { uri, range: self.range(file, span) })
    }

    /// Where a goal-wide message goes: the first constraintset or `use` of
    /// the root file, or its start.
    pub fn first_clause(&self) -> Range {
        let text = self.sources.text(self.root);
        let at = ["\nconstraintset ", "\nuse "]
            .iter()
            .filter_map(|k| text.find(k).map(|i| i + 1))
            .min()
            .or_else(|| ["constraintset ", "use "].iter().find(|k| text.starts_with(**k)).map(|_| 0))
            .unwrap_or(0);
        let end = text[at..].find('\n').map_or(text.len(), |e| at + e);
        self.range(self.root, Span::new(at, end))
    }

    /// The span in the root file of the import through which `file` was
    /// loaded (following imports of imports back to the root).
    pub fn import_site(&self, file: FileId) -> Option<Span> {
        let mut f = file;
        for _ in 0..=self.imports.len() {
            let &(from, span, _) = self.imports.iter().find(|(_, _, to)| *to == f)?;
            if from == self.root {
                return Some(span);
            }
            f = from;
        }
        None
    }

    /// The LSP form of a deladas diagnostic, for the root file: `None` for a
    /// warning in an imported file. An error elsewhere is shown at the
    /// import that loads its file. With `split`, every primary label gets a
    /// diagnostic of its own (the clauses of an unsatisfiable goal).
    pub fn to_lsp(&self, d: &Diagnostic, split: bool) -> Vec<lsp_types::Diagnostic> {
        let primaries: Vec<usize> = (0..d.labels.len()).filter(|&i| d.labels[i].primary).collect();
        let anchors: Vec<usize> = match (split, primaries.first()) {
            (true, Some(_)) => primaries.clone(),
            (false, Some(&p)) => vec![p],
            (_, None) if d.labels.is_empty() => vec![],
            (_, None) => vec![0],
        };
        let notes = d.notes.iter().map(|n| n.to_string()).collect::<Vec<_>>().join("\n");
        let mut out = vec![];
        let anchors: Vec<Option<usize>> =
            if anchors.is_empty() { vec![None] } else { anchors.into_iter().map(Some).collect() };
        for anchor in anchors {
            let label = anchor.map(|i| &d.labels[i]);
            let mut message = d.message.clone();
            if split {
                if let Some(l) = label.filter(|l| !l.message.is_empty()) {
                    message = format!("{message}: {}", l.message);
                }
            }
            let mut related = vec![];
            let range = match label {
                None => Range::default(),
                Some(l) if l.file == self.root => self.range(l.file, l.span),
                Some(l) => {
                    if d.severity == Severity::Warning {
                        return vec![];
                    }
                    // The import that loads the file; for a file that could not
                    // be loaded (not UTF-8) the label at its import.
                    let site = self
                        .import_site(l.file)
                        .or_else(|| d.labels.iter().find(|x| x.file == self.root).map(|x| x.span));
                    let Some(site) = site else { return vec![] };
                    message = format!("in `{}`: {message}", self.sources.name_of(l.file));
                    if let Some(loc) = self.location(l.file, l.span) {
                        let text = if l.message.is_empty() { d.message.clone() } else { l.message.clone() };
                        related.push(DiagnosticRelatedInformation { location: loc, message: text });
                    }
                    self.range(self.root, site)
                }
            };
            if !notes.is_empty() {
                message = format!("{message}\n{notes}");
            }
            for (i, l) in d.labels.iter().enumerate() {
                if Some(i) == anchor {
                    continue;
                }
                let Some(location) = self.location(l.file, l.span) else { continue };
                let text = match (l.primary, l.message.is_empty()) {
                    (_, false) => l.message.clone(),
                    (true, true) => d.message.clone(),
                    (false, true) => "related".to_string(),
                };
                related.push(DiagnosticRelatedInformation { location, message: text });
            }
            let tags = (d.code == Code::UnusedVariable).then(|| vec![DiagnosticTag::UNNECESSARY]);
            let message = display(&message);
            for r in &mut related {
                r.message = display(&r.message);
            }
            out.push(lsp_types::Diagnostic {
                range,
                severity: Some(match d.severity {
                    Severity::Error => DiagnosticSeverity::ERROR,
                    Severity::Warning => DiagnosticSeverity::WARNING,
                }),
                code: Some(NumberOrString::String(d.code.as_str().to_string())),
                source: Some("deladas".to_string()),
                message,
                related_information: if related.is_empty() { None } else { Some(related) },
                tags,
                ..Default::default()
            });
        }
        out
    }
}

/// An open document, loaded and checked.
#[derive(Debug)]
pub struct Analysis {
    pub files: Files,
    /// Parsed files, the root first (when it could be read).
    pub parsed: Vec<ParsedFile>,
    /// The check's result; its diagnostics include the loader's, sorted.
    pub checked: Checked,
    /// Canonical paths of the files loaded from disk or buffers (to know
    /// which documents depend on a changed one).
    pub deps: Vec<PathBuf>,
}

impl Analysis {
    /// Loads `text` as the root goal at `path` and checks it.
    pub fn new(uri: &Uri, path: &Path, text: &str, fs: &Overlay<'_>, stdlib: &Stdlib) -> Analysis {
        let loaded = check::load(path, Some(text), fs);
        let mut checked = check::check(&loaded);
        let mut diags = loaded.diags.clone();
        diags.append(&mut checked.diags);
        check::sort_diags(&mut diags);
        checked.diags = diags;
        let root = loaded.root.unwrap_or(0);
        let mut uris = vec![None; loaded.sources.len()];
        let mut deps = vec![];
        for pf in &loaded.files {
            let uri = match &pf.path {
                _ if pf.id == root => Some(uri.clone()),
                Some(p) => {
                    let canon = fs.canonical(p);
                    let u = path_to_uri(&canon);
                    deps.push(canon);
                    u
                }
                None => {
                    let name = loaded.sources.name_of(pf.id);
                    let stem = name.trim_start_matches("<stdlib>/").trim_end_matches(".deladas");
                    stdlib.uris.get(stem).cloned()
                }
            };
            if let Some(slot) = uris.get_mut(pf.id) {
                *slot = uri;
            }
        }
        Analysis {
            files: Files {
                lines: (0..loaded.sources.len()).map(|_| std::sync::OnceLock::new()).collect(),
                sources: loaded.sources,
                uris,
                root,
                imports: loaded.imports,
            },
            parsed: loaded.files,
            checked,
            deps,
        }
    }

    /// The root file's text.
    pub fn text(&self) -> &str {
        self.files.sources.text(self.files.root)
    }

    /// Diagnostics to show on the root document.
    pub fn diagnostics(&self) -> Vec<lsp_types::Diagnostic> {
        self.checked.diags.iter().flat_map(|d| self.files.to_lsp(d, false)).collect()
    }

    /// The parsed root file.
    pub fn root_ast(&self) -> Option<&ParsedFile> {
        self.parsed.iter().find(|p| p.id == self.files.root)
    }
}
