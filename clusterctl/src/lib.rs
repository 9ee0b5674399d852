//! clusterctl: fleetctl's verbs over fleetkit's keys in etcd v3, and the
//! scheduler loop that places units on machines.
//!
//! This file parses the command line (defined in `cli`, from which the man
//! pages and completions are generated too) and hands each verb to the
//! module that owns it: `verbs` changes desired state, `list` prints tables,
//! `schedule` places units, `cluster` reads and writes etcd under the layout
//! of `keys`, `placement` applies the `[X-Fleet]` rules, `units` names and
//! expands unit files, `table` lays out fleetctl's tables.

pub mod agent;
pub mod cli;
pub mod cluster;
pub mod error;
pub mod grant;
pub mod keys;
pub mod list;
pub mod placement;
pub mod react;
pub mod remote;
pub mod schedule;
pub mod table;
pub mod units;
pub mod verbs;

use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, Parser};
use fleetkit_core::{Exit, ToolError};

/// The verbs' shared options, still at the crate root where `verbs` and
/// library users have named them.
pub use crate::cli::{BlockArgs, ListArgs};
use crate::cli::{Cli, Verb};
use crate::cluster::Cluster;
use crate::keys::Keys;

/// The clap definition, for the man page and completions.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs clusterctl with `args` (the program name first).
///
/// # Errors
/// Bad usage or input (exit 2), a unit that cannot be placed or an etcd
/// failure (exit 1).
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<Exit, ToolError> {
    let cli = Cli::try_parse_from(args)?;
    cli.etcd.options().map_err(ToolError::usage)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| ToolError::negative(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> Result<Exit, ToolError> {
    let client = cli.etcd.connect().await?;
    let cluster = Cluster { client, keys: Keys::new(&cli.prefix) };
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let exit = match cli.verb {
        Verb::Submit { files } => verbs::submit(&cluster, &files, &mut out).await,
        Verb::Cat { unit } => verbs::cat(&cluster, &unit, &mut out).await,
        Verb::Load { block, units } => {
            let units = submit_files(&cluster, units, &mut out).await?;
            verbs::set_desired(&cluster, &units, verbs::Action::Load, false, &block, &mut out).await
        }
        Verb::Start { block, units } => {
            let units = submit_files(&cluster, units, &mut out).await?;
            verbs::set_desired(&cluster, &units, verbs::Action::Start, true, &block, &mut out).await
        }
        Verb::Stop { block, units } => {
            verbs::set_desired(&cluster, &units, verbs::Action::Stop, false, &block, &mut out).await
        }
        Verb::Unload { block, units } => {
            verbs::set_desired(&cluster, &units, verbs::Action::Unload, false, &block, &mut out).await
        }
        Verb::Destroy { units } => verbs::destroy(&cluster, &units, &mut out).await,
        Verb::ListUnitFiles(args) => {
            list::unit_files(&cluster, &args, &mut out).await.map(|()| Exit::SUCCESS)
        }
        Verb::ListUnits(args) => list::units(&cluster, &args, &mut out).await.map(|()| Exit::SUCCESS),
        Verb::ListMachines(args) => list::machines(&cluster, &args, &mut out).await.map(|()| Exit::SUCCESS),
        Verb::ListAnnouncements { list: args, key_prefix } => {
            list::announcements(&cluster, &key_prefix, &args, &mut out).await.map(|()| Exit::SUCCESS)
        }
        Verb::Status { units, ssh } => remote::status(&cluster, &units, &ssh).await,
        Verb::Journal { lines, follow, unit, ssh } => {
            remote::journal(&cluster, &unit, lines, follow, &ssh).await
        }
        Verb::Ssh { target, command, ssh } => remote::ssh(&cluster, &target, &command, &ssh).await,
        Verb::Agent(args) => agent::run(&cluster, &args, &cli.etcd.endpoints).await,
        Verb::GrantMachine { id, announce, login } => {
            grant::check_name("machine ID", &id)?;
            let role = grant::machine_role(&id);
            let user = login.username.clone().unwrap_or_else(|| role.clone());
            let mut grants = grant::machine_grants(&cluster.keys, &id);
            grants.extend(announce.into_iter().map(grant::Grant::announce));
            grant::grant(&cluster.client, &role, &user, &login_of(&login)?, &grants, &mut out).await
        }
        Verb::RevokeMachine { id, username } => {
            grant::check_name("machine ID", &id)?;
            let role = grant::machine_role(&id);
            let user = username.unwrap_or_else(|| role.clone());
            grant::revoke(&cluster.client, &role, &user, &mut out).await
        }
        Verb::GrantScheduler { name, login } => {
            grant::check_name("scheduler name", &name)?;
            let role = grant::scheduler_role(&name);
            let user = login.username.clone().unwrap_or_else(|| role.clone());
            let grants = grant::scheduler_grants(&cluster.keys);
            grant::grant(&cluster.client, &role, &user, &login_of(&login)?, &grants, &mut out).await
        }
        Verb::Schedule { watch: false, ttl } => schedule::once(&cluster, ttl, &mut out).await,
        Verb::Schedule { watch: true, ttl } => {
            let mut long = cli.etcd.clone();
            long.command_timeout = Duration::from_secs(365 * 24 * 3600);
            let waiter = long.connect().await?;
            schedule::watch(&cluster, &waiter, ttl).await
        }
    };
    out.flush()?;
    exit
}

fn login_of(args: &cli::LoginArgs) -> Result<grant::Login, ToolError> {
    if args.no_password {
        Ok(grant::Login::Certificate)
    } else {
        grant::password_from_stdin().map(grant::Login::Password)
    }
}

/// `start ./web.service` submits the file first, as fleetctl did; other
/// arguments are unit names.
async fn submit_files(
    cluster: &Cluster,
    args: Vec<String>,
    out: &mut impl Write,
) -> Result<Vec<String>, ToolError> {
    let mut names = Vec::with_capacity(args.len());
    let mut files = Vec::new();
    for a in args {
        if verbs::is_file(&a) {
            let p = PathBuf::from(&a);
            names.push(p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string());
            files.push(p);
        } else {
            names.push(a);
        }
    }
    if !files.is_empty() {
        verbs::submit(cluster, &files, out).await?;
    }
    Ok(names)
}
