use std::process::ExitCode;

use clap::Parser;

use ctrace::cli::{Cli, Command};
use ctrace::logging::{self, Style};
use ctrace::{commands, EXIT_ERROR};

/// `main` owns exit codes: commands return theirs, errors become 2 after one message.
fn main() -> ExitCode {
    let cli = Cli::parse();
    let style = match cli.command {
        Command::Trace(_) => Style::Daemon,
        _ => Style::Command,
    };
    let debug = matches!(&cli.command, Command::Trace(args) if args.debug);
    let level = cli.log_level.as_deref().or(debug.then_some("debug"));
    logging::init(style, level);
    let result = match cli.command {
        Command::Trace(args) => commands::trace::run(args),
        Command::Options(args) => commands::options::run(args),
        Command::Diff(args) => commands::diff::run(args),
        Command::Requirements(args) => commands::requirements::run(args),
        Command::Capability(args) => commands::lookup::capability(args),
        Command::Syscall(args) => commands::lookup::syscall(args),
        Command::Report(args) => commands::report::run(args),
        Command::Coverage(args) => commands::coverage::run(args),
        Command::Sql(args) => commands::sql::run(args),
        Command::Status(args) => commands::status::run(args),
        Command::Completions(args) => commands::completions::completions(args),
        Command::Man => commands::completions::man(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            tracing::error!("{err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
