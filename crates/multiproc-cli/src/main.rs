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
    /// Remove named shared memory whose owners all died, and the socket directories of managers
    /// whose starter died (live ones are never touched).
    Clean,
    /// Run a manager server until a client asks it to shut down.
    Serve {
        /// A Unix socket path, or HOST:PORT for TCP (loopback unless --allow-remote).
        #[arg(long, required_unless_present = "socket_activated")]
        address: Option<String>,
        /// Serve on the listening socket the starting program passed as descriptor 3, with
        /// LISTEN_FDS=1 in the environment (systemd's socket activation convention), instead
        /// of binding an address.
        #[arg(long, conflicts_with = "address")]
        socket_activated: bool,
        /// End when this process, the one that started the server, ends (even killed): no
        /// orphan server. Serving fails at once if it is already gone.
        #[arg(long)]
        parent_pid: Option<u32>,
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
            socket_activated: _,
            parent_pid,
            authkey_file,
            allow_remote,
        } => serve(address, parent_pid, &authkey_file, allow_remote),
    }
}

/// Serves at `address`, or (none) on the socket passed by activation.
fn serve(
    address: Option<String>,
    parent_pid: Option<u32>,
    authkey_file: &PathBuf,
    allow_remote: bool,
) -> ExitCode {
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
    let mut builder = multiproc::Manager::builder().authkey(&authkey);
    let on = match address {
        Some(address) => {
            builder = builder.address(address.as_str());
            address
        }
        None => {
            builder = builder.socket_activated();
            "the socket passed as descriptor 3".to_owned()
        }
    };
    if let Some(parent) = parent_pid {
        builder = builder.die_with_parent(parent);
    }
    if allow_remote {
        builder = builder.allow_remote();
    }
    eprintln!("multiproc serve: serving on {on}");
    match builder.serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("multiproc serve: {e}");
            ExitCode::FAILURE
        }
    }
}

fn clean() -> ExitCode {
    let segments = multiproc::SharedMemory::clean_dead().map_err(|e| e.to_string());
    let directories = multiproc::Manager::clean_dead().map_err(|e| e.to_string());
    let mut failed = false;
    let mut removed = Vec::new();
    match segments {
        Ok(names) => removed.extend(names),
        Err(e) => {
            eprintln!("multiproc clean: shared memory: {e}");
            failed = true;
        }
    }
    match directories {
        Ok(paths) => removed.extend(paths.into_iter().map(|p| p.display().to_string())),
        Err(e) => {
            eprintln!("multiproc clean: manager sockets: {e}");
            failed = true;
        }
    }
    if removed.is_empty() && !failed {
        println!("nothing to clean");
    }
    for name in removed {
        println!("removed {name}");
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
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
