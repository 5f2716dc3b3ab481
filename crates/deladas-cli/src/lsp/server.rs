//! The server loop: the LSP lifecycle (initialize, shutdown, exit), open
//! documents, requests, and the solver thread.
//!
//! Everything but solving runs on the loop's thread: checking a document
//! takes milliseconds, so diagnostics follow every change at once. The
//! satisfiability check runs on save, on a thread of its own, one goal at a
//! time; a request for a document that changed since (or was saved again) is
//! skipped, and a result for an older state is discarded, so typing never
//! waits for Z3 and stale conflicts are never shown. Document states are told
//! apart by a generation the server counts itself, not by the client's
//! version number (which starts again at 0 when a file is reopened). While
//! the solver runs, the client sees `$/progress`; when it gives up, a
//! warning on the goal says so.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, select, unbounded, Receiver, RecvTimeoutError, Sender};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidChangeWatchedFiles, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    LogMessage, Notification as _, Progress, PublishDiagnostics, ShowMessage,
};
use lsp_types::request::{
    CodeActionRequest, CodeLensRequest, Completion, DocumentHighlightRequest, DocumentLinkRequest,
    DocumentSymbolRequest, ExecuteCommand, FoldingRangeRequest, Formatting, GotoDefinition, HoverRequest,
    PrepareRenameRequest, References, Rename, Request as _, SemanticTokensFullRequest, SignatureHelpRequest,
    WorkspaceSymbolRequest,
};
use lsp_types::{
    CodeLensOptions, CompletionOptions, CompletionResponse, DocumentLinkOptions, DocumentSymbolResponse,
    ExecuteCommandOptions, FoldingRangeProviderCapability, GotoDefinitionResponse, InitializeParams, InitializeResult,
    Location, LogMessageParams, MessageType, NumberOrString, OneOf, PositionEncodingKind, PrepareRenameResponse,
    ProgressParams, ProgressParamsValue, PublishDiagnosticsParams, RenameOptions, SaveOptions,
    SemanticTokensFullOptions, SemanticTokensOptions, SemanticTokensResult, SemanticTokensServerCapabilities,
    ServerCapabilities, ServerInfo, ShowMessageParams, SignatureHelpOptions, TextDocumentSyncCapability,
    TextDocumentSyncKind, TextDocumentSyncOptions, TextDocumentSyncSaveOptions, Uri, WorkDoneProgress,
    WorkDoneProgressBegin, WorkDoneProgressEnd, WorkDoneProgressReport, WorkspaceEdit, WorkspaceSymbolResponse,
};

use super::analysis::{Analysis, Files, Overlay, Stdlib};
use super::convert::{uri_to_path, LineIndex};
use deladas::check::ir::Program;
use deladas::check::FileSystem;

/// How long the satisfiability check on save may take (explaining a
/// conflict included; the repair search inside it is bounded too):
/// 10 s, or `DELADAS_LSP_SOLVE_SECS`.
fn solve_budget() -> Duration {
    let secs = std::env::var("DELADAS_LSP_SOLVE_SECS").ok().and_then(|s| s.parse::<f64>().ok());
    secs.filter(|s| s.is_finite() && *s > 0.0).map_or(Duration::from_secs(10), Duration::from_secs_f64)
}

/// An open document.
struct Doc {
    uri: Uri,
    path: PathBuf,
    text: String,
    version: i32,
    /// This state of the document, counted by the server (see the module doc).
    generation: u64,
    analysis: Analysis,
    /// Diagnostics of the last satisfiability check of this state.
    solve_diags: Vec<lsp_types::Diagnostic>,
    /// Repairs that check found (offered as code actions).
    repairs: Vec<deladas::solve::explain::Repair>,
    /// The cluster check of the last save (goals with upgrades and a deployment beside them).
    roles: Vec<deladas::diagnostics::Diagnostic>,
}

/// A satisfiability check of one saved state of a document.
struct Job {
    uri: String,
    generation: u64,
    /// The file's name, for the user.
    name: String,
    program: Program,
    files: Files,
    /// Whether the client shows `$/progress`.
    progress: bool,
    /// Asked for by a command (the code lens): tell the result in a message.
    notify: bool,
}

/// What a check found, for one state of a document.
struct Solved {
    uri: String,
    generation: u64,
    diags: Vec<lsp_types::Diagnostic>,
    repairs: Vec<deladas::solve::explain::Repair>,
    log: String,
    /// The solver gave up (or failed): a warning, shown to the user.
    gave_up: bool,
    notify: bool,
}

/// The check the solver thread is running: (document, generation, its cancellation).
type Running = Arc<Mutex<Option<(String, u64, deladas::budget::CancelToken)>>>;

/// The server's state.
struct Server {
    sender: Sender<Message>,
    docs: BTreeMap<String, Doc>,
    stdlib: Stdlib,
    jobs: Sender<Job>,
    /// The generation of each document that the solver should check (others are skipped).
    wanted: Arc<Mutex<HashMap<String, u64>>>,
    /// The check running now, if any: a newer state of its document cancels it.
    running: Running,
    /// The last generation given to a document state.
    generation: u64,
    /// What the client can do: `$/progress`, watching files for us.
    progress: bool,
    watch_files: bool,
    shutdown: bool,
}

/// Runs the server on a connection until `exit`; returns the exit code (0
/// after a `shutdown` request, 1 otherwise, as the protocol says).
pub fn run(conn: Connection) -> i32 {
    let (jobs, job_rx) = unbounded::<Job>();
    let (done_tx, done_rx) = unbounded::<Solved>();
    let wanted = Arc::new(Mutex::new(HashMap::new()));
    let running: Running = Arc::new(Mutex::new(None));
    {
        let (wanted, running) = (wanted.clone(), running.clone());
        let out = conn.sender.clone();
        std::thread::Builder::new()
            .name("deladas-lsp-solver".into())
            .spawn(move || solver(job_rx, done_tx, wanted, running, out))
            .ok();
    }
    let mut server = Server {
        sender: conn.sender.clone(),
        docs: BTreeMap::new(),
        stdlib: Stdlib::default(),
        jobs,
        wanted,
        running,
        generation: 0,
        progress: false,
        watch_files: false,
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
        document_formatting_provider: Some(OneOf::Left(true)),
        rename_provider: Some(OneOf::Right(RenameOptions {
            prepare_provider: Some(true),
            work_done_progress_options: Default::default(),
        })),
        document_highlight_provider: Some(OneOf::Left(true)),
        folding_range_provider: Some(FoldingRangeProviderCapability::Simple(true)),
        document_link_provider: Some(DocumentLinkOptions {
            resolve_provider: Some(false),
            work_done_progress_options: Default::default(),
        }),
        workspace_symbol_provider: Some(OneOf::Left(true)),
        signature_help_provider: Some(SignatureHelpOptions {
            trigger_characters: Some(vec!["(".to_string(), ",".to_string()]),
            ..Default::default()
        }),
        code_action_provider: Some(lsp_types::CodeActionProviderCapability::Simple(true)),
        code_lens_provider: Some(CodeLensOptions { resolve_provider: Some(false) }),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: vec![super::features::SOLVE_COMMAND.to_string()],
            ..Default::default()
        }),
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
                    if let Ok(p) = serde_json::from_value::<InitializeParams>(req.params.clone()) {
                        self.client(&p);
                    }
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

    /// Records what the client can do, and the workspace folder that file
    /// names are shown relative to (the server's folder without one).
    #[allow(deprecated)] // `root_uri`: older clients send only that.
    fn client(&mut self, p: &InitializeParams) {
        let caps = &p.capabilities;
        self.progress = caps.window.as_ref().and_then(|w| w.work_done_progress).unwrap_or(false);
        self.watch_files = caps
            .workspace
            .as_ref()
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|d| d.dynamic_registration)
            .unwrap_or(false);
        let root = p
            .workspace_folders
            .as_ref()
            .and_then(|f| f.first())
            .map(|f| f.uri.clone())
            .or_else(|| p.root_uri.clone())
            .and_then(|u| uri_to_path(&u))
            // No workspace: relative to where the server runs, as the CLI.
            .or_else(|| std::env::current_dir().ok());
        if let Some(root) = root {
            super::analysis::set_display_root(&root);
        }
    }

    /// Asks the client to tell us when a `.deladas` file changes on disk (so
    /// that open goals importing a closed file are checked again).
    fn watch(&self) {
        if !self.watch_files {
            return;
        }
        let opts = lsp_types::DidChangeWatchedFilesRegistrationOptions {
            watchers: vec![lsp_types::FileSystemWatcher {
                glob_pattern: lsp_types::GlobPattern::String("**/*.deladas".to_string()),
                kind: None,
            }],
        };
        let params = lsp_types::RegistrationParams {
            registrations: vec![lsp_types::Registration {
                id: "deladas-watch".to_string(),
                method: DidChangeWatchedFiles::METHOD.to_string(),
                register_options: serde_json::to_value(opts).ok(),
            }],
        };
        self.send(Request::new(
            RequestId::from("deladas-watch".to_string()),
            lsp_types::request::RegisterCapability::METHOD.to_string(),
            params,
        ));
    }

    /// A new generation for a document state.
    fn next_generation(&mut self) -> u64 {
        self.generation += 1;
        self.generation
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
            Formatting::METHOD => self.try_reply::<Formatting>(req, |s, p| {
                let Some(doc) = s.docs.get(p.text_document.uri.as_str()) else { return Ok(None) };
                super::features::format(&doc.text)
            }),
            PrepareRenameRequest::METHOD => self.try_reply::<PrepareRenameRequest>(req, |s, p| {
                let Some((doc, off)) = s.at(&p.text_document.uri, p.position) else { return Ok(None) };
                super::features::prepare_rename(&doc.analysis, off, &s.stdlib)
                    .map(|r| Some(PrepareRenameResponse::Range(r)))
            }),
            #[allow(clippy::mutable_key_type)] // `WorkspaceEdit::changes` is keyed by `Uri`.
            Rename::METHOD => self.try_reply::<Rename>(req, |s, p| {
                let tdp = p.text_document_position;
                let Some((doc, off)) = s.at(&tdp.text_document.uri, tdp.position) else { return Ok(None) };
                if !super::features::valid_name(&p.new_name) {
                    return Err(format!("`{}` is not a name (letters, digits and `_`, not a keyword)", p.new_name));
                }
                super::features::prepare_rename(&doc.analysis, off, &s.stdlib)?;
                let locations = s.references(doc, off, true);
                let changes = super::features::rename_edits(locations, &p.new_name);
                Ok(Some(WorkspaceEdit { changes: Some(changes), ..Default::default() }))
            }),
            DocumentHighlightRequest::METHOD => self.reply::<DocumentHighlightRequest>(req, |s, p| {
                let tdp = p.text_document_position_params;
                let (doc, off) = s.at(&tdp.text_document.uri, tdp.position)?;
                Some(super::features::highlights(&doc.analysis, off))
            }),
            FoldingRangeRequest::METHOD => self.reply::<FoldingRangeRequest>(req, |s, p| {
                let doc = s.docs.get(p.text_document.uri.as_str())?;
                Some(super::features::folding_ranges(&doc.text))
            }),
            DocumentLinkRequest::METHOD => self.reply::<DocumentLinkRequest>(req, |s, p| {
                let doc = s.docs.get(p.text_document.uri.as_str())?;
                Some(super::features::links(&doc.analysis))
            }),
            WorkspaceSymbolRequest::METHOD => self.reply::<WorkspaceSymbolRequest>(req, |s, p| {
                let analyses = s.docs.values().map(|d| &d.analysis);
                Some(WorkspaceSymbolResponse::Flat(super::features::workspace_symbols(analyses, &p.query)))
            }),
            SignatureHelpRequest::METHOD => self.reply::<SignatureHelpRequest>(req, |s, p| {
                let tdp = p.text_document_position_params;
                let (doc, off) = s.at(&tdp.text_document.uri, tdp.position)?;
                super::features::signature_help(&doc.analysis, off)
            }),
            CodeActionRequest::METHOD => self.reply::<CodeActionRequest>(req, |s, p| {
                let doc = s.docs.get(p.text_document.uri.as_str())?;
                let mut out = super::actions::did_you_mean(&doc.analysis, &doc.uri, p.range);
                out.extend(super::actions::add_upgrade(&doc.analysis, &doc.uri, &doc.roles, p.range));
                out.extend(super::actions::repairs(
                    &doc.analysis,
                    &doc.uri,
                    &doc.analysis.checked.program,
                    &doc.repairs,
                    &doc.solve_diags,
                    p.range,
                ));
                Some(out)
            }),
            CodeLensRequest::METHOD => self.reply::<CodeLensRequest>(req, |s, p| {
                let doc = s.docs.get(p.text_document.uri.as_str())?;
                Some(super::features::code_lenses(&doc.analysis, &doc.uri))
            }),
            ExecuteCommand::METHOD => self.try_reply::<ExecuteCommand>(req, |s, p| {
                if p.command != super::features::SOLVE_COMMAND {
                    return Err(format!("unknown command `{}`", p.command));
                }
                let uri = p.arguments.first().and_then(|v| v.as_str()).ok_or("the command needs a document URI")?;
                s.solve(uri, true)?;
                Ok(None)
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

    /// Like [`Server::reply`], for requests that can fail with a message
    /// for the user (`RequestFailed`).
    fn try_reply<R: lsp_types::request::Request>(
        &mut self,
        req: Request,
        f: impl FnOnce(&mut Self, R::Params) -> Result<R::Result, String>,
    ) -> Response {
        match serde_json::from_value::<R::Params>(req.params) {
            Ok(p) => match f(self, p).map(serde_json::to_value) {
                Ok(Ok(v)) => Response { id: req.id, response_result: Ok(v) },
                Ok(Err(e)) => Response::new_err(req.id, ErrorCode::InternalError as i32, e.to_string()),
                Err(why) => Response::new_err(req.id, ErrorCode::RequestFailed as i32, why),
            },
            Err(e) => Response::new_err(
                req.id,
                ErrorCode::InvalidParams as i32,
                format!("invalid parameters for `{}`: {e}", R::METHOD),
            ),
        }
    }

    /// Cancels the running check of this document if it is of a state no
    /// longer wanted (the document changed, or a newer save is queued): its
    /// result would be discarded anyway, and the newer state need not wait.
    fn cancel_stale(&self, key: &str) {
        let wanted = self.wanted.lock().ok().and_then(|w| w.get(key).copied());
        if let Ok(r) = self.running.lock() {
            if let Some((uri, generation, token)) = &*r {
                if uri == key && wanted != Some(*generation) {
                    token.cancel();
                }
            }
        }
    }

    /// Queues the satisfiability check of an open document's current state.
    fn solve(&mut self, key: &str, notify: bool) -> Result<(), String> {
        let Some(doc) = self.docs.get(key) else { return Err("the document is not open".into()) };
        if doc.analysis.checked.has_errors() {
            return Err("the goal has errors; fix them first".into());
        }
        if let Ok(mut w) = self.wanted.lock() {
            w.insert(key.to_string(), doc.generation);
        }
        self.cancel_stale(key);
        let job = Job {
            uri: key.to_string(),
            generation: doc.generation,
            name: super::analysis::display(&doc.path.display().to_string()),
            program: doc.analysis.checked.program.clone(),
            files: doc.analysis.files.clone(),
            progress: self.progress,
            notify,
        };
        let _ = self.jobs.send(job);
        Ok(())
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
                let generation = self.next_generation();
                if let Ok(mut w) = self.wanted.lock() {
                    w.remove(&key);
                }
                self.cancel_stale(&key);
                self.docs.insert(
                    key.clone(),
                    Doc {
                        uri: td.uri,
                        path,
                        text: td.text,
                        version: td.version,
                        generation,
                        analysis,
                        solve_diags: vec![],
                        repairs: vec![],
                        roles: vec![],
                    },
                );
                self.reanalyze_dependents(&key);
                self.publish(&key);
            }
            DidChangeTextDocument::METHOD => {
                let Ok(p) = n.extract::<lsp_types::DidChangeTextDocumentParams>(DidChangeTextDocument::METHOD) else {
                    return;
                };
                let key = p.text_document.uri.as_str().to_string();
                let generation = self.next_generation();
                let Some(doc) = self.docs.get_mut(&key) else { return };
                doc.generation = generation;
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
                doc.repairs.clear();
                doc.roles.clear();
                if let Ok(mut w) = self.wanted.lock() {
                    w.remove(&key);
                }
                self.cancel_stale(&key);
                self.reanalyze(&key);
                self.reanalyze_dependents(&key);
                self.publish(&key);
            }
            DidSaveTextDocument::METHOD => {
                let Ok(p) = n.extract::<lsp_types::DidSaveTextDocumentParams>(DidSaveTextDocument::METHOD) else {
                    return;
                };
                let key = p.text_document.uri.as_str().to_string();
                if let Some(doc) = self.docs.get_mut(&key) {
                    let roles = super::actions::roles_check(&doc.analysis, &doc.path);
                    if !(roles.is_empty() && doc.roles.is_empty()) {
                        doc.roles = roles;
                        self.publish(&key);
                    }
                }
                let _ = self.solve(&key, false);
            }
            "initialized" => self.watch(),
            DidChangeWatchedFiles::METHOD => {
                let Ok(p) = n.extract::<lsp_types::DidChangeWatchedFilesParams>(DidChangeWatchedFiles::METHOD) else {
                    return;
                };
                // Open documents are the editor's business; a closed file that
                // changed on disk is read again by the goals that import it.
                for ch in p.changes {
                    let key = ch.uri.as_str().to_string();
                    if !self.docs.contains_key(&key) {
                        self.reanalyze_dependents(&key);
                    }
                }
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
                d.repairs.clear();
                d.roles.clear();
            }
            self.publish(&k);
        }
    }

    fn publish(&self, key: &str) {
        let Some(doc) = self.docs.get(key) else { return };
        let mut diagnostics = doc.analysis.diagnostics();
        diagnostics.extend(doc.roles.iter().flat_map(|d| doc.analysis.files.to_lsp(d, false)));
        diagnostics.extend(doc.solve_diags.iter().cloned());
        self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
            uri: doc.uri.clone(),
            diagnostics,
            version: Some(doc.version),
        });
    }

    fn solved(&mut self, s: Solved) {
        let Some(doc) = self.docs.get_mut(&s.uri) else { return };
        if doc.generation != s.generation {
            let name = super::analysis::display(&doc.path.display().to_string());
            self.log(MessageType::INFO, format!("{name}: result discarded, the document changed while solving"));
            return;
        }
        doc.solve_diags = s.diags;
        doc.repairs = s.repairs;
        let name = super::analysis::display(&doc.path.display().to_string());
        let message = format!("{name}: {}", s.log);
        if s.gave_up || s.notify {
            let typ = if s.gave_up { MessageType::WARNING } else { MessageType::INFO };
            self.notify::<ShowMessage>(ShowMessageParams { typ, message: message.clone() });
        }
        self.log(if s.gave_up { MessageType::WARNING } else { MessageType::INFO }, message);
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
/// document, skipping states no longer wanted (and saying so in the log).
fn solver(
    jobs: Receiver<Job>,
    done: Sender<Solved>,
    wanted: Arc<Mutex<HashMap<String, u64>>>,
    running: Running,
    out: Sender<Message>,
) {
    let mut count = 0u64;
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
            // Registered before the check of `wanted`: a change after it
            // finds the job running and cancels it (`Server::cancel_stale`).
            let token = deladas::budget::CancelToken::new();
            if let Ok(mut r) = running.lock() {
                *r = Some((job.uri.clone(), job.generation, token.clone()));
            }
            let still_wanted = wanted.lock().map(|w| w.get(&job.uri) == Some(&job.generation)).unwrap_or(false);
            if !still_wanted {
                log(&out, MessageType::INFO, format!("{}: not solved, it changed since it was saved", job.name));
                continue;
            }
            count += 1;
            log(&out, MessageType::INFO, format!("{}: solving (at most {} s)", job.name, solve_budget().as_secs_f64()));
            let start = Instant::now();
            let (diags, repairs, log, gave_up) =
                deladas::budget::with_cancel_token(&token, || solve_with_progress(&job, &out, count));
            if let Ok(mut r) = running.lock() {
                *r = None;
            }
            if token.is_cancelled() {
                // A newer state of the document is wanted; the server
                // discards this result (its generation is old).
                self::log(
                    &out,
                    MessageType::INFO,
                    format!(
                        "{}: check cancelled after {:.1} s, the document changed",
                        job.name,
                        start.elapsed().as_secs_f64()
                    ),
                );
            }
            let (uri, generation, notify) = (job.uri, job.generation, job.notify);
            let solved = Solved { uri, generation, diags, repairs, log, gave_up, notify };
            if done.send(solved).is_err() {
                return;
            }
        }
    }
}

fn log(out: &Sender<Message>, typ: MessageType, message: String) {
    let _ = out.send(Notification::new(LogMessage::METHOD.to_string(), LogMessageParams { typ, message }).into());
}

fn progress(out: &Sender<Message>, token: &NumberOrString, p: WorkDoneProgress) {
    let params = ProgressParams { token: token.clone(), value: ProgressParamsValue::WorkDone(p) };
    let _ = out.send(Notification::new(Progress::METHOD.to_string(), params).into());
}

/// Runs one check, reporting `$/progress` (begin, the seconds spent every
/// second, end with the outcome) when the client shows it.
fn solve_with_progress(job: &Job, out: &Sender<Message>, n: u64) -> Outcome {
    let token = NumberOrString::String(format!("deladas-solve-{n}"));
    if job.progress {
        let create = lsp_types::WorkDoneProgressCreateParams { token: token.clone() };
        let id = RequestId::from(format!("deladas-progress-{n}"));
        let _ =
            out.send(Request::new(id, lsp_types::request::WorkDoneProgressCreate::METHOD.to_string(), create).into());
        progress(
            out,
            &token,
            WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: format!("Solving {}", job.name),
                cancellable: Some(false),
                message: Some(format!("at most {} s", solve_budget().as_secs_f64())),
                percentage: Some(0),
            }),
        );
    }
    let (stop, stopped) = bounded::<()>(0);
    let result = std::thread::scope(|s| {
        if job.progress {
            let token = &token;
            s.spawn(move || {
                let start = Instant::now();
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(Duration::from_secs(1)) {
                    let t = start.elapsed();
                    let pct = (t.as_secs_f64() / solve_budget().as_secs_f64() * 100.0).min(99.0) as u32;
                    let message = format!("{} s of at most {} s", t.as_secs(), solve_budget().as_secs_f64());
                    let report = WorkDoneProgressReport {
                        cancellable: Some(false),
                        message: Some(message),
                        percentage: Some(pct),
                    };
                    progress(out, token, WorkDoneProgress::Report(report));
                }
            });
        }
        let r = std::panic::catch_unwind(AssertUnwindSafe(|| check_satisfiable(job)));
        drop(stop);
        r
    });
    let outcome =
        result.unwrap_or_else(|_| (vec![], vec![], "internal error in the satisfiability check".to_string(), true));
    if job.progress {
        progress(out, &token, WorkDoneProgress::End(WorkDoneProgressEnd { message: Some(outcome.2.clone()) }));
    }
    outcome
}

/// What a check found: diagnostics, repairs, the log line, whether the solver gave up.
type Outcome = (Vec<lsp_types::Diagnostic>, Vec<deladas::solve::explain::Repair>, String, bool);

/// Decides the goal and explains it when it is unsatisfiable: one diagnostic
/// per clause of the minimal conflict; a warning when the solver gave up.
fn check_satisfiable(job: &Job) -> Outcome {
    use deladas::solve::explain::{explain, Explained};
    let program = &job.program;
    let available: Vec<usize> = (0..program.hosts.len()).collect();
    let start = std::time::Instant::now();
    let result = explain(program, &available, solve_budget());
    let took = start.elapsed().as_secs_f64();
    match result {
        Err(e) => {
            let d = e.to_diagnostic(program.root_file);
            (job.files.to_lsp(&d, false), vec![], format!("the goal cannot be solved: {}", d.message), true)
        }
        Ok(Explained::Satisfiable) => (vec![], vec![], format!("the goal is satisfiable ({took:.2} s)"), false),
        Ok(Explained::Unknown(why)) => {
            let message = format!("the solver gave up after {took:.0} s: could not decide the goal ({why})");
            let d = lsp_types::Diagnostic {
                range: job.files.first_clause(),
                // A warning: the goal may well be fine; the CLI's code for it.
                severity: Some(lsp_types::DiagnosticSeverity::WARNING),
                code: Some(NumberOrString::String(deladas::diagnostics::Code::SolverGaveUp.as_str().to_string())),
                source: Some("deladas".to_string()),
                message: format!(
                    "{message}; the editor allows {} s, run `deladas solve --timeout SECS` for longer",
                    solve_budget().as_secs_f64()
                ),
                ..Default::default()
            };
            (vec![d], vec![], message, true)
        }
        Ok(Explained::Unsatisfiable { conflict, repairs, repairs_complete }) => {
            let d = deladas::report::explanation(
                program,
                &job.files.sources,
                &available,
                &conflict,
                &repairs,
                repairs_complete,
            );
            (job.files.to_lsp(&d, true), repairs, format!("the goal is unsatisfiable ({took:.2} s)"), false)
        }
    }
}
