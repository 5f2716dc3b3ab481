//! The server loop: the LSP lifecycle (initialize, shutdown, exit), open
//! documents, requests, and the solver thread.
//!
//! Everything but solving runs on the loop's thread: checking a document
//! takes milliseconds, so diagnostics follow every change at once. The
//! satisfiability check runs on save, on a thread of its own, one goal at a
//! time; a request for a document that changed since (or was saved again) is
//! skipped, and a result for an older version is discarded, so typing never
//! waits for Z3 and stale conflicts are never shown.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{select, unbounded, Receiver, Sender};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument, LogMessage,
    Notification as _, PublishDiagnostics,
};
use lsp_types::request::{
    Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest, References, Request as _,
    SemanticTokensFullRequest,
};
use lsp_types::{
    CompletionOptions, CompletionResponse, DocumentSymbolResponse, GotoDefinitionResponse, InitializeResult, Location,
    LogMessageParams, MessageType, OneOf, PositionEncodingKind, PublishDiagnosticsParams, SaveOptions,
    SemanticTokensFullOptions, SemanticTokensOptions, SemanticTokensResult, SemanticTokensServerCapabilities,
    ServerCapabilities, ServerInfo, TextDocumentSyncCapability, TextDocumentSyncKind, TextDocumentSyncOptions,
    TextDocumentSyncSaveOptions, Uri,
};

use super::analysis::{Analysis, Files, Overlay, Stdlib};
use super::convert::{uri_to_path, LineIndex};
use deladas::check::ir::Program;
use deladas::check::FileSystem;

/// How long the satisfiability check on save may take (explaining a
/// conflict included; the repair search inside it is bounded too).
const SOLVE_BUDGET: Duration = Duration::from_secs(10);

/// An open document.
struct Doc {
    uri: Uri,
    path: PathBuf,
    text: String,
    version: i32,
    analysis: Analysis,
    /// Diagnostics of the last satisfiability check of this version.
    solve_diags: Vec<lsp_types::Diagnostic>,
}

/// A satisfiability check of one saved version.
struct Job {
    uri: String,
    version: i32,
    program: Program,
    files: Files,
}

/// What a check found, for one version.
struct Solved {
    uri: String,
    version: i32,
    diags: Vec<lsp_types::Diagnostic>,
    log: String,
}

/// The server's state.
struct Server {
    sender: Sender<Message>,
    docs: BTreeMap<String, Doc>,
    stdlib: Stdlib,
    jobs: Sender<Job>,
    /// The version of each document that the solver should check (others are skipped).
    wanted: Arc<Mutex<HashMap<String, i32>>>,
    shutdown: bool,
}

/// Runs the server on a connection until `exit`; returns the exit code (0
/// after a `shutdown` request, 1 otherwise, as the protocol says).
pub fn run(conn: Connection) -> i32 {
    let (jobs, job_rx) = unbounded::<Job>();
    let (done_tx, done_rx) = unbounded::<Solved>();
    let wanted = Arc::new(Mutex::new(HashMap::new()));
    {
        let wanted = wanted.clone();
        std::thread::Builder::new()
            .name("deladas-lsp-solver".into())
            .spawn(move || solver(job_rx, done_tx, wanted))
            .ok();
    }
    let mut server = Server {
        sender: conn.sender.clone(),
        docs: BTreeMap::new(),
        stdlib: Stdlib::default(),
        jobs,
        wanted,
        shutdown: false,
    };
    if !server.initialize(&conn.receiver) {
        return 1;
    }
    server.stdlib = Stdlib::materialize();
    server.main_loop(&conn.receiver, &done_rx)
}

fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(PositionEncodingKind::UTF16),
        text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
            open_close: Some(true),
            change: Some(TextDocumentSyncKind::INCREMENTAL),
            save: Some(TextDocumentSyncSaveOptions::SaveOptions(SaveOptions { include_text: Some(false) })),
            ..Default::default()
        })),
        hover_provider: Some(lsp_types::HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".to_string()]),
            ..Default::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        semantic_tokens_provider: Some(SemanticTokensServerCapabilities::SemanticTokensOptions(
            SemanticTokensOptions {
                legend: super::symbols::legend(),
                full: Some(SemanticTokensFullOptions::Bool(true)),
                range: None,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

impl Server {
    fn send(&self, m: impl Into<Message>) {
        let _ = self.sender.send(m.into());
    }

    fn notify<N: lsp_types::notification::Notification>(&self, params: N::Params) {
        self.send(Notification::new(N::METHOD.to_string(), params));
    }

    fn log(&self, typ: MessageType, message: String) {
        self.notify::<LogMessage>(LogMessageParams { typ, message });
    }

    /// Waits for `initialize` and answers it; false if the client left first.
    fn initialize(&mut self, rx: &Receiver<Message>) -> bool {
        for msg in rx {
            match msg {
                Message::Request(req) if req.method == "initialize" => {
                    let result = InitializeResult {
                        capabilities: capabilities(),
                        server_info: Some(ServerInfo {
                            name: "deladas".to_string(),
                            version: Some(env!("CARGO_PKG_VERSION").to_string()),
                        }),
                    };
                    self.send(Response::new_ok(req.id, result));
                    return true;
                }
                Message::Request(req) => self.send(Response::new_err(
                    req.id,
                    ErrorCode::ServerNotInitialized as i32,
                    format!("`{}` before `initialize`", req.method),
                )),
                Message::Notification(n) if n.method == "exit" => return false,
                _ => {}
            }
        }
        false
    }

    fn main_loop(&mut self, rx: &Receiver<Message>, done: &Receiver<Solved>) -> i32 {
        loop {
            select! {
                recv(rx) -> msg => match msg {
                    Err(_) => return 1, // input ended without `exit`
                    Ok(Message::Request(req)) => {
                        let id = req.id.clone();
                        let method = req.method.clone();
                        let resp = std::panic::catch_unwind(AssertUnwindSafe(|| self.request(req)))
                            .unwrap_or_else(|_| internal_error(id, &method));
                        self.send(resp);
                    }
                    Ok(Message::Notification(n)) => {
                        if n.method == "exit" {
                            return if self.shutdown { 0 } else { 1 };
                        }
                        let method = n.method.clone();
                        if std::panic::catch_unwind(AssertUnwindSafe(|| self.notification(n))).is_err() {
                            self.log(MessageType::ERROR, format!("internal error while handling `{method}`"));
                        }
                    }
                    Ok(Message::Response(_)) => {}
                },
                recv(done) -> solved => {
                    if let Ok(s) = solved {
                        self.solved(s);
                    }
                }
            }
        }
    }

    fn request(&mut self, req: Request) -> Response {
        if self.shutdown {
            return Response::new_err(req.id, ErrorCode::InvalidRequest as i32, "the server is shutting down".into());
        }
        match req.method.as_str() {
            "shutdown" => {
                self.shutdown = true;
                Response::new_ok(req.id, ())
            }
            "initialize" => {
                Response::new_err(req.id, ErrorCode::InvalidRequest as i32, "the server is already initialized".into())
            }
            HoverRequest::METHOD => self.reply::<HoverRequest>(req, |s, p| {
                let tdp = p.text_document_position_params;
                let (doc, off) = s.at(&tdp.text_document.uri, tdp.position)?;
                super::navigate::hover(&doc.analysis, off)
            }),
            GotoDefinition::METHOD => self.reply::<GotoDefinition>(req, |s, p| {
                let tdp = p.text_document_position_params;
                let (doc, off) = s.at(&tdp.text_document.uri, tdp.position)?;
                super::navigate::definition(&doc.analysis, off).map(GotoDefinitionResponse::Scalar)
            }),
            References::METHOD => self.reply::<References>(req, |s, p| {
                let tdp = p.text_document_position;
                let (doc, off) = s.at(&tdp.text_document.uri, tdp.position)?;
                Some(s.references(doc, off, p.context.include_declaration))
            }),
            Completion::METHOD => self.reply::<Completion>(req, |s, p| {
                let tdp = p.text_document_position;
                let (doc, off) = s.at(&tdp.text_document.uri, tdp.position)?;
                let fs = s.overlay();
                Some(CompletionResponse::Array(super::complete::complete(&doc.analysis, off, &fs, &s.stdlib)))
            }),
            DocumentSymbolRequest::METHOD => self.reply::<DocumentSymbolRequest>(req, |s, p| {
                let doc = s.docs.get(p.text_document.uri.as_str())?;
                Some(DocumentSymbolResponse::Nested(super::symbols::document_symbols(&doc.analysis)))
            }),
            SemanticTokensFullRequest::METHOD => self.reply::<SemanticTokensFullRequest>(req, |s, p| {
                let doc = s.docs.get(p.text_document.uri.as_str())?;
                Some(SemanticTokensResult::Tokens(super::symbols::semantic_tokens(&doc.analysis)))
            }),
            _ => {
                Response::new_err(req.id, ErrorCode::MethodNotFound as i32, format!("unknown method `{}`", req.method))
            }
        }
    }

    /// Decodes a request's parameters and answers with `f`'s result, or an
    /// `InvalidParams` error.
    fn reply<R: lsp_types::request::Request>(
        &mut self,
        req: Request,
        f: impl FnOnce(&mut Self, R::Params) -> R::Result,
    ) -> Response {
        match serde_json::from_value::<R::Params>(req.params) {
            Ok(p) => {
                let result = f(self, p);
                match serde_json::to_value(result) {
                    Ok(v) => Response { id: req.id, response_result: Ok(v) },
                    Err(e) => Response::new_err(req.id, ErrorCode::InternalError as i32, e.to_string()),
                }
            }
            Err(e) => Response::new_err(
                req.id,
                ErrorCode::InvalidParams as i32,
                format!("invalid parameters for `{}`: {e}", R::METHOD),
            ),
        }
    }

    /// The open document and the byte offset of a position in it.
    fn at(&self, uri: &Uri, pos: lsp_types::Position) -> Option<(&Doc, usize)> {
        let doc = self.docs.get(uri.as_str())?;
        let off = LineIndex::new(&doc.text).offset(pos);
        Some((doc, off))
    }

    /// References to the symbol under the cursor, in every open document's
    /// analysis (so uses in files that import this one are found when open).
    fn references(&self, doc: &Doc, offset: usize, include_decl: bool) -> Vec<Location> {
        let Some(o) = super::navigate::occurrence_at(&doc.analysis, offset) else { return vec![] };
        let Some(Some(target)) = doc.analysis.files.uris.get(o.def.file) else { return vec![] };
        let mut out: Vec<Location> = vec![];
        let mut seen = std::collections::HashSet::new();
        for d in self.docs.values() {
            let uris = &d.analysis.files.uris;
            // The same declaration as this analysis sees it: same file, same place.
            let def = d.analysis.checked.index.occurrences.iter().find(|x| {
                x.is_def()
                    && x.def.span == o.def.span
                    && uris.get(x.def.file).is_some_and(|u| u.as_ref() == Some(target))
            });
            if let Some(def) = def {
                for l in super::navigate::references(&d.analysis, def.def, include_decl) {
                    let r = l.range;
                    let key =
                        (l.uri.as_str().to_string(), r.start.line, r.start.character, r.end.line, r.end.character);
                    if seen.insert(key) {
                        out.push(l);
                    }
                }
            }
        }
        out
    }

    /// The open buffers, as the loader's file system.
    fn overlay(&self) -> Overlay<'_> {
        let buffers =
            self.docs.values().map(|d| (deladas::check::RealFs.canonical(&d.path), d.text.as_str())).collect();
        Overlay { buffers }
    }

    fn notification(&mut self, n: Notification) {
        match n.method.as_str() {
            DidOpenTextDocument::METHOD => {
                let Ok(p) = n.extract::<lsp_types::DidOpenTextDocumentParams>(DidOpenTextDocument::METHOD) else {
                    return;
                };
                let td = p.text_document;
                let path = uri_to_path(&td.uri).unwrap_or_else(|| PathBuf::from("untitled.deladas"));
                let analysis = Analysis::new(&td.uri, &path, &td.text, &self.overlay(), &self.stdlib);
                let key = td.uri.as_str().to_string();
                self.docs.insert(
                    key.clone(),
                    Doc { uri: td.uri, path, text: td.text, version: td.version, analysis, solve_diags: vec![] },
                );
                self.reanalyze_dependents(&key);
                self.publish(&key);
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) = n.extract::<lsp_types::DidChangeTextDocumentParams>(DidChangeTextDocument::METHOD) else {
                    return;
                };
                let key = p.text_document.uri.as_str().to_string();
                let Some(doc) = self.docs.get_mut(&key) else { return };
                for ch in p.content_changes {
                    match ch.range {
                        Some(r) => {
                            let span = LineIndex::new(&doc.text).span(r);
                            doc.text.replace_range(span.range(), &ch.text);
                        }
                        None => doc.text = ch.text,
                    }
                }
                doc.version = p.text_document.version;
                doc.solve_diags.clear();
                if let Ok(mut w) = self.wanted.lock() {
                    w.remove(&key);
                }
                self.reanalyze(&key);
                self.reanalyze_dependents(&key);
                self.publish(&key);
            }
            DidSaveTextDocument::METHOD => {
                let Ok(p) = n.extract::<lsp_types::DidSaveTextDocumentParams>(DidSaveTextDocument::METHOD) else {
                    return;
                };
                let key = p.text_document.uri.as_str().to_string();
                let Some(doc) = self.docs.get(&key) else { return };
                if doc.analysis.checked.has_errors() {
                    return;
                }
                if let Ok(mut w) = self.wanted.lock() {
                    w.insert(key.clone(), doc.version);
                }
                let job = Job {
                    uri: key,
                    version: doc.version,
                    program: doc.analysis.checked.program.clone(),
                    files: doc.analysis.files.clone(),
                };
                let _ = self.jobs.send(job);
            }
            DidCloseTextDocument::METHOD => {
                let Ok(p) = n.extract::<lsp_types::DidCloseTextDocumentParams>(DidCloseTextDocument::METHOD) else {
                    return;
                };
                let key = p.text_document.uri.as_str().to_string();
                if let Some(doc) = self.docs.remove(&key) {
                    if let Ok(mut w) = self.wanted.lock() {
                        w.remove(&key);
                    }
                    self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
                        uri: doc.uri,
                        diagnostics: vec![],
                        version: None,
                    });
                    self.reanalyze_dependents(&key);
                }
            }
            _ => {}
        }
    }

    fn reanalyze(&mut self, key: &str) {
        let Some(doc) = self.docs.get(key) else { return };
        let analysis = Analysis::new(&doc.uri, &doc.path, &doc.text, &self.overlay(), &self.stdlib);
        if let Some(doc) = self.docs.get_mut(key) {
            doc.analysis = analysis;
        }
    }

    /// Re-checks the open documents that load the document `key` (its
    /// buffer, or the file it was read from), and publishes their diagnostics.
    fn reanalyze_dependents(&mut self, key: &str) {
        let Some(path) = self.docs.get(key).map(|d| deladas::check::RealFs.canonical(&d.path)).or_else(|| {
            key.parse::<Uri>().ok().and_then(|u| uri_to_path(&u)).map(|p| deladas::check::RealFs.canonical(&p))
        }) else {
            return;
        };
        let dependents: Vec<String> = self
            .docs
            .iter()
            .filter(|(k, d)| k.as_str() != key && d.analysis.deps.contains(&path))
            .map(|(k, _)| k.clone())
            .collect();
        for k in dependents {
            self.reanalyze(&k);
            if let Some(d) = self.docs.get_mut(&k) {
                d.solve_diags.clear();
            }
            self.publish(&k);
        }
    }

    fn publish(&self, key: &str) {
        let Some(doc) = self.docs.get(key) else { return };
        let mut diagnostics = doc.analysis.diagnostics();
        diagnostics.extend(doc.solve_diags.iter().cloned());
        self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
            uri: doc.uri.clone(),
            diagnostics,
            version: Some(doc.version),
        });
    }

    fn solved(&mut self, s: Solved) {
        let Some(doc) = self.docs.get_mut(&s.uri) else { return };
        if doc.version != s.version {
            return; // the document changed since it was saved
        }
        doc.solve_diags = s.diags;
        self.log(MessageType::INFO, s.log);
        self.publish(&s.uri);
    }
}

fn internal_error(id: RequestId, method: &str) -> Response {
    Response::new_err(
        id,
        ErrorCode::InternalError as i32,
        format!("internal error while answering `{method}`; this is a bug in deladas, please report it"),
    )
}

/// The solver thread: checks saved goals one at a time, newest first per
/// document, skipping versions no longer wanted.
fn solver(jobs: Receiver<Job>, done: Sender<Solved>, wanted: Arc<Mutex<HashMap<String, i32>>>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        batch.extend(jobs.try_iter());
        // The last job of each document only.
        let mut latest: Vec<Job> = vec![];
        for j in batch {
            latest.retain(|k| k.uri != j.uri);
            latest.push(j);
        }
        for job in latest {
            let still_wanted = wanted.lock().map(|w| w.get(&job.uri) == Some(&job.version)).unwrap_or(false);
            if !still_wanted {
                continue;
            }
            let (uri, version) = (job.uri.clone(), job.version);
            let (diags, log) = std::panic::catch_unwind(AssertUnwindSafe(|| check_satisfiable(&job)))
                .unwrap_or_else(|_| (vec![], "internal error in the satisfiability check".to_string()));
            if done.send(Solved { uri, version, diags, log }).is_err() {
                return;
            }
        }
    }
}

/// Decides the goal and explains it when it is unsatisfiable: one diagnostic
/// per clause of the minimal conflict.
fn check_satisfiable(job: &Job) -> (Vec<lsp_types::Diagnostic>, String) {
    use deladas::solve::explain::{explain, Explained};
    let program = &job.program;
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    let start = std::time::Instant::now();
    let result = explain(program, &available, SOLVE_BUDGET);
    let took = start.elapsed().as_secs_f64();
    match result {
        Err(e) => {
            let d = e.to_diagnostic(program.root_file);
            (job.files.to_lsp(&d, false), format!("the goal cannot be solved: {}", d.message))
        }
        Ok(Explained::Satisfiable) => (vec![], format!("the goal is satisfiable ({took:.2} s)")),
        Ok(Explained::Unknown(why)) => {
            (vec![], format!("could not decide the goal within {} s: {why}", SOLVE_BUDGET.as_secs()))
        }
        Ok(Explained::Unsatisfiable { conflict, repairs, repairs_complete }) => {
            let d = crate::cli::explain::explanation(
                program,
                &job.files.sources,
                &available,
                &conflict,
                &repairs,
                repairs_complete,
            );
            (job.files.to_lsp(&d, true), format!("the goal is unsatisfiable ({took:.2} s)"))
        }
    }
}
