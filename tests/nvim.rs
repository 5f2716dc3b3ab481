//! The language server with a real editor: Neovim (Debian 12 ships 0.7.2)
//! runs headless with `tests/nvim/edit.lua`, which starts `deladas lsp`
//! with `vim.lsp.start_client`, waits for a typo's diagnostic, applies its
//! quick fix, formats, renames a host, saves, waits for the solver's
//! conflict and applies a repair; then, in a goal with an `upgrade` and a
//! deployment beside it, applies the `upgrade` an E0610 asks for. The test
//! checks the buffers' final text.
//! Skipped (with a message) when `nvim` is not installed; `.ci/run` installs it.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const GOAL: &str = "component Web(code = \"w.xml\", ports = {p})\n\
host h1=host( )\n\
constraintset s = constraintset {\n\
\x20 card(instancesof Wbe in deployment)=2\n\
}\n";

const EXPECTED: &str = "component Web(code = \"w.xml\", ports = {p})\n\
host server = host()\n\
host server_2 = host()\n\
constraintset s = constraintset {\n\
\x20   card(instancesof Web in deployment) = 2\n\
}\n";

/// docs/errors.md's E0610 example: `Router.cin` changes, and a client that
/// is not upgraded sends to it.
const UPGRADE_GOAL: &str = "component Client(code = \"client-1.xml\", ports = {in, out})\n\
component Router(code = \"router-1.xml\", ports = {cin[], cout[]})\n\
host h1 = host()\n\
host h2 = host()\n\
constraintset s = constraintset {\n\
\x20   forall Client c in deployment ( exists Router r in deployment ( c.out connectsto r.cin  c.in connectsto r.cout ) )\n\
}\n\
upgrade Router(code = \"router-2.xml\", changes = {cin})\n";

fn upgrade_ddd() -> String {
    let doc = std::fs::read_to_string(Path::new(env!("DELADAS_ROOT")).join("docs/errors.md")).unwrap();
    let at = doc.find("## E0610").unwrap();
    let xml = &doc[at..];
    let start = xml.find("```xml\n").unwrap() + 7;
    let end = start + xml[start..].find("```").unwrap();
    xml[start..end].to_string()
}

#[test]
fn neovim_fixes_formats_renames_and_repairs_a_goal() {
    if Command::new("nvim").arg("--version").output().is_err() {
        eprintln!("skipped: no `nvim` (apt-get install neovim)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("deladas-nvim-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let goal = dir.join("goal.deladas");
    std::fs::write(&goal, GOAL).unwrap();
    let (out, log) = (dir.join("out.deladas"), dir.join("steps.log"));
    let (goal2, out2) = (dir.join("upgrade.deladas"), dir.join("out2.deladas"));
    std::fs::write(&goal2, UPGRADE_GOAL).unwrap();
    std::fs::write(dir.join("upgrade.ddd.xml"), upgrade_ddd()).unwrap();
    let script = Path::new(env!("DELADAS_ROOT")).join("tests/nvim/edit.lua");
    let mut child = Command::new("nvim")
        .args(["--headless", "-u", "NONE", "-i", "NONE", "-n", "-c"])
        .arg(format!("luafile {}", script.display()))
        .env("DELADAS", env!("CARGO_BIN_EXE_deladas"))
        .env("GOAL", &goal)
        .env("OUT", &out)
        .env("LOG", &log)
        .env("GOAL2", &goal2)
        .env("OUT2", &out2)
        .env("XDG_CONFIG_HOME", &dir)
        .env("XDG_DATA_HOME", &dir)
        .env("XDG_STATE_HOME", &dir)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("nvim starts");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("nvim did not finish in 120 s; steps: {}", std::fs::read_to_string(&log).unwrap_or_default());
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let steps = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "nvim failed ({status}); steps:\n{steps}");
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("no output ({e}); steps:\n{steps}"));
    assert_eq!(text, EXPECTED, "steps:\n{steps}");
    assert!(steps.contains("applying: Replace with `Web`"), "{steps}");
    assert!(steps.contains("applying: Add 1 more host(s) like `server`"), "{steps}");
    let text2 = std::fs::read_to_string(&out2).unwrap_or_else(|e| panic!("no output ({e}); steps:\n{steps}"));
    let expected2 = UPGRADE_GOAL
        .replace("changes = {cin})\n", "changes = {cin})\nupgrade Client(code = \"client-1.xml\", changes = {out})\n");
    assert_eq!(text2, expected2, "steps:\n{steps}");
    assert!(steps.contains("applying: Add `upgrade Client` (changes = {out})"), "{steps}");
    let _ = std::fs::remove_dir_all(&dir);
}
