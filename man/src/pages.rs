//! The man pages: one per tool plus one per subcommand
//! (`clusterctl-start.1`), rendered by clap_mangen from the tool's clap
//! definition, with the tool's long after-help (examples, record formats,
//! exit status) as a DETAILS section.

use std::collections::BTreeMap;
use std::io::Write;

/// Every page by file name.
///
/// # Errors
/// Only a failed write into memory.
pub fn render(tools: Vec<clap::Command>) -> std::io::Result<BTreeMap<String, Vec<u8>>> {
    let mut out = BTreeMap::new();
    for cmd in tools {
        let mut cmd = cmd.disable_help_subcommand(true);
        cmd.build();
        render_tree(&cmd, &mut out)?;
    }
    Ok(out)
}

/// Is `name` a file `render` makes (so one no tool makes is stale)?
pub fn is_page(name: &str) -> bool {
    name.ends_with(".1")
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
