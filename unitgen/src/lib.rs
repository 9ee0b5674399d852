//! unitgen: turns unit templates such as `node-etcd@.service` into instance
//! units, as JSON records for place and clusterctl or as unit files, and
//! checks unit files the way systemd would.
//!
//! The unit-file rules themselves live in fleetkit-core (`unit`, `name`,
//! `specifier`, `expand`) so that clusterctl expands `start foo@1.service`
//! exactly as unitgen does; this crate owns the command line (`cli`), the
//! instance lists (`instances`) and where the units go (`output`), and this
//! file the run: read every input, then check it or emit its units.

mod cli;
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
