//! The `logalarm` binary; see the library's documentation and README.md.

fn main() -> std::process::ExitCode {
    logalarm::cli::main()
}
