//! Writes fleetkit's man pages (`pages`) and shell completions
//! (`completions`) from the tools' clap definitions, or checks that the
//! committed ones are fresh (`--check`, run by `make test`).
//!
//! One definition serves `--help`, the man page and the completions, so
//! they cannot drift: each tool's `command()` is rendered here.

mod completions;
mod pages;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: fleetkit-man [--check] [--completions] DIR";

/// The tools, as their clap definitions.
fn tools() -> Vec<clap::Command> {
    vec![unitgen::command(), place::command(), dockrun::command(), announce::command(), clusterctl::command()]
}

/// What one run makes: the files by name, which files in DIR are of that
/// kind, and the make target that regenerates them.
struct Output {
    files: BTreeMap<String, Vec<u8>>,
    ours: fn(&str) -> bool,
    target: &'static str,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (flags, dirs): (Vec<&str>, Vec<&str>) =
        args.iter().map(String::as_str).partition(|a| a.starts_with('-'));
    let check = flags.contains(&"--check");
    let completions = flags.contains(&"--completions");
    let known = flags.iter().all(|f| matches!(*f, "--check" | "--completions"));
    let (true, [dir]) = (known, dirs.as_slice()) else {
        eprintln!("fleetkit-man: {USAGE}");
        return ExitCode::from(2);
    };
    let output = if completions {
        Ok(Output {
            files: completions::render(tools()),
            ours: completions::is_completion,
            target: "completions",
        })
    } else {
        pages::render(tools()).map(|files| Output { files, ours: pages::is_page, target: "man" })
    };
    let dir = Path::new(dir);
    let fresh = output.and_then(|o| if check { check_fresh(dir, &o) } else { write(dir, &o) });
    match fresh {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fleetkit-man: {}: {e}", dir.display());
            ExitCode::from(2)
        }
    }
}

/// True when every file in `dir` is what `output` would write, and no file
/// of its kind is left over.
fn check_fresh(dir: &Path, output: &Output) -> std::io::Result<bool> {
    let mut fresh = true;
    for (name, bytes) in &output.files {
        if std::fs::read(dir.join(name)).ok().as_ref() != Some(bytes) {
            eprintln!(
                "fleetkit-man: {} is stale or missing: run `make {}` and commit it",
                dir.join(name).display(),
                output.target
            );
            fresh = false;
        }
    }
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if (output.ours)(&name) && !output.files.contains_key(&name) {
            eprintln!(
                "fleetkit-man: {} belongs to no tool: run `make {}` and remove it",
                dir.join(&name).display(),
                output.target
            );
            fresh = false;
        }
    }
    Ok(fresh)
}

/// Replaces the files of `output`'s kind in `dir` with `output`'s.
fn write(dir: &Path, output: &Output) -> std::io::Result<bool> {
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if (output.ours)(&entry.file_name().to_string_lossy()) {
            std::fs::remove_file(entry.path())?;
        }
    }
    for (name, bytes) in &output.files {
        std::fs::write(dir.join(name), bytes)?;
    }
    Ok(true)
}
