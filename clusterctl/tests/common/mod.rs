//! The test story's cast: a real etcd, machines that are present while a
//! lease keep-alive runs, the tutorial's unit files, and the clusterctl
//! binary aimed at all of it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetkit_tests::etcd::EtcdCluster;
use fleetkit_tests::wait::wait_until;
use tempfile::TempDir;

pub const NODE_ETCD: &str = "\
[Unit]
Description=Node.js app inside a docker container reading a value from etcd
After=etcd2.service
After=docker.service
Requires=node-etcd-discovery@%i.service

[Service]
TimeoutStartSec=0
EnvironmentFile=/etc/environment
ExecStart=/usr/bin/dockrun --name node-etcd%i -p 3000:3000 marcuspoehls/node-etcd

[X-Fleet]
Conflicts=node-etcd@*.service
";

pub const DISCOVERY: &str = "\
[Unit]
Description=Announce node-etcd@%i service
BindsTo=node-etcd@%i.service

[Service]
EnvironmentFile=/etc/environment
ExecStart=/usr/bin/announce /announce/services/node-etcd%i ${COREOS_PUBLIC_IPV4}:3000

[X-Fleet]
MachineOf=node-etcd@%i.service
";

/// The shipped app unit of the tutorial (`dockrun/units/`).
pub const LAB_APP: &str = include_str!("../../../dockrun/units/node-etcd@.service");
/// The shipped sidekick of the tutorial (`announce/units/`).
pub const LAB_SIDEKICK: &str = include_str!("../../../announce/units/node-etcd-discovery@.service");

/// Writes the tutorial's two shipped units into `dir` as the machine lab runs
/// them: the app's image and command replaced by the lab registry's httpd
/// `image` (no image can be pulled from outside), the sidekick as shipped.
/// Returns their paths.
pub fn write_lab_tutorial(dir: &std::path::Path, image: &str) -> [String; 2] {
    let original = "marcuspoehls/node-etcd \\\n  /bin/sh -c \"cd /src && npm i && node server.js\"";
    assert!(LAB_APP.contains(original), "the tutorial unit changed: update this test");
    let app = LAB_APP.replace(original, &format!("{image} httpd -f -p 3000 -h /www"));
    // busybox httpd as PID 1 ignores SIGTERM: give it an init, as a real image would have.
    let app = app.replace("--stop-timeout 10", "--stop-timeout 10 --init");
    [("node-etcd@.service", app.as_str()), ("node-etcd-discovery@.service", LAB_SIDEKICK)].map(
        |(name, text)| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
            path.to_string_lossy().into_owned()
        },
    )
}

/// Runs `cmd` with `stdin` written to it; its output.
pub fn output_with_stdin(cmd: &mut Command, stdin: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the command");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    child.wait_with_output().expect("wait for the command")
}

/// unit → (machine ID, ACTIVE, SUB) from `list-units --json` output.
pub fn units_from_json(text: &str) -> BTreeMap<String, (String, String, String)> {
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| {
            let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("-").to_owned();
            (s("unit"), (s("machine"), s("active"), s("sub")))
        })
        .collect()
}

/// One etcd, one key prefix, a temp dir for unit files.
pub struct Env {
    pub etcd: EtcdCluster,
    pub prefix: String,
    pub dir: TempDir,
}

/// A machine: its record on a lease kept alive by an `etcdctl lease
/// keep-alive` child. Killing the child is the machine dying.
pub struct Machine {
    pub id: String,
    pub ip: String,
    keeper: Child,
}

impl Machine {
    /// The machine dies: nobody renews its lease any more.
    pub fn kill(&mut self) {
        let _ = self.keeper.kill();
        let _ = self.keeper.wait();
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A running clusterctl (e.g. `schedule --watch`), killed on drop.
pub struct Running {
    pub child: Child,
    pub stderr: Arc<Mutex<String>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
    /// SIGKILL: the process ends without resigning.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Env {
    pub fn new() -> Env {
        Env { etcd: EtcdCluster::single(), prefix: "/fleetkit".into(), dir: TempDir::new().unwrap() }
    }

    /// On a three-member etcd, to kill members under the tools.
    pub fn three() -> Env {
        Env { etcd: EtcdCluster::three(), prefix: "/fleetkit".into(), dir: TempDir::new().unwrap() }
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_clusterctl"));
        c.args(self.etcd.client_args()).args(["--prefix", &self.prefix]);
        c.env_remove("ETCDCTL_ENDPOINTS").env_remove("FLEETKIT_PREFIX");
        c
    }

    pub fn ctl(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    /// Runs clusterctl and insists it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.status.success(),
            "clusterctl {args:?} failed ({:?}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self.cmd().args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Running { child, stderr }
    }

    /// Writes a unit file into the temp dir; returns its path.
    pub fn unit_file(&self, name: &str, text: &str) -> String {
        let p: PathBuf = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    }

    pub fn submit_tutorial(&self) {
        let a = self.unit_file("node-etcd@.service", NODE_ETCD);
        let b = self.unit_file("node-etcd-discovery@.service", DISCOVERY);
        self.ok(&["submit", &a, &b]);
    }

    /// Machine `n` (1-based): ID `<n>c1eed63…`, IP 172.17.8.10n, on a
    /// lease of `ttl` seconds kept alive while it lives.
    pub fn machine(&self, n: u32, ttl: u32) -> Machine {
        self.machine_with(n, ttl, "{}")
    }

    /// Like [`Env::machine`] with `metadata` (a JSON object).
    pub fn machine_with(&self, n: u32, ttl: u32, metadata: &str) -> Machine {
        let id = format!("{n}c1eed63a5e84b4ebbf1b9c3d4f6e{n:03}");
        let ip = format!("172.17.8.{}", 100 + n);
        let out = self.etcd.etcdctl().args(["lease", "grant", &ttl.to_string()]).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let lease =
            text.split_whitespace().nth(1).unwrap_or_else(|| panic!("lease grant: {text}")).to_string();
        let record = format!(r#"{{"id":"{id}","ip":"{ip}","metadata":{metadata}}}"#);
        let key = format!("{}/machines/{id}", self.prefix);
        let put =
            self.etcd.etcdctl().args(["put", &format!("--lease={lease}"), &key, &record]).output().unwrap();
        assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
        let keeper = self
            .etcd
            .etcdctl()
            .args(["lease", "keep-alive", &lease])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Machine { id, ip, keeper }
    }

    /// Puts `key` = `value` with etcdctl (optionally on a fresh lease of `ttl` s).
    pub fn put(&self, key: &str, value: &str, ttl: Option<u32>) {
        let mut args = vec!["put".to_string()];
        if let Some(ttl) = ttl {
            let out = self.etcd.etcdctl().args(["lease", "grant", &ttl.to_string()]).output().unwrap();
            let lease = String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).unwrap().to_string();
            args.push(format!("--lease={lease}"));
        }
        args.extend(["--".to_string(), key.to_string(), value.to_string()]);
        let out = self.etcd.etcdctl().args(&args).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }

    pub fn machines(&self, count: u32, ttl: u32) -> Vec<Machine> {
        (1..=count).map(|n| self.machine(n, ttl)).collect()
    }

    /// unit → machines, as stored under assign/.
    pub fn assignments(&self) -> BTreeMap<String, BTreeSet<String>> {
        let dir = format!("{}/assign/", self.prefix);
        let out = self.etcd.etcdctl().args(["get", "--prefix", "--keys-only", &dir]).output().unwrap();
        assert!(out.status.success());
        let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for line in String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()) {
            let rest = &line[dir.len()..];
            let Some((m, u)) = rest.split_once('/') else { continue };
            map.entry(u.to_string()).or_default().insert(m.to_string());
        }
        map
    }

    pub fn machine_of(&self, unit: &str) -> Option<String> {
        self.assignments().get(unit).and_then(|s| s.iter().next().cloned())
    }

    /// Waits until a scheduler leads (its key exists under election/).
    pub fn wait_for_leader(&self, timeout: Duration) -> String {
        let dir = format!("{}/election/", self.prefix);
        let mut value = String::new();
        wait_until("a scheduler to lead", timeout, || {
            let out = self
                .etcd
                .etcdctl()
                .args(["get", "--prefix", "--sort-by=CREATE", "--order=ASCEND", "--print-value-only", &dir])
                .output()
                .unwrap();
            value = String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_string();
            !value.is_empty()
        });
        value
    }
}

/// The tutorial's three instances and their sidekicks.
pub fn tutorial_units() -> Vec<String> {
    (1..=3)
        .flat_map(|i| [format!("node-etcd@{i}.service"), format!("node-etcd-discovery@{i}.service")])
        .collect()
}

/// Follows `assign/` with `etcdctl watch` and records any moment at which
/// one unit is assigned to two machines.
pub struct AssignWatch {
    child: std::process::Child,
    violations: Arc<Mutex<Vec<String>>>,
    events: Arc<Mutex<usize>>,
}

impl AssignWatch {
    /// Watches `PREFIX/assign/` with the etcdctl that `etcdctl` makes.
    pub fn start(etcdctl: impl Fn() -> Command, prefix: &str) -> AssignWatch {
        let dir = format!("{prefix}/assign/");
        let mut child = etcdctl().args(["watch", "--prefix", &dir]).stdout(Stdio::piped()).spawn().unwrap();
        let violations = Arc::new(Mutex::new(Vec::new()));
        let events = Arc::new(Mutex::new(0));
        let (v, n, d) = (Arc::clone(&violations), Arc::clone(&events), dir.clone());
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut state: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            let mut lines = BufReader::new(out).lines().map_while(Result::ok);
            while let (Some(kind), Some(key), Some(_value)) = (lines.next(), lines.next(), lines.next()) {
                *n.lock().unwrap() += 1;
                let Some((m, u)) = key.strip_prefix(&d).and_then(|r| r.split_once('/')) else { continue };
                let set = state.entry(u.to_string()).or_default();
                if kind == "PUT" {
                    set.insert(m.to_string());
                } else {
                    set.remove(m);
                }
                if set.len() > 1 {
                    v.lock().unwrap().push(format!("{u} on {set:?}"));
                }
            }
        });
        // Wait until the watch is in place: a probe key must come through.
        let probe = format!("{dir}_probe");
        wait_until("the assign/ watch to start", Duration::from_secs(10), || {
            etcdctl().args(["put", &probe, "x"]).output().unwrap();
            *events.lock().unwrap() > 0
        });
        AssignWatch { child, violations, events }
    }

    /// How many events the watch has seen.
    pub fn events(&self) -> usize {
        *self.events.lock().unwrap()
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }
}

impl Drop for AssignWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
