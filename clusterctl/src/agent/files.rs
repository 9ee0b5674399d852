//! The agent's unit files: its own directory, linked into systemd's runtime
//! unit directory.
//!
//! Every file the agent writes is `DIR/NAME` (default `/run/fleetkit/units`,
//! gone at reboot as the assignments' effect should be), and systemd finds
//! it through the link `/run/systemd/system/NAME -> DIR/NAME`. What the
//! directory holds is exactly what the agent wrote, so after a restart it
//! knows its units without asking anyone. It never writes, replaces or
//! removes anything else: a name that is not a valid unit name is refused
//! before it becomes a path, and a unit of that name that systemd already
//! finds elsewhere (a file in `/etc/systemd/system` or a vendor unit) is
//! reported and left alone.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use fleetkit_core::expand::hex_sha256;
use fleetkit_core::name::{Kind, UnitName};

/// systemd's runtime unit directory, where the links go.
pub const SYSTEMD_RUNTIME: &str = "/run/systemd/system";

/// Directories where systemd finds system units (systemd.unit(5)), other
/// than the runtime one the agent links into.
const OTHER_UNIT_DIRS: &[&str] = &[
    "/etc/systemd/system",
    "/run/systemd/transient",
    "/usr/local/lib/systemd/system",
    "/lib/systemd/system",
    "/usr/lib/systemd/system",
];

/// What [`UnitDir::write`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The file was there with that text.
    Same,
    /// A new unit: systemd loads it when first asked (it notices the new
    /// file in its unit directories), no daemon-reload needed.
    New,
    /// Another text under the same name: systemd has the old one loaded and
    /// needs a daemon-reload.
    Replaced,
}

/// The agent's unit directory.
#[derive(Debug, Clone)]
pub struct UnitDir {
    dir: PathBuf,
    links: PathBuf,
}

impl UnitDir {
    /// The directory `dir` (created if missing), linked into `links`.
    ///
    /// # Errors
    /// When it cannot be created.
    pub fn open(dir: &Path, links: &Path) -> Result<Self, String> {
        fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the unit directory {}: {e}", dir.display()))?;
        fs::create_dir_all(links).map_err(|e| format!("cannot create {}: {e}", links.display()))?;
        Ok(Self { dir: dir.to_path_buf(), links: links.to_path_buf() })
    }

    /// The units already written (by this agent before a restart): name →
    /// hash of the file's text.
    #[must_use]
    pub fn existing(&self) -> BTreeMap<String, String> {
        let Ok(entries) = fs::read_dir(&self.dir) else { return BTreeMap::new() };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                check_name(&name).ok()?;
                let text = fs::read(e.path()).ok()?;
                Some((name, hex_sha256(&text)))
            })
            .collect()
    }

    /// Writes `text` as unit `name` and links it, unless it is already
    /// there with that text.
    ///
    /// # Errors
    /// A name that is not a unit name, a unit of that name that is not the
    /// agent's, or the write's error.
    pub fn write(&self, name: &str, text: &str) -> Result<Written, String> {
        check_name(name)?;
        self.check_not_elsewhere(name)?;
        let file = self.dir.join(name);
        // The link's place must be free or the agent's before anything is written.
        let linked = self.is_linked(name, &file)?;
        let old = fs::read(&file).ok();
        let same = old.as_deref() == Some(text.as_bytes());
        if !same {
            let tmp = self.dir.join(format!(".{name}.tmp"));
            let write = || -> io::Result<()> {
                let mut f = fs::File::create(&tmp)?;
                f.write_all(text.as_bytes())?;
                f.sync_all()?;
                fs::rename(&tmp, &file)
            };
            write().map_err(|e| {
                let _ = fs::remove_file(&tmp);
                format!("cannot write {}: {e}", file.display())
            })?;
        }
        if !linked {
            let link = self.links.join(name);
            std::os::unix::fs::symlink(&file, &link)
                .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
        }
        Ok(match old {
            Some(_) if same && linked => Written::Same,
            Some(_) => Written::Replaced,
            None => Written::New,
        })
    }

    /// Removes unit `name`'s link and file, if they are the agent's.
    /// Returns whether anything was removed.
    pub fn remove(&self, name: &str) -> bool {
        if check_name(name).is_err() {
            return false;
        }
        let file = self.dir.join(name);
        let link = self.links.join(name);
        let mut removed = false;
        if fs::read_link(&link).is_ok_and(|target| target == file) {
            removed |= fs::remove_file(&link).is_ok();
        }
        removed |= fs::remove_file(&file).is_ok();
        removed
    }

    /// Whether `links/NAME` is already the agent's link to `file`; an error
    /// when something else is there.
    fn is_linked(&self, name: &str, file: &Path) -> Result<bool, String> {
        let link = self.links.join(name);
        match fs::read_link(&link) {
            Ok(target) if target == file => Ok(true),
            _ if link.symlink_metadata().is_ok() => Err(format!(
                "{} exists and is not fleetkit's: leaving it alone (remove it, or destroy the fleetkit unit)",
                link.display()
            )),
            _ => Ok(false),
        }
    }

    /// Refuses a unit that systemd would find in another directory: the
    /// agent's file would shadow it or be shadowed by it.
    fn check_not_elsewhere(&self, name: &str) -> Result<(), String> {
        let parsed = UnitName::parse(name)?;
        let template = parsed.template();
        for dir in OTHER_UNIT_DIRS.iter().map(Path::new) {
            for candidate in std::iter::once(name).chain(template.as_deref()) {
                let path = dir.join(candidate);
                if path.symlink_metadata().is_ok() {
                    return Err(format!(
                        "{} exists on this machine and is not fleetkit's: not replacing it \
                         (rename the fleetkit unit, or remove that file)",
                        path.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

/// A name read from etcd may become a path only if it is a unit name that
/// systemd can run: valid, not a template, no path separator.
///
/// # Errors
/// Says why the name is refused.
pub fn check_name(name: &str) -> Result<(), String> {
    let parsed = UnitName::parse(name).map_err(|e| format!("refusing assignment {name:?}: {e}"))?;
    if parsed.kind == Kind::Template {
        return Err(format!("refusing assignment {name:?}: a template cannot run; assign an instance"));
    }
    if name.contains('/') || name.starts_with('.') {
        return Err(format!("refusing assignment {name:?}: not a unit file name"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_leave_the_directory_are_refused() {
        for bad in ["../x.service", "a/b.service", "..", ".hidden.service", "web@.service", "x", ""] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["web.service", "node-etcd@1.service", "a.timer"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn writes_links_and_removes_only_its_own() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = UnitDir::open(&tmp.path().join("units"), &tmp.path().join("system")).unwrap();
        assert_eq!(dir.write("a.service", "[Service]\nExecStart=/bin/true\n").unwrap(), Written::New);
        assert_eq!(dir.write("a.service", "[Service]\nExecStart=/bin/true\n").unwrap(), Written::Same);
        assert_eq!(dir.write("a.service", "[Service]\nExecStart=/bin/false\n").unwrap(), Written::Replaced);
        assert_eq!(
            fs::read_link(tmp.path().join("system/a.service")).unwrap(),
            tmp.path().join("units/a.service")
        );
        assert_eq!(dir.existing().len(), 1);

        fs::write(tmp.path().join("system/b.service"), "not ours").unwrap();
        assert!(dir.write("b.service", "x").unwrap_err().contains("not fleetkit's"));
        assert!(!tmp.path().join("units/b.service").exists(), "nothing written for a refused unit");
        assert!(!dir.remove("b.service"), "a file the agent did not write is not removed");
        assert_eq!(fs::read_to_string(tmp.path().join("system/b.service")).unwrap(), "not ours");

        assert!(dir.remove("a.service"));
        assert!(!tmp.path().join("system/a.service").exists());
        assert!(dir.existing().is_empty());
    }
}
