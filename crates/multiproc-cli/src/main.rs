//! `multiproc`: the command-line companion of the multiproc library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Share data between processes: the multiproc command.
#[derive(Debug, Parser)]
#[command(name = "multiproc", version, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Remove named shared memory whose owners all died (live segments are never touched).
    Clean,
}

fn main() -> ExitCode {
    multiproc::init();
    match Cli::parse().command {
        Command::Clean => clean(),
    }
}

fn clean() -> ExitCode {
    match multiproc::SharedMemory::clean_dead() {
        Ok(removed) if removed.is_empty() => {
            println!("nothing to clean");
            ExitCode::SUCCESS
        }
        Ok(removed) => {
            for name in removed {
                println!("removed {name}");
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("multiproc clean: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
