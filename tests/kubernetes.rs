//! `deladas export --to kubernetes` and `deladas resolve --to kubernetes`,
//! with the real binary:
//!
//! - golden manifests for the three examples (solve → export), as insta
//!   snapshots, and `examples/p2p.ddd.xml` is what solving
//!   `examples/p2p.deladas` gives today;
//! - every example's manifests pass `kubernetes-validate --strict` for the
//!   two newest Kubernetes versions it bundles (the venv `.ci/run` creates in
//!   `target/k8s-validate-venv`; without it the test is skipped, except when
//!   `CI=true`, where it fails);
//! - `-o DIR`: one file per instance plus the policies, the DDD and the
//!   state; a re-solve after a host failure (of a host with a `--node`
//!   mapping) rewrites the folder, removes the failed instances' files and
//!   prints the objects created, changed and deleted;
//! - a folder holding another deployment's export is refused, and only the
//!   deployment's own files are ever removed (never another's, the user's, a
//!   FIFO, or a huge file read whole);
//! - bad input: exit 2 with a diagnostic (a device or FIFO as the DDD or the
//!   state: E0011, without blocking);
//! - podman kube play: the Pods run and a message flows, on loopback.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{code, deladas, manifest, show, stdout};

const EXAMPLES: &[&str] = &["p2p", "pubsub", "webfarm"];

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("deladas-k8s-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Solves an example into `dir` and returns the DDD's path.
fn solved(dir: &Path, example: &str) -> PathBuf {
    let ddd = dir.join(format!("{example}.ddd.xml"));
    let o = deladas(&["solve", &format!("examples/{example}.deladas"), "-o", &s(&ddd)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    ddd
}

fn export(ddd: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["export", ddd.to_str().expect("utf-8 path"), "--to", "kubernetes"];
    args.extend_from_slice(extra);
    deladas(&args)
}

#[test]
fn examples_export_to_golden_manifests() {
    let dir = Scratch::new("golden");
    for ex in EXAMPLES {
        let ddd = solved(&dir.0, ex);
        let o = export(&ddd, &[]);
        assert_eq!(code(&o), 0, "{ex}: {}", show(&o));
        let yaml = stdout(&o);
        assert_eq!(stdout(&export(&ddd, &[])), yaml, "{ex}: deterministic");
        insta::assert_snapshot!(format!("kubernetes_{ex}"), yaml);
    }
}

#[test]
fn shipped_p2p_ddd_is_the_solved_example() {
    let dir = Scratch::new("shipped");
    let fresh = std::fs::read_to_string(solved(&dir.0, "p2p")).expect("solved");
    let shipped = std::fs::read_to_string(manifest().join("examples/p2p.ddd.xml")).expect("examples/p2p.ddd.xml");
    assert_eq!(shipped, fresh, "examples/p2p.ddd.xml is stale: solve examples/p2p.deladas -o examples/p2p.ddd.xml");
}

/// The venv's `kubernetes-validate`, if `.ci/run` made it.
fn validator() -> Option<PathBuf> {
    let bin = manifest().join("target/k8s-validate-venv/bin/kubernetes-validate");
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but {} is missing: .ci/run installs it (python3 -m venv, pip install kubernetes-validate)",
        bin.display()
    );
    eprintln!("skipped: {} is missing (run .ci/run to install it)", bin.display());
    None
}

/// The two newest Kubernetes versions the validator bundles.
fn newest_versions(bin: &Path) -> Vec<String> {
    let python = bin.with_file_name("python");
    let o = Command::new(python)
        .args(["-c", "import kubernetes_validate.utils as u; print('\\n'.join(sorted(set(u.all_versions()), key=lambda v: [int(x) for x in v.split('.')])))"])
        .output()
        .expect("the venv's python runs");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let all: Vec<String> = String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect();
    assert!(all.len() >= 2, "kubernetes-validate bundles {all:?}");
    all[all.len() - 2..].to_vec()
}

#[test]
fn manifests_pass_strict_validation_for_the_two_newest_versions() {
    let Some(bin) = validator() else { return };
    let versions = newest_versions(&bin);
    let dir = Scratch::new("validate");
    // The issue's acceptance: the shipped DDD, as is.
    let mut ddds = vec![manifest().join("examples/p2p.ddd.xml")];
    ddds.extend(EXAMPLES.iter().map(|ex| solved(&dir.0, ex)));
    for (k, ddd) in ddds.iter().enumerate() {
        let d = deladas::ddd::from_xml(&std::fs::read_to_string(ddd).expect("ddd")).expect("valid");
        let node = format!("{}=worker-1.example", d.hosts[0].id);
        let o = export(ddd, &["--namespace", "apps", "--node", &node]);
        assert_eq!(code(&o), 0, "{}", show(&o));
        let file = dir.0.join(format!("m{k}.yaml"));
        std::fs::write(&file, stdout(&o)).expect("write");
        let objects = stdout(&o).matches("\n---\n").count() + 1;
        for v in &versions {
            let out = Command::new(&bin).args(["--strict", "-k", v]).arg(&file).output().expect("validator runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{} against {v}:\n{text}", ddd.display());
            let passed = text.matches(" passed for resource ").count();
            assert_eq!(passed, objects, "{} against {v}: every object validated:\n{text}", ddd.display());
        }
    }
    // And the validator does reject a bad object (so the test can fail).
    let bad = dir.0.join("bad.yaml");
    std::fs::write(&bad, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\nspec:\n  containers:\n    - name: a\n      image: b\n      bogus: 1\n").expect("write");
    let out = Command::new(&bin).args(["--strict", "-k", &versions[1]]).arg(&bad).output().expect("validator runs");
    assert!(!out.status.success(), "strict validation rejects an unknown field");
}

fn yaml_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .expect("folder")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yaml"))
        .collect();
    v.sort();
    v
}

#[test]
fn export_to_a_folder_then_resolve_rewrites_it() {
    let dir = Scratch::new("folder");
    let ddd = solved(&dir.0, "p2p");
    let out = dir.0.join("k8s");
    // A file of the user's in the folder is never touched.
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("mine.yaml"), "# mine\n").expect("write");
    let d = deladas::ddd::from_xml(&std::fs::read_to_string(&ddd).expect("ddd")).expect("valid");
    // The host that fails below runs on a node of another name.
    let failed = d.instances[0].host.clone();
    let node = format!("{failed}=worker-1");
    let o = export(&ddd, &["-o", &s(&out), "--node", &node]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let files = yaml_files(&out);
    // One file per instance, the policies, and the user's.
    assert_eq!(files.len(), d.instances.len() + 2, "{files:?}");
    assert!(files.contains(&"network-policies.yaml".to_string()));
    assert!(out.join("deladas.state").exists() && out.join("deployment.ddd.xml").exists());
    let stdout_yaml = stdout(&export(&ddd, &["--node", &node]));
    for f in &files {
        let text = std::fs::read_to_string(out.join(f)).expect("read");
        if f != "mine.yaml" {
            // Every document of the file is one of the stdout rendering.
            for doc in text.split("---\n").skip(1) {
                assert!(stdout_yaml.contains(doc), "{f}: a document stdout does not have");
            }
        }
    }
    // Prune arguments for kubectl.
    let o = export(&ddd, &["--prune-labels"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    assert_eq!(
        stdout(&o).trim(),
        "--prune -l app.kubernetes.io/managed-by=deladas,deladas.org/deployment=p2p \
         --prune-allowlist=core/v1/ConfigMap --prune-allowlist=core/v1/Pod --prune-allowlist=core/v1/Service \
         --prune-allowlist=networking.k8s.io/v1/NetworkPolicy"
    );

    // A host fails: re-solve into the same folder.
    let lost: Vec<&deladas::ddd::Instance> = d.instances.iter().filter(|i| i.host == failed).collect();
    let from = out.join("deployment.ddd.xml");
    let o = deladas(&[
        "resolve",
        "examples/p2p.deladas",
        "--from",
        &s(&from),
        "--fail-host",
        &failed,
        "--to",
        "kubernetes",
        "-o",
        &s(&out),
        "--plan-format",
        "json",
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let plan: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("a JSON plan");
    let k = &plan["kubernetes"];
    assert_eq!(k["generation"], 2);
    let names = |list: &serde_json::Value, kind: &str| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter(|o| o["kind"] == kind)
            .filter_map(|o| o["instance"].as_str().map(str::to_string))
            .collect()
    };
    // The failed host's Pods are deleted, the started instances' Pods created.
    let deleted = names(&k["deleted"], "Pod");
    for i in &lost {
        assert!(deleted.contains(&i.id), "{} deleted: {k:#}", i.id);
    }
    let new = deladas::ddd::from_xml(&std::fs::read_to_string(&from).expect("new ddd")).expect("valid");
    assert!(new.instances.iter().all(|i| i.host != failed));
    let created = names(&k["created"], "Pod");
    for i in &new.instances {
        let existed = d.instances.iter().any(|o| o.id == i.id);
        assert_eq!(created.contains(&i.id), !existed, "{}: {k:#}", i.id);
    }
    // Kept Pods are neither replaced nor changed (only their generation label moves).
    assert!(k["replaced"].as_array().is_some_and(Vec::is_empty), "{k:#}");
    assert!(names(&k["changed"], "Pod").is_empty(), "{k:#}");
    // The folder now holds exactly the new generation (and the user's file).
    let files = yaml_files(&out);
    assert_eq!(files.len(), new.instances.len() + 2, "{files:?}");
    assert!(files.contains(&"mine.yaml".to_string()));
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("deladas.state")).expect("state")).expect("json");
    assert_eq!(state["options"]["generation"], 2);
    // The failed host's node mapping went with it.
    assert_eq!(state["options"]["nodes"], serde_json::json!({}), "{state:#}");
    // The rewritten folder passes strict validation too.
    if let Some(bin) = validator() {
        let v = newest_versions(&bin).pop().expect("a version");
        let ours: Vec<PathBuf> = files.iter().filter(|f| *f != "mine.yaml").map(|f| out.join(f)).collect();
        let o =
            Command::new(&bin).args(["--strict", "--quiet", "-k", &v]).args(&ours).output().expect("validator runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
    // Text plan: the instance plan, then the objects.
    let o = deladas(&[
        "resolve",
        "examples/p2p.deladas",
        "--from",
        &s(&from),
        "--fail-instance",
        &new.instances[0].id,
        "--to",
        "kubernetes",
        "-o",
        &s(&out),
    ]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let text = stdout(&o);
    assert!(
        text.contains("migration plan")
            && text.contains("kubernetes objects (deployment p2p, namespace default, generation 3)"),
        "{text}"
    );
}

#[test]
fn bad_input_is_exit_2_with_a_diagnostic() {
    let dir = Scratch::new("bad");
    let ddd = solved(&dir.0, "p2p");
    for (args, needle) in [
        (&["--namespace", "Not_A_Label"][..], "namespace"),
        (&["--node", "h9=worker"][..], "no host `h9`"),
        (&["--node", "h1"][..], "HOST=NODE"),
        (&["--name", "Bad_Name"][..], "deployment name"),
    ] {
        let o = export(&ddd, args);
        assert_eq!(code(&o), 2, "{args:?}: {}", show(&o));
        let err = common::stderr(&o);
        assert!(err.contains("E0705") && err.contains(needle), "{args:?}: {err}");
    }
    // Port 0 is no TCP port: refused by the argument parser.
    let o = export(&ddd, &["--port-base", "0"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    assert!(common::stderr(&o).contains("--port-base"), "{}", show(&o));
    // A component without an image: pointed at in the DDD.
    let text = std::fs::read_to_string(&ddd).expect("ddd");
    let no_image = dir.0.join("no-image.ddd.xml");
    std::fs::write(
        &no_image,
        text.replace("<attr name=\"image\" type=\"string\" value=\"deladas/examples:0.1\"/>", ""),
    )
    .expect("write");
    let o = export(&no_image, &[]);
    assert_eq!(code(&o), 2, "{}", show(&o));
    let err = common::stderr(&o);
    assert!(
        err.contains("error[E0705]") && err.contains("no `image` attribute") && err.contains("no-image.ddd.xml:"),
        "{err}"
    );
    assert!(err.contains("this component"), "the label points at the component: {err}");
    // Not a DDD; not there; resolve --to without -o.
    std::fs::write(dir.0.join("junk.xml"), "<nope/>").expect("write");
    assert_eq!(code(&export(&dir.0.join("junk.xml"), &[])), 2);
    assert_eq!(code(&export(&dir.0.join("missing.xml"), &[])), 2);
    let o = deladas(&["resolve", "examples/p2p.deladas", "--from", &s(&ddd), "--to", "kubernetes"]);
    assert_eq!(code(&o), 2, "{}", show(&o));
}

/// Runs the binary under `timeout 60`, so that a read that blocks fails the
/// test instead of hanging it (exit 124).
fn deladas_bounded(args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .arg("60")
        .arg(env!("CARGO_BIN_EXE_deladas"))
        .args(args)
        .current_dir(manifest())
        .env("NO_COLOR", "1")
        .output()
        .expect("timeout runs the binary")
}

fn mkfifo(p: &Path) {
    assert!(Command::new("mkfifo").arg(p).status().expect("mkfifo runs").success(), "mkfifo {}", p.display());
}

#[test]
fn a_folder_of_another_deployment_is_refused_and_only_our_files_are_removed() {
    let dir = Scratch::new("two");
    let p2p = solved(&dir.0, "p2p");
    let pubsub = solved(&dir.0, "pubsub");
    let out = dir.0.join("k8s");
    let o = export(&p2p, &["-o", &s(&out)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let before: Vec<(String, String)> = yaml_files(&out)
        .into_iter()
        .map(|f| {
            let t = std::fs::read_to_string(out.join(&f)).expect("read");
            (f, t)
        })
        .collect();
    let state = std::fs::read_to_string(out.join("deladas.state")).expect("state");
    // Another deployment (pubsub), or the same one in another namespace: refused, nothing written.
    for extra in [&[][..], &["--name", "p2p", "--namespace", "apps"][..]] {
        let mut args = vec!["-o", out.to_str().expect("utf-8")];
        args.extend_from_slice(extra);
        let ddd = if extra.is_empty() { &pubsub } else { &p2p };
        let o = export(ddd, &args);
        assert_eq!(code(&o), 2, "{extra:?}: {}", show(&o));
        let err = common::stderr(&o);
        assert!(
            err.contains("E0705")
                && err.contains("deployment `p2p` in namespace `default`")
                && err.contains("--name p2p"),
            "{extra:?}: {err}"
        );
        assert_eq!(std::fs::read_to_string(out.join("deladas.state")).expect("state"), state, "{extra:?}");
        for (f, t) in &before {
            assert_eq!(&std::fs::read_to_string(out.join(f)).expect("read"), t, "{extra:?}: {f}");
        }
    }
    // Without a state, two deployments' manifests may share the folder: an
    // export removes only the stale files of its own deployment.
    std::fs::remove_file(out.join("deladas.state")).expect("rm state");
    let stale = "gone-0000.yaml";
    std::fs::write(out.join(stale), format!("{}# generation 1\n", deladas::export::kubernetes::file_header("pubsub")))
        .expect("write");
    // And neither a FIFO nor a huge (sparse) file is read whole, or waited on.
    mkfifo(&out.join("fifo.yaml"));
    std::fs::File::create(out.join("huge.yaml")).and_then(|f| f.set_len(1 << 36)).expect("sparse file");
    let o = deladas_bounded(&["export", pubsub.to_str().expect("utf-8"), "--to", "kubernetes", "-o", &s(&out)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let files = yaml_files(&out);
    assert!(!files.contains(&stale.to_string()), "{files:?}");
    assert!(files.contains(&"fifo.yaml".to_string()) && files.contains(&"huge.yaml".to_string()), "{files:?}");
    // p2p's manifests are all still there, as they were (but for the
    // policies file both deployments name alike).
    for (f, t) in &before {
        if f != "network-policies.yaml" {
            assert_eq!(&std::fs::read_to_string(out.join(f)).expect("p2p's file kept"), t, "{f}");
        }
    }
}

#[test]
fn devices_and_fifos_are_refused_without_blocking() {
    let dir = Scratch::new("fifo");
    let ddd = solved(&dir.0, "p2p");
    let fifo = dir.0.join("ddd.fifo");
    mkfifo(&fifo);
    for input in [Path::new("/dev/zero"), &fifo] {
        let o = deladas_bounded(&["export", input.to_str().expect("utf-8"), "--to", "kubernetes"]);
        assert_eq!(code(&o), 2, "{}: {}", input.display(), show(&o));
        let err = common::stderr(&o);
        assert!(err.contains("E0011") && err.contains("not a regular file"), "{}: {err}", input.display());
    }
    // A state file that is a FIFO: export and resolve refuse it.
    let out = dir.0.join("k8s");
    std::fs::create_dir_all(&out).expect("mkdir");
    mkfifo(&out.join("deladas.state"));
    let resolve = [
        "resolve",
        "examples/p2p.deladas",
        "--from",
        ddd.to_str().expect("utf-8"),
        "--fail-host",
        "h1",
        "--to",
        "kubernetes",
        "-o",
        out.to_str().expect("utf-8"),
    ];
    let export = ["export", ddd.to_str().expect("utf-8"), "--to", "kubernetes", "-o", out.to_str().expect("utf-8")];
    for args in [&export[..], &resolve[..]] {
        let o = deladas_bounded(args);
        assert_eq!(code(&o), 2, "{args:?}: {}", show(&o));
        let err = common::stderr(&o);
        assert!(err.contains("E0011") && err.contains("deladas.state"), "{args:?}: {err}");
    }
}

#[test]
fn a_state_that_cannot_go_on_is_refused() {
    let dir = Scratch::new("state");
    let ddd = solved(&dir.0, "p2p");
    let out = dir.0.join("k8s");
    let o = export(&ddd, &["-o", &s(&out)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    let path = out.join("deladas.state");
    let state: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("state")).expect("json");
    let from = out.join("deployment.ddd.xml");
    for (field, value, needle) in [
        ("generation", serde_json::json!(u64::MAX), "cannot be increased"),
        ("port_base", serde_json::json!(0), "port base is 0"),
    ] {
        let mut edited = state.clone();
        edited["options"][field] = value;
        std::fs::write(&path, edited.to_string()).expect("write");
        let o = deladas(&[
            "resolve",
            "examples/p2p.deladas",
            "--from",
            &s(&from),
            "--fail-host",
            "h1",
            "--to",
            "kubernetes",
            "-o",
            &s(&out),
        ]);
        assert_eq!(code(&o), 2, "{field}: {}", show(&o));
        let err = common::stderr(&o);
        assert!(err.contains("E0705") && err.contains(needle), "{field}: {err}");
    }
}

// ---------------------------------------------------------------------------
// podman kube play: the rendered Pods run, and messages flow.

/// Runs podman with a configuration that works in this environment: the
/// `runc` runtime (Debian's `crun` fails here) and ulimits under the hard
/// limits (podman's defaults exceed them, and runc may not raise them).
/// Under `timeout 120` (coreutils), so that no podman call can hang the test.
fn podman(conf: &Path, args: &[&str]) -> std::process::Output {
    Command::new("timeout")
        .args(["120", "podman"])
        .args(args)
        .env("CONTAINERS_CONF", conf)
        .output()
        .expect("timeout runs podman")
}

fn have(program: &str) -> bool {
    Command::new("sh").args(["-c", &format!("command -v {program}")]).output().is_ok_and(|o| o.status.success())
}

/// What `podman kube play` needs besides the manifests: it has no cluster
/// DNS, no Services and no NetworkPolicies, and refuses container ports with
/// the host's network. So the Pods run in the host's network namespace and
/// reach their peers on loopback (the per-host port assignment keeps the
/// ports of one host apart), and every `listen.host` is `127.0.0.1` rather
/// than `0.0.0.0` so that nothing listens beyond loopback; everything else —
/// the Pods, their commands, environment (with the generation from the
/// label), the wiring ConfigMap mounted at DELADAS_WIRING — is played as
/// rendered.
fn for_podman(yaml: &str) -> String {
    let mut out = String::new();
    let mut lines = yaml.lines().peekable();
    while let Some(line) = lines.next() {
        if line == "      ports:" && lines.peek().is_some_and(|l| l.trim_start().starts_with("- containerPort:")) {
            while lines.peek().is_some_and(|l| l.starts_with("        ")) {
                lines.next();
            }
            continue;
        }
        if line == "  enableServiceLinks: false" {
            out.push_str("  hostNetwork: true\n");
        }
        // Service DNS names and listen addresses in the wiring documents: loopback.
        let mut l = line.replace("\"host\": \"0.0.0.0\"", "\"host\": \"127.0.0.1\"");
        while let Some(end) = l.find(".default.svc") {
            let start = l[..end].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).map_or(0, |i| i + 1);
            l.replace_range(start..end + ".default.svc".len(), "127.0.0.1");
        }
        out.push_str(&l);
        out.push('\n');
    }
    out
}

struct Played {
    conf: PathBuf,
    file: PathBuf,
    pods: Vec<String>,
    image: String,
}

/// Removes what the test made in podman — its Pods (by their names, also
/// when `kube play` failed half-way), the volumes podman made of their
/// ConfigMaps (named like them; `kube down` leaves them) and its image —
/// when dropped, so also when an assertion fails.
impl Drop for Played {
    fn drop(&mut self) {
        let _ = podman(&self.conf, &["kube", "down", self.file.to_str().unwrap_or_default()]);
        for pod in &self.pods {
            let _ = podman(&self.conf, &["pod", "rm", "-f", "-i", "-t", "0", pod]);
            let _ = podman(&self.conf, &["volume", "rm", "-f", pod]);
        }
        let _ = podman(&self.conf, &["rmi", "-f", &self.image]);
    }
}

/// The server binds its wiring's `listen` address (loopback, see
/// [`for_podman`]) with busybox httpd, which logs each request's path: busybox
/// nc cannot bind one address.
const SERVER_SH: &str = r#"port=$(sed -n 's/.*"port": \([0-9]*\).*/\1/p' "$DELADAS_WIRING" | head -1)
addr=$(sed -n '/"listen"/{n;s/.*"host": "\(.*\)".*/\1/p;}' "$DELADAS_WIRING" | head -1)
echo "server $DELADAS_INSTANCE generation $DELADAS_GENERATION listens on $addr:$port"
mkdir -p /tmp/www
exec httpd -f -vv -p "$addr:$port" -h /tmp/www
"#;

/// The client sends its message as a request path (a 404 answer means it arrived).
const CLIENT_SH: &str = r#"port=$(sed -n 's/.*"port": \([0-9]*\).*/\1/p' "$DELADAS_WIRING" | tail -1)
host=$(sed -n 's/.*"host": "\(.*\)".*/\1/p' "$DELADAS_WIRING" | tail -1)
for i in $(seq 1 30); do
  case "$(wget -O /dev/null "http://$host:$port/hello/$DELADAS_INSTANCE/generation/$DELADAS_GENERATION" 2>&1)" in
    *404*) echo "sent to $host:$port"; break ;;
  esac
  sleep 1
done
sleep 3600
"#;

#[test]
fn podman_kube_play_runs_the_pods_and_messages_flow() {
    let missing: Vec<&str> = ["podman", "runc"].into_iter().filter(|p| !have(p)).collect();
    // busybox-static's binary (the dynamically linked busybox package installs the same path).
    let busybox = Path::new("/bin/busybox");
    if !missing.is_empty() || !Path::new("/usr/share/doc/busybox-static").is_dir() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but podman, runc or busybox-static is missing (.ci/run installs them)"
        );
        eprintln!("skipped: needs podman, runc and busybox-static");
        return;
    }
    let dir = Scratch::new("podman");
    let id = std::process::id();
    // Ulimits under the hard limits.
    let hard = |flag: &str| -> u64 {
        let o = Command::new("sh").args(["-c", &format!("ulimit -H{flag}")]).output().expect("sh");
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap_or(u64::MAX)
    };
    let conf = dir.0.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={n}:{n}\", \"nproc={p}:{p}\"]\n[engine]\nruntime = \"runc\"\n",
            n = hard("n").min(1024),
            p = hard("u").min(4096)
        ),
    )
    .expect("write");
    // An image FROM scratch: busybox and two components that follow the run spec.
    let image = format!("localhost/deladas-k8s-smoke:{id}");
    let ctx = dir.0.join("image");
    std::fs::create_dir_all(&ctx).expect("mkdir");
    std::fs::copy(busybox, ctx.join("busybox")).expect("copy busybox");
    std::fs::write(ctx.join("server.sh"), SERVER_SH).expect("write");
    std::fs::write(ctx.join("client.sh"), CLIENT_SH).expect("write");
    std::fs::write(
        ctx.join("Containerfile"),
        "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\nCOPY server.sh client.sh /bin/\n",
    )
    .expect("write");
    let file = dir.0.join("play.yaml");
    // A deployment name of our own, so that the Pods and volumes are ours alone.
    let name = format!("smoke-{id}");
    let server = deladas::export::kubernetes::instance_name(&name, "Server@h1");
    let client = deladas::export::kubernetes::instance_name(&name, "Client@h1");
    let played = Played {
        conf: conf.clone(),
        file: file.clone(),
        pods: vec![server.clone(), client.clone()],
        image: image.clone(),
    };
    let o = podman(&conf, &["build", "-q", "-t", &image, ctx.to_str().expect("utf-8")]);
    assert!(o.status.success(), "podman build: {}", show(&o));
    // The goal: one server, one client wired to it, on one host.
    let goal = dir.0.join("smoke.deladas");
    std::fs::write(
        &goal,
        format!(
            "component Server(code = \"server.xml\", command = \"/bin/sh /bin/server.sh\", image = \"{image}\", ports = {{in}})\n\
             component Client(code = \"client.xml\", command = \"/bin/sh /bin/client.sh\", image = \"{image}\", ports = {{out}})\n\
             host h1 = host()\n\
             constraintset s = constraintset {{\n\
                 card(instancesof Server in deployment) = 1\n\
                 card(instancesof Client in deployment) = 1\n\
                 forall Client c in deployment ( exists Server v in deployment ( c.out connectsto v.in ) )\n\
             }}\n"
        ),
    )
    .expect("write");
    let ddd = dir.0.join("smoke.ddd.xml");
    let o = deladas(&["solve", &s(&goal), "-o", &s(&ddd)]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    // A port base of our own on loopback, below the ephemeral range (32768-).
    let base = (20000 + id % 10000).to_string();
    let o = export(&ddd, &["--name", &name, "--port-base", &base, "--generation", "7"]);
    assert_eq!(code(&o), 0, "{}", show(&o));
    std::fs::write(&file, for_podman(&stdout(&o))).expect("write");
    let o = podman(&conf, &["kube", "play", s(&file).as_str()]);
    assert!(o.status.success(), "podman kube play: {}", show(&o));
    let (server, client) = (format!("{server}-server"), format!("{client}-client"));
    let logs = |c: &str| {
        let o = podman(&conf, &["logs", c]);
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    };
    let want = "url:/hello/Client@h1/generation/7";
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !logs(&server).contains(want) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    let (sl, cl) = (logs(&server), logs(&client));
    assert!(
        sl.contains(&format!("server Server@h1 generation 7 listens on 127.0.0.1:{base}")) && sl.contains(want),
        "server:\n{sl}\nclient:\n{cl}"
    );
    drop(played);
}
