//! The machine agent on real machines: the lab's containers with systemd as
//! PID 1 and their own Docker engines, a three-member etcd, the shipped
//! `fleetkit-agent.service`, and the tutorial's units running for real.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use fleetkit_tests::bin::tool;
use fleetkit_tests::docker::{http_get, INDEX_HTML};
use fleetkit_tests::lab::{Lab, Machine};

mod common;
use common::{units_from_json, write_lab_tutorial, AssignWatch};
use fleetkit_tests::wait::{wait_for, wait_until};

const AGENT_UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units/fleetkit-agent.service");
const SCHEDULER_UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units/fleetkit-scheduler.service");

/// A lab with agents running on every machine, and clusterctl on the host
/// aimed at its etcd.
struct Cluster {
    lab: Lab,
    dir: tempfile::TempDir,
    scheduler: Option<std::process::Child>,
}

impl Cluster {
    /// `machines` machines with agents; a scheduler on the host.
    fn start(machines: usize) -> Self {
        Self::start_with(machines, 0)
    }

    /// `machines` machines with agents; the shipped scheduler service on the
    /// first `schedulers` of them, or (0) a scheduler on the host.
    fn start_with(machines: usize, schedulers: usize) -> Self {
        let lab = Lab::new().machines(machines).etcd(3).start();
        for (i, m) in lab.machines().iter().enumerate() {
            m.install_unit(Path::new(AGENT_UNIT));
            let dropin = format!(
                "mkdir -p /etc/systemd/system/fleetkit-agent.service.d && printf \
                 '[Service]\\nEnvironment=FLEETKIT_METADATA=rack=r{}\\n' > \
                 /etc/systemd/system/fleetkit-agent.service.d/metadata.conf",
                i + 1
            );
            assert!(m.sh(&dropin).status.success());
            m.systemctl(&["daemon-reload"]);
            m.systemctl(&["enable", "--now", "fleetkit-agent.service"]);
        }
        for m in &lab.machines()[..schedulers] {
            m.install_unit(Path::new(SCHEDULER_UNIT));
            m.systemctl(&["enable", "--now", "fleetkit-scheduler.service"]);
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let mut c = Self { lab, dir, scheduler: None };
        if schedulers == 0 {
            c.start_scheduler();
        }
        wait_until("every agent's machine record", Duration::from_secs(20), || {
            c.ok(&["list-machines", "--no-legend"]).lines().count() == machines
        });
        c
    }

    /// A scheduler on the host.
    fn start_scheduler(&mut self) {
        let scheduler = Command::new(tool("clusterctl"))
            .args(["--endpoints", &self.lab.endpoints(), "schedule", "--watch", "--ttl", "3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the scheduler");
        self.scheduler = Some(scheduler);
    }

    /// Kills the host's scheduler (its lease lives out its 3 s).
    fn stop_scheduler(&mut self) {
        if let Some(mut s) = self.scheduler.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
    }

    /// clusterctl on the host, given every member (dead ones too, as an
    /// operator's environment would).
    fn clusterctl(&self, args: &[&str]) -> Output {
        Command::new(tool("clusterctl"))
            .args(["--endpoints", &self.lab.endpoints()])
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("run clusterctl")
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.clusterctl(args);
        assert!(
            out.status.success(),
            "clusterctl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The tutorial's two units, with the app's image and command replaced
    /// by the lab's httpd image (no image can be pulled from outside).
    fn submit_tutorial(&self) {
        let [app, sidekick] = write_lab_tutorial(self.dir.path(), &self.lab.image());
        self.ok(&["submit", &app, &sidekick]);
    }

    /// unit → (machine ID, ACTIVE, SUB) from `list-units --json`.
    fn units(&self) -> BTreeMap<String, (String, String, String)> {
        self.try_units().expect("list-units works")
    }

    /// `list-units`, or `None` while clusterctl fails (etcd electing a leader,
    /// say): for waits that ride out a fault.
    fn try_units(&self) -> Option<BTreeMap<String, (String, String, String)>> {
        let out = self.clusterctl(&["list-units", "--json"]);
        out.status.success().then(|| units_from_json(&String::from_utf8_lossy(&out.stdout)))
    }

    fn machine_of(&self, unit: &str) -> &Machine {
        self.try_machine_of(&self.units(), unit).unwrap_or_else(|| panic!("{unit} is not on a lab machine"))
    }

    fn try_machine_of(
        &self,
        units: &BTreeMap<String, (String, String, String)>,
        unit: &str,
    ) -> Option<&Machine> {
        let id = &units.get(unit)?.0;
        self.lab.machines().iter().find(|m| id.starts_with(m.id()) || m.id().starts_with(id.as_str()))
    }

    /// Every active unit's InvocationID, read on its machine: the same value
    /// later means it was not restarted.
    fn invocations(&self) -> BTreeMap<String, String> {
        self.units()
            .into_iter()
            .filter(|(_, (_, active, _))| active == "active")
            .map(|(unit, _)| {
                let id = self.machine_of(&unit).unit_property(&unit, "InvocationID");
                assert!(!id.is_empty(), "{unit} has an InvocationID");
                (unit, id)
            })
            .collect()
    }

    /// The address announced for instance `i` (`/announce/services/node-etcdI`).
    fn announced(&self, i: u32) -> Option<String> {
        let key = format!("/announce/services/node-etcd{i}");
        let out = self.lab.etcdctl().args(["get", "--print-value-only", &key]).output().ok()?;
        let v = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (!v.is_empty()).then_some(v)
    }

    /// Every assignment: `assign/ID/NAME` keys, read with etcdctl.
    fn assignments(&self) -> Vec<String> {
        let out = self
            .lab
            .etcdctl()
            .args(["get", "--prefix", "--keys-only", "/fleetkit/assign/"])
            .output()
            .expect("etcdctl");
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop_scheduler();
    }
}

fn refuses(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err()
}

#[test]
fn agents_run_the_tutorial_report_real_states_and_survive_restarts_and_a_leader_kill() {
    let c = Cluster::start(3);
    let machines = c.ok(&["list-machines", "--no-legend", "--full"]);
    for (i, m) in c.lab.machines().iter().enumerate() {
        let line = machines
            .lines()
            .find(|l| l.starts_with(m.id()))
            .unwrap_or_else(|| panic!("{} not in:\n{machines}", m.id()));
        assert!(line.contains(&m.ip().to_string()), "{line}");
        assert!(line.contains(&format!("rack=r{}", i + 1)), "{line}");
    }

    c.submit_tutorial();
    let names: Vec<String> = (1..=3).map(|i| format!("node-etcd@{i}.service")).collect();
    let mut args = vec!["start"];
    args.extend(names.iter().map(String::as_str));
    c.ok(&args);
    // `start` returned: all six units are active on their machines.
    let units = c.units();
    assert_eq!(units.len(), 6, "{units:?}");
    for (unit, (_, active, sub)) in &units {
        assert_eq!((active.as_str(), sub.as_str()), ("active", "running"), "{unit}");
    }
    let mut ips = Vec::new();
    for name in &names {
        let m = c.machine_of(name);
        let sidekick = name.replace("node-etcd@", "node-etcd-discovery@");
        assert_eq!(c.machine_of(&sidekick).id(), m.id(), "{sidekick} beside its app");
        let page =
            http_get(&format!("{}:3000", m.ip()), "/").unwrap_or_else(|| panic!("{name} does not answer"));
        assert!(page.ends_with(INDEX_HTML), "{page}");
        ips.push(m.ip().to_string());
    }
    ips.sort();
    ips.dedup();
    assert_eq!(ips.len(), 3, "three instances on three machines");
    let announced = wait_for("three announcements", Duration::from_secs(10), || {
        let out = c.ok(&["list-announcements", "--no-legend", "/announce/services/"]);
        (out.lines().count() == 3).then_some(out)
    })
    .0;
    for ip in &ips {
        assert!(announced.contains(&format!("{ip}:3000")), "{announced}");
    }

    // stop: the container goes, the port refuses, the state and the announcement follow.
    let m2 = c.machine_of("node-etcd@2.service").clone();
    c.ok(&["stop", "node-etcd@2.service"]);
    wait_until("node-etcd@2 inactive", Duration::from_secs(20), || {
        c.units().get("node-etcd@2.service").is_some_and(|u| u.1 == "inactive")
    });
    assert!(refuses(SocketAddr::from((m2.ip(), 3000))));
    let ps = String::from_utf8_lossy(&m2.exec(&["docker", "ps", "-aq"]).stdout).trim().to_owned();
    assert_eq!(ps, "", "the container is gone");
    wait_until("node-etcd2's announcement gone", Duration::from_secs(10), || {
        !c.ok(&["list-announcements", "/announce/services/"]).contains("node-etcd2")
    });
    c.ok(&["start", "node-etcd@2.service"]);
    assert!(http_get(&format!("{}:3000", c.machine_of("node-etcd@2.service").ip()), "/").is_some());

    // destroy: the file leaves the machine and systemd forgets the unit.
    let m3 = c.machine_of("node-etcd@3.service").clone();
    c.ok(&["destroy", "node-etcd@3.service", "node-etcd-discovery@3.service"]);
    wait_until("node-etcd@3's file gone", Duration::from_secs(20), || {
        !m3.exec(&["test", "-e", "/run/fleetkit/units/node-etcd@3.service"]).status.success()
            && m3.unit_property("node-etcd@3.service", "LoadState") == "not-found"
    });
    assert!(!m3.exec(&["test", "-e", "/run/systemd/system/node-etcd@3.service"]).status.success());

    // Restarting the agent, gently and not: nothing restarts, nothing moves.
    let m1 = c.machine_of("node-etcd@1.service").clone();
    let before = c.invocations();
    assert_eq!(before.len(), 4, "{before:?}");
    let assigned = c.assignments();
    m1.systemctl(&["restart", "fleetkit-agent.service"]);
    m1.systemctl(&["kill", "-s", "KILL", "fleetkit-agent.service"]);
    wait_until("the agent restarted after SIGKILL", Duration::from_secs(10), || {
        m1.unit_property("fleetkit-agent.service", "ActiveState") == "active"
            && m1.unit_property("fleetkit-agent.service", "NRestarts") == "1"
    });
    assert_eq!(c.invocations(), before, "no unit was restarted");
    assert_eq!(c.assignments(), assigned, "no assignment changed");

    // The etcd leader killed: nothing restarts, nothing moves, states stay current.
    let leader = c.lab.wait_leader(None, Duration::from_secs(10));
    c.lab.etcd()[leader].kill();
    let _ = c.lab.wait_leader(Some(leader), Duration::from_secs(10));
    assert_eq!(c.invocations(), before, "no unit was restarted");
    assert_eq!(c.assignments(), assigned, "no assignment changed");
    c.ok(&["stop", "node-etcd@2.service"]);
    wait_until("node-etcd@2 inactive after the leader change", Duration::from_secs(20), || {
        c.units().get("node-etcd@2.service").is_some_and(|u| u.1 == "inactive")
    });
    let mut expected = before;
    expected.retain(|u, _| !u.contains("@2."));
    assert_eq!(c.invocations(), expected, "only the stopped units changed");
}

#[test]
fn a_unit_that_fails_makes_start_exit_1_naming_the_machine_the_result_and_the_journal() {
    let c = Cluster::start(1);
    std::fs::write(
        c.dir.path().join("broken.service"),
        "[Service]\nExecStart=/bin/sh -c 'echo broken-marker-line; exit 3'\n",
    )
    .expect("write the unit");
    let started = std::time::Instant::now();
    let out = c.clusterctl(&["start", "./broken.service"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    let m = &c.lab.machines()[0];
    assert!(err.contains(&m.id()[..8]), "names the machine: {err}");
    assert!(err.contains("exit-code"), "names systemd's result: {err}");
    assert!(err.contains("broken-marker-line"), "shows the journal: {err}");
}

#[test]
fn assignments_that_would_leave_the_unit_directory_or_clobber_a_unit_are_refused() {
    let mut c = Cluster::start(1);
    // Written past the scheduler, which removes assignments no plan made as
    // soon as it sees them.
    c.stop_scheduler();
    let m = &c.lab.machines()[0].clone();
    for bad in ["../../../etc/evil.service", "x/../../evil.service", "..", "web@.service"] {
        let key = format!("/fleetkit/assign/{}/{bad}", m.id());
        let put = c
            .lab
            .etcdctl()
            .args(["put", &key, r#"{"hash":"00","state":"launched"}"#])
            .output()
            .expect("etcdctl");
        assert!(put.status.success());
    }
    wait_until("the agent to refuse them", Duration::from_secs(10), || {
        m.journal(&["-u", "fleetkit-agent.service"]).matches("refusing assignment").count() >= 4
    });
    for path in ["/etc/evil.service", "/run/evil.service", "/evil.service", "/run/fleetkit/evil.service"] {
        assert!(!m.exec(&["test", "-e", path]).status.success(), "{path} was written");
    }
    let units =
        String::from_utf8_lossy(&m.exec(&["ls", "-A", "/run/fleetkit/units"]).stdout).trim().to_owned();
    assert_eq!(units, "");
    c.start_scheduler();
    wait_until("the scheduler to remove them", Duration::from_secs(15), || c.assignments().is_empty());

    // A unit of the same name that is not fleetkit's is left alone and reported.
    assert!(m
        .sh("printf '[Service]\\nExecStart=/bin/sleep 1000\\n' > /etc/systemd/system/clash.service")
        .status
        .success());
    std::fs::write(c.dir.path().join("clash.service"), "[Service]\nExecStart=/bin/true\n").expect("write");
    let out = c.clusterctl(&["start", "./clash.service"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("/etc/systemd/system/clash.service") && err.contains("not fleetkit's"), "{err}");
    let kept =
        String::from_utf8_lossy(&m.exec(&["cat", "/etc/systemd/system/clash.service"]).stdout).into_owned();
    assert!(kept.contains("sleep 1000"), "the machine's own unit is untouched: {kept}");
}

/// The tutorial's app on two machines, one of them cut off (its network
/// disconnected) for longer than its lease: the instance moves; once back, the
/// old machine stops its copy within 5 s and exactly one copy answers.
#[test]
fn a_machine_cut_off_for_longer_than_its_ttl_loses_its_units_and_stops_its_copies() {
    const UNIT: &str = "node-etcd@1.service";
    let c = Cluster::start(2);
    // A short lease, and --fence on the second machine only.
    for (i, m) in c.lab.machines().iter().enumerate() {
        let fence = if i == 1 { " --fence" } else { "" };
        let dropin = format!(
            "printf '[Service]\\nExecStart=\\nExecStart=/usr/local/bin/clusterctl agent --ttl 4{fence}\\n' > \
             /etc/systemd/system/fleetkit-agent.service.d/ttl.conf"
        );
        assert!(m.sh(&dropin).status.success());
        m.systemctl(&["daemon-reload"]);
        m.systemctl(&["restart", "fleetkit-agent.service"]);
    }
    c.submit_tutorial();
    c.ok(&["start", UNIT]);
    let first = c.machine_of(UNIT).clone();
    let other = c.lab.machines().iter().find(|m| m.id() != first.id()).expect("two machines").clone();
    let (plain, fenced) =
        if first.id() == c.lab.machines()[0].id() { (first, other) } else { (other, first) };
    let active_on = |m: &Machine| m.unit_property(UNIT, "ActiveState") == "active";
    let answers = |m: &Machine| http_get(&format!("{}:3000", m.ip()), "/").is_some();
    let running_on = |m: &Machine| {
        c.units().get(UNIT).is_some_and(|u| m.id().starts_with(&u.0) && u.1 == "active") && answers(m)
    };
    // Make the plain machine hold it first.
    if c.machine_of(UNIT).id() != plain.id() {
        fenced.disconnect();
        wait_until("the app moved to the plain machine", Duration::from_secs(30), || running_on(&plain));
        fenced.reconnect();
        wait_until("the fenced machine back", Duration::from_secs(30), || {
            c.ok(&["list-machines", "--no-legend"]).lines().count() == 2
        });
    }
    wait_until("the app answering on the plain machine alone", Duration::from_secs(10), || {
        running_on(&plain) && !answers(&fenced)
    });

    // Without --fence: the copy runs on while cut off, and stops once back.
    plain.disconnect();
    wait_until("the app running on the other machine", Duration::from_secs(30), || running_on(&fenced));
    assert!(active_on(&plain), "a cut-off machine without --fence keeps its copy running");
    plain.reconnect();
    wait_until(
        "the plain machine to stop its copy within 5 s of coming back, one copy answering",
        Duration::from_secs(5),
        || !active_on(&plain) && !answers(&plain) && answers(&fenced),
    );

    // With --fence: the copy stops while the machine is still cut off.
    fenced.disconnect();
    wait_until("the fenced machine to stop its copy while cut off", Duration::from_secs(20), || {
        !active_on(&fenced)
    });
    wait_until("the app running on the plain machine again", Duration::from_secs(30), || running_on(&plain));
    fenced.reconnect();
    wait_until("the fenced machine back in the cluster", Duration::from_secs(30), || {
        c.ok(&["list-machines", "--no-legend"]).lines().count() == 2
    });
    assert!(!active_on(&fenced) && !answers(&fenced), "the fenced machine runs no copy once back");
    assert!(answers(&plain), "exactly one copy answers");
}

/// An ssh agent holding the lab's key, as an operator's would; killed on drop.
struct SshAgent {
    sock: std::path::PathBuf,
    pid: String,
    _dir: tempfile::TempDir,
}

impl SshAgent {
    fn start(key: &Path) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let sock = dir.path().join("agent.sock");
        let out = Command::new("ssh-agent").arg("-a").arg(&sock).output().expect("run ssh-agent");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let pid = text
            .split(';')
            .find_map(|p| p.trim().strip_prefix("SSH_AGENT_PID="))
            .expect("ssh-agent's pid")
            .to_owned();
        let added =
            Command::new("ssh-add").arg(key).env("SSH_AUTH_SOCK", &sock).output().expect("run ssh-add");
        assert!(added.status.success(), "ssh-add: {}", String::from_utf8_lossy(&added.stderr));
        Self { sock, pid, _dir: dir }
    }
}

impl Drop for SshAgent {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(&self.pid).status();
    }
}

#[test]
fn status_journal_and_ssh_reach_a_units_machine_and_say_when_it_is_gone() {
    let c = Cluster::start(2);
    let agent = SshAgent::start(&c.lab.ssh_key());
    let ssh_opts =
        ["--ssh-username", "root", "--known-hosts-file", "/dev/null", "--strict-host-key-checking", "false"];
    let remote = |verb: &[&str], rest: &[&str]| {
        let mut args: Vec<&str> = verb.to_vec();
        args.extend(ssh_opts);
        args.extend(rest);
        Command::new(tool("clusterctl"))
            .args(["--endpoints", &c.lab.endpoints()])
            .args(&args)
            .env("SSH_AUTH_SOCK", &agent.sock)
            .stdin(Stdio::null())
            .output()
            .expect("run clusterctl")
    };
    std::fs::write(
        c.dir.path().join("web.service"),
        "[Service]\nExecStart=/bin/sh -c 'echo web-marker-line; exec sleep infinity'\n",
    )
    .expect("write");
    c.ok(&["start", "./web.service"]);
    let m = c.machine_of("web.service").clone();

    let out = remote(&["status"], &["web.service"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("web.service") && text.contains("Active: active (running)"), "{text}");

    let out = remote(&["journal", "-n", "5"], &["web.service"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("web-marker-line"), "{out:?}");

    // -f keeps following: it is still running once the line has come.
    let mut follow = Command::new(tool("clusterctl"))
        .args(["--endpoints", &c.lab.endpoints(), "journal", "-f"])
        .args(ssh_opts)
        .arg("web.service")
        .env("SSH_AUTH_SOCK", &agent.sock)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run clusterctl journal -f");
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(follow.stdout.take().expect("stdout")));
    assert!(lines.any(|l| l.is_ok_and(|l| l.contains("web-marker-line"))));
    assert!(follow.try_wait().expect("try_wait").is_none(), "journal -f still follows");
    let _ = follow.kill();
    let _ = follow.wait();

    let out = remote(&["ssh"], &["web.service", "--", "cat", "/etc/machine-id"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), m.id());
    let out = remote(&["ssh"], &[&m.id()[..8], "--", "exit 7"]);
    assert_eq!(out.status.code(), Some(7), "the remote command's status");

    // On the unit's own machine: no ssh, the same answer.
    let out = m.sh("clusterctl status web.service");
    assert!(String::from_utf8_lossy(&out.stdout).contains("Active: active (running)"), "{out:?}");

    // A machine that is gone: a clear error, not a hang.
    m.kill();
    let started = std::time::Instant::now();
    let out = remote(&["ssh", "--ssh-timeout", "2s"], &[&m.id()[..8], "--", "true"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(255), "{err}");
    assert!(err.contains(&format!("ssh to machine {} at {} failed", m.id(), m.ip())), "{err}");
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());
    wait_until("the dead machine's record gone", Duration::from_secs(30), || {
        !c.ok(&["list-machines", "--no-legend", "--full"]).contains(m.id())
    });
    let out = remote(&["ssh"], &[&m.id()[..8], "--", "true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no machine's ID starts with"), "{out:?}");
}

/// The agents' lease TTL, as shipped (`clusterctl agent --ttl`'s default),
/// and the tutorial sidekick's.
const AGENT_TTL: u64 = 10;

/// The tutorial's three instances through what a cluster meets: a machine
/// killed (failing over within TTL + 3 s), a machine killed while the
/// scheduler leader dies, a machine killed while the etcd
/// leader dies, and etcd without quorum for 30 s. Schedulers run on two
/// machines, as the shipped service; a watch on `assign/` over the whole
/// test never sees one unit on two machines.
#[test]
fn the_tutorial_fails_over_through_scheduler_and_etcd_faults() {
    let c = Cluster::start_with(4, 2);
    let watch = AssignWatch::start(|| c.lab.etcdctl(), "/fleetkit");
    c.submit_tutorial();
    c.ok(&["start", "node-etcd@1.service", "node-etcd@2.service", "node-etcd@3.service"]);
    let answers_elsewhere = |i: u32, dead: &Machine| {
        let unit = format!("node-etcd@{i}.service");
        let units = c.try_units()?;
        let m = c.try_machine_of(&units, &unit)?.clone();
        let sidekick = unit.replace("node-etcd@", "node-etcd-discovery@");
        (m.id() != dead.id()
            && units.get(&unit).is_some_and(|u| u.1 == "active")
            && units.get(&sidekick).is_some_and(|u| u.1 == "active" && m.id().starts_with(&u.0))
            && http_get(&format!("{}:3000", m.ip()), "/").is_some()
            && c.announced(i) == Some(format!("{}:3000", m.ip())))
        .then_some(m)
    };
    let scheduler_leader = || {
        c.lab
            .machines()
            .iter()
            .find(|m| {
                m.is_running()
                    && m.journal(&["-u", "fleetkit-scheduler.service"])
                        .lines()
                        .rev()
                        .find(|l| {
                            l.contains(" leads (") || l.contains("lost the lead") || l.contains("resigned")
                        })
                        .is_some_and(|l| l.contains(" leads ("))
            })
            .cloned()
    };

    // A machine dies: within its lease TTL + 3 s its instance answers HTTP on
    // another machine, its sidekick beside it, announced there; nothing else
    // restarts.
    let dead = c.machine_of("node-etcd@3.service").clone();
    let before = c.invocations();
    dead.kill();
    wait_for(
        "node-etcd@3 answering and announced on another machine within TTL + 3 s",
        Duration::from_secs(AGENT_TTL + 3),
        || answers_elsewhere(3, &dead),
    );
    for (u, id) in &before {
        if !u.contains("@3.") {
            assert_eq!(c.invocations().get(u), Some(id), "{u} was not restarted");
        }
    }
    dead.start();
    wait_until("four machines again", Duration::from_secs(30), || {
        let out = c.clusterctl(&["list-machines", "--no-legend"]);
        String::from_utf8_lossy(&out.stdout).lines().count() == 4
    });

    // A machine dies and, during its failover, the scheduler leader too.
    let dead = c.machine_of("node-etcd@1.service").clone();
    let leader = wait_for("a scheduler leader", Duration::from_secs(10), scheduler_leader).0;
    let others: Vec<String> =
        c.invocations().into_iter().filter(|(u, _)| !u.contains("@1.")).map(|(u, _)| u).collect();
    let before = c.invocations();
    dead.kill();
    if leader.id() != dead.id() {
        leader.systemctl(&["kill", "-s", "KILL", "fleetkit-scheduler.service"]);
    }
    wait_for("node-etcd@1 answering and announced on another machine", Duration::from_secs(40), || {
        answers_elsewhere(1, &dead)
    });
    for u in &others {
        assert_eq!(c.invocations().get(u), before.get(u), "{u} was not restarted");
    }
    dead.start(); // back, empty: the fourth machine again
    wait_until("four machines again", Duration::from_secs(30), || {
        let out = c.clusterctl(&["list-machines", "--no-legend"]);
        String::from_utf8_lossy(&out.stdout).lines().count() == 4
    });

    // A machine dies and, during its failover, the etcd leader member.
    let dead = c.machine_of("node-etcd@2.service").clone();
    let before = c.invocations();
    dead.kill();
    let member = c.lab.wait_leader(None, Duration::from_secs(10));
    c.lab.etcd()[member].kill();
    wait_for("node-etcd@2 answering and announced on another machine", Duration::from_secs(40), || {
        answers_elsewhere(2, &dead)
    });
    for (u, id) in &before {
        if !u.contains("@2.") {
            assert_eq!(c.invocations().get(u), Some(id), "{u} was not restarted");
        }
    }
    c.lab.etcd()[member].start();

    // etcd without quorum for 30 s: nothing restarts, nothing moves, and
    // every announcement is back within seconds of quorum.
    let before = c.invocations();
    let assigned = c.assignments();
    let keep = c.lab.wait_leader(None, Duration::from_secs(10));
    let stopped: Vec<usize> = (0..3).filter(|i| *i != keep).collect();
    for i in &stopped {
        c.lab.etcd()[*i].stop();
    }
    let outage = std::time::Instant::now();
    while outage.elapsed() < Duration::from_secs(30) {
        std::thread::park_timeout(Duration::from_secs(1));
    }
    for i in &stopped {
        c.lab.etcd()[*i].start();
    }
    wait_until("etcd healthy again", Duration::from_secs(30), || {
        c.lab.etcdctl().args(["endpoint", "health"]).output().is_ok_and(|o| o.status.success())
    });
    // etcd cancels watches while it has no leader; nothing commits then, so a
    // new watch from here on misses no write.
    let watch_after = AssignWatch::start(|| c.lab.etcdctl(), "/fleetkit");
    wait_until("every announcement back after quorum", Duration::from_secs(20), || {
        (1..=3).all(|i| c.announced(i).is_some())
    });
    assert_eq!(c.invocations(), before, "no unit restarted");
    assert_eq!(c.assignments(), assigned, "no assignment changed");
    assert_eq!(watch.violations(), Vec::<String>::new(), "a unit was on two machines");
    assert_eq!(watch_after.violations(), Vec::<String>::new(), "a unit was on two machines");
}
