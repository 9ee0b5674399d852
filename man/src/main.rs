//! Writes fleetkit's man pages from the tools' clap definitions, or checks
//! that the committed ones are fresh (`--check`, run by `make test`).
//!
//! One definition serves `--help` and the man page, so they cannot drift: a
//! tool's `command()` is rendered here, one page per tool plus one per
//! subcommand (`clusterctl-start.1`), with the tool's long after-help
//! (examples, record formats, exit status) as a DETAILS section.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

fn pages() -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for cmd in
        [unitgen::command(), place::command(), dockrun::command(), announce::command(), clusterctl::command()]
    {
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        render_tree(&cmd, &mut out)?;
    }
    Ok(out)
}

fn render_tree(cmd: &clap::Command, out: &mut BTreeMap<String, Vec<u8>>) -> std::io::Result<()> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        render_tree(sub, out)?;
    }
    let man = clap_mangen::Man::new(cmd.clone()).source(format!("fleetkit {}", env!("CARGO_PKG_VERSION")));
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut page)?;
    }
    if let Some(details) = cmd.get_after_long_help().or_else(|| cmd.get_after_help()) {
        writeln!(page, ".SH DETAILS\n.nf")?;
        for line in details.to_string().lines() {
            writeln!(page, "{}", roff_escape(line))?;
        }
        writeln!(page, ".fi")?;
    }
    out.insert(man.get_filename(), page);
    Ok(())
}

/// Makes a line of plain text safe in a no-fill roff block.
fn roff_escape(line: &str) -> String {
    let line = line.replace('\\', "\\e");
    if line.starts_with('.') || line.starts_with('\'') {
        format!("\\&{line}")
    } else {
        line
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (check, dir) = match args.as_slice() {
        [flag, dir] if flag == "--check" => (true, dir.clone()),
        [dir] => (false, dir.clone()),
        _ => {
            eprintln!("fleetkit-man: usage: fleetkit-man [--check] DIR");
            return ExitCode::from(2);
        }
    };
    match run(Path::new(&dir), check) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("fleetkit-man: {dir}: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(dir: &Path, check: bool) -> std::io::Result<bool> {
    let pages = pages()?;
    if check {
        let mut fresh = true;
        for (name, page) in &pages {
            if std::fs::read(dir.join(name)).ok().as_ref() != Some(page) {
                eprintln!(
                    "fleetkit-man: {} is stale or missing: run `make man` and commit it",
                    dir.join(name).display()
                );
                fresh = false;
            }
        }
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".1") && !pages.contains_key(&name) {
                eprintln!(
                    "fleetkit-man: {} belongs to no tool: run `make man` and remove it",
                    dir.join(&name).display()
                );
                fresh = false;
            }
        }
        return Ok(fresh);
    }
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "1") {
            std::fs::remove_file(path)?;
        }
    }
    for (name, page) in &pages {
        std::fs::write(dir.join(name), page)?;
    }
    Ok(true)
}
