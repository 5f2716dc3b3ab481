//! The front end never panics and never hangs, whatever the input.
//!
//! - every prefix of every example and standard-library file (every byte for
//!   small files, a stride for larger ones), and a few thousand seeded
//!   single-byte flips, insertions and deletions of them;
//! - explicit hostile inputs: empty, not UTF-8, unterminated string and
//!   comment, 2^31, 10,000 nested parentheses, 10,000 `not`s, a 10 MB file;
//! - random token soups (proptest).
//!
//! Each input goes through `load` (with an in-memory file system, so
//! non-UTF-8 bytes take the real path) and `check`. When a goal checks
//! without errors, its typed IR is walked to make sure every index in it is
//! in range, since later stages index with them unchecked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use deladas::check::ir::*;
use deladas::check::{self, FileSystem};
use deladas::diagnostics::Code;

/// Files in memory; anything else is "not found" (so `import "patterns"`
/// falls back to the embedded standard library).
struct MemFs(HashMap<PathBuf, Vec<u8>>);

impl FileSystem for MemFs {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.0.get(path).cloned().ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }
}

/// Loads and checks `bytes` as the goal file `goal.deladas`; returns the
/// codes reported. Panics (failing the test) only if the front end does.
fn run(bytes: &[u8]) -> Vec<Code> {
    let path = PathBuf::from("goal.deladas");
    let fs = MemFs(HashMap::from([(path.clone(), bytes.to_vec())]));
    let loaded = check::load(&path, None, &fs);
    let (sources, checked) = check::check_loaded(loaded);
    // Rendering must not panic either (labels past the end of a file, etc.).
    let _ = deladas::diagnostics::render::to_text(&checked.diags, &sources);
    let _ = deladas::diagnostics::render::to_json(&checked.diags, &sources);
    for d in &checked.diags {
        for l in &d.labels {
            assert!(l.span.start <= l.span.end, "{:?}: inverted span", d.code);
            assert!(l.span.end as usize <= sources.text(l.file).len(), "{:?}: span past the end of its file", d.code);
        }
    }
    if !checked.has_errors() {
        validate(&checked.program);
    }
    checked.diags.iter().map(|d| d.code).collect()
}

/// Every index in a program that checked without errors is in range, and no
/// error placeholder is left in it.
fn validate(p: &Program) {
    for v in 0..p.vars.len() {
        var(p, v);
    }
    for c in &p.clauses {
        formula(p, &c.formula);
    }
    for u in &p.upgrades {
        assert!(u.component < p.components.len());
        for &port in &u.changes {
            assert!(port < p.components[u.component].ports.len());
        }
    }
}

fn var(p: &Program, v: VarId) {
    assert!(v < p.vars.len(), "variable {v} out of range");
    if let Sort::Instance(c) = p.vars[v].sort {
        assert!(c < p.components.len(), "component {c} out of range");
    }
    if let Sort::Group(g) = p.vars[v].sort {
        assert!(g < p.groups.len(), "group {g} out of range");
    }
}

fn domain(p: &Program, d: &Domain) {
    match d {
        Domain::Deployment => {}
        Domain::OnHost(t) => term(p, t),
        Domain::Group { attr, value } => {
            assert!(p.host_attr_types.contains_key(attr), "group by `{attr}`, not a host attribute");
            term(p, value);
        }
    }
}

fn formula(p: &Program, f: &Formula) {
    match &f.kind {
        FormulaKind::Const(_) => {}
        FormulaKind::Not(a) => formula(p, a),
        FormulaKind::And(v) | FormulaKind::Or(v) => v.iter().for_each(|a| formula(p, a)),
        FormulaKind::Implies(a, b) => {
            formula(p, a);
            formula(p, b);
        }
        FormulaKind::Cmp(_, a, b) => {
            term(p, a);
            term(p, b);
        }
        FormulaKind::Connects { a, pa, b, pb } => {
            for (v, port) in [(a, pa), (b, pb)] {
                var(p, *v);
                let Sort::Instance(c) = p.vars[*v].sort else { panic!("a port of a host variable") };
                assert!(*port < p.components[c].ports.len(), "port out of range");
            }
        }
        FormulaKind::Connected(a, b) | FormulaKind::Reachable(a, b) => {
            var(p, *a);
            var(p, *b);
        }
        FormulaKind::Quant { var: v, domain, body, .. } => {
            var(p, *v);
            self::domain(p, domain);
            formula(p, body);
        }
        FormulaKind::Error => panic!("an error formula in a program without errors"),
    }
}

fn term(p: &Program, t: &Term) {
    assert!(t.ty != Type::Unknown, "a term of unknown type in a program without errors");
    match &t.kind {
        TermKind::Int(_) | TermKind::Str(_) | TermKind::Bool(_) => {}
        TermKind::Var(v) | TermKind::HostOf(v) => var(p, *v),
        TermKind::Host(h) => assert!(*h < p.hosts.len()),
        TermKind::HostAttr(b, _) => term(p, b),
        TermKind::Count(b) => binder(p, b),
        TermKind::Sum(b, t) => {
            binder(p, b);
            term(p, t);
        }
        TermKind::Add(v) => v.iter().for_each(|(_, t)| term(p, t)),
        TermKind::Mul(a, b) => {
            term(p, a);
            term(p, b);
        }
        TermKind::Neg(a) | TermKind::Abs(a) => term(p, a),
        TermKind::Extreme { args, .. } => {
            assert!(args.len() >= 2, "`min`/`max` of fewer than two terms");
            args.iter().for_each(|a| term(p, a));
        }
        TermKind::Aggregate { binder: b, body, .. } => {
            binder(p, b);
            term(p, body);
        }
        TermKind::Param(_) => panic!("a pattern parameter left in a program"),
        TermKind::Error => panic!("an error term in a program without errors"),
    }
}

fn binder(p: &Program, b: &Binder) {
    var(p, b.var);
    domain(p, &b.domain);
    if let Some(c) = &b.cond {
        formula(p, c);
    }
}

/// The examples and the standard library: real, well-formed goals to break.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("DELADAS_ROOT"));
    let mut out = vec![];
    for dir in ["examples", "stdlib"] {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "deladas"))
            .collect();
        paths.sort();
        for p in paths {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    assert!(out.len() >= 4, "expected the examples and the standard library");
    out
}

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn every_truncation_of_the_corpus() {
    let start = Instant::now();
    let mut runs = 0;
    for (name, bytes) in corpus() {
        // Every byte for small files; about 600 cut points for larger ones.
        let stride = if bytes.len() < 3 * 1024 { 1 } else { bytes.len().div_ceil(600) };
        let mut cut = 0;
        while cut <= bytes.len() {
            let r = std::panic::catch_unwind(|| run(&bytes[..cut]));
            assert!(r.is_ok(), "{name}: panic on the first {cut} bytes");
            runs += 1;
            cut += stride;
        }
        // A goal importing a host inventory cannot read it from memory.
        let imports_inventory = String::from_utf8_lossy(&bytes).contains("import hosts from");
        assert!(
            imports_inventory || run(&bytes).iter().all(|c| c.as_str().starts_with('W')),
            "{name} itself has errors"
        );
    }
    println!("{runs} truncations in {:.2?}", start.elapsed());
}

#[test]
fn seeded_single_byte_mutations() {
    let start = Instant::now();
    let corpus = corpus();
    // Bytes that matter to the lexer and parser, and some that should not occur.
    const INTERESTING: &[u8] = b"(){}[],.:=!<>+-*/\"\\ \n\t0129azAZ_#@&|'\x00\x7f\xc3\xa9\xff";
    // `DELADAS_MUTATIONS=100000 cargo test --release --test robustness seeded`
    // for a longer campaign; `DELADAS_SEED` for another sequence.
    let rounds: usize = std::env::var("DELADAS_MUTATIONS").ok().and_then(|s| s.parse().ok()).unwrap_or(3000);
    let seed: u64 = std::env::var("DELADAS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x0DE1_ADA5);
    let mut rng = Rng(seed.max(1));
    let mut runs = 0;
    for round in 0..rounds {
        let (name, orig) = &corpus[round % corpus.len()];
        let mut bytes = orig.clone();
        let at = rng.below(bytes.len());
        let byte = if rng.below(2) == 0 { INTERESTING[rng.below(INTERESTING.len())] } else { rng.next() as u8 };
        let what = match rng.below(4) {
            3 => {
                // Splice a slice of some corpus file in: plausible tokens in
                // implausible places, which reaches the checker more often.
                let (_, other) = &corpus[rng.below(corpus.len())];
                let from = rng.below(other.len());
                let len = rng.below(80.min(other.len() - from)) + 1;
                let end = (at + rng.below(40)).min(bytes.len());
                bytes.splice(at..end, other[from..from + len].iter().copied());
                "splice"
            }
            0 => {
                bytes[at] = byte;
                "flip"
            }
            1 => {
                bytes.insert(at, byte);
                "insert"
            }
            _ => {
                bytes.remove(at);
                "delete"
            }
        };
        let r = std::panic::catch_unwind(|| run(&bytes));
        assert!(r.is_ok(), "{name}: panic after {what} (byte {byte:#04x}) at offset {at} (round {round}, seed {seed})");
        runs += 1;
    }
    println!("{runs} mutations in {:.2?}", start.elapsed());
}

/// A goal with one component and host, and `clauses` as its constraintset.
fn goal_with(clauses: &str) -> String {
    format!("component C(code = \"c.xml\", ports = {{p}})\nhost h = host()\nconstraintset s = constraintset {{\n{clauses}\n}}\n")
}

#[test]
fn empty_file() {
    assert_eq!(run(b""), vec![Code::EmptyGoal]);
    assert_eq!(run(b"   \n\t\n"), vec![Code::EmptyGoal]);
    assert_eq!(run(b"// only a comment\n/* and /* nested */ another */"), vec![Code::EmptyGoal]);
}

#[test]
fn empty_file_exits_2_from_the_cli() {
    let dir = std::env::temp_dir().join(format!("deladas-robust-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("empty.deladas");
    std::fs::write(&path, "").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_deladas")).arg("check").arg(&path).output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("E0010"));
}

#[test]
fn not_utf8() {
    assert_eq!(run(b"component C(code = \"\xff\xfe\", ports = {p})"), vec![Code::NotUtf8]);
    assert_eq!(run(b"\xc3"), vec![Code::NotUtf8], "a truncated multi-byte character");
    // A byte-order mark at the start is skipped (as in a DDD); elsewhere it is not whitespace.
    assert_eq!(run(b"\xef\xbb\xbfcomponent"), vec![Code::Syntax], "a BOM at the start is skipped");
    let bom_goal = format!("\u{FEFF}{}", goal_with("card(instancesof C in deployment) = 1"));
    assert!(run(bom_goal.as_bytes()).is_empty(), "a goal with a BOM checks clean");
    let inner = format!("host g = host()\n\u{FEFF}{}", goal_with("card(instancesof C in deployment) = 1"));
    assert_eq!(run(inner.as_bytes()), vec![Code::UnexpectedChar]);
    // Overlong encodings and surrogates are not UTF-8 either.
    assert_eq!(run(b"host h = host(x = \"\xc0\xaf\xed\xa0\x80\")"), vec![Code::NotUtf8]);
}

#[test]
fn unterminated_string_and_comment() {
    assert!(
        run(goal_with("card(instancesof C in deployment) = 1\n\"abc").as_bytes()).contains(&Code::UnterminatedString)
    );
    assert!(run(b"host h = host(x = \"abc").contains(&Code::UnterminatedString));
    assert!(run(b"host h = host(x = \"abc\\").contains(&Code::UnterminatedString), "ends in a backslash");
    assert!(run(b"host h = host(x = \"\\u{41").contains(&Code::UnterminatedString));
    assert_eq!(run(b"host h = host() /* /* */"), vec![Code::UnterminatedComment]);
    assert_eq!(run(b"/*"), vec![Code::UnterminatedComment]);
    assert_eq!(run(b"/"), vec![Code::UnexpectedChar]);
}

#[test]
fn integer_limits() {
    let ok = goal_with("card(instancesof C in deployment) <= 2147483647");
    assert!(run(ok.as_bytes()).is_empty(), "2^31 - 1 is allowed");
    let big = goal_with("card(instancesof C in deployment) <= 2147483648");
    assert_eq!(run(big.as_bytes()), vec![Code::IntegerOutOfRange]);
    let huge = goal_with(&format!("card(instancesof C in deployment) <= {}", "9".repeat(5000)));
    assert_eq!(run(huge.as_bytes()), vec![Code::IntegerOutOfRange]);
    // Arithmetic on the largest literals must not overflow in the checker.
    let arith = goal_with(
        "card(instancesof C in deployment) * 2147483647 * 2147483647 * 2147483647 <= 0 - 2147483647 - 2147483647\n\
         -2147483647 * -2147483647 * -2147483647 * -2147483647 < card(instancesof C in deployment)",
    );
    let _ = run(arith.as_bytes());
    let constant = goal_with(
        "card(instancesof C in deployment) = 1\n\
         2147483647 * 2147483647 * 2147483647 * 2147483647 * 2147483647 = 1 + 2147483647 * 2147483647",
    );
    let _ = run(constant.as_bytes());
}

#[test]
fn ten_thousand_nested_parentheses() {
    let n = 10_000;
    let src = goal_with(&format!("{}card(instancesof C in deployment) = 1{}", "(".repeat(n), ")".repeat(n)));
    assert!(run(src.as_bytes()).is_empty(), "parentheses around one clause add no nesting");
    let unbalanced = goal_with(&format!("{}card(instancesof C in deployment) = 1", "(".repeat(n)));
    assert!(run(unbalanced.as_bytes()).contains(&Code::Syntax));
    let closers = goal_with(&format!("card(instancesof C in deployment) = 1{}", ")".repeat(n)));
    assert!(run(closers.as_bytes()).contains(&Code::Syntax));
    let terms = goal_with(&format!("card(instancesof C in deployment) = {}1{}", "(".repeat(n), ")".repeat(n)));
    assert!(run(terms.as_bytes()).is_empty());
}

#[test]
fn ten_thousand_nots_and_other_deep_formulas() {
    let n = 10_000;
    let nots = goal_with(&format!("{}card(instancesof C in deployment) = 1", "not ".repeat(n)));
    assert_eq!(run(nots.as_bytes()), vec![Code::TooDeep]);
    let minus = goal_with(&format!("card(instancesof C in deployment) = {}1", "- ".repeat(n)));
    assert_eq!(run(minus.as_bytes()), vec![Code::TooDeep]);
    let implies = goal_with(&format!("{}true", "card(instancesof C in deployment) = 1 implies ".repeat(n)));
    assert_eq!(run(implies.as_bytes()), vec![Code::TooDeep]);
    let foralls = goal_with(&format!(
        "{}card(instancesof C in deployment) = 1{}",
        "forall C x in deployment ( ".repeat(2000),
        " )".repeat(2000)
    ));
    assert!(run(foralls.as_bytes()).contains(&Code::TooDeep));
    // Long but flat: 10,000 conjuncts, summands and clauses are fine.
    let ands = goal_with(&vec!["card(instancesof C in deployment) >= 1"; n].join(" and "));
    assert!(run(ands.as_bytes()).is_empty());
    let sum = goal_with(&format!("{} <= 5", vec!["card(instancesof C in deployment)"; n].join(" + ")));
    assert!(run(sum.as_bytes()).is_empty());
    let clauses = goal_with(&vec!["card(instancesof C in deployment) >= 1"; n].join("\n"));
    assert!(run(clauses.as_bytes()).is_empty());
}

#[test]
fn ten_megabyte_goal() {
    // 100k hosts with attributes, a few components and a constraintset that
    // reads a host attribute over all of them.
    let mut src = String::with_capacity(11 << 20);
    src.push_str("component Web(code = \"web.xml\", ports = {front, db}, memory = 512)\n");
    src.push_str("component Db(code = \"db.xml\", ports = {clients[]}, memory = 2048)\n");
    let mut i = 0;
    while src.len() < 10 << 20 {
        src.push_str(&format!(
            "host host{i:06} = host(ipaddress = \"10.{}.{}.{}\", zone = \"zone{}\", memory = {})\n",
            i / 65536 % 256,
            i / 256 % 256,
            i % 256,
            i % 7,
            1024 + i % 4096
        ));
        i += 1;
    }
    src.push_str(
        "constraintset s = constraintset {\n\
         forall Web w in deployment ( exists Db d in deployment ( w.db connectsto d.clients ) )\n\
         forall host h in deployment ( sum(Web w in h : w.memory) + sum(Db d in h : d.memory) <= h.memory )\n\
         card(instancesof Web in deployment) = 3\n\
         card(instancesof Db in host000042) = 1\n\
         }\n",
    );
    let start = Instant::now();
    let codes = run(src.as_bytes());
    let took = start.elapsed();
    println!("{} bytes, {i} hosts: checked in {took:.2?}", src.len());
    assert!(codes.is_empty(), "{codes:?}");
    assert!(took < Duration::from_secs(120), "checking a 10 MB goal took {took:.2?}");
}

#[test]
fn many_errors_stay_linear() {
    // 20,000 broken declarations: every one reported, in reasonable time.
    let src = "component C(code = 1, ports = {p}\n".repeat(20_000);
    let start = Instant::now();
    let codes = run(src.as_bytes());
    println!("{} diagnostics in {:.2?}", codes.len(), start.elapsed());
    assert_eq!(codes.len(), 20_000);
    let src = "host h = host()\n".repeat(20_000);
    let codes = run(src.as_bytes());
    assert_eq!(codes.iter().filter(|c| **c == Code::Duplicate).count(), 19_999);
}

mod soup {
    use proptest::prelude::*;

    /// Every keyword (the lexer's list), then these near-tokens and fragments.
    fn vocab() -> Vec<&'static str> {
        deladas::syntax::lexer::KEYWORDS.iter().chain(OTHERS).copied().collect()
    }

    /// Tokens, near-tokens and fragments that stress the lexer and parser.
    const OTHERS: &[&str] = &[
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ",",
        ".",
        ":",
        "=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "+",
        "-",
        "*",
        "C",
        "D",
        "x",
        "y",
        "h",
        "p",
        "q",
        "T",
        "k",
        "code",
        "ports",
        "maxperhost",
        "maxinstances",
        "changes",
        "shadow",
        "int",
        "port",
        "attribute",
        "0",
        "1",
        "2147483647",
        "2147483648",
        "\"s\"",
        "\"\\q\"",
        "\"\\u{110000}\"",
        "\"",
        "/*",
        "*/",
        "//",
        "///",
        "\n",
        "#",
        "!",
        "&&",
        "é",
        "patterns",
        "\"patterns\"",
        "star",
        "replicate",
    ];

    fn soup() -> impl Strategy<Value = String> {
        let prefix = prop_oneof![
            Just(String::new()),
            Just("component C(code = \"c\", ports = {p, q[]})\nhost h = host(a = 1)\n".to_string()),
            Just("import \"patterns\"\ncomponent C(code = \"c\", ports = {p[]})\nhost h = host()\n".to_string()),
        ];
        let body = prop::collection::vec(prop::sample::select(vocab()), 0..80)
            .prop_map(|toks| toks.iter().map(|t| format!("{t} ")).collect::<String>());
        (prefix, body).prop_map(|(p, b)| p + &b)
    }

    /// A random formula over a fixed set of resources: mostly well-formed,
    /// with names, ports and attributes that may or may not exist, so the
    /// checker (not just the parser) is exercised.
    fn formula() -> impl Strategy<Value = String> {
        let name = prop::sample::select(vec!["x", "y", "h", "h1", "x", "y", "h", "v", "C", "T", "z", "k"]);
        let port = prop::sample::select(vec!["p", "q", "r", "e", "in", "nope", "a"]);
        let attr = prop::sample::select(vec!["w", "a", "a", "z", "code", "maxperhost", "nope", "p"]);
        let sort = prop::sample::select(vec!["C", "D", "host", "C", "D", "host", "T", "h1"]);
        let term_leaf = prop_oneof![
            (0i64..3).prop_map(|n| n.to_string()),
            Just("2147483647".to_string()),
            Just("\"eu\"".to_string()),
            Just("true".to_string()),
            name.clone().prop_map(|n| n.to_string()),
            (name.clone(), attr.clone()).prop_map(|(n, a)| format!("{n}.{a}")),
            (name.clone(), attr.clone()).prop_map(|(n, a)| format!("hostof({n}).{a}")),
            name.clone().prop_map(|n| format!("hostof({n})")),
            (sort.clone(), name.clone()).prop_map(|(s, n)| format!("card(instancesof {s} in {n})")),
            sort.clone().prop_map(|s| format!("card(instancesof {s} in deployment)")),
            (sort.clone(), name.clone()).prop_map(|(s, n)| format!("card({s} v connectedto {n})")),
            (sort.clone(), attr.clone()).prop_map(|(s, a)| format!("sum({s} v in deployment : v.{a})")),
        ];
        let term = term_leaf.prop_recursive(2, 8, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} + {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} * {b}")),
                inner.clone().prop_map(|a| format!("(0 - {a})")),
            ]
        });
        let cmp = prop::sample::select(vec!["=", "!=", "<", "<=", ">", ">="]);
        let pattern = prop::sample::select(vec![
            "star(C, D, p, q)",
            "ring(C, p, p)",
            "mesh(C, p, q)",
            "replicate(C, 2)",
            "spread(C, a)",
            "client_server(D, C, p, q, 1)",
            "capacity(C, w, a)",
            "only_on(D, z)",
            "span(C, z)",
            "star(C)",
            "replicate(h1, -1)",
            "at_most(T, k)",
            "pat(C, p, 3)",
            "pat(D, nope, x)",
            "pat(C, p)",
        ]);
        let leaf = prop_oneof![
            (term.clone(), cmp, term.clone()).prop_map(|(a, o, b)| format!("{a} {o} {b}")),
            (name.clone(), port.clone(), name.clone(), port.clone())
                .prop_map(|(a, p, b, q)| format!("{a}.{p} connectsto {b}.{q}")),
            (name.clone(), name.clone()).prop_map(|(a, b)| format!("{a} connectedto {b}")),
            (name.clone(), name.clone()).prop_map(|(a, b)| format!("reachable({a}, {b})")),
            (name.clone(), name.clone()).prop_map(|(a, b)| format!("{a} on {b}")),
            pattern.prop_map(|p| format!("use {p}")),
            Just("false".to_string()),
        ];
        leaf.prop_recursive(3, 16, 3, move |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) implies ({b})")),
                inner.clone().prop_map(|a| format!("not ({a})")),
                (
                    prop::sample::select(vec!["forall", "exists"]),
                    sort.clone(),
                    name.clone(),
                    name.clone(),
                    inner.clone()
                )
                    .prop_map(|(q, s, v, d, b)| format!("{q} {s} {v} in {d} ( {b} )")),
                (sort.clone(), name.clone(), inner.clone())
                    .prop_map(|(s, v, b)| format!("forall {s} {v} in deployment ( {b} )")),
                (sort.clone(), inner.clone(), inner.clone())
                    .prop_map(|(s, c, b)| format!("card({s} v in deployment where {c}) >= 1 ( {b} )")),
                (inner.clone(), inner).prop_map(|(a, b)| format!("({a}\n{b})")),
            ]
        })
    }

    fn cases() -> u32 {
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(300)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn random_formulas_never_panic(body in formula(), pat in formula()) {
            let goal = format!(
                "import \"patterns\"\n\
                 component C(code = \"c\", ports = {{p[], q: input, r: output, e: external}}, w = 2)\n\
                 component D(code = \"d\", ports = {{p, q[]}})\n\
                 host h1 = host(a = 1, z = true)\nhost h2 = host(a = 2)\n\
                 constraintset pat(component T, port p, int k) = constraintset {{ forall T x in deployment ( {pat} ) }}\n\
                 constraintset s = constraintset {{ forall C x in deployment ( exists D y in deployment (\n\
                 forall host h in deployment ( {body} ) ) ) }}\n\
                 use pat(C, q, 2)\n"
            );
            let _ = super::run(goal.as_bytes());
            super::format_keeps_the_report("a random formula", &goal);
        }

        #[test]
        fn token_soup_never_panics(src in soup()) {
            let _ = super::run(src.as_bytes());
            super::format_keeps_the_report("a token soup", &src);
        }

        #[test]
        fn token_soup_in_a_constraintset_never_panics(src in soup()) {
            let goal = format!(
                "import \"patterns\"\ncomponent C(code = \"c\", ports = {{p[], q: input, r: output, e: external}}, w = 2)\n\
                 component D(code = \"d\", ports = {{p}})\nhost h = host(a = 1, z = \"eu\")\n\
                 constraintset s = constraintset {{ forall C x in deployment ( exists D y in deployment ( {src} ) ) }}\n"
            );
            let _ = super::run(goal.as_bytes());
        }
    }
}

/// What `check` reports about a goal, without positions: the formatter
/// moves text, and must change nothing else.
fn report(bytes: &[u8]) -> Vec<(Code, String, Vec<String>)> {
    let path = PathBuf::from("goal.deladas");
    let fs = MemFs(HashMap::from([(path.clone(), bytes.to_vec())]));
    let (_, checked) = check::check_loaded(check::load(&path, None, &fs));
    checked
        .diags
        .iter()
        .map(|d| (d.code, d.message.clone(), d.labels.iter().map(|l| l.message.clone()).collect()))
        .collect()
}

/// Formats `src` when it parses; then the result is a fixed point and
/// `check` reports the same about both. Returns whether it was formatted.
fn format_keeps_the_report(name: &str, src: &str) -> bool {
    use deladas::syntax::format::{format, FormatError};
    match format(src) {
        Ok(out) => {
            assert_eq!(format(&out).ok().as_deref(), Some(out.as_str()), "{name}: formatting is not idempotent");
            assert_eq!(report(src.as_bytes()), report(out.as_bytes()), "{name}: formatting changed the report");
            true
        }
        Err(FormatError::Syntax(d)) => {
            assert!(!d.is_empty());
            false
        }
        Err(FormatError::Internal(why)) => panic!("{name}: {why}"),
    }
}

#[test]
fn formatting_mutations_of_the_corpus_changes_no_report() {
    let corpus = corpus();
    let mut rng = Rng(0x00F0_A7ED);
    let (mut formatted, mut refused) = (0, 0);
    for round in 0..600 {
        let (name, orig) = &corpus[round % corpus.len()];
        let mut bytes = orig.clone();
        // Mutations that keep the text UTF-8 (the formatter takes text).
        const EDITS: &[&str] = &[" ", "\n", "\n\n", "  ", "\t", "(", ")", "// c\n", "/* c */", ",", "x", "-", "+ 1"];
        for _ in 0..=rng.below(3) {
            let mut at = rng.below(bytes.len());
            while std::str::from_utf8(&bytes[..at]).is_err() {
                at -= 1;
            }
            let edit = EDITS[rng.below(EDITS.len())].as_bytes();
            if rng.below(3) == 0 {
                let end = (at + 1..bytes.len()).find(|&e| std::str::from_utf8(&bytes[at..e]).is_ok()).unwrap_or(at);
                bytes.drain(at..end);
            } else {
                bytes.splice(at..at, edit.iter().copied());
            }
        }
        let Ok(src) = String::from_utf8(bytes) else { continue };
        if format_keeps_the_report(&format!("{name} (round {round})"), &src) {
            formatted += 1;
        } else {
            refused += 1;
        }
    }
    println!("{formatted} mutated goals formatted, {refused} refused (syntax errors)");
    assert!(formatted > 50, "too few mutations parsed to test the formatter");
}

/// The pathological shapes of issue 15, at sizes a debug test can afford
/// (`benches/pathological.rs` runs them at full size under a time budget):
/// long `or` and `+` chains, deep nesting on one long line, and many
/// trivially true clauses. Each must check, with small diagnostics.
mod pathological {
    use super::*;

    /// Renders the diagnostics of `src` as text, and its codes.
    fn rendered(src: &str) -> (Vec<Code>, String) {
        let path = PathBuf::from("goal.deladas");
        let fs = MemFs(HashMap::from([(path.clone(), src.as_bytes().to_vec())]));
        let (sources, checked) = check::check_loaded(check::load(&path, None, &fs));
        let text = deladas::diagnostics::render::to_text(&checked.diags, &sources);
        (checked.diags.iter().map(|d| d.code).collect(), text)
    }

    #[test]
    fn a_long_or_chain_checks() {
        let src = goal_with(&format!("{}card(instancesof C in deployment) = 1", "true or ".repeat(100_000)));
        let (codes, _) = rendered(&src);
        assert!(codes.iter().all(|c| c.as_str().starts_with('W')), "{codes:?}");
    }

    #[test]
    fn a_long_sum_checks() {
        let src = goal_with(&format!("card(instancesof C in deployment){} >= 1", " + 1".repeat(1_000_000)));
        let (codes, _) = rendered(&src);
        assert!(codes.iter().all(|c| c.as_str().starts_with('W')), "{codes:?}");
    }

    #[test]
    fn deep_nesting_on_one_line_quotes_a_window() {
        let n = 30_000;
        let src = goal_with(&format!("{}true{}", "forall C x in deployment ( ".repeat(n), " )".repeat(n)));
        let (codes, text) = rendered(&src);
        assert_eq!(codes, vec![Code::TooDeep]);
        let longest = text.lines().map(|l| l.chars().count()).max().unwrap_or(0);
        assert!(longest <= deladas::diagnostics::render::MAX_QUOTED_LINE + 20, "a {longest}-character line:\n{text}");
        // The window shows where the label is, with the real column.
        assert!(text.contains("goal.deladas:4:"), "{text}");
        assert!(text.len() < 4096, "{} bytes of diagnostics", text.len());
    }

    #[test]
    fn many_trivially_true_clauses_are_summarised() {
        let n = 200_000;
        let src = goal_with(&"1 = 1\n".repeat(n));
        let (codes, text) = rendered(&src);
        let w = codes.iter().filter(|c| **c == Code::TriviallyTrue).count();
        assert_eq!(w, deladas::check::MAX_WARNINGS_PER_CODE + 1, "the cap, then one summary");
        assert!(text.contains(&format!("{} more warnings like these", n - deladas::check::MAX_WARNINGS_PER_CODE)));
        assert!(text.len() < 100_000, "{} bytes of warnings", text.len());
    }

    #[test]
    fn errors_are_never_capped() {
        let src = "host h = host()\n".repeat(500);
        let (codes, _) = rendered(&src);
        assert_eq!(codes.iter().filter(|c| **c == Code::Duplicate).count(), 499);
    }
}
