//! Real etcd for tests: one member or a three-node cluster from Debian's etcd.
//!
//! fleetkit's promises are about what happens when etcd misbehaves (a
//! restart, a leader killed, a majority gone), so tests run the real server:
//! each [`EtcdCluster`] starts `etcd` processes on free loopback ports with
//! data dirs in one temp dir, optionally with TLS and client-certificate
//! authentication and with user/password auth switched on. A test can stop
//! (SIGTERM), kill (SIGKILL) and restart any member on the same ports and data
//! dir, and ask which member leads. Readiness is a health check polled against
//! a deadline, never a sleep. Dropping the cluster kills every member and
//! removes the temp dir, also when the test panicked (and then prints the
//! tail of each member's log, which is usually why).

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

use crate::port::free_port;
use crate::tls::TlsFiles;

/// How long a member may take to come up on a busy machine.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The root user's password when auth is on (`etcdctl()` uses it).
pub const ROOT_PASSWORD: &str = "root-secret";
/// A non-root user that may read and write every key under `/`.
pub const USER: &str = "fleetkit";
/// [`USER`]'s password.
pub const PASSWORD: &str = "fleetkit-secret";

/// How to start a cluster: size, TLS, auth.
#[derive(Debug, Clone)]
pub struct EtcdBuilder {
    size: usize,
    tls: bool,
    auth: bool,
}

impl EtcdBuilder {
    /// Serve clients over TLS with the server certificate of a fresh CA and
    /// require a client certificate signed by it (`--client-cert-auth`).
    #[must_use]
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Turn on user/password auth: `root` ([`ROOT_PASSWORD`]) and [`USER`]
    /// ([`PASSWORD`]) with read/write on every key under `/`.
    #[must_use]
    pub fn auth(mut self) -> Self {
        self.auth = true;
        self
    }

    /// Starts the members and waits until the cluster is healthy (and, with
    /// auth, until auth is on).
    ///
    /// # Panics
    /// When etcd cannot be started (after retrying with new ports if another
    /// process took one): the test cannot run.
    #[must_use]
    pub fn start(self) -> EtcdCluster {
        let mut last = String::new();
        for _ in 0..3 {
            match EtcdCluster::try_start(&self) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("could not start etcd: {last}");
    }
}

/// One etcd member: a process (while running), its ports and data dir.
#[derive(Debug)]
pub struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    scheme: &'static str,
    data_dir: PathBuf,
    log: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    /// The flags etcdctl needs to reach this member (TLS, user).
    ctl_args: Vec<String>,
    /// The cluster's size: a lone member is healthy on its own.
    size: usize,
}

impl Member {
    /// The member's name (`m0`, `m1`, ...).
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client URL (`http://127.0.0.1:PORT` or `https://...`).
    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("{}://127.0.0.1:{}", self.scheme, self.client_port)
    }

    /// The client port.
    #[must_use]
    pub fn client_port(&self) -> u16 {
        self.client_port
    }

    /// The data dir (kept across restarts).
    #[must_use]
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The peer (raft) port.
    #[must_use]
    pub fn peer_port(&self) -> u16 {
        self.peer_port
    }

    /// The process id while it runs.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process was started and has not been stopped or killed
    /// by the test.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Stops the member as an init system does: SIGTERM, then waits for it
    /// to exit.
    ///
    /// # Panics
    /// When the member is not running.
    pub fn stop(&mut self) {
        self.signal_and_wait(Signal::SIGTERM);
    }

    /// Kills the member at once (SIGKILL), as a crashed machine would.
    ///
    /// # Panics
    /// When the member is not running.
    pub fn kill(&mut self) {
        self.signal_and_wait(Signal::SIGKILL);
    }

    fn signal_and_wait(&mut self, sig: Signal) {
        let mut child =
            self.child.take().unwrap_or_else(|| panic!("etcd member {} is not running", self.name));
        let pid = Pid::from_raw(i32::try_from(child.id()).expect("pid fits i32"));
        let _ = kill(pid, sig);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return;
            }
            std::thread::park_timeout(Duration::from_millis(10));
        }
    }

    /// Starts the member again with the same name, ports and data dir, and
    /// waits until it answers; a lone member also until it is healthy (has
    /// elected itself). In a cluster, [`EtcdCluster::restart`] also waits
    /// for health when the restart brings a majority back.
    ///
    /// # Panics
    /// When it is already running or does not come up in time.
    pub fn restart(&mut self) {
        self.restart_inner(self.size == 1);
    }

    fn restart_inner(&mut self, majority_back: bool) {
        assert!(self.child.is_none(), "etcd member {} is already running", self.name);
        self.spawn().unwrap_or_else(|e| panic!("{e}"));
        let check = if majority_back { "health" } else { "status" };
        if let Err(e) = self.wait_ready(check, START_TIMEOUT) {
            panic!("{e}");
        }
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("open {}: {e}", self.log.display()))?;
        let err = log.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new("etcd")
            .args(&self.args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot run etcd (install Debian's etcd-server): {e}"))?;
        self.child = Some(child);
        Ok(())
    }

    /// Polls `etcdctl endpoint CHECK` on this member until it succeeds.
    fn wait_ready(&mut self, check: &str, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!(
                        "etcd member {} exited ({status}) while starting:\n{}",
                        self.name,
                        tail(&self.log, 15)
                    ));
                }
            }
            let out = etcdctl_raw(&self.ctl_args, &[self.endpoint()], &["endpoint", check]);
            if out.as_ref().is_ok_and(|o| o.status.success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd member {} not ready ({check}) after {timeout:?}:\n{}",
                    self.name,
                    tail(&self.log, 15)
                ));
            }
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    /// The Prometheus metrics text of this member (its `/metrics` page).
    ///
    /// # Panics
    /// When the member does not answer.
    #[must_use]
    pub fn metrics(&self) -> String {
        use std::io::{Read, Write};
        assert!(self.scheme == "http", "metrics() reads plain-HTTP members only");
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.client_port)).expect("connect to etcd");
        write!(s, "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send metrics request");
        let mut text = String::new();
        s.read_to_string(&mut text).expect("read metrics");
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_string()).unwrap_or_default()
    }
}

/// Running etcd members that share one temp dir; all killed on drop.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<Member>,
    tls: Option<TlsFiles>,
    auth: bool,
    dir: TempDir,
}

impl EtcdCluster {
    /// A one-member cluster, plain HTTP, no auth.
    #[must_use]
    pub fn single() -> Self {
        Self::builder(1).start()
    }

    /// A three-member cluster, plain HTTP, no auth.
    #[must_use]
    pub fn three() -> Self {
        Self::builder(3).start()
    }

    /// A cluster of `size` members, to be configured (TLS, auth) and started.
    #[must_use]
    pub fn builder(size: usize) -> EtcdBuilder {
        EtcdBuilder { size, tls: false, auth: false }
    }

    fn try_start(b: &EtcdBuilder) -> Result<Self, String> {
        let dir = tempfile::Builder::new().prefix("fk-etcd").tempdir().map_err(|e| e.to_string())?;
        let tls = b.tls.then(TlsFiles::generate);
        let scheme = if b.tls { "https" } else { "http" };
        let mut used = HashSet::new();
        let mut port = || loop {
            let p = free_port();
            if used.insert(p) {
                return p;
            }
        };
        let ports: Vec<(u16, u16)> = (0..b.size).map(|_| (port(), port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let token = dir.path().file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();

        let mut ctl_args = Vec::new();
        if let Some(t) = &tls {
            ctl_args.extend(tls_flags(t));
        }
        let mut members = Vec::new();
        for (i, &(client_port, peer_port)) in ports.iter().enumerate() {
            let name = format!("m{i}");
            let data_dir = dir.path().join(format!("{name}.etcd"));
            let client_url = format!("{scheme}://127.0.0.1:{client_port}");
            let peer_url = format!("http://127.0.0.1:{peer_port}");
            let mut args: Vec<String> = [
                "--name",
                &name,
                "--data-dir",
                &data_dir.to_string_lossy(),
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
                "--initial-cluster",
                &initial,
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                &token,
                "--logger",
                "zap",
                "--log-level",
                "warn",
            ]
            .iter()
            .map(ToString::to_string)
            .collect();
            if let Some(t) = &tls {
                for (flag, path) in [
                    ("--cert-file", &t.server_cert),
                    ("--key-file", &t.server_key),
                    ("--trusted-ca-file", &t.ca),
                ] {
                    args.push(flag.to_string());
                    args.push(path.to_string_lossy().into_owned());
                }
                args.push("--client-cert-auth".to_string());
            }
            members.push(Member {
                log: dir.path().join(format!("{name}.log")),
                name,
                client_port,
                peer_port,
                scheme,
                data_dir,
                args,
                child: None,
                ctl_args: ctl_args.clone(),
                size: b.size,
            });
        }
        let mut cluster = Self { members, tls, auth: false, dir };
        for m in &mut cluster.members {
            m.spawn()?;
        }
        let deadline = Instant::now() + START_TIMEOUT;
        for m in &mut cluster.members {
            m.wait_ready("health", deadline.saturating_duration_since(Instant::now()))?;
        }
        if b.auth {
            cluster.enable_auth()?;
        }
        Ok(cluster)
    }

    fn enable_auth(&mut self) -> Result<(), String> {
        let role_perm = ["role", "grant-permission", USER, "--prefix=true", "readwrite", "/"];
        let steps: [&[&str]; 7] = [
            &["user", "add", &format!("root:{ROOT_PASSWORD}"), "--interactive=false"],
            &["user", "grant-role", "root", "root"],
            &["user", "add", &format!("{USER}:{PASSWORD}"), "--interactive=false"],
            &["role", "add", USER],
            &role_perm,
            &["user", "grant-role", USER, USER],
            &["auth", "enable"],
        ];
        for step in steps {
            let out = self.etcdctl().args(step).output().map_err(|e| e.to_string())?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            // etcd 3.4 gives root the root role when root is added.
            if !out.status.success() && !stderr.contains("already") {
                return Err(format!("etcdctl {}: {stderr}", step.join(" ")));
            }
        }
        self.auth = true;
        let root = format!("--user=root:{ROOT_PASSWORD}");
        for m in &mut self.members {
            m.ctl_args.push(root.clone());
        }
        Ok(())
    }

    /// Every member's client URL, running or not.
    #[must_use]
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(Member::endpoint).collect()
    }

    /// [`EtcdCluster::endpoints`] joined with commas, for `--endpoints`.
    #[must_use]
    pub fn endpoints_arg(&self) -> String {
        self.endpoints().join(",")
    }

    /// The flags a fleetkit tool needs to reach this cluster: `--endpoints`
    /// and, with TLS, `--cacert --cert --key` (not `--user`: a test says
    /// which user it means).
    #[must_use]
    pub fn client_args(&self) -> Vec<String> {
        let mut args = vec!["--endpoints".to_string(), self.endpoints_arg()];
        if let Some(t) = &self.tls {
            for (flag, path) in [("--cacert", &t.ca), ("--cert", &t.client_cert), ("--key", &t.client_key)] {
                args.push(flag.to_string());
                args.push(path.to_string_lossy().into_owned());
            }
        }
        args
    }

    /// The certificates, when the cluster serves TLS.
    #[must_use]
    pub fn tls(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Whether user/password auth is on.
    #[must_use]
    pub fn auth_enabled(&self) -> bool {
        self.auth
    }

    /// The number of members.
    #[must_use]
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Always false: a cluster has members.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `i`, to stop, kill or restart.
    ///
    /// # Panics
    /// When there is no member `i`.
    pub fn member(&mut self, i: usize) -> &mut Member {
        &mut self.members[i]
    }

    /// Member `i`, to read.
    ///
    /// # Panics
    /// When there is no member `i`.
    #[must_use]
    pub fn member_ref(&self, i: usize) -> &Member {
        &self.members[i]
    }

    /// Restarts member `i` and waits until it answers; when that brings a
    /// majority back, waits until it is healthy (has a leader).
    ///
    /// # Panics
    /// As [`Member::restart`].
    pub fn restart(&mut self, i: usize) {
        let running = self.members.iter().filter(|m| m.is_running()).count() + 1;
        let majority = running > self.members.len() / 2;
        self.members[i].restart_inner(majority);
    }

    /// An `etcdctl` command aimed at the running members (all members when
    /// none runs), with the TLS flags and (with auth on) the root user.
    #[must_use]
    pub fn etcdctl(&self) -> Command {
        let mut running: Vec<String> =
            self.members.iter().filter(|m| m.is_running()).map(Member::endpoint).collect();
        if running.is_empty() {
            // Never etcdctl's default 127.0.0.1:2379, which may be another etcd.
            running = self.endpoints();
        }
        let ctl_args = self.members.first().map(|m| m.ctl_args.clone()).unwrap_or_default();
        etcdctl_cmd(&ctl_args, &running)
    }

    /// The value of `key`, read by etcdctl (None when absent).
    ///
    /// # Panics
    /// When etcdctl fails (no quorum, say).
    #[must_use]
    pub fn get(&self, key: &str) -> Option<String> {
        self.get_with_lease(key).map(|(v, _)| v)
    }

    /// The value of `key` and the lease it is attached to (0 for none).
    ///
    /// # Panics
    /// When etcdctl fails.
    #[must_use]
    pub fn get_with_lease(&self, key: &str) -> Option<(String, i64)> {
        let out = self.etcdctl().args(["get", "-w", "json", "--", key]).output().expect("run etcdctl");
        assert!(out.status.success(), "etcdctl get {key}: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("etcdctl get -w json");
        let kv = v.get("kvs")?.get(0)?;
        let value = kv.get("value").and_then(serde_json::Value::as_str).map(base64_decode)?;
        let lease = kv.get("lease").and_then(serde_json::Value::as_i64).unwrap_or(0);
        Some((value, lease))
    }

    /// The remaining TTL in seconds of lease `id` and the TTL it was
    /// granted with; None when the lease does not exist.
    ///
    /// # Panics
    /// When etcdctl fails.
    #[must_use]
    pub fn lease_ttl(&self, id: i64) -> Option<(i64, i64)> {
        let out = self
            .etcdctl()
            .args(["lease", "timetolive", "-w", "json", &format!("{id:x}")])
            .output()
            .expect("run etcdctl");
        assert!(out.status.success(), "etcdctl lease timetolive: {}", String::from_utf8_lossy(&out.stderr));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("etcdctl lease -w json");
        let ttl = v.get("ttl").and_then(serde_json::Value::as_i64).unwrap_or(-1);
        let granted = v.get("granted-ttl").and_then(serde_json::Value::as_i64).unwrap_or(0);
        (ttl > 0).then_some((ttl, granted))
    }

    /// The index of the member that leads now, asked of the running members;
    /// None when none of them knows a leader.
    #[must_use]
    pub fn leader(&self) -> Option<usize> {
        let ep = leader_endpoint(&mut self.etcdctl())?;
        self.members.iter().position(|m| m.endpoint() == ep)
    }

    /// Waits until the running members agree on a leader that is not
    /// `not` (e.g. the member just killed) and returns it.
    ///
    /// # Panics
    /// When no such leader appears within `timeout`.
    pub fn wait_leader(&self, not: Option<usize>, timeout: Duration) -> usize {
        crate::wait::wait_for("an etcd leader", timeout, || self.leader().filter(|l| Some(*l) != not)).0
    }

    /// Waits until every running member reports healthy.
    ///
    /// # Panics
    /// When that does not happen within `timeout`.
    pub fn wait_healthy(&self, timeout: Duration) {
        crate::wait::wait_until("etcd healthy", timeout, || {
            self.etcdctl().args(["endpoint", "health"]).output().is_ok_and(|o| o.status.success())
        });
    }

    /// The temp dir holding data dirs and logs.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut child) = m.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        if std::thread::panicking() {
            for m in &self.members {
                eprintln!("--- etcd member {} log (last lines) ---\n{}", m.name, tail(&m.log, 20));
            }
        }
    }
}

fn tls_flags(t: &TlsFiles) -> Vec<String> {
    vec![
        format!("--cacert={}", t.ca.display()),
        format!("--cert={}", t.client_cert.display()),
        format!("--key={}", t.client_key.display()),
    ]
}

/// The endpoint of the member that leads, as `etcdctl endpoint status`
/// (run by `etcdctl`, which names the endpoints to ask) reports it.
pub(crate) fn leader_endpoint(etcdctl: &mut Command) -> Option<String> {
    let out = etcdctl.args(["endpoint", "status", "-w", "json"]).output().ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    v.as_array()?.iter().find_map(|entry| {
        let status = entry.get("Status")?;
        let id = status.get("header")?.get("member_id")?.as_u64()?;
        let leader = status.get("leader")?.as_u64()?;
        (id == leader && leader != 0).then(|| entry.get("Endpoint")?.as_str().map(str::to_owned))?
    })
}

/// etcdctl (v3 API, short timeouts, nothing from the caller's environment)
/// against `endpoints`, with `ctl_args` (TLS, user).
pub(crate) fn etcdctl_cmd(ctl_args: &[String], endpoints: &[String]) -> Command {
    let mut cmd = Command::new("etcdctl");
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={}", endpoints.join(",")))
        .args(["--dial-timeout=1s", "--command-timeout=3s"])
        .args(ctl_args)
        .stdin(Stdio::null());
    cmd
}

fn etcdctl_raw(ctl_args: &[String], endpoints: &[String], args: &[&str]) -> std::io::Result<Output> {
    etcdctl_cmd(ctl_args, endpoints).args(args).output()
}

fn tail(path: &Path, n: usize) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// etcdctl's JSON output carries keys and values in base64.
fn base64_decode(s: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes().filter(|&c| c != b'=') {
        let Some(v) = ALPHABET.iter().position(|&a| a == c) else { continue };
        acc = (acc << 6) | u32::try_from(v).unwrap_or(0);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((acc >> bits) & 0xff).unwrap_or(0));
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64() {
        assert_eq!(base64_decode("aGVsbG8="), "hello");
        assert_eq!(base64_decode("MTAuMC4wLjE6MzAwMA=="), "10.0.0.1:3000");
        assert_eq!(base64_decode(""), "");
    }
}
