//! unitgen: turns unit templates such as `node-etcd@.service` into instance
//! units, as JSON records for place and clusterctl or as unit files, and
//! checks unit files the way systemd would.
//!
//! The unit-file rules themselves live in fleetkit-core (`unit`, `name`,
//! `specifier`, `expand`) so that clusterctl expands `start foo@1.service`
//! exactly as unitgen does; this crate owns the command line (`Cli`), the
//! instance lists (`instances`) and where the units go (`output`).

mod instances;
mod output;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use clap::{CommandFactory, Parser, ValueEnum};
use fleetkit_core::diag::{has_errors, Diagnostic};
use fleetkit_core::expand::Source;
use fleetkit_core::{Exit, ToolError};

use crate::instances::Instances;
use crate::output::{JsonLines, Sink, Stdout};

const EXAMPLES: &str = "\
EXAMPLES
  Three instances of each of the tutorial's templates, as JSON Lines:
      unitgen -i 1..3 node-etcd@.service node-etcd-discovery@.service

  Zero-padded, descending, listed, and from a file of names:
      unitgen -i 01..10 web@.service
      unitgen -i 3..1 -i a,b web@.service
      cut -d' ' -f1 hosts.txt | unitgen -i - probe@.service

  Instances that are not unit-name text, escaped as systemd-escape does:
      unitgen --escape -i 10.0.0.1/24 route@.service     # route@10.0.0.1-24.service

  Unit files for systemd, on stdout or written atomically into a directory:
      unitgen --format unit -i 1 node-etcd@.service
      unitgen -o /etc/systemd/system -i 1..3 node-etcd@.service

  Check files as systemd would, without output (exit 2 on any error):
      unitgen --check node-etcd@.service node-etcd-discovery@.service

  A unit read from stdin needs its name:
      generate-unit | unitgen --name web@.service -i 1..2 -

  Where would they run? (place reads unit records on stdin):
      unitgen -i 1..3 node-etcd@.service | place --machines machines.json

OUTPUT
  One JSON object per line and unit (--format json, the default):
    {\"name\":\"node-etcd@1.service\",          full unit name
     \"template\":\"node-etcd@.service\",        template it came from, or null
     \"instance\":\"1\",                         instance string, or null
     \"hash\":\"<64 hex digits>\",               SHA-256 of \"text\"
     \"constraints\":{                         the [X-Fleet] section, resolved
        \"machine_id\":null|\"ID\", \"machine_of\":[\"UNIT\"...],
        \"machine_metadata\":{\"KEY\":[\"VALUE\"...]}, \"conflicts\":[\"GLOB\"...],
        \"global\":false, \"replaces\":[\"GLOB\"...]},
     \"text\":\"[Unit]\\n...\"}                    the expanded unit file, canonical form
  --format unit prints each unit file after a \"# NAME\" line.
  Into a pipe, socket or terminal every unit is flushed as soon as it is
  made, so a reader sees it at once; into a regular file or /dev/null they
  are written in 64 KiB blocks, and all that is waiting before any message
  goes to stderr, so both sent to one file keep their order.

SPECIFIERS
  %n %N %p %P %i %I %f %j %J and %% are resolved from the unit name exactly as
  systemd 252 resolves them, in every value including [X-Fleet]. Host ones
  (%H %m %b %v %u %t %h ...) are left for systemd on the target machine. An
  unknown one such as %1 is an error, as in systemd 252: write %%1 for a
  literal %1.

EXIT STATUS
  0 done (warnings may be printed); 2 bad usage or a unit with errors.";

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One JSON record per unit (JSON Lines).
    Json,
    /// The expanded unit files, each after a `# NAME` line.
    Unit,
}

/// Expand systemd unit templates into instance units.
#[derive(Debug, Parser)]
#[command(
    name = "unitgen",
    version,
    about = "Expand systemd unit templates into instance units, or check unit files",
    long_about = "Reads unit files (a template such as node-etcd@.service, or a plain unit) exactly \
as systemd 252 parses them, makes one unit per instance given with -i, resolves the specifiers \
that depend only on the unit name, and prints one JSON record per unit (for place and clusterctl) \
or the unit files themselves. --check reports every problem as FILE:LINE: message.",
    after_long_help = EXAMPLES
)]
struct Cli {
    /// Instances for templates: 1..3, {1..3}, 01..10 (zero padded), 3..1, a,b,c, or - (one per
    /// line on stdin). Repeatable; plain units ignore them.
    #[arg(short = 'i', long = "instances", value_name = "LIST")]
    instances: Vec<String>,

    /// Write each unit to DIR/NAME (atomically) instead of printing it.
    #[arg(short = 'o', long = "output", value_name = "DIR", conflicts_with_all = ["format", "check"])]
    output: Option<PathBuf>,

    /// Overwrite files in DIR whose contents differ.
    #[arg(long, requires = "output")]
    force: bool,

    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Json, value_name = "FORMAT")]
    format: Format,

    /// Escape instance strings as systemd-escape does (10.0.0.1/24 -> 10.0.0.1-24).
    #[arg(long)]
    escape: bool,

    /// Only parse and validate; print every problem as FILE:LINE: message.
    #[arg(long)]
    check: bool,

    /// Unit name for a unit read from stdin (-), e.g. web@.service.
    #[arg(long, value_name = "NAME")]
    name: Option<String>,

    /// Unit files; - reads one from stdin (with --name).
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

/// The command-line definition (for man pages and completions).
#[must_use]
pub fn command() -> clap::Command {
    Cli::command()
}

/// One input file, parsed.
struct Input {
    /// How diagnostics name it (the path as given, or `-`).
    shown: String,
    source: Source,
}

/// Runs unitgen with `args` (argv, program name first).
///
/// # Errors
/// Bad usage, unreadable input, or a write error other than a closed pipe.
pub fn run(args: impl IntoIterator<Item = OsString>) -> Result<Exit, ToolError> {
    let cli = Cli::try_parse_from(args)?;
    let stdin_for_instances = cli.instances.iter().any(|i| i == "-");
    let stdin_for_file = cli.files.iter().any(|f| f.as_os_str() == "-");
    if stdin_for_instances && stdin_for_file {
        return Err(ToolError::usage("stdin cannot hold both instances (-i -) and a unit file (-)"));
    }
    if cli.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return Err(ToolError::usage("stdin (-) can be read only once"));
    }
    let mut instances = Instances::default();
    let stdin_lines = if stdin_for_instances { Some(read_stdin_text()?) } else { None };
    for list in &cli.instances {
        instances.add(list, cli.escape, stdin_lines.as_deref()).map_err(ToolError::usage)?;
    }

    let mut inputs = Vec::new();
    let mut failed = false;
    for file in &cli.files {
        let (shown, name, bytes) = read_input(file, cli.name.as_deref())?;
        match Source::parse(&name, &bytes) {
            Ok(source) => {
                report(&shown, source.warnings());
                inputs.push(Input { shown, source });
            }
            Err(diags) => {
                report(&shown, &diags);
                failed = true;
            }
        }
    }

    if cli.check {
        return Ok(check(&inputs, &instances, failed));
    }
    if failed {
        return Ok(Exit::USAGE);
    }
    if let Some(input) = inputs.iter().find(|i| i.source.is_template() && instances.is_empty()) {
        return Err(ToolError::usage(format!(
            "{}: {} is a template: give instances with -i (e.g. -i 1..3)",
            input.shown,
            input.source.name()
        )));
    }

    let mut sink = match (&cli.output, cli.format) {
        (Some(dir), _) => {
            std::fs::create_dir_all(dir).map_err(|e| ToolError::io(&dir.display().to_string(), &e))?;
            Sink::Dir { dir: dir.clone(), force: cli.force }
        }
        (None, Format::Json) => Sink::Json(Stdout::new(), JsonLines::default()),
        (None, Format::Unit) => Sink::Unit(Stdout::new()),
    };
    let exit = emit_all(&mut sink, &inputs, &instances)?;
    sink.finish()?;
    Ok(exit)
}

/// Emits every unit of every input, stopping at the first that has errors.
fn emit_all(sink: &mut Sink<Stdout>, inputs: &[Input], instances: &Instances) -> Result<Exit, ToolError> {
    for input in inputs {
        if input.source.is_template() {
            let mut first = true;
            for instance in instances.iter() {
                if !emit(sink, input, Some(&instance), first)? {
                    return Ok(Exit::USAGE);
                }
                first = false;
            }
        } else if !emit(sink, input, None, true)? {
            return Ok(Exit::USAGE);
        }
    }
    Ok(Exit::SUCCESS)
}

/// Expands one unit and emits it; prints its warnings only the first time
/// for a file (they repeat for every instance). False when it had errors.
/// Records already buffered are written before any diagnostic, so stdout
/// and stderr sent to one file keep their order.
fn emit(
    sink: &mut Sink<Stdout>,
    input: &Input,
    instance: Option<&str>,
    warn: bool,
) -> Result<bool, ToolError> {
    match input.source.instantiate(instance) {
        Ok((record, warnings)) => {
            if warn && !warnings.is_empty() {
                sink.finish()?;
                report(&input.shown, &warnings);
            }
            sink.emit(&record)?;
            Ok(true)
        }
        Err(diags) => {
            sink.finish()?;
            report(&input.shown, &diags);
            Ok(false)
        }
    }
}

/// `--check`: every file parsed already; expand templates with the first
/// instance (or a stand-in) to reach the `[X-Fleet]` checks.
fn check(inputs: &[Input], instances: &Instances, mut failed: bool) -> Exit {
    let stand_in = instances.first().unwrap_or_else(|| "check".to_owned());
    for input in inputs {
        let instance = input.source.is_template().then_some(stand_in.as_str());
        match input.source.instantiate(instance) {
            Ok((_, warnings)) => report(&input.shown, &warnings),
            Err(diags) => {
                report(&input.shown, &diags);
                failed |= has_errors(&diags);
            }
        }
    }
    if failed {
        Exit::USAGE
    } else {
        Exit::SUCCESS
    }
}

/// Prints diagnostics as `unitgen: FILE:LINE: message` on stderr. They are
/// the findings of this run rather than a failure of the tool, so they are
/// printed here, one per line, and the exit code tells the outcome.
fn report(shown: &str, diags: &[Diagnostic]) {
    let mut err = io::stderr().lock();
    for d in diags {
        let _ = writeln!(err, "unitgen: {}", d.display(shown));
    }
}

fn read_stdin_text() -> Result<String, ToolError> {
    let mut text = String::new();
    io::stdin().read_to_string(&mut text).map_err(|e| ToolError::io("stdin", &e))?;
    Ok(text)
}

/// Reads a unit file; its unit name is its file name (or `--name` for -).
fn read_input(path: &Path, name: Option<&str>) -> Result<(String, String, Vec<u8>), ToolError> {
    if path.as_os_str() == "-" {
        let Some(name) = name else {
            return Err(ToolError::usage(
                "a unit read from stdin (-) needs its name: add --name NAME.service",
            ));
        };
        let mut bytes = Vec::new();
        io::stdin().read_to_end(&mut bytes).map_err(|e| ToolError::io("stdin", &e))?;
        return Ok(("-".to_owned(), name.to_owned(), bytes));
    }
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ToolError::io(&shown, &e))?;
    let name = match path.file_name().and_then(|n| n.to_str()) {
        Some(n) => n.to_owned(),
        None => {
            return Err(ToolError::usage(format!("{shown}: the file name must be the unit name (UTF-8)")))
        }
    };
    Ok((shown, name, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn output_dir_conflicts_with_format() {
        let err = Cli::try_parse_from(["unitgen", "-o", "d", "--format", "unit", "a.service"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
