//! `multiproc`: the command-line companion of the multiproc library.

use std::path::PathBuf;
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
    /// Run a manager server until a client asks it to shut down.
    Serve {
        /// A Unix socket path, or HOST:PORT for TCP (loopback unless --allow-remote).
        #[arg(long)]
        address: String,
        /// A file holding the key clients must prove they hold (never given on the command
        /// line, where other users could read it).
        #[arg(long)]
        authkey_file: PathBuf,
        /// Let a TCP address be on an interface other than loopback. The key is the only
        /// protection, and nothing is encrypted.
        #[arg(long)]
        allow_remote: bool,
    },
}

fn main() -> ExitCode {
    multiproc::init();
    match Cli::parse().command {
        Command::Clean => clean(),
        Command::Serve {
            address,
            authkey_file,
            allow_remote,
        } => serve(&address, &authkey_file, allow_remote),
    }
}

fn serve(address: &str, authkey_file: &PathBuf, allow_remote: bool) -> ExitCode {
    let authkey = match std::fs::read(authkey_file) {
        Ok(key) => key,
        Err(e) => {
            eprintln!(
                "multiproc serve: cannot read {}: {e}",
                authkey_file.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let mut builder = multiproc::Manager::builder()
        .address(address)
        .authkey(&authkey);
    if allow_remote {
        builder = builder.allow_remote();
    }
    eprintln!("multiproc serve: serving on {address}");
    match builder.serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("multiproc serve: {e}");
            ExitCode::FAILURE
        }
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
