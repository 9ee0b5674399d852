//! Where expanded units go: JSON Lines or unit texts on stdout, flushed per
//! unit so a pipe sees each one at once, or unit files in a directory,
//! each written atomically (temporary file, then rename) so systemd or a
//! watcher never reads half a unit.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use fleetkit_core::constraints::Constraints;
use fleetkit_core::records::UnitRecord;

use crate::error::Error;

/// The chosen destination.
pub enum Sink<W: Write> {
    Json(W, JsonLines),
    Unit(W),
    Dir { dir: PathBuf, force: bool },
}

impl<W: Write> Sink<W> {
    /// Emits one expanded unit.
    ///
    /// # Errors
    /// A write error (a closed pipe is not reported), or an existing
    /// different file in the output directory without `--force`.
    pub fn emit(&mut self, record: &UnitRecord) -> Result<(), Error> {
        match self {
            Sink::Json(out, json) => json.write(out, record).map_err(Error::Stdout),
            Sink::Unit(out) => write_unit(out, record).map_err(Error::Stdout),
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

    /// The per-record flush of [`JsonLines::write`]: real only when
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
    pub fn finish(&mut self) -> Result<(), Error> {
        match self {
            Sink::Json(out, _) | Sink::Unit(out) => out.finish().map_err(Error::Stdout),
            Sink::Dir { .. } => Ok(()),
        }
    }
}

/// Writes unit records as JSON Lines, byte for byte as
/// `fleetkit_core::records::write_record` (serde_json) writes them, but
/// faster: every record is assembled in one reused buffer and goes to the
/// writer in one piece, strings are escaped eight bytes at a time (the unit
/// text is most of every record), and the `[X-Fleet]` rules, which are the
/// same for every instance of most templates, are serialized once.
#[derive(Default)]
pub struct JsonLines {
    line: Vec<u8>,
    /// The last constraints written, and their JSON.
    constraints: Option<(Constraints, Vec<u8>)>,
}

impl JsonLines {
    /// Writes `record` as one line and flushes `out` (which [`Stdout`]
    /// may turn into a no-op).
    ///
    /// # Errors
    /// The writer's error.
    pub fn write<W: Write>(&mut self, out: &mut W, record: &UnitRecord) -> io::Result<()> {
        let line = &mut self.line;
        line.clear();
        line.extend_from_slice(b"{\"name\":");
        push_json_str(line, &record.name);
        line.extend_from_slice(b",\"template\":");
        push_json_opt(line, record.template.as_deref());
        line.extend_from_slice(b",\"instance\":");
        push_json_opt(line, record.instance.as_deref());
        line.extend_from_slice(b",\"hash\":");
        push_json_str(line, &record.hash);
        line.extend_from_slice(b",\"constraints\":");
        match &self.constraints {
            Some((last, json)) if *last == record.constraints => line.extend_from_slice(json),
            _ => {
                let json = serde_json::to_vec(&record.constraints)?;
                line.extend_from_slice(&json);
                self.constraints = Some((record.constraints.clone(), json));
            }
        }
        line.extend_from_slice(b",\"text\":");
        push_json_str(line, &record.text);
        line.extend_from_slice(b"}\n");
        out.write_all(line)?;
        out.flush()
    }
}

/// A JSON string or `null`.
fn push_json_opt(line: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => push_json_str(line, s),
        None => line.extend_from_slice(b"null"),
    }
}

/// `s` as a JSON string, escaped as serde_json escapes it: `"` and `\`
/// with a backslash, the control characters `\b \t \n \f \r` by name and
/// the others as `\u00xx`; everything else (DEL, non-ASCII) as it is.
fn push_json_str(line: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    line.reserve(bytes.len() + 2);
    line.push(b'"');
    let mut start = 0;
    while let Some(at) = next_escape(bytes, start) {
        line.extend_from_slice(&bytes[start..at]);
        let b = bytes[at];
        match b {
            b'"' => line.extend_from_slice(b"\\\""),
            b'\\' => line.extend_from_slice(b"\\\\"),
            b'\n' => line.extend_from_slice(b"\\n"),
            b'\t' => line.extend_from_slice(b"\\t"),
            b'\r' => line.extend_from_slice(b"\\r"),
            0x08 => line.extend_from_slice(b"\\b"),
            0x0c => line.extend_from_slice(b"\\f"),
            _ => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                line.extend_from_slice(b"\\u00");
                line.push(HEX[usize::from(b >> 4)]);
                line.push(HEX[usize::from(b & 15)]);
            }
        }
        start = at + 1;
    }
    line.extend_from_slice(&bytes[start..]);
    line.push(b'"');
}

/// Whether JSON needs `b` escaped.
fn needs_escape(b: u8) -> bool {
    b < 0x20 || b == b'"' || b == b'\\'
}

/// The first byte at or after `from` that JSON needs escaped, found eight
/// bytes at a time: in each word, a byte's high bit is set in the mask
/// when it is below 0x20, `"` or `\` (the borrow tricks can also flag
/// bytes after a true hit, never before one, so the lowest flag is right).
fn next_escape(bytes: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_byte = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = from;
    while let Some(chunk) = bytes.get(i..i + 8) {
        let Ok(chunk) = <[u8; 8]>::try_from(chunk) else { break };
        let w = u64::from_le_bytes(chunk);
        let mask = (w.wrapping_sub(ONES * 0x20) & !w & HIGH)
            | zero_byte(w ^ (ONES * u64::from(b'"')))
            | zero_byte(w ^ (ONES * u64::from(b'\\')));
        if mask != 0 {
            return Some(i + (mask.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes[i..].iter().position(|&b| needs_escape(b)).map(|p| i + p)
}

fn write_unit<W: Write>(out: &mut W, record: &UnitRecord) -> io::Result<()> {
    writeln!(out, "# {}", record.name)?;
    out.write_all(record.text.as_bytes())?;
    out.flush()
}

/// Writes `dir/name` atomically; an identical existing file is left alone.
fn write_file(dir: &Path, name: &str, text: &str, force: bool) -> Result<(), Error> {
    let path = dir.join(name);
    let shown = path.display().to_string();
    match fs::read(&path) {
        Ok(existing) if existing == text.as_bytes() => return Ok(()),
        Ok(_) if !force => return Err(Error::Exists { path: shown }),
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(Error::Read { path: shown, err }),
    }
    let tmp = dir.join(format!(".{name}.unitgen-{}", std::process::id()));
    let result = fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .and_then(|()| fs::rename(&tmp, &path));
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(Error::Write { path: shown, err });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// Every byte that JSON treats specially, at every offset of a word,
    /// plus DEL and non-ASCII text.
    fn awkward() -> String {
        let mut s = String::new();
        for b in 0u8..=0x7f {
            s.push(char::from(b));
            s.push_str("ab");
        }
        s.push_str("é\u{2028}€𝄞\"\\x");
        s
    }

    fn json_lines(records: &[UnitRecord]) -> Vec<u8> {
        let mut json = JsonLines::default();
        let mut out = Vec::new();
        for r in records {
            json.write(&mut out, r).unwrap();
        }
        out
    }

    fn serde_lines(records: &[UnitRecord]) -> Vec<u8> {
        let mut out = Vec::new();
        for r in records {
            fleetkit_core::records::write_record(&mut out, r).unwrap();
        }
        out
    }

    #[test]
    fn records_are_written_as_serde_json_writes_them() {
        let text = awkward();
        let mut records = Vec::new();
        for cut in 0..24 {
            let t = &text[cut..];
            let mut metadata = BTreeMap::new();
            metadata.insert(t.to_owned(), vec![t.to_owned(), String::new()]);
            records.push(UnitRecord {
                name: format!("a@{cut}.service"),
                template: (cut % 2 == 0).then(|| t.to_owned()),
                instance: (cut % 3 == 0).then(|| t.to_owned()),
                hash: t.to_owned(),
                constraints: Constraints {
                    machine_id: (cut % 4 < 2).then(|| t.to_owned()),
                    machine_of: vec![t.to_owned(); cut % 3],
                    machine_metadata: if cut % 5 == 0 { BTreeMap::new() } else { metadata },
                    conflicts: vec![t.to_owned()],
                    global: cut % 2 == 1,
                    replaces: Vec::new(),
                },
                text: t.to_owned(),
            });
            // The same constraints again, from the cache.
            let mut again = records[records.len() - 1].clone();
            again.name.push('x');
            records.push(again);
        }
        records.push(UnitRecord {
            name: String::new(),
            template: None,
            instance: None,
            hash: String::new(),
            constraints: Constraints::default(),
            text: String::new(),
        });
        let ours = json_lines(&records);
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&serde_lines(&records)));
    }

    #[test]
    fn next_escape_finds_the_first() {
        for len in 0..20 {
            for at in 0..len {
                for special in [b'"', b'\\', 0, 0x1f, b'\n'] {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = special;
                    if at + 1 < len {
                        bytes[at + 1] = b'"';
                    }
                    assert_eq!(next_escape(&bytes, 0), Some(at), "{bytes:?}");
                    assert_eq!(next_escape(&bytes, at + 1), (at + 1 < len).then_some(at + 1));
                }
            }
            let plain: Vec<u8> = (0..len).map(|i| [b'a', 0x7f, 0x20, 0xff][i % 4]).collect();
            assert_eq!(next_escape(&plain, 0), None);
        }
    }
}
