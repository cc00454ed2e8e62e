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
        /// line, where other users could read it). The key is the file's bytes, all of them: a
        /// trailing newline is part of it (write the file with `printf`, not `echo`, or give
        /// clients the same bytes).
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
    if authkey.ends_with(b"\n") {
        eprintln!(
            "multiproc serve: note: the key is the bytes of {}, its trailing newline included",
            authkey_file.display()
        );
    }
    let mut builder = multiproc::Manager::builder().authkey(&authkey);
    builder = match address {
        Some(address) => builder.address(address.as_str()),
        None => builder.socket_activated(),
    };
    if let Some(parent) = parent_pid {
        builder = builder.die_with_parent(parent);
    }
    if allow_remote {
        builder = builder.allow_remote();
    }
    let failed = |e: &dyn std::fmt::Display| {
        eprintln!("multiproc serve: {e}");
        ExitCode::FAILURE
    };
    // Said once it listens: a client may connect as soon as it reads this line.
    let server = match builder.bind() {
        Ok(server) => server,
        Err(e) => return failed(&e),
    };
    let at = server.address().clone();
    if let Err(e) = stop_on_signals(at.clone(), authkey) {
        return failed(&format!("cannot watch for SIGTERM and SIGINT: {e}"));
    }
    eprintln!("multiproc serve: serving on {at}");
    // Nothing more is written once it serves: its standard error may be a pipe nobody reads,
    // and a write that blocks would hold up the end (the server's own log never blocks).
    match server.serve() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&e),
    }
}

/// On SIGTERM or SIGINT (Ctrl-C), stops the server as a client's shutdown does, so that it
/// ends the same way: its connections closed and its socket file removed.
fn stop_on_signals(at: multiproc::Address, authkey: Vec<u8>) -> std::io::Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT])?;
    std::thread::Builder::new()
        .name("multiproc-serve-signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let stopped = multiproc::Manager::connect(at, &authkey)
                    .and_then(|manager| manager.call("shutdown", Vec::new()).map(drop));
                if stopped.is_err() {
                    // Nothing to stop gracefully: end as the signal would have.
                    std::process::exit(128 + signal);
                }
            }
        })?;
    Ok(())
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
