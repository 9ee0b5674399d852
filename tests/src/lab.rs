//! The machine lab: real machines and a real etcd cluster on a network of
//! their own, for the tests that need machines and for `make demo`.
//!
//! A machine is a container with systemd as PID 1, its own IP, its own
//! `/etc/machine-id`, sshd, and its own Docker engine (so every machine has
//! its own port 3000), booted from the image [`image`] builds. etcd runs as
//! members in containers on the same network (the host's `etcd` binary), so a
//! member can be killed, paused and cut off like a machine; a registry
//! (Debian's `docker-registry`) serves the busybox test image to every
//! machine, so units can `--pull always` for real. The host is on the network
//! too (the bridge's gateway) and reaches every address directly.
//!
//! Addresses on the lab's `10.213.N.0/24`: `.1` the host, `.2` the registry,
//! `.11`.. etcd members, `.101`.. machines. fleetkit's built binaries are
//! bind-mounted read-only at `/opt/fleetkit/bin` and linked from
//! `/usr/local/bin`; `/etc/environment` (also at `/etc/fleetkit/fleetkit.env`,
//! where fleetkit's services read their etcd options) holds
//! `COREOS_PUBLIC_IPV4`, `COREOS_PRIVATE_IPV4` and `ETCDCTL_ENDPOINTS`.
//!
//! A lab started with [`LabBuilder::tls`] is a production-like cluster: its
//! members serve clients over https only, with a CA of the lab's own and
//! `--client-cert-auth` (with etcd auth on, a certificate's common name is its
//! user); every machine gets the CA and a client pair of its own whose common
//! name is its etcd user, `fleetkit-machine-ID`, at `/etc/fleetkit/tls/`
//! (`ca.pem`, `machine.pem`, `machine-key.pem`), and its environment names
//! them (`ETCDCTL_CACERT`, `ETCDCTL_CERT`, `ETCDCTL_KEY`). The host talks to
//! the members with a pair whose common name is `root` ([`TLS_ROOT`]).
//! Peers still talk plain HTTP among themselves.
//!
//! Everything a lab makes carries the label `fleetkit.lab=NAME` and
//! `fleetkit.lab.owner=PID`; dropping the [`Lab`] removes it all (also when
//! the test panicked), and starting a lab first removes what a killed run
//! left (labs whose owner process is gone). Labs start one at a time (a file
//! lock): each machine runs systemd and dockerd, and two cores do not boot
//! two clusters at once any faster.

pub mod image;

use std::fs::{self, File};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};
use sha2::{Digest, Sha256};

use crate::docker::{busybox_image, docker, docker_ok};
use crate::etcd::{etcdctl_cmd, leader_endpoint};
use crate::tls::TlsFiles;

/// Label on everything a lab makes; its value is the lab's name.
pub const LABEL: &str = "fleetkit.lab";
/// Label holding the PID of the process that owns the lab.
pub const OWNER_LABEL: &str = "fleetkit.lab.owner";
/// The /16 that every lab's /24 comes from (the machine image trusts its
/// registries over plain HTTP).
const NET_PREFIX: [u8; 2] = [10, 213];
/// How long a machine may take to boot (systemd running, engine up).
const BOOT_TIMEOUT: Duration = Duration::from_secs(90);
/// The port etcd members serve clients on.
pub const ETCD_PORT: u16 = 2379;
/// The port the registry serves on inside the lab.
const REGISTRY_PORT: u16 = 5000;
/// The test image's name in the lab registry.
const IMAGE_REPO: &str = "fleetkit/busybox:latest";
/// The common name of the host's client certificate in a TLS lab: etcd's
/// `root` once auth is on.
pub const TLS_ROOT: &str = "root";
/// Where a TLS lab's machines find the CA and their own client pair.
pub const MACHINE_TLS_DIR: &str = "/etc/fleetkit/tls";
/// Where a TLS lab's members find the CA and their server pair.
const MEMBER_TLS_DIR: &str = "/etc/etcd/tls";

/// How to start a lab.
#[derive(Debug, Clone)]
pub struct LabBuilder {
    machines: usize,
    etcd: usize,
    bin_dir: Option<PathBuf>,
    owner: u32,
    tls: bool,
}

/// A running lab; removed on drop unless [`Lab::keep`] was called.
#[derive(Debug)]
pub struct Lab {
    name: String,
    network: String,
    subnet: [u8; 3],
    dir: PathBuf,
    machines: Vec<Machine>,
    etcd: Vec<EtcdMember>,
    image: String,
    tls: Option<LabTls>,
    keep: bool,
    _lock: Option<Flock<File>>,
}

/// A TLS lab's CA (to sign more pairs) and the host's files, copied into the
/// lab's directory (so a kept lab works after the CA's temp dir is gone).
#[derive(Debug)]
struct LabTls {
    files: TlsFiles,
    ca: PathBuf,
    root_cert: PathBuf,
    root_key: PathBuf,
}

/// A container on the lab network: a machine or an etcd member. The fault
/// operations a test needs are here.
#[derive(Debug, Clone)]
pub struct Host {
    container: String,
    hostname: String,
    ip: Ipv4Addr,
    network: String,
}

/// A lab machine: systemd, sshd and a Docker engine at its own address.
#[derive(Debug, Clone)]
pub struct Machine {
    host: Host,
    id: String,
}

/// An etcd member of the lab's cluster.
#[derive(Debug, Clone)]
pub struct EtcdMember {
    host: Host,
    name: String,
    scheme: &'static str,
}

impl Lab {
    /// A builder: one machine and one etcd member unless told otherwise,
    /// fleetkit's binaries from beside the running test.
    #[must_use]
    #[allow(clippy::new_ret_no_self)]
    pub fn new() -> LabBuilder {
        LabBuilder { machines: 1, etcd: 1, bin_dir: None, owner: std::process::id(), tls: false }
    }
}

impl LabBuilder {
    /// How many machines (at most 99).
    #[must_use]
    pub fn machines(mut self, n: usize) -> Self {
        self.machines = n;
        self
    }

    /// How many etcd members (at most 9; 3 for fault tests).
    #[must_use]
    pub fn etcd(mut self, n: usize) -> Self {
        self.etcd = n;
        self
    }

    /// Where fleetkit's built binaries are (default: `target/debug`, beside
    /// the test executable).
    #[must_use]
    pub fn bin_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.bin_dir = Some(dir.into());
        self
    }

    /// Members serve https only with the lab's CA and `--client-cert-auth`,
    /// and every machine logs in with a client pair of its own (common name
    /// `fleetkit-machine-ID`); see the module's description.
    #[must_use]
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// The process whose death makes the lab a leftover that the next lab
    /// removes (default: this process).
    #[must_use]
    pub fn owner(mut self, pid: u32) -> Self {
        self.owner = pid;
        self
    }

    /// Builds the image if needed, removes leftovers of dead owners, and
    /// starts the network, etcd, the registry and the machines; returns once
    /// etcd is healthy and every machine has booted with its engine up.
    ///
    /// # Panics
    /// When any of it fails: the test cannot run. Whatever was made is
    /// removed first.
    #[must_use]
    pub fn start(self) -> Lab {
        self.try_start().unwrap_or_else(|e| panic!("lab: {e}"))
    }

    /// [`LabBuilder::start`], with the failure as an error.
    ///
    /// # Errors
    /// When the image cannot be built or a container does not come up.
    pub fn try_start(self) -> Result<Lab, String> {
        if !(1..=99).contains(&self.machines) || !(1..=9).contains(&self.etcd) {
            return Err(format!(
                "a lab has 1 to 99 machines and 1 to 9 etcd members, not {} and {}",
                self.machines, self.etcd
            ));
        }
        let bin_dir = match self.bin_dir.clone() {
            Some(d) => d,
            None => crate::bin::dir(),
        };
        let bin_dir = bin_dir.canonicalize().map_err(|e| format!("{}: {e}", bin_dir.display()))?;
        let image = image::ensure()?;
        let lock_path = std::env::temp_dir().join("fleetkit-lab.lock");
        let file = File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
        let lock = Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, e)| format!("lock {}: {e}", lock_path.display()))?;
        remove_leftovers();

        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let name = format!("{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let dir = lab_dir(&name);
        let (network, subnet) = create_network(&name, self.owner)?;
        let mut lab = Lab {
            network: network.clone(),
            subnet,
            dir,
            machines: Vec::new(),
            etcd: Vec::new(),
            image,
            tls: None,
            keep: false,
            _lock: Some(lock),
            name,
        };
        // From here on, an error drops `lab`, which removes what was made.
        fs::create_dir_all(&lab.dir).map_err(|e| format!("{}: {e}", lab.dir.display()))?;
        lab.make_ssh_key()?;
        if self.tls {
            lab.make_tls()?;
        }
        lab.start_etcd(self.etcd, self.owner)?;
        let registry_port = lab.start_registry(self.owner)?;
        lab.start_machines(self.machines, self.owner, &bin_dir)?;
        lab.push_test_image(registry_port)?;
        lab.wait_etcd_healthy(Duration::from_secs(30))?;
        for m in &lab.machines {
            m.wait_booted(BOOT_TIMEOUT)?;
        }
        Ok(lab)
    }
}

impl Lab {
    /// The lab's name (the value of its `fleetkit.lab` label).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Docker network the lab's containers share.
    #[must_use]
    pub fn network(&self) -> &str {
        &self.network
    }

    /// `fleetkit.lab=NAME`, for `docker ps --filter label=...`.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{LABEL}={}", self.name)
    }

    /// The machines, in order (`m1` first).
    #[must_use]
    pub fn machines(&self) -> &[Machine] {
        &self.machines
    }

    /// The etcd members, in order.
    #[must_use]
    pub fn etcd(&self) -> &[EtcdMember] {
        &self.etcd
    }

    /// Every member's client URL, comma separated (for `--endpoints`).
    #[must_use]
    pub fn endpoints(&self) -> String {
        self.etcd.iter().map(EtcdMember::client_url).collect::<Vec<_>>().join(",")
    }

    /// The flags a fleetkit tool on the host needs to reach every member:
    /// `--endpoints` and, in a TLS lab, `--cacert --cert --key` with the
    /// host's pair (common name [`TLS_ROOT`]).
    #[must_use]
    pub fn client_args(&self) -> Vec<String> {
        match &self.tls {
            Some(t) => self.client_args_with(&t.root_cert, &t.root_key),
            None => vec!["--endpoints".to_owned(), self.endpoints()],
        }
    }

    /// [`Lab::client_args`] for a client with a pair of its own (made with
    /// [`Lab::tls`]): `--endpoints`, `--cacert` and that `--cert --key`.
    #[must_use]
    pub fn client_args_with(&self, cert: &Path, key: &Path) -> Vec<String> {
        let mut args = vec!["--endpoints".to_owned(), self.endpoints()];
        if let Some(t) = &self.tls {
            for (flag, path) in [("--cacert", t.ca.as_path()), ("--cert", cert), ("--key", key)] {
                args.push(flag.to_owned());
                args.push(path.display().to_string());
            }
        }
        args
    }

    /// The CA of a TLS lab, to sign more client pairs (a scheduler's, say)
    /// with [`TlsFiles::client`]; `None` in a plain lab.
    #[must_use]
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref().map(|t| &t.files)
    }

    /// etcdctl on the host against every member (in a TLS lab with the
    /// host's pair: `root` once auth is on).
    #[must_use]
    pub fn etcdctl(&self) -> Command {
        let endpoints: Vec<String> = self.etcd.iter().map(EtcdMember::client_url).collect();
        let flags: Vec<String> = self
            .tls
            .iter()
            .flat_map(|t| {
                [
                    format!("--cacert={}", t.ca.display()),
                    format!("--cert={}", t.root_cert.display()),
                    format!("--key={}", t.root_key.display()),
                ]
            })
            .collect();
        etcdctl_cmd(&flags, &endpoints)
    }

    /// The index of the member that leads, if the members agree on one.
    #[must_use]
    pub fn leader(&self) -> Option<usize> {
        let ep = leader_endpoint(&mut self.etcdctl())?;
        self.etcd.iter().position(|m| m.client_url() == ep)
    }

    /// Waits until a member other than `not` leads, and returns it.
    ///
    /// # Panics
    /// When none does within `timeout`.
    #[must_use]
    pub fn wait_leader(&self, not: Option<usize>, timeout: Duration) -> usize {
        crate::wait::wait_for("an etcd leader in the lab", timeout, || {
            self.leader().filter(|l| Some(*l) != not)
        })
        .0
    }

    /// The test image as machines name it: in the lab registry, so that
    /// `docker pull` and `--pull always` on a machine really pull. Its
    /// content is [`crate::docker::busybox_image`]'s (httpd serves
    /// [`crate::docker::INDEX_HTML`] from `/www`).
    #[must_use]
    pub fn image(&self) -> String {
        format!("{}:{REGISTRY_PORT}/{IMAGE_REPO}", self.ip(2))
    }

    /// The private key that every machine's root accepts.
    #[must_use]
    pub fn ssh_key(&self) -> PathBuf {
        self.dir.join("id_ed25519")
    }

    /// `ssh` as root to `machine` with the lab's key, host keys not checked
    /// (every boot makes new ones); append the remote command.
    #[must_use]
    pub fn ssh(&self, machine: &Machine) -> Command {
        let mut cmd = Command::new("ssh");
        cmd.arg("-i")
            .arg(self.ssh_key())
            .args([
                "-o",
                "BatchMode=yes",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
            ])
            .args(["-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5"])
            .arg(format!("root@{}", machine.ip()))
            .stdin(Stdio::null());
        cmd
    }

    /// Leaves everything running after this value is gone (for the `lab`
    /// command); `lab down NAME` or the next lab after the owner died
    /// removes it.
    pub fn keep(mut self) {
        self.keep = true;
    }

    fn ip(&self, host: u8) -> Ipv4Addr {
        let [a, b, c] = self.subnet;
        Ipv4Addr::new(a, b, c, host)
    }

    fn host(&self, kind: &str, index: usize, ip: Ipv4Addr) -> Host {
        Host {
            container: format!("fk-lab-{}-{kind}{index}", self.name),
            hostname: format!("{kind}{index}"),
            ip,
            network: self.network.clone(),
        }
    }

    fn labels(&self, owner: u32) -> [String; 4] {
        ["--label".into(), self.label(), "--label".into(), format!("{OWNER_LABEL}={owner}")]
    }

    fn make_ssh_key(&self) -> Result<(), String> {
        let out = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", &format!("fleetkit-lab-{}", self.name), "-f"])
            .arg(self.ssh_key())
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("run ssh-keygen: {e} (apt-get install openssh-client)"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!("ssh-keygen failed: {}", String::from_utf8_lossy(&out.stderr).trim()))
        }
    }

    /// The CA and the host's pair, in the lab's directory.
    fn make_tls(&mut self) -> Result<(), String> {
        let files = TlsFiles::generate();
        let (cert, key) = files.client(TLS_ROOT);
        let dir = self.dir.join("tls");
        let [ca, root_cert, root_key] =
            copy_pem(&dir, [(&files.ca, "ca.pem"), (&cert, "root.pem"), (&key, "root-key.pem")])?;
        self.tls = Some(LabTls { files, ca, root_cert, root_key });
        Ok(())
    }

    fn start_etcd(&mut self, n: usize, owner: u32) -> Result<(), String> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let members: Vec<EtcdMember> = (1..=n)
            .map(|i| EtcdMember {
                host: self.host("etcd", i, self.ip(10 + u8::try_from(i).unwrap_or(9))),
                name: format!("etcd{i}"),
                scheme,
            })
            .collect();
        let cluster: Vec<String> =
            members.iter().map(|m| format!("{}=http://{}:2380", m.name, m.ip())).collect();
        let cluster = cluster.join(",");
        for m in &members {
            let ip = m.ip().to_string();
            let mut args = self.run_args(&m.host, owner);
            let mut tls_flags = Vec::new();
            if let Some(t) = &self.tls {
                let (cert, key) = t.files.server(&m.name, &[m.ip().into()]);
                let dir = self.dir.join(&m.hostname).join("tls");
                copy_pem(&dir, [(&t.files.ca, "ca.pem"), (&cert, "server.pem"), (&key, "server-key.pem")])?;
                args.extend(["-v".to_owned(), format!("{}:{MEMBER_TLS_DIR}:ro", dir.display())]);
                tls_flags = [
                    "--cert-file",
                    &format!("{MEMBER_TLS_DIR}/server.pem"),
                    "--key-file",
                    &format!("{MEMBER_TLS_DIR}/server-key.pem"),
                    "--trusted-ca-file",
                    &format!("{MEMBER_TLS_DIR}/ca.pem"),
                    "--client-cert-auth",
                ]
                .map(str::to_owned)
                .into();
            }
            args.extend(
                [
                    "-v",
                    "/usr/bin/etcd:/usr/local/bin/etcd:ro",
                    "--entrypoint",
                    "/usr/local/bin/etcd",
                    &self.image,
                    "--name",
                    &m.name,
                    "--data-dir",
                    "/var/lib/etcd/data",
                    "--listen-client-urls",
                    &format!("{scheme}://0.0.0.0:{ETCD_PORT}"),
                    "--advertise-client-urls",
                    &format!("{scheme}://{ip}:{ETCD_PORT}"),
                    "--listen-peer-urls",
                    "http://0.0.0.0:2380",
                    "--initial-advertise-peer-urls",
                    &format!("http://{ip}:2380"),
                    "--initial-cluster",
                    &cluster,
                    "--initial-cluster-token",
                    &format!("fleetkit-lab-{}", self.name),
                    "--initial-cluster-state",
                    "new",
                ]
                .map(str::to_owned),
            );
            args.extend(tls_flags);
            run_container(&args)?;
        }
        self.etcd = members;
        Ok(())
    }

    /// Starts the registry; returns its port published on the host's loopback
    /// (where the host's engine pushes without TLS).
    fn start_registry(&self, owner: u32) -> Result<u16, String> {
        let config = self.dir.join("registry.yml");
        fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n\
                 http:\n  addr: 0.0.0.0:{REGISTRY_PORT}\n"
            ),
        )
        .map_err(|e| format!("{}: {e}", config.display()))?;
        let host = self.host("registry", 0, self.ip(2));
        let mut args = self.run_args(&host, owner);
        args.extend(
            [
                "-p",
                &format!("127.0.0.1::{REGISTRY_PORT}"),
                "-v",
                "/usr/bin/docker-registry:/usr/local/bin/docker-registry:ro",
                "-v",
                &format!("{}:/etc/docker-registry.yml:ro", config.display()),
                "--entrypoint",
                "/usr/local/bin/docker-registry",
                &self.image,
                "serve",
                "/etc/docker-registry.yml",
            ]
            .map(str::to_owned),
        );
        run_container(&args)?;
        let port = docker_ok(&["port", &host.container, &format!("{REGISTRY_PORT}/tcp")]);
        let port = port
            .lines()
            .find_map(|l| l.strip_prefix("127.0.0.1:"))
            .and_then(|p| p.trim().parse().ok())
            .ok_or_else(|| format!("the registry's published port: {port:?}"))?;
        Ok(port)
    }

    fn push_test_image(&self, port: u16) -> Result<(), String> {
        let local = format!("127.0.0.1:{port}/{IMAGE_REPO}");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        wait_for_port(addr, Duration::from_secs(20)).map_err(|e| format!("the lab registry: {e}"))?;
        docker_ok(&["tag", &busybox_image(), &local]);
        let pushed = docker(&["push", &local]);
        let _ = docker(&["rmi", &local]);
        if pushed.status.success() {
            Ok(())
        } else {
            Err(format!("push to the lab registry: {}", String::from_utf8_lossy(&pushed.stderr).trim()))
        }
    }

    fn start_machines(&mut self, n: usize, owner: u32, bin_dir: &Path) -> Result<(), String> {
        let endpoints = self.endpoints();
        for i in 1..=n {
            let host = self.host("m", i, self.ip(100 + u8::try_from(i).unwrap_or(99)));
            let id = machine_id(&self.name, i);
            let files = self.dir.join(&host.hostname);
            fs::create_dir_all(&files).map_err(|e| format!("{}: {e}", files.display()))?;
            let write = |name: &str, text: String| {
                let path = files.join(name);
                fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
                Ok::<_, String>(path.display().to_string())
            };
            let machine_id_file = write("machine-id", format!("{id}\n"))?;
            let ip = host.ip;
            let mut env = format!(
                "COREOS_PUBLIC_IPV4={ip}\nCOREOS_PRIVATE_IPV4={ip}\nETCDCTL_API=3\nETCDCTL_ENDPOINTS={endpoints}\n"
            );
            let mut args = self.run_args(&host, owner);
            if let Some(t) = &self.tls {
                let (cert, key) = t.files.client(&format!("fleetkit-machine-{id}"));
                let dir = files.join("tls");
                copy_pem(&dir, [(&t.files.ca, "ca.pem"), (&cert, "machine.pem"), (&key, "machine-key.pem")])?;
                args.extend(["-v".to_owned(), format!("{}:{MACHINE_TLS_DIR}:ro", dir.display())]);
                env.push_str(&format!(
                    "ETCDCTL_CACERT={MACHINE_TLS_DIR}/ca.pem\nETCDCTL_CERT={MACHINE_TLS_DIR}/machine.pem\n\
                     ETCDCTL_KEY={MACHINE_TLS_DIR}/machine-key.pem\n"
                ));
            }
            let env = write("environment", env)?;
            args.extend(
                [
                    "--cap-add",
                    "ALL",
                    "--cap-drop",
                    "SYS_RESOURCE",
                    "--security-opt",
                    "seccomp=unconfined",
                    "--security-opt",
                    "apparmor=unconfined",
                    "--cgroupns=host",
                    "-v",
                    "/sys/fs/cgroup:/sys/fs/cgroup:rw",
                    "--tmpfs",
                    "/run",
                    "--tmpfs",
                    "/run/lock",
                    "--tmpfs",
                    "/var/lib/docker:exec",
                    "-v",
                    &format!("{machine_id_file}:/etc/machine-id:ro"),
                    "-v",
                    &format!("{env}:/etc/environment:ro"),
                    "-v",
                    &format!("{env}:/etc/fleetkit/fleetkit.env:ro"),
                    "-v",
                    &format!("{}.pub:/root/.ssh/authorized_keys:ro", self.ssh_key().display()),
                    "-v",
                    &format!("{}:/opt/fleetkit/bin:ro", bin_dir.display()),
                    "-v",
                    "/usr/bin/etcdctl:/usr/local/bin/etcdctl:ro",
                    &self.image,
                ]
                .map(str::to_owned),
            );
            run_container(&args)?;
            self.machines.push(Machine { host, id });
        }
        Ok(())
    }

    fn run_args(&self, host: &Host, owner: u32) -> Vec<String> {
        let mut args: Vec<String> =
            ["run", "-d", "--name", &host.container, "--hostname", &host.hostname].map(str::to_owned).into();
        args.extend(["--network".into(), self.network.clone(), "--ip".into(), host.ip.to_string()]);
        args.extend(self.labels(owner));
        args
    }

    fn wait_etcd_healthy(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let out = self.etcdctl().args(["endpoint", "health"]).output();
            if out.as_ref().is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            if start.elapsed() > timeout {
                let logs: Vec<String> = self.etcd.iter().map(|m| m.logs(10)).collect();
                return Err(format!(
                    "etcd did not become healthy within {timeout:?}; its logs:\n{}",
                    logs.join("\n")
                ));
            }
            std::thread::park_timeout(Duration::from_millis(200));
        }
    }

    /// What a failed test needs to see: every machine's failed units and
    /// the end of its journal, every member's log.
    fn print_diagnostics(&self) {
        for m in &self.machines {
            let failed = m.exec(&["systemctl", "--failed", "--no-legend", "--plain"]);
            eprintln!(
                "lab: {} ({}) failed units: {}",
                m.hostname,
                m.ip,
                String::from_utf8_lossy(&failed.stdout).trim()
            );
            eprintln!("lab: {} journal:\n{}", m.hostname, m.journal(&["-n", "30"]));
        }
        for e in &self.etcd {
            eprintln!("lab: {} log:\n{}", e.name, e.logs(10));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if std::thread::panicking() {
            self.print_diagnostics();
        }
        remove_lab(&self.name);
    }
}

impl Host {
    /// The container's name on the engine.
    #[must_use]
    pub fn container(&self) -> &str {
        &self.container
    }

    /// The hostname (`m1`, `etcd2` ...).
    #[must_use]
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The address on the lab network.
    #[must_use]
    pub fn ip(&self) -> Ipv4Addr {
        self.ip
    }

    /// `docker exec` as root; the command's output.
    ///
    /// # Panics
    /// When the docker CLI cannot be run.
    #[must_use]
    pub fn exec(&self, args: &[&str]) -> Output {
        let mut all = vec!["exec", self.container.as_str()];
        all.extend_from_slice(args);
        docker(&all)
    }

    /// Kills the container at once (SIGKILL to everything in it), as a
    /// machine that loses power.
    pub fn kill(&self) {
        docker_ok(&["kill", &self.container]);
    }

    /// Stops the container as a shutdown does (SIGTERM to PID 1, then SIGKILL
    /// after 10 s).
    pub fn stop(&self) {
        docker_ok(&["stop", "-t", "10", &self.container]);
    }

    /// Freezes every process of the container (a hung host).
    pub fn pause(&self) {
        docker_ok(&["pause", &self.container]);
    }

    /// Thaws what [`Host::pause`] froze.
    pub fn unpause(&self) {
        docker_ok(&["unpause", &self.container]);
    }

    /// Cuts the container off the lab network: it reaches nothing and nothing
    /// reaches it, while everything in it keeps running.
    pub fn disconnect(&self) {
        docker_ok(&["network", "disconnect", &self.network, &self.container]);
    }

    /// Puts the container back on the network at the same address.
    pub fn reconnect(&self) {
        docker_ok(&["network", "connect", "--ip", &self.ip.to_string(), &self.network, &self.container]);
    }

    /// Whether the container is running (not killed, stopped or gone).
    #[must_use]
    pub fn is_running(&self) -> bool {
        crate::docker::container_state(&self.container).as_deref() == Some("running")
    }

    fn start_container(&self) {
        docker_ok(&["start", &self.container]);
    }

    fn logs(&self, lines: usize) -> String {
        let out = docker(&["logs", "--tail", &lines.to_string(), &self.container]);
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
    }
}

impl Deref for Machine {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

impl Deref for EtcdMember {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.host
    }
}

impl Machine {
    /// The machine's ID (its `/etc/machine-id`, 32 hex digits).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `sh -c SCRIPT` on the machine, with `/etc/environment` exported first
    /// (as systemd's `EnvironmentFile=` and a login shell would have it).
    #[must_use]
    pub fn sh(&self, script: &str) -> Output {
        self.exec(&["sh", "-c", &format!("set -a; . /etc/environment; set +a; {script}")])
    }

    /// `journalctl --no-pager ARGS` on the machine; its output.
    #[must_use]
    pub fn journal(&self, args: &[&str]) -> String {
        let mut all = vec!["journalctl", "--no-pager"];
        all.extend_from_slice(args);
        let out = self.exec(&all);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Copies the unit file at `path` on the host into the machine's
    /// `/etc/systemd/system` and has systemd reload.
    ///
    /// # Panics
    /// When the copy or the reload fails.
    pub fn install_unit(&self, path: &Path) {
        let name = path.file_name().and_then(|n| n.to_str()).expect("a unit file name");
        docker_ok(&[
            "cp",
            &path.display().to_string(),
            &format!("{}:/etc/systemd/system/{name}", self.container),
        ]);
        let out = self.exec(&["systemctl", "daemon-reload"]);
        assert!(
            out.status.success(),
            "daemon-reload on {}: {}",
            self.hostname,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// `systemctl ARGS` on the machine, insisting on success; its stdout.
    ///
    /// # Panics
    /// When systemctl fails (with its stderr and the journal's end).
    pub fn systemctl(&self, args: &[&str]) -> String {
        let mut all = vec!["systemctl"];
        all.extend_from_slice(args);
        let out = self.exec(&all);
        assert!(
            out.status.success(),
            "systemctl {args:?} on {}: {}\n{}",
            self.hostname,
            String::from_utf8_lossy(&out.stderr),
            self.journal(&["-n", "20"])
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A unit's property as `systemctl show -p NAME --value` prints it.
    #[must_use]
    pub fn unit_property(&self, unit: &str, property: &str) -> String {
        let out = self.exec(&["systemctl", "show", "-p", property, "--value", unit]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// `systemctl is-system-running`: `running` once booted with nothing
    /// failed.
    #[must_use]
    pub fn system_state(&self) -> String {
        String::from_utf8_lossy(&self.exec(&["systemctl", "is-system-running"]).stdout).trim().to_owned()
    }

    /// Starts a stopped or killed machine again and waits until it has booted
    /// (a fresh boot: `/run` and the engine's storage start empty).
    ///
    /// # Panics
    /// When it does not boot in time.
    pub fn start(&self) {
        self.start_container();
        self.wait_booted(BOOT_TIMEOUT).unwrap_or_else(|e| panic!("lab: {e}"));
    }

    /// Waits until systemd has finished booting and the engine answers.
    fn wait_booted(&self, timeout: Duration) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let state = self.system_state();
            if matches!(state.as_str(), "running" | "degraded")
                && self.exec(&["docker", "version", "--format", "{{.Server.Version}}"]).status.success()
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(format!(
                    "machine {} ({}) did not boot within {timeout:?}: system state {state:?}; journal:\n{}",
                    self.hostname,
                    self.ip,
                    self.journal(&["-n", "30"])
                ));
            }
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }
}

impl EtcdMember {
    /// The member's name (`etcd1` ...).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `http://IP:2379`, or `https://IP:2379` in a TLS lab.
    #[must_use]
    pub fn client_url(&self) -> String {
        format!("{}://{}:{ETCD_PORT}", self.scheme, self.ip)
    }

    /// Starts a stopped or killed member again with its data, and waits until
    /// it answers (whether it is healthy depends on the others).
    ///
    /// # Panics
    /// When it does not answer in time.
    pub fn start(&self) {
        self.start_container();
        let addr = SocketAddr::from((self.ip, ETCD_PORT));
        wait_for_port(addr, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("lab: etcd member {}: {e}", self.name));
    }
}

/// The machine ID of machine `index` of lab `name`: 32 hex digits, unique
/// per lab and machine.
fn machine_id(name: &str, index: usize) -> String {
    let digest = Sha256::digest(format!("fleetkit-lab {name} machine {index}").as_bytes());
    digest.iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// Where a lab keeps its host-side files (keys, machine IDs, environments).
fn lab_dir(name: &str) -> PathBuf {
    PathBuf::from("/var/tmp").join(format!("fleetkit-lab-{name}"))
}

/// Creates the lab's network on the first free `10.213.N.0/24`.
fn create_network(name: &str, owner: u32) -> Result<(String, [u8; 3]), String> {
    let network = format!("fk-lab-{name}");
    let start = std::process::id() as usize;
    let mut last = String::new();
    for k in 0..254 {
        let n = u8::try_from(1 + (start + k) % 254).unwrap_or(1);
        let subnet = [NET_PREFIX[0], NET_PREFIX[1], n];
        let cidr = format!("{}.{}.{n}.0/24", subnet[0], subnet[1]);
        let gateway = format!("{}.{}.{n}.1", subnet[0], subnet[1]);
        let out = docker(&[
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            &cidr,
            "--gateway",
            &gateway,
            "--label",
            &format!("{LABEL}={name}"),
            "--label",
            &format!("{OWNER_LABEL}={owner}"),
            &network,
        ]);
        if out.status.success() {
            return Ok((network, subnet));
        }
        last = String::from_utf8_lossy(&out.stderr).trim().to_owned();
        if !last.contains("overlap") {
            break;
        }
    }
    Err(format!("docker network create {network}: {last}"))
}

/// Copies PEM files into `dir` (made if missing) under the given names, for
/// a container to mount; returns the copies' paths.
fn copy_pem<const N: usize>(dir: &Path, files: [(&PathBuf, &str); N]) -> Result<[PathBuf; N], String> {
    fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let copies = files.map(|(_, name)| dir.join(name));
    for ((from, _), to) in files.iter().zip(&copies) {
        fs::copy(from, to).map_err(|e| format!("copy {} to {}: {e}", from.display(), to.display()))?;
    }
    Ok(copies)
}

fn run_container(args: &[String]) -> Result<(), String> {
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = docker(&refs);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "docker {}: {}",
            args.get(3).map_or("run", String::as_str),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

fn wait_for_port(addr: SocketAddr, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err() {
        if start.elapsed() > timeout {
            return Err(format!("nothing answered on {addr} within {timeout:?}"));
        }
        std::thread::park_timeout(Duration::from_millis(50));
    }
    Ok(())
}

/// Removes everything of lab `name`: containers (with their anonymous
/// volumes), the network, the host-side files.
pub fn remove_lab(name: &str) {
    // Names become paths and filters: never anything but what `start` makes.
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return;
    }
    let filter = format!("label={LABEL}={name}");
    let ids = docker(&["ps", "-aq", "--filter", &filter]);
    let ids: Vec<String> =
        String::from_utf8_lossy(&ids.stdout).split_whitespace().map(str::to_owned).collect();
    if !ids.is_empty() {
        let mut args = vec!["rm", "-f", "-v"];
        args.extend(ids.iter().map(String::as_str));
        let _ = docker(&args);
    }
    let nets = docker(&["network", "ls", "-q", "--filter", &filter]);
    for net in String::from_utf8_lossy(&nets.stdout).split_whitespace() {
        let _ = docker(&["network", "rm", net]);
    }
    let vols = docker(&["volume", "ls", "-q", "--filter", &filter]);
    for vol in String::from_utf8_lossy(&vols.stdout).split_whitespace() {
        let _ = docker(&["volume", "rm", "-f", vol]);
    }
    let _ = fs::remove_dir_all(lab_dir(name));
}

/// Every lab on the engine: its name and its owner's PID.
#[must_use]
pub fn labs() -> Vec<(String, Option<u32>)> {
    let format = format!("{{{{.Label \"{LABEL}\"}}}} {{{{.Label \"{OWNER_LABEL}\"}}}}");
    let out = docker(&["network", "ls", "--filter", &format!("label={LABEL}"), "--format", &format]);
    let mut labs: Vec<(String, Option<u32>)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            Some((words.next()?.to_owned(), words.next().and_then(|p| p.parse().ok())))
        })
        .collect();
    // Containers of a lab whose network is already gone (a removal cut short).
    let out = docker(&["ps", "-a", "--filter", &format!("label={LABEL}"), "--format", &format]);
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let mut words = l.split_whitespace();
        if let Some(name) = words.next() {
            if !labs.iter().any(|(n, _)| n == name) {
                labs.push((name.to_owned(), words.next().and_then(|p| p.parse().ok())));
            }
        }
    }
    labs.sort();
    labs
}

/// Removes the labs whose owner process is gone (a run that was killed).
fn remove_leftovers() {
    for (name, owner) in labs() {
        let alive = owner.is_some_and(|pid| {
            i32::try_from(pid)
                .is_ok_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok())
        });
        if !alive {
            eprintln!("lab: removing lab {name}, left by a run that is gone (owner {owner:?})");
            remove_lab(&name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_ids_are_32_hex_digits_and_distinct() {
        let a = machine_id("lab", 1);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, machine_id("lab", 2));
        assert_ne!(a, machine_id("other", 1));
    }
}
