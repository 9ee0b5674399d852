//! Where expanded units go: JSON Lines or unit texts on stdout, flushed per
//! unit so a pipe sees each one at once, or unit files in a directory,
//! each written atomically (temporary file, then rename) so systemd or a
//! watcher never reads half a unit.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fleetkit_core::records::{write_record, UnitRecord};
use fleetkit_core::ToolError;

/// The chosen destination.
pub enum Sink<W: Write> {
    Json(W),
    Unit(W),
    Dir { dir: PathBuf, force: bool },
}

impl<W: Write> Sink<W> {
    /// Emits one expanded unit.
    ///
    /// # Errors
    /// A write error (a closed pipe is not reported), or an existing
    /// different file in the output directory without `--force`.
    pub fn emit(&mut self, record: &UnitRecord) -> Result<(), ToolError> {
        match self {
            Sink::Json(out) => write_record(out, record).map_err(ToolError::from),
            Sink::Unit(out) => write_unit(out, record).map_err(ToolError::from),
            Sink::Dir { dir, force } => write_file(dir, &record.name, &record.text, *force),
        }
    }
}

fn write_unit<W: Write>(out: &mut W, record: &UnitRecord) -> io::Result<()> {
    writeln!(out, "# {}", record.name)?;
    out.write_all(record.text.as_bytes())?;
    out.flush()
}

/// Writes `dir/name` atomically; an identical existing file is left alone.
fn write_file(dir: &Path, name: &str, text: &str, force: bool) -> Result<(), ToolError> {
    let path = dir.join(name);
    let shown = path.display().to_string();
    match fs::read(&path) {
        Ok(existing) if existing == text.as_bytes() => return Ok(()),
        Ok(_) if !force => {
            return Err(ToolError::usage(format!(
                "{shown}: exists with different contents; use --force to overwrite it"
            )));
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(ToolError::io(&shown, &e)),
    }
    let tmp = dir.join(format!(".{name}.unitgen-{}", std::process::id()));
    let result = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| fs::rename(&tmp, &path));
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(ToolError::usage(format!("{shown}: cannot write: {e}")));
    }
    Ok(())
}
