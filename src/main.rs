fn main() {
    std::process::exit(deladas::cli::main());
}
