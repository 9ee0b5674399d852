//! The tutorial on the machine lab with etcd auth on, under the roles that
//! `grant-machine` and `grant-scheduler` create: every machine's agent and
//! sidekicks log in as that machine, the scheduler as itself, and only the
//! operator's commands run as root. Once with passwords, once with client
//! certificates (the lab's members serve TLS with `--client-cert-auth`, and
//! etcd takes a certificate's common name as its user). In both, the app and
//! its announcement fail over when their machine dies, and a machine's
//! credential cannot touch the other machine's keys.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::{output_with_stdin, units_from_json, write_lab_tutorial};
use fleetkit_tests::bin::tool;
use fleetkit_tests::docker::{http_get, INDEX_HTML};
use fleetkit_tests::lab::{Lab, Machine};
use fleetkit_tests::wait::{wait_for, wait_until};

const AGENT_UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/units/fleetkit-agent.service");
const ROOT_PASSWORD: &str = "lab-root-secret";
/// Where the tutorial's sidekicks announce (its units' prefix).
const ANNOUNCE: &str = "/announce/services/";
/// The scheduler's name for `grant-scheduler`: it runs on the test's host.
const SCHEDULER: &str = "host";

/// How each party logs in to etcd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Login {
    /// `NAME:PASSWORD` in `ETCDCTL_USER` (systemd drop-ins on the machines).
    Passwords,
    /// A client certificate whose common name is the user (the lab's TLS).
    Certificates,
}

/// A lab with etcd auth on, an agent per machine and a scheduler on the
/// host, each under its own credential.
struct Secured {
    lab: Lab,
    login: Login,
    dir: tempfile::TempDir,
    scheduler: Option<Child>,
}

impl Secured {
    /// Two machines; with certificates, three TLS members (so that the
    /// agents and the host pick among https endpoints), with passwords one.
    fn start(login: Login) -> Self {
        let lab = match login {
            Login::Passwords => Lab::new().machines(2).etcd(1).start(),
            Login::Certificates => Lab::new().machines(2).etcd(3).tls().start(),
        };
        // Root first: etcd refuses `auth enable` without it. With
        // certificates root has no password: the host's certificate (CN
        // root) is root.
        let root_user = match login {
            Login::Passwords => format!("root:{ROOT_PASSWORD}"),
            Login::Certificates => "root".to_owned(),
        };
        let no_password = if login == Login::Certificates { "--no-password" } else { "--interactive=false" };
        for step in [
            vec!["user", "add", &*root_user, no_password],
            vec!["user", "grant-role", "root", "root"],
            vec!["auth", "enable"],
        ] {
            let out = lab.etcdctl().args(&step).output().expect("etcdctl");
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success() || err.contains("already"), "etcdctl {step:?}: {err}");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let log = File::create(dir.path().join("scheduler.log")).expect("the scheduler's log");
        let mut c = Self { lab, login, dir, scheduler: None };

        for m in c.lab.machines() {
            let id = m.id();
            let mut grant = vec!["grant-machine", id, "--announce", ANNOUNCE];
            match login {
                Login::Passwords => {
                    grant.push("--password-stdin");
                    c.root(&grant, &format!("{}\n", machine_password(m)));
                    // The agent and the sidekicks (their own services, not
                    // the agent's children) log in as the machine.
                    for unit in ["fleetkit-agent.service", "node-etcd-discovery@.service"] {
                        let dropin = format!(
                            "mkdir -p /etc/systemd/system/{unit}.d && printf \
                             '[Service]\\nEnvironment=ETCDCTL_USER=fleetkit-machine-{id}:{}\\n' > \
                             /etc/systemd/system/{unit}.d/login.conf",
                            machine_password(m)
                        );
                        assert!(m.sh(&dropin).status.success(), "{dropin}");
                    }
                }
                // The lab gave the machine its certificate (CN
                // fleetkit-machine-ID) and named it in its environment.
                Login::Certificates => {
                    grant.push("--no-password");
                    c.root(&grant, "");
                }
            }
            m.install_unit(Path::new(AGENT_UNIT));
            m.systemctl(&["enable", "--now", "fleetkit-agent.service"]);
        }

        let user = format!("fleetkit-scheduler-{SCHEDULER}");
        let login_args = match login {
            Login::Passwords => {
                c.root(&["grant-scheduler", SCHEDULER, "--password-stdin"], "pw-sched\n");
                let mut args = c.lab.client_args();
                args.extend(["--user".to_owned(), format!("{user}:pw-sched")]);
                args
            }
            Login::Certificates => {
                c.root(&["grant-scheduler", SCHEDULER, "--no-password"], "");
                let (cert, key) = c.lab.tls().expect("a TLS lab").client(&user);
                c.lab.client_args_with(&cert, &key)
            }
        };
        let scheduler = Command::new(tool("clusterctl"))
            .args(login_args)
            .args(["schedule", "--watch", "--ttl", "3"])
            .env_remove("ETCDCTL_ENDPOINTS")
            .env_remove("FLEETKIT_PREFIX")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start the scheduler");
        c.scheduler = Some(scheduler);
        wait_until("both agents' records", Duration::from_secs(30), || {
            c.root(&["list-machines", "--no-legend"], "").lines().count() == 2
        });
        c
    }

    /// clusterctl on the host as root, with `stdin`.
    fn clusterctl(&self, args: &[&str], stdin: &str) -> Output {
        let mut cmd = Command::new(tool("clusterctl"));
        cmd.args(self.lab.client_args());
        if self.login == Login::Passwords {
            cmd.args(["--user", &format!("root:{ROOT_PASSWORD}")]);
        }
        output_with_stdin(cmd.args(args).env_remove("ETCDCTL_ENDPOINTS").env_remove("FLEETKIT_PREFIX"), stdin)
    }

    /// [`Secured::clusterctl`], insisting on success; its stdout.
    fn root(&self, args: &[&str], stdin: &str) -> String {
        let out = self.clusterctl(args, stdin);
        assert!(out.status.success(), "clusterctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// unit → (machine ID, ACTIVE, SUB) from `list-units --json`.
    fn units(&self) -> BTreeMap<String, (String, String, String)> {
        units_from_json(&self.root(&["list-units", "--json"], ""))
    }

    /// The machine running `unit` (active, running) with its sidekick,
    /// once both are so.
    fn running(&self, unit: &str, sidekick: &str) -> Option<Machine> {
        let units = self.units();
        let (id, active, sub) = units.get(unit)?;
        let beside = units.get(sidekick)?;
        let up = |a: &str, s: &str| a == "active" && s == "running";
        (up(active, sub) && up(&beside.1, &beside.2) && beside.0 == *id)
            .then(|| {
                self.lab.machines().iter().find(|m| m.id().starts_with(id.as_str()) || id.starts_with(m.id()))
            })
            .flatten()
            .cloned()
    }

    /// What `list-announcements` shows for `key`.
    fn announced(&self, key: &str) -> Option<String> {
        self.root(&["list-announcements", "--json", ANNOUNCE], "")
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|v| v["key"] == key)
            .and_then(|v| v["value"].as_str().map(str::to_owned))
    }

    /// etcdctl on machine `m` under `m`'s credential: its certificate (from
    /// its environment) or its password.
    fn as_machine(&self, m: &Machine, args: &[&str]) -> Output {
        let mut script = String::from("etcdctl");
        if self.login == Login::Passwords {
            script.push_str(&format!(" --user=fleetkit-machine-{}:{}", m.id(), machine_password(m)));
        }
        for a in args {
            script.push_str(&format!(" '{}'", a.replace('\'', r"'\''")));
        }
        m.sh(&script)
    }
}

impl Drop for Secured {
    fn drop(&mut self) {
        if let Some(mut s) = self.scheduler.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        if std::thread::panicking() {
            let log = std::fs::read_to_string(self.dir.path().join("scheduler.log")).unwrap_or_default();
            eprintln!("the scheduler's stderr:\n{log}");
        }
    }
}

fn machine_password(m: &Machine) -> String {
    format!("pw-{}", &m.id()[..8])
}

fn denied(out: &Output) -> bool {
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("permission denied")
}

/// The story both logins must tell: the tutorial's first instance and its
/// sidekick run, announce, and move when their machine dies; each machine
/// reaches its own keys and nobody else's.
fn the_tutorial_runs_and_fails_over(login: Login) {
    let c = Secured::start(login);
    let [app, sidekick] = write_lab_tutorial(c.dir.path(), &c.lab.image());
    c.root(&["submit", &app, &sidekick], "");
    let out = c.root(&["start", "node-etcd@1.service"], "");
    assert!(out.contains("Unit node-etcd@1.service launched on"), "{out}");
    let (unit, kick) = ("node-etcd@1.service", "node-etcd-discovery@1.service");
    let first =
        wait_for("the app and its sidekick running", Duration::from_secs(30), || c.running(unit, kick)).0;
    let page = http_get(&format!("{}:3000", first.ip()), "/").expect("the app answers");
    assert!(page.ends_with(INDEX_HTML), "{page}");
    let key = format!("{ANNOUNCE}node-etcd1");
    let at = |m: &Machine| format!("{}:3000", m.ip());
    wait_until("the sidekick's announcement", Duration::from_secs(20), || {
        c.announced(&key) == Some(at(&first))
    });

    // Each machine's credential reaches its own keys and nothing of the other's.
    let second = c.lab.machines().iter().find(|m| m.id() != first.id()).expect("two machines").clone();
    for (m, other) in [(&first, &second), (&second, &first)] {
        let mine =
            c.as_machine(m, &["get", "--prefix", "--keys-only", &format!("/fleetkit/assign/{}/", m.id())]);
        assert!(mine.status.success(), "{}: {}", m.hostname(), String::from_utf8_lossy(&mine.stderr));
        for args in [
            vec!["put", &*format!("/fleetkit/machines/{}", other.id()), "{}"],
            vec!["put", &*format!("/fleetkit/states/{}/{unit}", other.id()), "{}"],
            vec!["put", &*format!("/fleetkit/assign/{}/evil.service", m.id()), "{}"],
            vec!["put", "/fleetkit/units/evil.service", "{}"],
        ] {
            let out = c.as_machine(m, &args);
            assert!(
                denied(&out),
                "{} must not {args:?}: {}",
                m.hostname(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    // The machine dies: the scheduler, under its role, moves both units; the
    // other machine, under its own, runs them and takes the announcement over.
    first.kill();
    let now = wait_for("the app and its sidekick on the other machine", Duration::from_secs(60), || {
        c.running(unit, kick).filter(|m| m.id() != first.id())
    })
    .0;
    assert_eq!(now.id(), second.id());
    let page = http_get(&format!("{}:3000", now.ip()), "/").expect("the app answers on its new machine");
    assert!(page.ends_with(INDEX_HTML), "{page}");
    wait_until("the announcement from the new machine", Duration::from_secs(20), || {
        c.announced(&key) == Some(at(&now))
    });
    for service in ["fleetkit-agent.service", kick] {
        let log = now.journal(&["-u", service]);
        assert!(!log.contains("permission denied"), "{service} met a refusal: {log}");
    }
}

#[test]
fn agents_and_the_scheduler_run_the_tutorial_under_their_own_passwords_alone() {
    the_tutorial_runs_and_fails_over(Login::Passwords);
}

#[test]
fn agents_and_the_scheduler_run_the_tutorial_under_their_own_client_certificates_alone() {
    the_tutorial_runs_and_fails_over(Login::Certificates);
}
