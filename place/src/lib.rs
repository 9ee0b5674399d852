//! place: where each unit of a fleet runs, by fleet's `[X-Fleet]` rules.
//!
//! A pure calculator: unit records (unitgen's JSON Lines), machine records
//! and, optionally, the current placements go in; one placement per unit
//! (one per machine for a global unit) comes out, or a reason a person can
//! act on. The same input always gives the same output. The library's
//! [`plan`] is what `clusterctl schedule` calls, on [`Unit`]s read straight
//! from the records; the `place` binary wraps it for pipes and scripts.
//!
//! Where things are: `plan` is the answer and its order of work; `build`
//! turns records into `rules` (fixed once built), `state` is what changes
//! while placing, `fit` says whether a unit may go on a machine, `choose`
//! picks the machine, `reason` words why a unit has none. `index` and
//! `lists` make all that cheap at 10,000 machines and a million units;
//! `ids` gives each kind of number its type. `read` and `table` are the
//! binary's input and `--format table`.

mod build;
mod choose;
mod error;
mod fit;
mod fxhash;
mod ids;
mod index;
mod lists;
mod plan;
mod read;
mod reason;
mod rules;
mod state;
mod table;
mod unit;

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, ValueEnum};
use fleetkit_core::diag::escaped;
use fleetkit_core::records::{read_records, MachineRecord, Placement};
use fleetkit_core::{Exit, ToolError};

pub use error::{PlaceError, RunError};
pub use plan::{plan, PlacementRef, Plan};
pub use read::read_units;
pub use unit::Unit;

const AFTER_LONG_HELP: &str = "\
INPUT
  UNITS (or stdin): unit records as unitgen writes them, one JSON object per line:
    {\"name\",\"template\",\"instance\",\"hash\",\"constraints\",\"text\"}
  where constraints is
    {\"machine_id\":null|ID,\"machine_of\":[NAME...],\"machine_metadata\":{KEY:[VALUE...]},
     \"conflicts\":[GLOB...],\"global\":BOOL,\"replaces\":[GLOB...]}
  --machines FILE: {\"id\",\"ip\",\"metadata\":{KEY:VALUE}} per line.
  --current FILE: placements as place writes them; machine null lines are ignored.

OUTPUT (JSON Lines, sorted by unit name, then machine ID)
  {\"unit\":NAME,\"machine\":ID}                     a placed unit
  {\"unit\":NAME,\"machine\":null,\"reason\":TEXT}     a unit that cannot be placed
  A global unit gives one line per machine it runs on.
  --format table prints UNIT MACHINE IP instead, and the reasons on stderr.

RULES (fleet's)
  Conflicts=GLOB...  not beside a unit its globs match, nor one whose globs match it
                     (Go path.Match); Conflicts=a.service b*.service is two globs, as in fleet
  MachineOf=NAME     only beside NAME; follows it when NAME moves; waits while NAME is not placed
  MachineID=ID       that machine (full ID or unique prefix)
  MachineMetadata=k=v  values of one key OR'd, keys AND'd
  Global=true        every machine whose metadata fits and where nothing conflicts
  Replaces=GLOB      take a replaced unit's machine; the replaced unit moves
  Otherwise the least loaded machine (non-global units on it), ties by machine ID.
  A current placement is kept while its machine is listed and its rules hold.

EXIT STATUS
  0 every unit placed, 1 some unit cannot be placed, 2 bad usage or bad input
  (malformed record, malformed glob, contradictory rules, duplicate unit or machine,
  more than a plan's 32-bit numbers count). Control bytes in names are escaped
  (\\x1b) in messages and in --format table.

EXAMPLES
  Place the tutorial's three instances and their sidekicks:
    unitgen -i 1..3 node-etcd@.service node-etcd-discovery@.service | place --machines machines.json
  Re-place after a machine died, keeping everything else where it is:
    place --machines alive.json --current placements.json units.json
  A table for people:
    place --machines machines.json --format table units.json";

/// How place prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// UNIT MACHINE IP columns.
    Table,
}

/// Computes where each unit runs under fleet's [X-Fleet] rules.
#[derive(Debug, Parser)]
#[command(
    name = "place",
    version,
    about = "Compute where each unit runs under fleet's [X-Fleet] rules",
    long_about = "Compute where each unit runs under fleet's [X-Fleet] rules.\n\n\
        place reads unit records (unitgen's JSON Lines) and machine records and prints one placement \
        per unit, or why a unit cannot be placed. It is pure and deterministic: the same input gives \
        the same output, and current placements that still hold are never moved.",
    after_long_help = AFTER_LONG_HELP
)]
struct Cli {
    /// Machine records, one JSON object per line ({"id","ip","metadata"}).
    #[arg(long, value_name = "FILE")]
    machines: PathBuf,
    /// Current placements to keep where their rules still hold ({"unit","machine"} lines).
    #[arg(long, value_name = "FILE")]
    current: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Unit records (JSON Lines); standard input when absent or `-`.
    #[arg(value_name = "UNITS")]
    units: Option<PathBuf>,
}

/// The clap definition, for man pages and completions.
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// Runs place with `args` (the program name first).
///
/// # Errors
/// Usage and input errors (exit 2); a broken stdout pipe.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<Exit, ToolError> {
    let cli = Cli::try_parse_from(args)?;
    match answer(&cli) {
        Ok(exit) => Ok(exit),
        Err(Fail::Run(e)) => Err(ToolError::from_error(&e)),
        Err(Fail::Write(e)) => Err(e.into()),
    }
}

/// Why [`answer`] stopped: bad input, or stdout failed (a closed pipe is
/// no error: [`ToolError`] turns it into success).
enum Fail {
    Run(RunError),
    Write(io::Error),
}

impl<E: Into<RunError>> From<E> for Fail {
    fn from(e: E) -> Self {
        Fail::Run(e.into())
    }
}

fn answer(cli: &Cli) -> Result<Exit, Fail> {
    let machines: Vec<MachineRecord> = read_file(&cli.machines)?;
    let current: Vec<Placement> = match &cli.current {
        Some(path) => read_file(path)?,
        None => Vec::new(),
    };
    let units: Vec<Unit> = match cli.units.as_deref() {
        Some(path) if path != Path::new("-") => {
            let (name, file) = open(path)?;
            read_units(BufReader::with_capacity(1 << 16, file), &name)?
        }
        _ => read_units(io::stdin().lock(), "stdin")?,
    };
    let plan = Plan::new(&units, &machines, &current)?;
    let stdout = io::stdout();
    let mut out = BufWriter::with_capacity(1 << 16, stdout.lock());
    let unplaced = match cli.format {
        // Streamed: no list of a million placements in memory.
        Format::Json => plan.write_json(&mut out).map_err(Fail::Write)?,
        Format::Table => {
            let placements = plan.placements();
            table::write(&mut out, &placements, &machines).map_err(Fail::Write)?;
            out.flush().map_err(Fail::Write)?;
            let unplaced: Vec<&Placement> = placements.iter().filter(|p| p.machine.is_none()).collect();
            let mut err = io::stderr().lock();
            for p in &unplaced {
                let reason = p.reason.as_deref().unwrap_or("not placed");
                let _ = writeln!(err, "place: {}: {}", escaped(&p.unit), escaped(reason));
            }
            unplaced.len()
        }
    };
    out.flush().map_err(Fail::Write)?;
    Ok(if unplaced == 0 { Exit::SUCCESS } else { Exit::NEGATIVE })
}

fn open(path: &Path) -> Result<(String, File), RunError> {
    let name = path.display().to_string();
    match File::open(path) {
        Ok(file) => Ok((name, file)),
        Err(err) => Err(RunError::Open { path: name, err }),
    }
}

fn read_file<T: for<'de> serde::Deserialize<'de>>(path: &Path) -> Result<Vec<T>, RunError> {
    let (name, file) = open(path)?;
    let reader: Box<dyn BufRead> = Box::new(BufReader::with_capacity(1 << 16, file));
    Ok(read_records(reader, &name)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_valid() {
        command().debug_assert();
    }
}
