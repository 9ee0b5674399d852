//! Docker for tests: a local image, a local registry, and cleanup by label.
//!
//! No image can be pulled from outside, so [`busybox_image`] builds one from
//! Debian's static busybox (`busybox-static`): a rootfs with busybox and a
//! link per applet, `docker import`ed under a tag derived from its content, so
//! building again is a cheap `docker image inspect`. [`Registry`] runs
//! Debian's `docker-registry` on a free loopback port (the engine treats
//! 127.0.0.0/8 as an insecure registry by default) so pulls can be tested.
//! [`Containers`] gives a test a label of its own and removes every container
//! carrying it on drop, even ones left by a tool the test SIGKILLed.
//!
//! The docker CLI is the oracle here: test support checks the engine's state
//! the way a person would, independently of the code under test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use crate::port::free_port;
use crate::wait::wait_until;

/// The label key every test container carries; its value is per test.
pub const TEST_LABEL: &str = "fleetkit.test";

/// Where Debian's `busybox-static` puts the binary.
const BUSYBOX: &str = "/bin/busybox";

/// Bumped whenever the rootfs layout below changes, so the tag changes too.
const LAYOUT_VERSION: &str = "fleetkit-busybox-rootfs-v1";

/// The page busybox httpd serves from `/www` in the test image.
pub const INDEX_HTML: &str = "fleetkit busybox\n";

/// Runs `docker ARGS` and returns its output.
///
/// # Panics
/// When the docker CLI cannot be run at all.
pub fn docker(args: &[&str]) -> Output {
    Command::new("docker").args(args).stdin(Stdio::null()).output().expect("run the docker CLI")
}

/// Runs `docker ARGS`, insisting on success; returns trimmed stdout.
///
/// # Panics
/// When the command fails (with its stderr).
pub fn docker_ok(args: &[&str]) -> String {
    let out = docker(args);
    assert!(out.status.success(), "docker {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The busybox test image's tag (`fleetkit-busybox:<content hash>`), built
/// on first use. Its rootfs has `/bin/busybox` and a link for every applet
/// (`sh`, `httpd`, `sleep`, `nc`, `wget` ...), `/www/index.html` holding
/// [`INDEX_HTML`], `/etc/passwd` with root and nobody, and
/// `/etc/not-executable`, a script without the execute bit. Default command:
/// `/bin/sh`.
///
/// # Panics
/// When busybox-static is missing or the engine refuses the import.
#[must_use]
pub fn busybox_image() -> String {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(build_busybox_image).clone()
}

fn build_busybox_image() -> String {
    let busybox = std::fs::read(BUSYBOX).expect("read /bin/busybox (apt-get install busybox-static)");
    let mut hash = Sha256::new();
    hash.update(LAYOUT_VERSION.as_bytes());
    hash.update(&busybox);
    let digest = hash.finalize();
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    let tag = format!("fleetkit-busybox:{hex}");
    if docker(&["image", "inspect", "--format", "{{.Id}}", &tag]).status.success() {
        return tag;
    }

    let dir = tempfile::Builder::new().prefix("fk-rootfs").tempdir().expect("temp dir for the rootfs");
    let root = dir.path().join("rootfs");
    make_rootfs(&root);
    let tar = dir.path().join("rootfs.tar");
    let status = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-cf"])
        .arg(&tar)
        .arg("-C")
        .arg(&root)
        .arg(".")
        .status()
        .expect("run tar");
    assert!(status.success(), "tar of the busybox rootfs failed");
    let tar = tar.to_str().expect("temp paths are UTF-8");
    docker_ok(&["import", "--change", r#"CMD ["/bin/sh"]"#, "--change", "WORKDIR /", tar, &tag]);
    tag
}

fn make_rootfs(root: &Path) {
    use std::os::unix::fs::{symlink, PermissionsExt};
    let mkdir = |p: &str| std::fs::create_dir_all(root.join(p)).expect("make a rootfs dir");
    for d in ["bin", "etc", "www", "root", "tmp", "proc", "sys", "dev", "usr/bin", "var"] {
        mkdir(d);
    }
    std::fs::set_permissions(root.join("tmp"), std::fs::Permissions::from_mode(0o1777)).expect("chmod /tmp");
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    let list = Command::new(BUSYBOX).arg("--list").output().expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        symlink("busybox", root.join("bin").join(applet)).expect("link an applet");
    }
    let write = |p: &str, text: &str, mode: u32| {
        let path = root.join(p);
        std::fs::write(&path, text).expect("write a rootfs file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod a rootfs file");
    };
    write("www/index.html", INDEX_HTML, 0o644);
    write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n", 0o644);
    write("etc/group", "root:x:0:\nnogroup:x:65534:\n", 0o644);
    write("etc/not-executable", "#!/bin/sh\necho should not run\n", 0o644);
}

/// Deletes images on drop, for tags a test made.
#[derive(Debug, Default)]
pub struct ImageGuard {
    tags: Mutex<Vec<String>>,
}

impl ImageGuard {
    /// Remembers `tag` for removal.
    pub fn add(&self, tag: &str) {
        self.tags.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(tag.to_owned());
    }
}

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let tags = std::mem::take(self.tags.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner));
        for tag in tags {
            let _ = docker(&["rmi", "-f", &tag]);
        }
    }
}

/// Debian's `docker-registry` on a free loopback port, storing in a temp dir.
/// Killed, and every image tagged for it removed, on drop.
#[derive(Debug)]
pub struct Registry {
    child: Child,
    addr: String,
    images: ImageGuard,
    _dir: TempDir,
}

impl Registry {
    /// Starts the registry and waits until it answers `GET /v2/`.
    ///
    /// # Panics
    /// When `docker-registry` is missing or does not answer within 20 s.
    #[must_use]
    pub fn start() -> Self {
        let dir = tempfile::Builder::new().prefix("fk-registry").tempdir().expect("temp dir for a registry");
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let storage = dir.path().join("storage");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
                storage.display()
            ),
        )
        .expect("write the registry config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("registry log file");
        let log2 = log.try_clone().expect("clone the log file handle");
        let child = Command::new("/usr/bin/docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2)
            .spawn()
            .expect("start /usr/bin/docker-registry (apt-get install docker-registry)");
        let registry = Self { child, addr, images: ImageGuard::default(), _dir: dir };
        wait_until("the registry to answer GET /v2/", Duration::from_secs(20), || {
            http_get(&registry.addr, "/v2/").is_some_and(|r| r.starts_with("HTTP/1.1 200"))
        });
        registry
    }

    /// `127.0.0.1:PORT`, the prefix of image names in this registry.
    #[must_use]
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Tags `image` as `ADDR/REPO`, pushes it, and deletes the local tag so
    /// that using the returned name needs a pull.
    ///
    /// # Panics
    /// When tagging or pushing fails.
    #[must_use]
    pub fn push(&self, image: &str, repo: &str) -> String {
        let name = format!("{}/{repo}", self.addr);
        self.images.add(&name);
        docker_ok(&["tag", image, &name]);
        docker_ok(&["push", &name]);
        docker_ok(&["rmi", &name]);
        name
    }

    /// Like [`Registry::push`], with one more layer made for this call on
    /// top of `image`, so a pull of the returned name has a layer to
    /// download (a pushed copy of a local image only has layers the engine
    /// already holds).
    ///
    /// # Panics
    /// When the container, commit or push fails.
    #[must_use]
    pub fn push_with_new_layer(&self, image: &str, repo: &str) -> String {
        let name = format!("{}/{repo}", self.addr);
        self.images.add(&name);
        let stamp = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
        let id = docker_ok(&["create", image, "sh", "-c", &format!("echo {stamp} > /layer-stamp")]);
        let made = docker(&["start", "-a", &id]);
        let committed = docker(&["commit", &id, &name]);
        let _ = docker(&["rm", "-f", &id]);
        assert!(made.status.success(), "make the new layer: {}", String::from_utf8_lossy(&made.stderr));
        assert!(committed.status.success(), "commit: {}", String::from_utf8_lossy(&committed.stderr));
        docker_ok(&["push", &name]);
        docker_ok(&["rmi", &name]);
        name
    }

    /// Remembers a local image name for removal with the registry (one a
    /// tool under test pulled from it, say).
    pub fn forget_on_drop(&self, name: &str) {
        self.images.add(name);
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A label value of a test's own and the guard that removes every container
/// carrying it. Pass [`Containers::label`] to `--label` of whatever the
/// test starts; [`Containers::count`] counts what is left.
#[derive(Debug)]
pub struct Containers {
    value: String,
}

impl Containers {
    /// A guard for the test called `test`; the label value is unique per process and call.
    #[must_use]
    pub fn new(test: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self { value: format!("{test}-{}-{n}", std::process::id()) }
    }

    /// `fleetkit.test=VALUE`, for `--label`.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{TEST_LABEL}={}", self.value)
    }

    /// A container name unique to this guard: `fk-VALUE-SUFFIX`.
    #[must_use]
    pub fn name(&self, suffix: &str) -> String {
        format!("fk-{}-{suffix}", self.value)
    }

    /// IDs of the containers (any state) that carry this guard's label.
    #[must_use]
    pub fn ids(&self) -> Vec<String> {
        let filter = format!("label={}", self.label());
        docker_ok(&["ps", "-aq", "--no-trunc", "--filter", &filter]).lines().map(str::to_owned).collect()
    }

    /// How many containers (any state) carry this guard's label.
    #[must_use]
    pub fn count(&self) -> usize {
        self.ids().len()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        let ids = self.ids();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f", "-v"];
            args.extend(ids.iter().map(String::as_str));
            let _ = docker(&args);
        }
    }
}

/// The state of container `name` (`created`, `running`, `exited` ...), or
/// `None` when there is no such container.
#[must_use]
pub fn container_state(name: &str) -> Option<String> {
    let out = docker(&["inspect", "--format", "{{.State.Status}}", name]);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// A plain HTTP/1.1 GET to `addr` (`HOST:PORT`); the whole response, or
/// `None` when nothing answered. For checking a published port.
#[must_use]
pub fn http_get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    (!response.is_empty()).then_some(response)
}
