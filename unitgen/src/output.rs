//! Where expanded units go: JSON Lines or unit texts on stdout, flushed per
//! unit so a pipe sees each one at once, or unit files in a directory,
//! each written atomically (temporary file, then rename) so systemd or a
//! watcher never reads half a unit.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
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

/// Buffer size for stdout: large enough that a run of 100,000 records costs
/// about 1,500 `write` calls instead of 100,000 when batching.
const STDOUT_BUFFER: usize = 64 * 1024;

/// Buffered stdout that flushes per record only where someone may be
/// waiting for each record: a pipe, a socket or a terminal.
///
/// The contract is "a pipe sees every record at once" (`place` and
/// `clusterctl` read records as they come, `| head -1` stops unitgen after
/// the first). Nobody waits on a regular file or `/dev/null` line by line,
/// and there a `write` per record is most of what a large run costs (the
/// kernel's per-call work on ext4 is several times the copying), so records
/// are batched in a 64 KiB buffer. Batching loses nothing: everything is
/// written when unitgen ends ([`Stdout::finish`], which reports a full disk),
/// and before any diagnostic goes to stderr (so `>out 2>&1` keeps the order),
/// and the only delay a `tail -f` reader sees is the time to fill one buffer,
/// since unitgen never waits for input between records.
pub struct Stdout {
    out: BufWriter<io::StdoutLock<'static>>,
    per_record: bool,
}

impl Stdout {
    /// Locks stdout and decides how it is flushed.
    #[must_use]
    pub fn new() -> Self {
        let stdout = io::stdout();
        let per_record = !batch_ok(&stdout);
        Stdout { out: BufWriter::with_capacity(STDOUT_BUFFER, stdout.lock()), per_record }
    }

    /// Writes out what is buffered, whatever the kind of stdout.
    ///
    /// # Errors
    /// The write error (a closed pipe among them).
    pub fn finish(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

impl Default for Stdout {
    fn default() -> Self {
        Self::new()
    }
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    /// The per-record flush of [`write_record`]: real only when
    /// `per_record` (see [`Stdout`]).
    fn flush(&mut self) -> io::Result<()> {
        if self.per_record {
            self.out.flush()
        } else {
            Ok(())
        }
    }
}

/// Whether stdout is a regular file or `/dev/null`, where no reader waits
/// for each record. Anything unknown counts as a reader.
fn batch_ok(stdout: &io::Stdout) -> bool {
    let Ok(fd) = stdout.as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = fs::File::from(fd).metadata() else {
        return false;
    };
    let kind = meta.file_type();
    if kind.is_file() {
        return true;
    }
    kind.is_char_device()
        && fs::metadata("/dev/null")
            .is_ok_and(|null| null.file_type().is_char_device() && null.rdev() == meta.rdev())
}

impl Sink<Stdout> {
    /// Writes out what is buffered; call before printing to stderr and at
    /// the end.
    ///
    /// # Errors
    /// The write error (a closed pipe is not reported).
    pub fn finish(&mut self) -> Result<(), ToolError> {
        match self {
            Sink::Json(out) | Sink::Unit(out) => out.finish().map_err(ToolError::from),
            Sink::Dir { .. } => Ok(()),
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
