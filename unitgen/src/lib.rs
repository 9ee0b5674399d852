//! unitgen: turns unit templates such as `node-etcd@.service` into instance
//! units, as JSON records for place and clusterctl or as unit files, and
//! checks unit files the way systemd would.
//!
//! The unit-file rules themselves live in fleetkit-core (`unit`, `name`,
//! `specifier`, `expand`, `service`) so that clusterctl expands `start
//! foo@1.service` exactly as unitgen does; this crate owns the command line
//! (`cli`), the instance lists (`instances`), where the units go (`output`)
//! and why a run stops (`error`), and this file the run: read every input,
//! then check it or emit its units.

mod cli;
mod error;
mod instances;
mod output;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::path::Path;

use clap::{CommandFactory, Parser};
use fleetkit_core::diag::{has_errors, Diagnostic};
use fleetkit_core::expand::Source;
use fleetkit_core::{Exit, ToolError};

use crate::cli::{Cli, Format};
use crate::error::Error;
use crate::instances::Instances;
use crate::output::{JsonLines, Sink, Stdout};

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
    go(&cli).map_err(Error::into_tool)
}

fn go(cli: &Cli) -> Result<Exit, Error> {
    let stdin_for_instances = cli.instances.iter().any(|i| i == "-");
    let stdin_for_file = cli.files.iter().any(|f| f.as_os_str() == "-");
    if stdin_for_instances && stdin_for_file {
        return Err(Error::StdinTwice);
    }
    if cli.files.iter().filter(|f| f.as_os_str() == "-").count() > 1 {
        return Err(Error::StdinOnce);
    }
    let mut instances = Instances::default();
    let stdin_lines = if stdin_for_instances { Some(read_stdin_text()?) } else { None };
    for list in &cli.instances {
        instances.add(list, cli.escape, stdin_lines.as_deref())?;
    }

    let mut inputs = Vec::new();
    let mut failed = false;
    for file in &cli.files {
        let (shown, name, bytes) = read_input(file, cli.name.as_deref())?;
        match Source::parse(&name, &bytes) {
            Ok(source) => {
                // What parses but systemd would refuse to run is an error too.
                let mut diags: Vec<Diagnostic> = source.warnings().to_vec();
                diags.extend_from_slice(source.refusals());
                diags.sort_by_key(|d| d.line);
                report(&shown, &diags);
                failed |= !source.refusals().is_empty();
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
        return Err(Error::NeedsInstances {
            path: input.shown.clone(),
            name: input.source.name().to_owned(),
        });
    }

    let mut sink = match (&cli.output, cli.format) {
        (Some(dir), _) => {
            std::fs::create_dir_all(dir)
                .map_err(|err| Error::CreateDir { dir: dir.display().to_string(), err })?;
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
fn emit_all(sink: &mut Sink<Stdout>, inputs: &[Input], instances: &Instances) -> Result<Exit, Error> {
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
fn emit(sink: &mut Sink<Stdout>, input: &Input, instance: Option<&str>, warn: bool) -> Result<bool, Error> {
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

fn read_stdin_text() -> Result<String, Error> {
    let mut text = String::new();
    io::stdin().read_to_string(&mut text).map_err(|err| Error::Read { path: "stdin".to_owned(), err })?;
    Ok(text)
}

/// Reads a unit file; its unit name is its file name (or `--name` for -).
fn read_input(path: &Path, name: Option<&str>) -> Result<(String, String, Vec<u8>), Error> {
    if path.as_os_str() == "-" {
        let Some(name) = name else {
            return Err(Error::NeedsName);
        };
        let mut bytes = Vec::new();
        io::stdin().read_to_end(&mut bytes).map_err(|err| Error::Read { path: "stdin".to_owned(), err })?;
        return Ok(("-".to_owned(), name.to_owned(), bytes));
    }
    let shown = path.display().to_string();
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(err) => return Err(Error::Read { path: shown, err }),
    };
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return Err(Error::NameNotUtf8 { path: shown });
    };
    Ok((shown, name.to_owned(), bytes))
}
