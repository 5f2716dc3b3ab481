//! `deladas lsp`: the real binary, driven over stdin/stdout with JSON-RPC as
//! an editor would (initialize, didOpen, didChange, didSave, hover,
//! definition, references, completion, symbols, shutdown, exit).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long to wait for any one reply.
// Generous: CI runs other test binaries on the same two cores.
const WAIT: Duration = Duration::from_secs(90);

/// A client talking to one `deladas lsp` process.
struct Client {
    child: Child,
    stdin: ChildStdin,
    rx: Receiver<Value>,
    next_id: i64,
    /// Messages received but not yet consumed (notifications, mostly).
    backlog: Vec<Value>,
}

fn read_message(r: &mut impl BufRead) -> Option<Value> {
    let mut len = None;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("Content-Length: ") {
            len = v.parse::<usize>().ok();
        }
    }
    let mut body = vec![0; len?];
    r.read_exact(&mut body).ok()?;
    serde_json::from_slice(&body).ok()
}

impl Client {
    fn start() -> Client {
        Client::start_with(&[])
    }

    /// Starts a server with extra environment variables.
    fn start_with(env: &[(&str, &str)]) -> Client {
        let mut child = Command::new(env!("CARGO_BIN_EXE_deladas"))
            .arg("lsp")
            .envs(env.iter().copied())
            .current_dir(common::manifest())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // `LSP_TEST_STDERR=1` shows the server's stderr when debugging.
            .stderr(if std::env::var_os("LSP_TEST_STDERR").is_some() { Stdio::inherit() } else { Stdio::null() })
            .env_remove("DELADAS_DEBUG")
            .spawn()
            .expect("the deladas binary starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            while let Some(v) = read_message(&mut r) {
                if tx.send(v).is_err() {
                    break;
                }
            }
        });
        Client { child, stdin, rx, next_id: 1, backlog: vec![] }
    }

    /// Starts a server and initializes it.
    fn initialized() -> Client {
        let mut c = Client::start();
        let r = c.request("initialize", json!({"processId": null, "rootUri": null, "capabilities": {}}));
        assert!(r.get("result").is_some(), "initialize failed: {r}");
        c.notify("initialized", json!({}));
        c
    }

    /// Starts a server and initializes it with these client capabilities
    /// and workspace folder.
    fn initialized_with(env: &[(&str, &str)], capabilities: Value, root: Option<&Path>) -> Client {
        let mut c = Client::start_with(env);
        let root_uri = root.map(uri_of);
        let r = c.request("initialize", json!({"processId": null, "rootUri": root_uri, "capabilities": capabilities}));
        assert!(r.get("result").is_some(), "initialize failed: {r}");
        c.notify("initialized", json!({}));
        c
    }

    /// Writes bytes as they are, no framing added.
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.stdin.write_all(bytes).expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    fn send_raw(&mut self, body: &[u8]) {
        let mut msg = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        msg.extend_from_slice(body);
        self.stdin.write_all(&msg).expect("write to the server");
        self.stdin.flush().expect("flush");
    }

    fn send(&mut self, v: Value) {
        self.send_raw(v.to_string().as_bytes());
    }

    fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message that satisfies `want` (others are kept for later).
    fn wait_for(&mut self, what: &str, want: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.backlog.iter().position(&want) {
            return self.backlog.remove(i);
        }
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(v) if want(&v) => return v,
                Ok(v) => self.backlog.push(v),
                Err(_) => panic!("no {what} within {WAIT:?}; received: {:#?}", self.backlog),
            }
        }
    }

    /// Sends a request and returns the whole response message.
    fn request(&mut self, method: &str, params: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        self.wait_for(&format!("reply to `{method}`"), |v| v.get("id") == Some(&json!(id)) && v.get("method").is_none())
    }

    /// A request's `result`, failing on an error reply.
    fn call(&mut self, method: &str, params: Value) -> Value {
        let r = self.request(method, params);
        assert!(r.get("error").is_none(), "`{method}` failed: {r}");
        r["result"].clone()
    }

    /// The next diagnostics published for `uri` that satisfy `want`.
    fn diagnostics(&mut self, uri: &str, want: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let v = self.wait_for(&format!("matching diagnostics for {uri}"), |v| {
            v["method"] == "textDocument/publishDiagnostics"
                && v["params"]["uri"] == uri
                && want(v["params"]["diagnostics"].as_array().map_or(&[], Vec::as_slice))
        });
        v["params"]["diagnostics"].as_array().cloned().unwrap_or_default()
    }

    fn open(&mut self, uri: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "deladas", "version": 1, "text": text}}),
        );
    }

    fn change_full(&mut self, uri: &str, version: i32, text: &str) {
        self.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [{"text": text}]}),
        );
    }

    /// Shuts down and exits; returns the exit code.
    fn shutdown(mut self) -> i32 {
        let r = self.request("shutdown", Value::Null);
        assert!(r.get("error").is_none(), "shutdown failed: {r}");
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh scratch folder for one test.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("deladas-lsp-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

fn uri_of(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// The LSP position (line, UTF-16 column) of byte `offset` in `text`.
fn pos(text: &str, offset: usize) -> Value {
    let before = &text[..offset];
    let line = before.matches('\n').count();
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col: usize = before[line_start..].encode_utf16().count();
    json!({"line": line, "character": col})
}

/// The position of the `n`th (0-based) occurrence of `needle`, plus `delta` bytes.
fn pos_of(text: &str, needle: &str, n: usize, delta: usize) -> Value {
    let at = text.match_indices(needle).nth(n).unwrap_or_else(|| panic!("`{needle}` #{n} not in the text")).0;
    pos(text, at + delta)
}

fn range_of(text: &str, needle: &str, n: usize) -> Value {
    json!({"start": pos_of(text, needle, n, 0), "end": pos_of(text, needle, n, needle.len())})
}

/// The P2P example without its header comment (so the first occurrence of
/// a name in the text is in code).
fn p2p() -> String {
    let text = std::fs::read_to_string(common::manifest().join("examples/p2p.deladas")).expect("the example");
    text[text.find("// resources").expect("marker")..].to_string()
}

fn td(uri: &str, text: &str, needle: &str, n: usize, delta: usize) -> Value {
    json!({"textDocument": {"uri": uri}, "position": pos_of(text, needle, n, delta)})
}

/// The acceptance: a typo in a port name of the P2P example shows one
/// diagnostic at the typo with the "did you mean" hint, in UTF-16 columns
/// after a non-ASCII comment; fixing it clears it; hovering a component
/// shows its ports.
#[test]
fn p2p_typo_is_one_diagnostic_with_a_hint_and_fixing_it_clears_it() {
    let dir = scratch("typo");
    let path = dir.join("p2p.deladas");
    // The example as shipped, header comment included.
    let good = std::fs::read_to_string(common::manifest().join("examples/p2p.deladas")).expect("the example");
    // A comment with characters of 2 (é), 3 (→) and 4 (😀) UTF-8 bytes, the
    // last one two UTF-16 units, before the typo on the same line.
    let bad = good.replace("c.out connectsto r.cin", "/* é → 😀 */ c.outt connectsto r.cin");
    assert_ne!(bad, good);
    std::fs::write(&path, &bad).expect("write");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, &bad);
    let diags = c.diagnostics(&uri, |d| !d.is_empty());
    assert_eq!(diags.len(), 1, "one diagnostic: {diags:#?}");
    let d = &diags[0];
    assert_eq!(d["range"], range_of(&bad, "outt", 0), "at the typo, in UTF-16 columns: {d:#}");
    assert_eq!(d["severity"], 1);
    assert_eq!(d["code"], "E0201");
    let msg = d["message"].as_str().expect("message");
    assert!(msg.contains("has no port `outt`") && msg.contains("did you mean `out`?"), "{msg}");
    // The secondary label (where `Client` is declared) is related information.
    let rel = &d["relatedInformation"][0];
    assert_eq!(rel["location"]["uri"], uri.as_str());
    let client =
        json!({"start": pos_of(&bad, "component Client", 0, 10), "end": pos_of(&bad, "component Client", 0, 16)});
    assert_eq!(rel["location"]["range"], client);

    // Fix it with an incremental change replacing just `outt`.
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"range": range_of(&bad, "outt", 0), "text": "out"}]}),
    );
    let diags = c.diagnostics(&uri, |_| true);
    assert!(diags.is_empty(), "fixed: {diags:#?}");
    let fixed = bad.replace("c.outt", "c.out");

    // Hover on a use of `Router` shows its code and ports.
    let h = c.call("textDocument/hover", td(&uri, &fixed, "Router r in", 0, 2));
    let value = h["contents"]["value"].as_str().expect("markdown hover");
    for want in ["component Router", "http://deladas.org/RBundle.xml", "cin[]", "cout[]", "rin[]", "rout[]"] {
        assert!(value.contains(want), "hover lacks `{want}`: {value}");
    }
    assert_eq!(
        h["range"],
        json!({"start": pos_of(&fixed, "Router r in", 0, 0), "end": pos_of(&fixed, "Router r in", 0, 6)})
    );
    // A variable's sort; a host's attributes.
    let h = c.call("textDocument/hover", td(&uri, &fixed, "c.in connectsto", 0, 0));
    let value = h["contents"]["value"].as_str().expect("markdown hover");
    assert!(value.contains("Client c") && value.contains("instance of component `Client`"), "{value}");
    let h = c.call("textDocument/hover", td(&uri, &fixed, "h3 = host", 0, 1));
    let value = h["contents"]["value"].as_str().expect("markdown hover");
    assert!(value.contains("ipaddress = \"192.168.0.3\""), "{value}");
    // Nothing to say about a keyword.
    assert_eq!(c.call("textDocument/hover", td(&uri, &fixed, "forall", 0, 1)), Value::Null);
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn definition_and_references_for_components_ports_variables_and_hosts() {
    let dir = scratch("nav");
    let path = dir.join("p2p.deladas");
    let text = p2p();
    std::fs::write(&path, &text).expect("write");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, &text);
    c.diagnostics(&uri, |_| true);
    let def = |c: &mut Client, needle: &str, n: usize, delta: usize| {
        c.call("textDocument/definition", td(&uri, &text, needle, n, delta))
    };
    // A port in `connectsto` → its declaration in `ports = {…}`.
    let d = def(&mut c, "r.cin", 0, 2);
    assert_eq!(d["uri"], uri.as_str());
    assert_eq!(d["range"], range_of(&text, "cin", 0));
    // A component used as a sort → its declaration.
    let d = def(&mut c, "Router r in", 0, 0);
    assert_eq!(d["range"], range_of(&text, "Router", 0), "{d}");
    // A variable → its binder; the cursor just after the name still counts.
    let d = def(&mut c, "r1.rout", 0, 2);
    assert_eq!(d["range"], range_of(&text, "r1", 0));
    // References of `Router`: the declaration and its 6 uses in the goal.
    let refs = c.call(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": pos_of(&text, "Router", 1, 0),
               "context": {"includeDeclaration": true}}),
    );
    let refs = refs.as_array().expect("locations");
    let written: Vec<Value> =
        text.match_indices("Router").map(|(i, _)| json!({"start": pos(&text, i), "end": pos(&text, i + 6)})).collect();
    assert_eq!(written.len(), 7);
    let mut got: Vec<Value> = refs.iter().map(|r| r["range"].clone()).collect();
    got.sort_by_key(|r| (r["start"]["line"].as_u64(), r["start"]["character"].as_u64()));
    assert_eq!(got, written);
    assert!(refs.iter().all(|r| r["uri"] == uri.as_str()));
    // References of port `cout` without the declaration: the one `r.cout`.
    let refs = c.call(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": pos_of(&text, "cout", 1, 1),
               "context": {"includeDeclaration": false}}),
    );
    assert_eq!(refs, json!([{"uri": uri, "range": range_of(&text, "cout", 1)}]));
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn navigation_crosses_imports_into_the_standard_library() {
    let dir = scratch("imports");
    let lib = "// shared resources\ncomponent Client(code = \"c\", ports = {in, out})\n\
               component Router(code = \"r\", ports = {cin[], cout[]})\n";
    std::fs::write(dir.join("net.deladas"), lib).expect("write");
    let goal = "import \"net\"\nimport \"patterns\"\nhost h1 = host()\nhost h2 = host()\n\
                use star(Router, Client, cout, in)\n\
                constraintset n = constraintset { card(instancesof Client in deployment) = 1 }\n";
    let path = dir.join("goal.deladas");
    std::fs::write(&path, goal).expect("write");
    let uri = uri_of(&path);
    let lib_uri = uri_of(&dir.join("net.deladas"));
    let mut c = Client::initialized();
    c.open(&uri, goal);
    let diags = c.diagnostics(&uri, |_| true);
    assert!(diags.is_empty(), "{diags:#?}");
    // A component argument of `use` → its declaration in the imported file.
    let d = c.call("textDocument/definition", td(&uri, goal, "Router,", 0, 0));
    assert_eq!(d["uri"], lib_uri.as_str());
    assert_eq!(d["range"], range_of(lib, "Router", 0));
    // A port argument → the port of the component it is required of.
    let d = c.call("textDocument/definition", td(&uri, goal, "cout,", 0, 0));
    assert_eq!(d["uri"], lib_uri.as_str());
    assert_eq!(d["range"], range_of(lib, "cout", 0));
    let d = c.call("textDocument/definition", td(&uri, goal, "in)", 0, 0));
    assert_eq!(d["range"], range_of(lib, "in", 0));
    // The pattern's name → the standard library, as a file the editor can open.
    let d = c.call("textDocument/definition", td(&uri, goal, "star", 0, 1));
    let std_uri = d["uri"].as_str().expect("a uri");
    assert!(std_uri.starts_with("file://") && std_uri.ends_with("/patterns.deladas"), "{d}");
    let std_path = PathBuf::from(std_uri.trim_start_matches("file://"));
    let std_text = std::fs::read_to_string(&std_path).expect("the standard library copy exists");
    let decl = "constraintset star(";
    assert_eq!(d["range"], json!({"start": pos_of(&std_text, decl, 0, 14), "end": pos_of(&std_text, decl, 0, 18)}));
    // Hover on the pattern: its parameters and doc comment.
    let h = c.call("textDocument/hover", td(&uri, goal, "star", 0, 1));
    let value = h["contents"]["value"].as_str().expect("markdown");
    assert!(
        value.contains("constraintset star(component Hub, component Leaf, port hubport, port leafport)"),
        "{value}"
    );
    assert!(value.contains("every leaf hangs off a hub"), "{value}");
    // An import's path → the imported file.
    let d = c.call("textDocument/definition", td(&uri, goal, "\"net\"", 0, 2));
    assert_eq!(d["uri"], lib_uri.as_str());

    // An error in an imported buffer shows in that file and at the import.
    let broken_lib = lib.replace("ports = {in, out}", "ports = {in, out}, maxperhost = -1");
    c.open(&lib_uri, &broken_lib);
    let lib_diags = c.diagnostics(&lib_uri, |d| !d.is_empty());
    assert_eq!(lib_diags[0]["code"], "E0403", "{lib_diags:#?}");
    let diags = c.diagnostics(&uri, |d| !d.is_empty());
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["range"], range_of(goal, "\"net\"", 0));
    assert!(diags[0]["message"].as_str().expect("message").contains("net.deladas"), "{diags:#?}");
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn completion_offers_ports_after_a_dot_and_names_elsewhere() {
    let dir = scratch("complete");
    let path = dir.join("p2p.deladas");
    let text = p2p();
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, &text);
    c.diagnostics(&uri, |_| true);
    let labels = |v: &Value| -> Vec<String> {
        let items = if v.is_array() { v.clone() } else { v["items"].clone() };
        items.as_array().expect("items").iter().map(|i| i["label"].as_str().unwrap_or("").to_string()).collect()
    };
    // `c.` typed (the text no longer parses): the ports of `Client`.
    let typed = text.replace("c.in connectsto r.cout", "c.");
    c.change_full(&uri, 2, &typed);
    c.diagnostics(&uri, |d| !d.is_empty());
    let at = typed.find("c.\n").expect("the dot") + 2;
    let items = c.call("textDocument/completion", json!({"textDocument": {"uri": uri}, "position": pos(&typed, at)}));
    let l = labels(&items);
    assert!(l.contains(&"in".to_string()) && l.contains(&"out".to_string()), "{l:?}");
    assert!(!l.contains(&"cin".to_string()) && !l.contains(&"forall".to_string()), "{l:?}");
    // A partial port name after the dot of a router variable, with the
    // parentheses of the quantifier still open (the end of the file cut off).
    let cut = &text[..text.find("r1.rout connectsto").expect("clause") + 4];
    c.change_full(&uri, 3, cut);
    c.diagnostics(&uri, |d| !d.is_empty());
    let items =
        c.call("textDocument/completion", json!({"textDocument": {"uri": uri}, "position": pos(cut, cut.len())}));
    let l = labels(&items);
    for p in ["cin", "cout", "rin", "rout"] {
        assert!(l.contains(&p.to_string()), "{p} missing: {l:?}");
    }
    // After `forall `: component names and `host`.
    let q = format!("{text}\nconstraintset more = constraintset {{ forall  }}\n");
    c.change_full(&uri, 4, &q);
    c.diagnostics(&uri, |d| !d.is_empty());
    let at = q.rfind("forall ").expect("forall") + 7;
    let items = c.call("textDocument/completion", json!({"textDocument": {"uri": uri}, "position": pos(&q, at)}));
    let l = labels(&items);
    assert!(
        l.contains(&"Client".to_string()) && l.contains(&"Router".to_string()) && l.contains(&"host".to_string()),
        "{l:?}"
    );
    assert!(!l.contains(&"h1".to_string()), "{l:?}");
    // Elsewhere: keywords, components, hosts.
    let at = q.rfind("forall").expect("forall");
    let items = c.call("textDocument/completion", json!({"textDocument": {"uri": uri}, "position": pos(&q, at)}));
    let l = labels(&items);
    for w in ["forall", "card", "Client", "h1", "randc"] {
        assert!(l.contains(&w.to_string()), "{w} missing: {l:?}");
    }
    // Inside a pattern being typed: the pattern's port parameters for an
    // instance of a component parameter.
    let pattern = "constraintset star2(component Hub, component Leaf, port hubport, port leafport) = constraintset {\n\
                   \x20   forall Leaf leaf in deployment ( exists Hub hub in deployment ( hub.hubport connectsto leaf. ) )\n}\n";
    let typed = format!("{text}\n{pattern}");
    c.change_full(&uri, 5, &typed);
    c.diagnostics(&uri, |d| !d.is_empty());
    let at = typed.find("leaf. )").expect("the dot") + 5;
    let items = c.call("textDocument/completion", json!({"textDocument": {"uri": uri}, "position": pos(&typed, at)}));
    let mut l = labels(&items);
    l.sort();
    assert_eq!(l, ["hubport", "leafport"]);
    assert_eq!(c.shutdown(), 0);
}

/// An unsatisfiable goal: on save, each clause of the minimal conflict gets
/// its own diagnostic (and the clause not in the conflict none); an edit
/// clears them until the next save.
#[test]
fn saving_an_unsatisfiable_goal_marks_its_conflicting_clauses() {
    let dir = scratch("unsat");
    let path = dir.join("unsat.deladas");
    let text = "component A(code = \"a\", ports = {p})\n\
                component B(code = \"b\", ports = {q})\n\
                host h1 = host()\nhost h2 = host()\n\
                constraintset g = constraintset {\n\
                \x20   card(instancesof A in deployment) >= 2\n\
                \x20   card(instancesof B in deployment) = 1\n\
                \x20   card(instancesof A in deployment) <= 1\n\
                }\n";
    std::fs::write(&path, text).expect("write");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, text);
    let diags = c.diagnostics(&uri, |_| true);
    assert!(diags.is_empty(), "it checks: {diags:#?}");
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": uri}}));
    let diags = c.diagnostics(&uri, |d| !d.is_empty());
    assert_eq!(diags.len(), 2, "{diags:#?}");
    let mut ranges: Vec<Value> = diags.iter().map(|d| d["range"].clone()).collect();
    ranges.sort_by_key(|r| r["start"]["line"].as_u64());
    assert_eq!(ranges[0], range_of(text, "card(instancesof A in deployment) >= 2", 0));
    assert_eq!(ranges[1], range_of(text, "card(instancesof A in deployment) <= 1", 0));
    for d in &diags {
        assert_eq!(d["code"], "E0801");
        assert!(d["message"].as_str().expect("message").starts_with("goal is unsatisfiable: "), "{d:#}");
        // The other conflicting clause is related information.
        assert_eq!(d["relatedInformation"].as_array().map(Vec::len), Some(1), "{d:#}");
    }
    // Typing clears them at once (and a late result is discarded).
    let edited = text.replace("<= 1", "<= 3");
    c.change_full(&uri, 2, &edited);
    let diags = c.diagnostics(&uri, |_| true);
    assert!(diags.is_empty(), "{diags:#?}");
    // Saving the satisfiable version publishes nothing new; saving is not
    // answered with a conflict any more.
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": uri}}));
    c.wait_for("the first log", |v| {
        v["method"] == "window/logMessage"
            && v["params"]["message"].as_str().is_some_and(|m| m.contains(": the goal is unsatisfiable"))
    });
    let log = c.wait_for("the solver's log", |v| {
        v["method"] == "window/logMessage"
            && v["params"]["message"].as_str().is_some_and(|m| m.contains(": the goal is satisfiable"))
    });
    assert!(log["params"]["message"].as_str().is_some_and(|m| m.contains(": the goal is satisfiable (")), "{log}");
    assert_eq!(c.shutdown(), 0);
}

/// Bad messages get error replies and the server keeps answering.
#[test]
fn malformed_requests_get_error_replies_never_a_crash() {
    let mut c = Client::start();
    // Before `initialize`.
    let r = c.request("textDocument/hover", json!({}));
    assert_eq!(r["error"]["code"], -32002, "{r}");
    let r = c.request("initialize", json!({"capabilities": {}}));
    assert!(r["result"]["capabilities"]["hoverProvider"].as_bool() == Some(true), "{r}");
    c.notify("initialized", json!({}));
    // Parameters of the wrong shape.
    let r = c.request("textDocument/hover", json!({"textDocument": 5}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = c.request("textDocument/definition", Value::Null);
    assert_eq!(r["error"]["code"], -32602, "{r}");
    // An unknown method.
    let r = c.request("deladas/frobnicate", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    // Not JSON at all: a parse error with a null id.
    c.send_raw(b"{this is not json");
    let r = c.wait_for("a parse error", |v| v["error"]["code"] == -32700);
    assert_eq!(r["id"], Value::Null);
    // JSON, but not a request (the method is a number).
    c.send(json!({"jsonrpc": "2.0", "id": 77, "method": 5}));
    let r = c.wait_for("an invalid-request error", |v| v["id"] == 77);
    assert_eq!(r["error"]["code"], -32600, "{r}");
    // Malformed notifications are ignored; positions far out of range are clamped.
    c.notify("textDocument/didOpen", json!({"textDocument": {"uri": 3}}));
    c.notify("textDocument/didChange", json!({}));
    let uri = "file:///nonexistent/dir/goal.deladas";
    let text = "component A(code = \"a\", ports = {p})\nhost h = host()\n";
    c.open(uri, text);
    c.diagnostics(uri, |_| true);
    let r = c.call(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": 4000, "character": 4000}}),
    );
    assert_eq!(r, Value::Null);
    c.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 2},
               "contentChanges": [{"range": {"start": {"line": 99, "character": 0}, "end": {"line": 0, "character": 3}}, "text": "x"}]}),
    );
    c.diagnostics(uri, |_| true);
    // A document the server does not know: an empty answer.
    let r = c.call(
        "textDocument/hover",
        json!({"textDocument": {"uri": "file:///other.deladas"}, "position": {"line": 0, "character": 0}}),
    );
    assert_eq!(r, Value::Null);
    // Still alive: a real request is answered.
    let r = c.call("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
    assert!(r.is_array(), "{r}");
    // After shutdown, requests are refused; exit ends the process with 0.
    let r = c.request("shutdown", Value::Null);
    assert!(r.get("error").is_none(), "{r}");
    let r = c.request("textDocument/hover", json!({}));
    assert_eq!(r["error"]["code"], -32600, "{r}");
    c.notify("exit", Value::Null);
    let status = c.child.wait().expect("exit");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn exit_without_shutdown_is_exit_code_1() {
    let mut c = Client::initialized();
    c.notify("exit", Value::Null);
    assert_eq!(c.child.wait().expect("exit").code(), Some(1));
}

#[test]
fn outline_and_semantic_tokens() {
    let dir = scratch("symbols");
    let path = dir.join("p2p.deladas");
    let text = p2p();
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, &text);
    c.diagnostics(&uri, |_| true);
    let syms = c.call("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
    let names: Vec<&str> = syms.as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["Client", "Router", "h1", "h2", "h3", "h4", "h5", "h6", "randc"]);
    let ports: Vec<&str> =
        syms[1]["children"].as_array().expect("ports").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(ports, ["cin", "cout", "rin", "rout"]);
    assert_eq!(syms[0]["selectionRange"], range_of(&text, "Client", 0));

    let toks = c.call("textDocument/semanticTokens/full", json!({"textDocument": {"uri": uri}}));
    let legend = [
        "keyword",
        "class",
        "enumMember",
        "function",
        "property",
        "variable",
        "parameter",
        "string",
        "number",
        "comment",
        "operator",
    ];
    let data: Vec<u64> = toks["data"].as_array().expect("data").iter().filter_map(Value::as_u64).collect();
    // Decode to (line, column, length, type).
    let mut decoded = vec![];
    let (mut line, mut col) = (0, 0);
    for t in data.chunks(5) {
        if t[0] > 0 {
            line += t[0];
            col = t[1];
        } else {
            col += t[1];
        }
        decoded.push((line, col, t[2], legend[t[3] as usize]));
    }
    let kind_at = |needle: &str, n: usize| {
        let p = pos_of(&text, needle, n, 0);
        let (l, c) = (p["line"].as_u64().expect("line"), p["character"].as_u64().expect("col"));
        decoded.iter().find(|t| t.0 == l && t.1 == c).map(|t| (t.2, t.3))
    };
    assert_eq!(kind_at("{in, out}", 0).map(|k| k.1), None, "the brace is not a token");
    assert_eq!(kind_at("in, out}", 0), Some((2, "property")), "port `in` is a port, not the keyword");
    assert_eq!(kind_at("forall host", 0), Some((6, "keyword")));
    assert_eq!(kind_at("Router r in", 0), Some((6, "class")));
    assert_eq!(kind_at("h3 = host", 0), Some((2, "enumMember")));
    assert_eq!(kind_at("randc", 0), Some((5, "function")));
    assert_eq!(kind_at("c.out", 0), Some((1, "variable")));
    assert_eq!(kind_at("\"http", 0).map(|k| k.1), Some("string"));
    assert_eq!(kind_at("// goal", 0), Some((7, "comment")));
    assert_eq!(c.shutdown(), 0);
}

/// Half-typed text: every feature answers (no error reply, no crash) at
/// every cut of the P2P example and of the standard library, as an editor
/// sends them while a file is typed from top to bottom.
#[test]
fn every_feature_answers_on_half_typed_text() {
    let stdlib = std::fs::read_to_string(common::manifest().join("stdlib/patterns.deladas")).expect("stdlib");
    let mut c = Client::initialized();
    let uri = "file:///nonexistent/typing.deladas";
    c.open(uri, "");
    c.diagnostics(uri, |_| true);
    let mut version = 1;
    // The workload constructs of issue 19 too: grouping, `min`/`max`,
    // an inventory import (unresolved here) and a host range.
    let workload =
        std::fs::read_to_string(common::manifest().join("tests/ui/pass/workload.deladas")).expect("workload");
    let k8s = std::fs::read_to_string(common::manifest().join("examples/k8s-spread.deladas")).expect("k8s");
    for source in [p2p(), stdlib, workload, k8s] {
        let cuts: Vec<usize> = (0..source.len()).step_by(37).filter(|&i| source.is_char_boundary(i)).collect();
        for cut in cuts {
            let text = &source[..cut];
            version += 1;
            c.change_full(uri, version, text);
            let end = pos(text, cut);
            let mut half = cut / 2;
            while !text.is_char_boundary(half) {
                half -= 1;
            }
            let mid = pos(text, half);
            let at = |p: &Value| json!({"textDocument": {"uri": uri}, "position": p});
            for (method, params) in [
                ("textDocument/completion", at(&end)),
                ("textDocument/hover", at(&mid)),
                ("textDocument/definition", at(&mid)),
                (
                    "textDocument/references",
                    json!({"textDocument": {"uri": uri}, "position": mid, "context": {"includeDeclaration": true}}),
                ),
                ("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}})),
                ("textDocument/semanticTokens/full", json!({"textDocument": {"uri": uri}})),
            ] {
                let r = c.request(method, params);
                assert!(r.get("error").is_none(), "`{method}` at cut {cut} failed: {r}\n--- text ---\n{text}");
            }
        }
        // Drain the diagnostics published on the way.
        c.backlog.clear();
    }
    assert_eq!(c.shutdown(), 0);
}

/// The symbol index behind navigation: on every example and library file,
/// each indexed name is written exactly where it is recorded, every
/// declaration it points to is itself indexed, and every variable use leads
/// to a binder of the same name.
#[test]
fn the_symbol_index_points_at_names_as_written() {
    use deladas::check::index::SymbolKind;
    let mut files: Vec<PathBuf> = vec![];
    for dir in ["examples", "stdlib", "tests/ui/pass"] {
        for e in std::fs::read_dir(common::manifest().join(dir)).expect("folder") {
            let p = e.expect("entry").path();
            if p.extension().is_some_and(|x| x == "deladas") {
                files.push(p);
            }
        }
    }
    assert!(files.len() >= 5, "{files:?}");
    for f in files {
        let (sources, checked) = deladas::check::check_path(&f);
        let idx = &checked.index;
        assert!(!idx.occurrences.is_empty(), "{}: nothing indexed", f.display());
        for o in &idx.occurrences {
            let written = &sources.text(o.loc.file)[o.loc.span.range()];
            assert_eq!(written, o.name, "{}: {o:?}", f.display());
            let def = idx.occurrences.iter().find(|d| d.loc == o.def && d.is_def());
            let def = def.unwrap_or_else(|| panic!("{}: no declaration for {o:?}", f.display()));
            // A port argument of `use` is written as the port's name.
            assert_eq!(def.name, o.name, "{}: {o:?}", f.display());
            assert_eq!(def.kind, o.kind, "{}: {o:?}", f.display());
            if o.kind == SymbolKind::Variable {
                assert!(idx.var(o.def).is_some(), "{}: no binder for {o:?}", f.display());
            }
        }
        // Every component, host and port declared in the root file is indexed as a declaration.
        for c in &checked.program.components {
            assert!(idx.occurrences.iter().any(|o| o.loc == c.loc && o.is_def()), "{}: {}", f.display(), c.name);
            for p in &c.ports {
                assert!(idx.occurrences.iter().any(|o| o.loc == p.loc && o.is_def()), "{}: {}", f.display(), p.name);
            }
        }
    }
}

/// The TextMate grammar for editors without semantic tokens highlights
/// exactly the language's keywords (language.md §2), as the lexer knows them.
#[test]
fn the_textmate_grammar_knows_every_keyword() {
    let path = common::manifest().join("editors/vscode/syntaxes/deladas.tmLanguage.json");
    let g: Value = serde_json::from_str(&std::fs::read_to_string(path).expect("grammar")).expect("valid JSON");
    assert_eq!(g["scopeName"], "source.deladas");
    let mut words: Vec<String> = vec![];
    for p in g["repository"]["keywords"]["patterns"].as_array().expect("keyword patterns") {
        let m = p["match"].as_str().expect("match");
        let inner = m.trim_start_matches("\\b(").trim_end_matches(")\\b");
        words.extend(inner.split('|').map(str::to_string));
    }
    words.sort();
    words.dedup();
    let spec = "component host constraintset forall exists in deployment card instancesof connectsto connectedto \
                reachable hostof on and or not implies true false import use upgrade where sum input output external";
    // Beyond the spec: objectives and preferences (issue 19, docs/reference/objectives.md).
    let spec = format!("{spec} minimize maximize prefer");
    // Named instances (issue 19, docs/reference/instances.md).
    let spec = format!("{spec} instance");
    let mut want: Vec<String> = spec.split_whitespace().map(str::to_string).collect();
    want.sort();
    assert_eq!(words, want);
    for w in &words {
        let lexed = deladas::syntax::lexer::lex(w);
        assert_eq!(lexed.tokens.len(), 1, "{w}");
        assert_eq!(lexed.tokens[0].0.keyword(), Some(w.as_str()), "the lexer does not take `{w}` as a keyword");
    }
}

/// A goal whose check takes a while: the unsatisfiable P2P benchmark.
fn slow_unsat_goal() -> String {
    let o = common::deladas(&["bench-goal", "12", "--unsat"]);
    assert_eq!(common::code(&o), 0, "{}", common::show(&o));
    common::stdout(&o)
}

/// Issue 20, defect 1: a result for an earlier state of a document is never
/// shown on a later one, even when the client reopens the file and its
/// version number starts again from the same value (Neovim: didSave,
/// didClose, didOpen with version 0).
#[test]
fn a_stale_unsat_result_never_lands_on_reopened_text() {
    let dir = scratch("reopen");
    let path = dir.join("goal.deladas");
    let slow = slow_unsat_goal();
    std::fs::write(&path, &slow).expect("write");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    let open0 = |c: &mut Client, text: &str| {
        c.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": "deladas", "version": 0, "text": text}}),
        )
    };
    open0(&mut c, &slow);
    let diags = c.diagnostics(&uri, |_| true);
    assert!(diags.iter().all(|d| d["severity"] != 1), "it checks: {diags:#?}");
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": uri}}));
    c.wait_for("the solver to start", |v| {
        v["method"] == "window/logMessage" && v["params"]["message"].as_str().is_some_and(|m| m.contains("solving"))
    });
    // While it solves, the file is replaced by a satisfiable goal and reloaded.
    let sat = "component A(code = \"a\", ports = {p})\nhost h1 = host()\n\
               constraintset g = constraintset {\n    card(instancesof A in deployment) = 1\n}\n";
    std::fs::write(&path, sat).expect("write");
    c.notify("textDocument/didClose", json!({"textDocument": {"uri": uri}}));
    open0(&mut c, sat);
    // The old result arrives and is discarded, with a log line saying so.
    c.wait_for("the discarded result", |v| {
        v["method"] == "window/logMessage" && v["params"]["message"].as_str().is_some_and(|m| m.contains("discarded"))
    });
    // A round trip, then nothing published for the new text has a conflict.
    c.call("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
    let published: Vec<&Value> =
        c.backlog.iter().filter(|v| v["method"] == "textDocument/publishDiagnostics").collect();
    let last = published.last().expect("diagnostics for the reopened text");
    assert_eq!(last["params"]["diagnostics"], json!([]), "{published:#?}");
    assert!(
        published.iter().all(|v| !v.to_string().contains("E0801")),
        "an old conflict was published: {published:#?}"
    );
    // Saving the new text checks the new text.
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": uri}}));
    c.wait_for("the new result", |v| {
        v["method"] == "window/logMessage"
            && v["params"]["message"].as_str().is_some_and(|m| m.contains("the goal is satisfiable"))
    });
    assert_eq!(c.shutdown(), 0);
}

/// Issue 20, defect 2: an import that is not UTF-8 is an error on the
/// import line, and go to definition on it opens the file.
#[test]
fn an_import_that_is_not_utf8_is_shown_and_navigable() {
    let dir = scratch("latin1");
    std::fs::write(dir.join("lib.deladas"), b"// caf\xe9\nhost h9 = host()\n").expect("write");
    let path = dir.join("goal.deladas");
    let text = "import \"lib\"\nhost h1 = host()\n";
    std::fs::write(&path, text).expect("write");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, text);
    let diags = c.diagnostics(&uri, |d| !d.is_empty());
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["code"], "E0007");
    assert_eq!(diags[0]["range"], range_of(text, "\"lib\"", 0), "{diags:#?}");
    let def = c.call("textDocument/definition", td(&uri, text, "lib", 0, 1));
    assert_eq!(def["uri"], uri_of(&dir.join("lib.deladas")), "{def}");
    let links = c.call("textDocument/documentLink", json!({"textDocument": {"uri": uri}}));
    assert_eq!(links[0]["target"], uri_of(&dir.join("lib.deladas")), "{links}");
    assert_eq!(c.shutdown(), 0);
}

/// Issue 20, defect 3: while the solver runs the client sees `$/progress`,
/// and when it gives up a warning on the goal says so (and a message).
#[test]
fn solving_reports_progress_and_a_visible_give_up() {
    let dir = scratch("giveup");
    let path = dir.join("big.deladas");
    let o = common::deladas(&["bench-goal", "100"]);
    let text = common::stdout(&o);
    std::fs::write(&path, &text).expect("write");
    let uri = uri_of(&path);
    let caps = json!({"window": {"workDoneProgress": true}});
    let mut c = Client::initialized_with(&[("DELADAS_LSP_SOLVE_SECS", "0.05")], caps, Some(&dir));
    c.open(&uri, &text);
    c.diagnostics(&uri, |_| true);
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": uri}}));
    let create = c.wait_for("a progress token", |v| v["method"] == "window/workDoneProgress/create");
    let token = create["params"]["token"].clone();
    let id = create["id"].clone();
    c.send(json!({"jsonrpc": "2.0", "id": id, "result": null}));
    let begin =
        c.wait_for("progress begin", |v| v["method"] == "$/progress" && v["params"]["value"]["kind"] == "begin");
    assert_eq!(begin["params"]["token"], token);
    assert!(begin["params"]["value"]["title"].as_str().is_some_and(|t| t.contains("big.deladas")), "{begin}");
    let end = c.wait_for("progress end", |v| v["method"] == "$/progress" && v["params"]["value"]["kind"] == "end");
    assert!(end["params"]["value"]["message"].as_str().is_some_and(|m| m.contains("gave up")), "{end}");
    let diags = c.diagnostics(&uri, |d| !d.is_empty());
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0]["severity"], 2, "a warning: {diags:#?}");
    assert_eq!(diags[0]["code"], "E0802", "{diags:#?}");
    assert!(diags[0]["message"].as_str().is_some_and(|m| m.contains("gave up")), "{diags:#?}");
    let shown = c.wait_for("a message", |v| v["method"] == "window/showMessage");
    // Relative to the workspace folder, as the CLI would say it.
    assert!(shown["params"]["message"].as_str().is_some_and(|m| m.starts_with("big.deladas: ")), "{shown}");
    assert_eq!(c.shutdown(), 0);
}

/// Issue 20, defect 5: no bad frame keeps the server from answering the
/// next valid request, and an import of `/dev/zero` does not keep it from
/// answering at all.
#[test]
fn bad_frames_cost_only_themselves() {
    let mut c = Client::initialized();
    let body = |id: i64| {
        json!({"jsonrpc": "2.0", "id": id, "method": "textDocument/hover",
        "params": {"textDocument": {"uri": "file:///nowhere.deladas"}, "position": {"line": 0, "character": 0}}})
        .to_string()
    };
    let frames: Vec<Vec<u8>> = vec![
        format!("Content-Length: abc\r\n\r\n{}", body(900)).into_bytes(),
        format!("Content-Length: -5\r\n\r\n{}", body(901)).into_bytes(),
        format!("Content-Length: 99999999999999999999\r\n\r\n{}", body(902)).into_bytes(),
        format!("Content-Length: 4000000000\r\n\r\n{}", body(903)).into_bytes(),
        format!("Content-Type: application/vscode-jsonrpc\r\n\r\n{}", body(904)).into_bytes(),
        format!("Content-Length: 12\r\nContent-Length: 7\r\n\r\n{}", body(905)).into_bytes(),
        format!("Content-Length: 10\r\n\r\n{}", body(906)).into_bytes(),
    ];
    for (i, f) in frames.iter().enumerate() {
        c.write_bytes(f);
        let id = 1000 + i as i64;
        c.send_raw(body(id).as_bytes());
        let r = c.wait_for(&format!("the answer after bad frame {i}"), |v| v["id"] == id);
        assert!(r.get("result").is_some(), "{r}");
    }
    // The bad frames were answered with errors (a parse error, no id).
    assert!(c.backlog.iter().any(|v| v["error"]["code"] == -32700), "{:#?}", c.backlog);
    // An open document importing /dev/zero.
    let dir = scratch("devzero");
    let path = dir.join("zero.deladas");
    let text = "import \"/dev/zero\"\nhost h1 = host()\n";
    std::fs::write(&path, text).expect("write");
    let uri = uri_of(&path);
    c.open(&uri, text);
    let diags = c.diagnostics(&uri, |d| !d.is_empty());
    assert!(diags[0]["message"].as_str().is_some_and(|m| m.contains("/dev/zero")), "{diags:#?}");
    assert_eq!(c.shutdown(), 0);
}

/// Issue 20, defect 6: names are shown relative to the workspace folder,
/// and a closed imported file that changes on disk re-checks its importers
/// (the server asks the client to watch `.deladas` files).
#[test]
fn relative_names_and_watched_imports() {
    let dir = scratch("watch");
    std::fs::write(dir.join("lib.deladas"), "host h9 = host(\n").expect("write");
    let path = dir.join("goal.deladas");
    let text = "import \"lib\"\nimport \"nothere\"\nhost h1 = host()\n";
    std::fs::write(&path, text).expect("write");
    let uri = uri_of(&path);
    let caps = json!({"workspace": {"didChangeWatchedFiles": {"dynamicRegistration": true}}});
    let mut c = Client::initialized_with(&[], caps, Some(&dir));
    let reg = c.wait_for("a watch registration", |v| v["method"] == "client/registerCapability");
    let watchers = &reg["params"]["registrations"][0]["registerOptions"]["watchers"];
    assert_eq!(watchers[0]["globPattern"], "**/*.deladas", "{reg}");
    c.send(json!({"jsonrpc": "2.0", "id": reg["id"], "result": null}));
    c.open(&uri, text);
    let diags = c.diagnostics(&uri, |d| d.len() == 2);
    let all: Vec<String> = diags
        .iter()
        .flat_map(|d| {
            let related = d["relatedInformation"].as_array().cloned().unwrap_or_default();
            std::iter::once(d["message"].to_string()).chain(related.into_iter().map(|r| r["message"].to_string()))
        })
        .collect();
    let all = all.join("\n");
    assert!(all.contains("`nothere.deladas`"), "relative names: {all}");
    assert!(!all.contains(&dir.display().to_string()), "no absolute names: {all}");
    // Fix the imported file on disk; the client tells the server.
    std::fs::write(dir.join("lib.deladas"), "host h9 = host()\n").expect("write");
    c.notify(
        "workspace/didChangeWatchedFiles",
        json!({"changes": [{"uri": uri_of(&dir.join("lib.deladas")), "type": 2}]}),
    );
    let diags = c.diagnostics(&uri, |d| d.len() == 1);
    assert!(diags[0]["message"].as_str().is_some_and(|m| m.contains("nothere")), "{diags:#?}");
    assert_eq!(c.shutdown(), 0);
}

/// Formatting, rename, highlight, folding, workspace symbols, signature
/// help for `use`, the code lens and its command, over JSON-RPC.
#[test]
fn editing_features() {
    let dir = scratch("features");
    let path = dir.join("goal.deladas");
    let text = "import \"patterns\"\n\
                // the web tier\n\
                // two lines\n\
                component Web(code = \"w.xml\", ports = {p[]})\n\
                host h1=host( )\n\
                host h2 = host()\n\
                constraintset s = constraintset {\n\
                \x20   forall Web w in deployment (\n\
                \x20       w on h1\n\
                \x20   )\n\
                }\n\
                use replicate(Web, 1)\n";
    std::fs::write(&path, text).expect("write");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, text);
    let diags = c.diagnostics(&uri, |_| true);
    assert!(diags.is_empty(), "{diags:#?}");
    let doc = json!({"textDocument": {"uri": uri}});

    // Formatting: one edit, to the house style.
    let edits = c.call(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert_eq!(edits.as_array().map(Vec::len), Some(1), "{edits}");
    let formatted = edits[0]["newText"].as_str().expect("text");
    assert_eq!(formatted, text.replace("host h1=host( )", "host h1 = host()"));

    // Rename: every use, in this file; a keyword is refused, so is a stdlib name.
    let edit = c.call(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": pos_of(text, "h1", 1, 0), "newName": "front"}),
    );
    let changes = edit["changes"][&uri].as_array().cloned().expect("edits for this file");
    assert_eq!(changes.len(), 2, "{edit}");
    assert!(changes.iter().all(|e| e["newText"] == "front"));
    let r = c.request(
        "textDocument/rename",
        json!({"textDocument": {"uri": uri}, "position": pos_of(text, "h1", 0, 0), "newName": "forall"}),
    );
    assert!(r["error"]["message"].as_str().is_some_and(|m| m.contains("not a name")), "{r}");
    let r = c.request("textDocument/prepareRename", td(&uri, text, "replicate", 0, 1));
    assert!(r["error"]["message"].as_str().is_some_and(|m| m.contains("standard library")), "{r}");
    let r = c.call("textDocument/prepareRename", td(&uri, text, "Web", 1, 1));
    assert_eq!(r, range_of(text, "Web", 1));

    // Highlight: the declaration (write) and the uses (read) of `Web`.
    let hl = c.call("textDocument/documentHighlight", td(&uri, text, "Web", 0, 1));
    let kinds: Vec<i64> = hl.as_array().expect("highlights").iter().map(|h| h["kind"].as_i64().unwrap_or(0)).collect();
    assert_eq!(kinds.len(), 3, "{hl}");
    assert_eq!(kinds.iter().filter(|&&k| k == 3).count(), 1, "one write: {hl}");

    // Folding: the comment run, the constraintset, the quantifier.
    let folds = c.call("textDocument/foldingRange", doc.clone());
    let folds: Vec<(i64, i64)> = folds
        .as_array()
        .expect("folds")
        .iter()
        .map(|f| (f["startLine"].as_i64().unwrap_or(-1), f["endLine"].as_i64().unwrap_or(-1)))
        .collect();
    for want in [(1, 2), (6, 9), (7, 8)] {
        assert!(folds.contains(&want), "{want:?} in {folds:?}");
    }

    // Links: the stdlib import opens the library's copy.
    let links = c.call("textDocument/documentLink", doc.clone());
    assert!(links[0]["target"].as_str().is_some_and(|t| t.ends_with("patterns.deladas")), "{links}");

    // Workspace symbols: this file's and the library's declarations.
    let syms = c.call("workspace/symbol", json!({"query": "rep"}));
    let names: Vec<&str> = syms.as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    assert!(names.contains(&"replicate"), "{names:?}");
    let syms = c.call("workspace/symbol", json!({"query": "web"}));
    assert_eq!(syms[0]["name"], "Web", "{syms}");

    // Signature help inside `use replicate(Web, |)`.
    let sig = c.call("textDocument/signatureHelp", td(&uri, text, "1)", 0, 0));
    let label = sig["signatures"][0]["label"].as_str().expect("label");
    assert!(label.starts_with("replicate(component T, int "), "{sig}");
    assert_eq!(sig["activeParameter"], 1, "{sig}");

    // The code lens runs the solver; the result is told in a message.
    let lenses = c.call("textDocument/codeLens", doc);
    let cmd = &lenses[0]["command"];
    assert_eq!(cmd["command"], "deladas.solve", "{lenses}");
    let r = c.call("workspace/executeCommand", json!({"command": cmd["command"], "arguments": cmd["arguments"]}));
    assert_eq!(r, Value::Null);
    let shown = c.wait_for("the solver's message", |v| v["method"] == "window/showMessage");
    assert!(shown["params"]["message"].as_str().is_some_and(|m| m.contains("satisfiable")), "{shown}");

    // A syntax error: formatting is refused with the reason.
    let broken = format!("{text}host h3 = host(\n");
    c.change_full(&uri, 2, &broken);
    let r = c.request(
        "textDocument/formatting",
        json!({"textDocument": {"uri": uri}, "options": {"tabSize": 4, "insertSpaces": true}}),
    );
    assert!(r["error"]["message"].as_str().is_some_and(|m| m.contains("syntax errors")), "{r}");
    assert_eq!(c.shutdown(), 0);
}

/// The repairs of an unsatisfiable goal as code actions, each an edit that
/// makes the goal satisfiable (checked with `deladas solve`).
#[test]
fn repairs_of_a_conflict_are_code_actions() {
    let dir = scratch("repairs");
    let path = dir.join("cap.deladas");
    let text = "component Hub(code = \"h\", ports = {p}, maxinstances = 1)\n\
                component Leaf(code = \"l\", ports = {q})\n\
                host h1 = host()\nhost h2 = host()\nhost h3 = host()\n\
                constraintset s = constraintset {\n\
                \x20   card(instancesof Leaf in deployment) = 2\n\
                \x20   forall Leaf l in deployment (exists Hub b in deployment (l.q connectsto b.p))\n\
                }\n";
    std::fs::write(&path, text).expect("write");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, text);
    c.diagnostics(&uri, |_| true);
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": uri}}));
    let diags = c.diagnostics(&uri, |d| !d.is_empty());
    let range = diags[0]["range"].clone();
    let actions = c.call(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri}, "range": range, "context": {"diagnostics": diags}}),
    );
    let actions = actions.as_array().cloned().expect("actions");
    let titles: Vec<&str> = actions.iter().filter_map(|a| a["title"].as_str()).collect();
    for want in ["Drop the clause at line 7", "Let `Hub.p` hold 2 channels", "Set `maxinstances = 2` on `Hub`"] {
        assert!(titles.iter().any(|t| t.starts_with(want)), "{want} in {titles:?}");
    }
    // Every action, applied, gives a goal that checks and is satisfiable.
    for a in &actions {
        assert_eq!(a["kind"], "quickfix");
        let mut fixed = text.to_string();
        let mut edits = a["edit"]["changes"][&uri].as_array().cloned().expect("edits");
        edits.sort_by_key(|e| {
            std::cmp::Reverse((e["range"]["start"]["line"].as_u64(), e["range"]["start"]["character"].as_u64()))
        });
        for e in edits {
            let offset = |p: &Value| {
                let line = p["line"].as_u64().unwrap_or(0) as usize;
                let start: usize = fixed.split_inclusive('\n').take(line).map(str::len).sum();
                start + p["character"].as_u64().unwrap_or(0) as usize
            };
            let (s, t) = (offset(&e["range"]["start"]), offset(&e["range"]["end"]));
            fixed.replace_range(s..t, e["newText"].as_str().expect("text"));
        }
        let f = dir.join("fixed.deladas");
        std::fs::write(&f, &fixed).expect("write");
        let o =
            common::deladas(&["solve", &f.display().to_string(), "-o", &dir.join("out.ddd.xml").display().to_string()]);
        assert_eq!(common::code(&o), 0, "{}: {fixed}\n{}", a["title"], common::show(&o));
    }
    assert_eq!(c.shutdown(), 0);
}

/// Hover on a variable over a host attribute's values, and the outline of
/// inventory imports and host ranges (issue 19).
#[test]
fn workload_constructs_hover_and_outline() {
    let dir = scratch("workload");
    let path = dir.join("w.deladas");
    std::fs::write(dir.join("inv.csv"), "name,zone\nn1,a\nn2,b\n").expect("inventory");
    let text = "import hosts from \"inv.csv\"\nhost spare[2] = host(zone = \"c\")\n\
                component Web(code = \"w\", ports = {})\n\
                constraintset s = constraintset {\n    forall zone z in deployment ( card(instancesof Web in zone z) <= 1 )\n    \
                max(host h in deployment : card(instancesof Web in h)) >= 1\n}\n";
    std::fs::write(&path, text).expect("goal");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, text);
    c.diagnostics(&uri, |d| d.is_empty());
    let hover = c.call(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": pos_of(text, "z in deployment", 0, 0)}),
    );
    let shown = hover.to_string();
    assert!(shown.contains("zone z") && shown.contains("host attribute"), "{shown}");
    let syms = c.call("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
    let names: Vec<&str> = syms.as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["import hosts from \"inv.csv\"", "spare[2]", "Web", "s"]);
    assert_eq!(c.shutdown(), 0);
}

#[test]
fn named_instances_hover_definition_references_and_outline() {
    let dir = scratch("instances");
    let path = dir.join("i.deladas");
    let text = "component VM(code = \"vm\", ports = {nic}, cpu = 10, maxperhost = 4)\n\
                host pm1 = host(cpu = 50)\nhost pm2 = host(cpu = 50)\n\
                instance vm1 = VM(cpu = 20)\ninstance part[2] = VM\n\
                constraintset s = constraintset {\n    vm1 on pm1\n    \
                forall part p in deployment ( hostof(p) != hostof(vm1) )\n    \
                forall host h in deployment ( sum(VM v in h : v.cpu) <= h.cpu )\n    \
                hostof(part1) = hostof(part2)\n}\n";
    std::fs::write(&path, text).expect("goal");
    let uri = uri_of(&path);
    let mut c = Client::initialized();
    c.open(&uri, text);
    c.diagnostics(&uri, |d| d.is_empty());
    // Hover on a use of `vm1` and on the group `part`.
    let hover = c.call("textDocument/hover", td(&uri, text, "vm1 on", 0, 1));
    let shown = hover.to_string();
    assert!(shown.contains("instance vm1 = VM(cpu = 20)") && shown.contains("must exist"), "{shown}");
    let hover = c.call("textDocument/hover", td(&uri, text, "part p", 0, 1));
    assert!(hover.to_string().contains("part[2]"), "{hover}");
    // A member of the group: that one instance.
    let hover = c.call("textDocument/hover", td(&uri, text, "part1)", 0, 1));
    assert!(hover.to_string().contains("instance part1 = VM(cpu = 10)"), "{hover}");
    // Definition of `vm1` → its declaration; references: declaration and 2 uses.
    let d = c.call("textDocument/definition", td(&uri, text, "vm1)", 0, 1));
    assert_eq!(d["range"], range_of(text, "vm1", 0), "{d}");
    let refs = c.call(
        "textDocument/references",
        json!({"textDocument": {"uri": uri}, "position": pos_of(text, "vm1", 1, 0),
               "context": {"includeDeclaration": true}}),
    );
    assert_eq!(refs.as_array().map(Vec::len), Some(3), "{refs}");
    // Every position of the text answers (no panic), and the outline lists them.
    for off in (0..text.len()).step_by(7) {
        let _ = c.call("textDocument/hover", json!({"textDocument": {"uri": uri}, "position": pos(text, off)}));
        let _ = c.call("textDocument/definition", json!({"textDocument": {"uri": uri}, "position": pos(text, off)}));
    }
    let syms = c.call("textDocument/documentSymbol", json!({"textDocument": {"uri": uri}}));
    let names: Vec<&str> = syms.as_array().expect("symbols").iter().filter_map(|s| s["name"].as_str()).collect();
    assert_eq!(names, ["VM", "pm1", "pm2", "vm1", "part[2]", "s"]);
    assert_eq!(c.shutdown(), 0);
}

/// Issue 13: an edit cancels the running check of an older state of the
/// document (its result would be discarded anyway), so the check of the
/// newer state does not wait for the old one's time limit.
#[test]
fn an_edit_cancels_the_running_check_of_an_older_state() {
    let dir = scratch("cancel");
    let path = dir.join("big.deladas");
    let o = common::deladas(&["bench-goal", "3000"]);
    let big = common::stdout(&o);
    std::fs::write(&path, &big).expect("write");
    let uri = uri_of(&path);
    // A limit far longer than the test may wait.
    let mut c = Client::initialized_with(&[("DELADAS_LSP_SOLVE_SECS", "3600")], json!({}), Some(&dir));
    c.open(&uri, &big);
    c.diagnostics(&uri, |_| true);
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": uri}}));
    c.wait_for("the solver to start", |v| {
        v["method"] == "window/logMessage" && v["params"]["message"].as_str().is_some_and(|m| m.contains("solving"))
    });
    std::thread::sleep(Duration::from_millis(300));
    let small = "component A(code = \"a\", ports = {p})\nhost h1 = host()\n\
                 constraintset g = constraintset {\n    card(instancesof A in deployment) = 1\n}\n";
    let edited = Instant::now();
    c.change_full(&uri, 2, small);
    let cancelled = c.wait_for("the cancellation", |v| {
        v["method"] == "window/logMessage" && v["params"]["message"].as_str().is_some_and(|m| m.contains("cancelled"))
    });
    assert!(cancelled["params"]["message"].as_str().is_some_and(|m| m.starts_with("big.deladas: ")), "{cancelled}");
    c.notify("textDocument/didSave", json!({"textDocument": {"uri": uri}}));
    c.wait_for("the new result", |v| {
        v["method"] == "window/logMessage"
            && v["params"]["message"].as_str().is_some_and(|m| m.contains("the goal is satisfiable"))
    });
    // Generous for a loaded machine; the old check alone takes far longer.
    assert!(edited.elapsed() < Duration::from_secs(30), "{:?}", edited.elapsed());
    // Nothing of the old check was published on the new text.
    let published: Vec<&Value> =
        c.backlog.iter().filter(|v| v["method"] == "textDocument/publishDiagnostics").collect();
    assert!(published.iter().all(|v| !v.to_string().contains("E0802")), "{published:#?}");
    assert_eq!(c.shutdown(), 0);
}
