fn main() {
    println!("cargo:rerun-if-changed=grammar/deladas.lalrpop");
    require_system_z3();
    lalrpop::Configuration::new()
        .set_out_dir(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .process_file("grammar/deladas.lalrpop")
        .expect("the grammar is LR(1)");
}

/// The `z3` crate links the system Z3 library; without it the build would
/// end in a linker error far from the cause. Say so in one line instead.
/// (`DELADAS_ASSUME_NO_Z3=1` takes the missing path, to test the message.)
fn require_system_z3() {
    println!("cargo:rerun-if-env-changed=DELADAS_ASSUME_NO_Z3");
    println!("cargo:rerun-if-env-changed=Z3_LIBRARY_PATH_OVERRIDE");
    println!("cargo:rerun-if-env-changed=LIBRARY_PATH");
    let assume_missing = std::env::var_os("DELADAS_ASSUME_NO_Z3").is_some_and(|v| v == "1");
    if !assume_missing && system_z3_found() {
        return;
    }
    println!(
        "cargo::error=the system Z3 library (libz3) was not found: install it (Debian/Ubuntu: `apt-get install libz3-dev`; Fedora: `dnf install z3-devel`; macOS: `brew install z3`), or set Z3_LIBRARY_PATH_OVERRIDE to the directory holding libz3"
    );
}

fn system_z3_found() -> bool {
    let pkg_config = std::process::Command::new("pkg-config").args(["--exists", "z3"]).status();
    if pkg_config.is_ok_and(|s| s.success()) {
        return true;
    }
    let mut dirs: Vec<std::path::PathBuf> = vec![];
    for var in ["Z3_LIBRARY_PATH_OVERRIDE", "LIBRARY_PATH", "LD_LIBRARY_PATH"] {
        if let Some(v) = std::env::var_os(var) {
            dirs.extend(std::env::split_paths(&v));
        }
    }
    for d in ["/usr/lib", "/usr/lib64", "/usr/local/lib", "/opt/homebrew/lib", "/lib"] {
        let d = std::path::PathBuf::from(d);
        // Multiarch directories: /usr/lib/x86_64-linux-gnu, …
        if let Ok(entries) = std::fs::read_dir(&d) {
            dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
        }
        dirs.push(d);
    }
    dirs.iter()
        .any(|d| ["libz3.so", "libz3.a", "libz3.dylib", "libz3.lib", "z3.lib"].iter().any(|f| d.join(f).exists()))
}
