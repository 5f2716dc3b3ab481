fn main() {
    println!("cargo:rerun-if-changed=grammar/deladas.lalrpop");
    lalrpop::Configuration::new()
        .set_out_dir(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .process_file("grammar/deladas.lalrpop")
        .expect("the grammar is LR(1)");
}
