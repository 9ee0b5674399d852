//! The lab's machine image: Debian 12 with systemd, dbus, sshd and its own
//! Docker engine, built once per recipe.
//!
//! No image can be pulled here, so the image is made from Debian's packages:
//! `debootstrap --variant=minbase` from the mirror apt already uses, a few
//! changes for life as a container (below), then `docker import`. The tag is
//! derived from the recipe ([`RECIPE`], [`PACKAGES`] and the files written),
//! so the image is reused until the recipe changes and rebuilt when it does.
//! A file lock makes concurrent first uses build it once. Building takes
//! about two minutes on a fresh machine (most of it downloading and
//! unpacking about 150 packages) and gives a 430 MB image.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use crate::docker::docker;

/// The image's repository; the tag is the recipe's hash.
pub const REPOSITORY: &str = "fleetkit-machine";

/// The Debian release the machines run (the host's, so that the host's etcd
/// and fleetkit's binaries run on them unchanged).
const SUITE: &str = "bookworm";

/// What debootstrap installs on top of minbase.
pub const PACKAGES: &[&str] =
    &["systemd", "systemd-sysv", "dbus", "iproute2", "docker.io", "ca-certificates", "openssh-server"];

/// Every change made to the bootstrapped tree, as text: it is hashed into
/// the tag, so changing a step here rebuilds the image. Bump the version
/// when the code of [`customise`] changes in a way this text does not show.
const RECIPE: &str = "fleetkit machine recipe v1
- ssh host keys removed; ssh.service generates them on first boot (one set per machine)
- systemd-machine-id-commit.service masked: /etc/machine-id is bind-mounted per machine
- /etc/machine-id emptied
- /etc/docker/daemon.json: DAEMON_JSON
- /usr/local/bin/TOOL -> /opt/fleetkit/bin/TOOL for every fleetkit tool (the build is bind-mounted there)
- apt caches and package lists removed
- CMD /sbin/init, ENV container=docker";

/// Machines pull from the lab registry over plain HTTP; every lab network is
/// a /24 inside this /16. Containers are placed in systemd's slices like any
/// other unit, so they live in the machine's own cgroup and go with it.
const DAEMON_JSON: &str =
    r#"{"insecure-registries": ["10.213.0.0/16"], "exec-opts": ["native.cgroupdriver=systemd"]}"#;

/// Drop-in: generate host keys before sshd's config test.
const SSH_KEYS_DROPIN: &str =
    "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n";

/// The tools linked into `/usr/local/bin`.
pub const TOOLS: &[&str] = &["unitgen", "place", "dockrun", "announce", "clusterctl"];

/// The image's tag for the current recipe.
#[must_use]
pub fn tag() -> String {
    let mut hash = Sha256::new();
    for part in [SUITE, RECIPE, DAEMON_JSON, SSH_KEYS_DROPIN] {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    for part in PACKAGES.iter().chain(TOOLS) {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{REPOSITORY}:{hex}")
}

/// The machine image's tag, built first if the engine does not have it.
///
/// # Errors
/// When debootstrap, tar or the import fails: the message says which and
/// shows the end of its output.
pub fn ensure() -> Result<String, String> {
    let tag = tag();
    if exists(&tag) {
        return Ok(tag);
    }
    let lock_path = std::env::temp_dir().join("fleetkit-lab-image.lock");
    let file = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let _lock = Flock::lock(file, FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("lock {}: {e}", lock_path.display()))?;
    if exists(&tag) {
        return Ok(tag); // another process built it while this one waited
    }
    build(&tag)?;
    Ok(tag)
}

fn exists(tag: &str) -> bool {
    docker(&["image", "inspect", "--format", "{{.Id}}", tag]).status.success()
}

fn build(tag: &str) -> Result<(), String> {
    let started = Instant::now();
    let mirror = mirror();
    eprintln!(
        "lab: building the machine image {tag} once for this recipe: debootstrap {SUITE} from {mirror} \
         (about 2 minutes)"
    );
    // On disk, not on a tmpfs /tmp: the tree is about 600 MB before clean-up.
    let dir = tempfile::Builder::new()
        .prefix("fleetkit-machine-rootfs")
        .tempdir_in("/var/tmp")
        .map_err(|e| format!("temp dir in /var/tmp: {e}"))?;
    let root = dir.path().join("rootfs");
    debootstrap(&root, &mirror)?;
    customise(&root).map_err(|e| format!("preparing the machine rootfs {}: {e}", root.display()))?;
    eprintln!("lab: importing the rootfs into the engine as {tag}");
    import(&root, tag)?;
    eprintln!("lab: built {tag} in {} s", started.elapsed().as_secs());
    Ok(())
}

/// The Debian mirror apt uses (`FLEETKIT_LAB_MIRROR` overrides it).
fn mirror() -> String {
    if let Ok(m) = std::env::var("FLEETKIT_LAB_MIRROR") {
        return m;
    }
    let deb822 = fs::read_to_string("/etc/apt/sources.list.d/debian.sources").unwrap_or_default();
    let list = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    mirror_from(&deb822, &list).unwrap_or_else(|| "http://deb.debian.org/debian".to_owned())
}

/// The first archive (not security) that serves [`SUITE`], from a deb822
/// sources file or a one-line-style list.
fn mirror_from(deb822: &str, list: &str) -> Option<String> {
    for stanza in deb822.split("\n\n") {
        let field =
            |name: &str| stanza.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim().to_owned()));
        let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) else { continue };
        if suites.split_whitespace().any(|s| s == SUITE) {
            return uris.split_whitespace().next().map(str::to_owned);
        }
    }
    list.lines().find_map(|line| {
        let words: Vec<&str> = line.split_whitespace().filter(|w| !w.starts_with('[')).collect();
        (words.len() >= 3 && words[0] == "deb" && words[2] == SUITE).then(|| words[1].to_owned())
    })
}

/// Runs debootstrap, printing the first line of each phase (retrieving,
/// extracting, installing, configuring ...) rather than its hundreds of lines.
fn debootstrap(root: &Path, mirror: &str) -> Result<(), String> {
    let mut child = Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={}", PACKAGES.join(",")), SUITE])
        .arg(root)
        .arg(mirror)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("run debootstrap: {e} (apt-get install debootstrap)"))?;
    let mut phases: Vec<String> = Vec::new();
    let mut last = Vec::new();
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let word = line.strip_prefix("I: ").and_then(|l| l.split_whitespace().next()).unwrap_or("");
            if !word.is_empty() && !phases.iter().any(|p| p == word) {
                eprintln!("lab: debootstrap: {}", line.trim_start_matches("I: "));
                phases.push(word.to_owned());
            }
            last.push(line);
            if last.len() > 20 {
                last.remove(0);
            }
        }
    }
    let status = child.wait().map_err(|e| format!("wait for debootstrap: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "debootstrap {SUITE} from {mirror} failed ({status}); its last lines:\n{}",
            last.join("\n")
        ))
    }
}

/// The changes [`RECIPE`] lists.
fn customise(root: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::symlink;
    for entry in fs::read_dir(root.join("etc/ssh"))? {
        let path = entry?.path();
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("ssh_host_")) {
            fs::remove_file(path)?;
        }
    }
    let dropin = root.join("etc/systemd/system/ssh.service.d");
    fs::create_dir_all(&dropin)?;
    fs::write(dropin.join("host-keys.conf"), SSH_KEYS_DROPIN)?;
    let commit = root.join("etc/systemd/system/systemd-machine-id-commit.service");
    let _ = fs::remove_file(&commit);
    symlink("/dev/null", commit)?;
    fs::write(root.join("etc/machine-id"), "")?;
    fs::create_dir_all(root.join("etc/docker"))?;
    fs::write(root.join("etc/docker/daemon.json"), format!("{DAEMON_JSON}\n"))?;
    fs::create_dir_all(root.join("opt/fleetkit/bin"))?;
    for tool in TOOLS {
        let link = root.join("usr/local/bin").join(tool);
        let _ = fs::remove_file(&link);
        symlink(format!("/opt/fleetkit/bin/{tool}"), link)?;
    }
    for dir in ["var/cache/apt/archives", "var/lib/apt/lists"] {
        for entry in fs::read_dir(root.join(dir))? {
            let path = entry?.path();
            if path.is_file() {
                fs::remove_file(path)?;
            }
        }
    }
    Ok(())
}

fn import(root: &Path, tag: &str) -> Result<(), String> {
    let mut tar = Command::new("tar")
        .args(["--numeric-owner", "-C"])
        .arg(root)
        .args(["-cf", "-", "."])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("run tar: {e}"))?;
    let stdout = tar.stdout.take().ok_or("tar's stdout")?;
    let out = Command::new("docker")
        .args(["import", "--change", r#"CMD ["/sbin/init"]"#, "--change", "ENV container=docker", "-", tag])
        .stdin(stdout)
        .output()
        .map_err(|e| format!("run docker import: {e}"))?;
    let tar_status = tar.wait().map_err(|e| format!("wait for tar: {e}"))?;
    if !tar_status.success() {
        return Err(format!("tar of {} failed ({tar_status})", root.display()));
    }
    if !out.status.success() {
        return Err(format!("docker import {tag} failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_is_read_from_either_sources_format() {
        let deb822 = "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\n\n\
                      Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm bookworm-updates\n";
        assert_eq!(mirror_from(deb822, "").as_deref(), Some("http://mirror.example/debian"));
        let list = "# comment\ndeb [arch=amd64] http://other.example/debian bookworm main\n";
        assert_eq!(mirror_from("", list).as_deref(), Some("http://other.example/debian"));
        assert_eq!(mirror_from("", "deb http://x/debian bullseye main\n"), None);
    }

    #[test]
    fn tag_is_stable_and_names_the_repository() {
        assert_eq!(tag(), tag());
        assert!(tag().starts_with("fleetkit-machine:"));
    }
}
