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
    /// List this user's named shared memory and manager sockets: who holds each (owner pids),
    /// its size, its age, and whether it is abandoned (for `multiproc clean`).
    Ls {
        /// One JSON object per line, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Print a manager's counters: the objects it holds, its connections and refusals.
    Stats {
        /// The manager's address: a Unix socket path, or HOST:PORT.
        address: String,
        /// A file holding the manager's key (its bytes, all of them).
        #[arg(long)]
        authkey_file: PathBuf,
        /// One JSON object, for scripts.
        #[arg(long)]
        json: bool,
    },
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
        Command::Ls { json } => ls(json),
        Command::Stats {
            address,
            authkey_file,
            json,
        } => stats(&address, &authkey_file, json),
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
    authkey_file: &std::path::Path,
    allow_remote: bool,
) -> ExitCode {
    let Some(authkey) = read_authkey("serve", authkey_file) else {
        return ExitCode::FAILURE;
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

fn ls(json: bool) -> ExitCode {
    let resources = match multiproc::resources() {
        Ok(resources) => resources,
        Err(e) => {
            eprintln!("multiproc ls: {e}");
            return ExitCode::FAILURE;
        }
    };
    let now = std::time::SystemTime::now();
    let rows = resources.iter().map(|r| {
        let kind = match r.kind {
            multiproc::ResourceKind::SharedMemory => "shared-memory",
            _ => "manager-socket",
        };
        let age = now.duration_since(r.modified).unwrap_or_default().as_secs();
        (kind, r, age)
    });
    if json {
        for (kind, r, age) in rows {
            let size = r.size.map_or("null".to_owned(), |s| s.to_string());
            let owners: Vec<String> = r.owners.iter().map(u32::to_string).collect();
            println!(
                "{{\"kind\": \"{kind}\", \"name\": {}, \"path\": {}, \"size\": {size}, \
                 \"age_s\": {age}, \"owners\": [{}], \"held\": {}}}",
                json_string(&r.name),
                json_string(&r.path.display().to_string()),
                owners.join(", "),
                r.is_held()
            );
        }
        return ExitCode::SUCCESS;
    }
    if resources.is_empty() {
        println!("nothing: no named shared memory, no manager socket");
        return ExitCode::SUCCESS;
    }
    println!(
        "{:<15} {:<40} {:>10} {:>8}  owners",
        "kind", "name", "size", "age"
    );
    for (kind, r, age) in rows {
        let size = r.size.map_or("-".to_owned(), |s| s.to_string());
        let owners = if r.is_held() {
            let pids: Vec<String> = r.owners.iter().map(u32::to_string).collect();
            format!("held by {}", pids.join(", "))
        } else {
            "abandoned (multiproc clean removes it)".to_owned()
        };
        println!("{kind:<15} {:<40} {size:>10} {:>7}s  {owners}", r.name, age);
    }
    ExitCode::SUCCESS
}

fn stats(address: &str, authkey_file: &std::path::Path, json: bool) -> ExitCode {
    let Some(authkey) = read_authkey("stats", authkey_file) else {
        return ExitCode::FAILURE;
    };
    let stats = multiproc::Manager::connect(address, &authkey).and_then(|m| m.stats());
    let stats = match stats {
        Ok(stats) => stats,
        Err(e) => {
            eprintln!("multiproc stats: {address}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // This command's own connection is one of them.
    let fields = [
        ("objects", stats.objects),
        ("connections", stats.connections),
        ("handshakes", stats.handshakes),
        ("auth_failures", stats.auth_failures),
        ("refused", stats.refused),
    ];
    if json {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        println!(
            "{{\"address\": {}, {}}}",
            json_string(address),
            body.join(", ")
        );
    } else {
        println!("manager at {address}");
        for (name, value) in fields {
            println!("  {:<14} {value}", name.replace('_', " "));
        }
    }
    ExitCode::SUCCESS
}

/// The key in `path` (its bytes, all of them), or `None` once `multiproc COMMAND` said why not.
fn read_authkey(command: &str, path: &std::path::Path) -> Option<Vec<u8>> {
    std::fs::read(path)
        .map_err(|e| eprintln!("multiproc {command}: cannot read {}: {e}", path.display()))
        .ok()
}

/// `text` as a JSON string.
fn json_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
