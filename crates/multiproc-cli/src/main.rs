//! `multiproc`: the command-line companion of the multiproc library.

use clap::Parser;

/// Share data between processes: the multiproc command.
///
/// Subcommands arrive with the features they serve: `serve` runs a standalone manager, `clean`
/// removes shared memory whose owners all died.
#[derive(Debug, Parser)]
#[command(name = "multiproc", version, arg_required_else_help = true)]
struct Cli {}

fn main() {
    multiproc::init();
    let _cli = Cli::parse();
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
