//! Per-machine and per-scheduler credentials against etcd with auth on:
//! what each role may do, and that etcd refuses everything else.

mod common;

use std::process::{Command, Output, Stdio};

use common::output_with_stdin;
use fleetkit_tests::etcd::{EtcdCluster, ROOT_PASSWORD};

const A: &str = "aaaa0000000000000000000000000001";
const B: &str = "bbbb0000000000000000000000000002";

struct Auth {
    etcd: EtcdCluster,
}

impl Auth {
    fn start() -> Self {
        Auth { etcd: EtcdCluster::builder(1).auth().start() }
    }

    /// clusterctl as `user` (NAME:PASSWORD), with `stdin`.
    fn clusterctl(&self, user: &str, args: &[&str], stdin: &str) -> Output {
        output_with_stdin(
            Command::new(env!("CARGO_BIN_EXE_clusterctl"))
                .args(["--endpoints", &self.etcd.endpoints_arg(), "--user", user])
                .args(args)
                .env_remove("ETCDCTL_ENDPOINTS")
                .env_remove("FLEETKIT_PREFIX"),
            stdin,
        )
    }

    fn root(&self, args: &[&str], stdin: &str) -> String {
        let out = self.clusterctl(&format!("root:{ROOT_PASSWORD}"), args, stdin);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// etcdctl as `user`.
    fn etcdctl(&self, user: &str, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.etcd.endpoints_arg()))
            .arg(format!("--user={user}"))
            .args(["--dial-timeout=2s", "--command-timeout=3s"])
            .args(args)
            .output()
            .expect("run etcdctl")
    }
}

fn denied(out: &Output) -> bool {
    !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("permission denied")
}

#[test]
fn a_machine_credential_reaches_only_that_machines_keys() {
    let auth = Auth::start();
    let shown = auth.root(&["grant-machine", A, "--password-stdin"], "pa\n");
    assert!(shown.contains(&format!("Role fleetkit-machine-{A}")), "{shown}");
    assert!(shown.contains("KV Read:") && shown.contains(&format!("/fleetkit/assign/{A}/")), "{shown}");
    auth.root(&["grant-machine", B, "--announce", "/announce/services/", "--password-stdin"], "pb\n");
    // Idempotent: a second run changes the password and leaves the role as it was.
    let again = auth.root(&["grant-machine", A, "--password-stdin"], "pa2\n");
    assert!(again.contains("exists"), "{again}");
    assert_eq!(
        again.lines().filter(|l| l.starts_with('\t')).count(),
        shown.lines().filter(|l| l.starts_with('\t')).count()
    );

    let root = format!("root:{ROOT_PASSWORD}");
    assert!(auth.etcdctl(&root, &["put", "/fleetkit/units/web.service", "{}"]).status.success());
    assert!(auth
        .etcdctl(&root, &["put", &format!("/fleetkit/assign/{B}/web.service"), "{}"])
        .status
        .success());
    let a = format!("fleetkit-machine-{A}:pa2");
    let b = format!("fleetkit-machine-{B}:pb");

    for (what, args) in [
        ("its record", vec!["put", &*format!("/fleetkit/machines/{A}"), "{}"]),
        ("its states", vec!["put", &*format!("/fleetkit/states/{A}/web.service"), "{}"]),
        ("the unit records", vec!["get", "--prefix", "/fleetkit/units/"]),
        ("its assignments", vec!["get", "--prefix", &*format!("/fleetkit/assign/{A}/")]),
    ] {
        let out = auth.etcdctl(&a, &args);
        assert!(out.status.success(), "A may touch {what}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for (what, args) in [
        ("B's record", vec!["put", &*format!("/fleetkit/machines/{B}"), "{}"]),
        ("B's states", vec!["put", &*format!("/fleetkit/states/{B}/web.service"), "{}"]),
        ("its own assignments", vec!["put", &*format!("/fleetkit/assign/{A}/web.service"), "{}"]),
        ("unit records", vec!["put", "/fleetkit/units/evil.service", "{}"]),
        ("desired states", vec!["put", "/fleetkit/desired/web.service", "launched"]),
        ("B's assignments", vec!["get", "--prefix", &*format!("/fleetkit/assign/{B}/")]),
        ("the old password", vec!["get", "/fleetkit/units/web.service"]),
    ] {
        let out = if what == "the old password" {
            auth.etcdctl(&format!("fleetkit-machine-{A}:pa"), &args)
        } else {
            auth.etcdctl(&a, &args)
        };
        assert!(!out.status.success(), "A must not touch {what}");
        if what != "the old password" {
            assert!(denied(&out), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        }
    }

    // B's lease, holding B's record: A cannot revoke it.
    let grant = auth.etcdctl(&b, &["lease", "grant", "60"]);
    let lease = String::from_utf8_lossy(&grant.stdout).split_whitespace().nth(1).unwrap().to_owned();
    let put =
        auth.etcdctl(&b, &["put", &format!("--lease={lease}"), &format!("/fleetkit/machines/{B}"), "{}"]);
    assert!(put.status.success(), "{}", String::from_utf8_lossy(&put.stderr));
    assert!(denied(&auth.etcdctl(&a, &["lease", "revoke", &lease])), "A revoked B's lease");
    assert!(auth.etcdctl(&b, &["lease", "revoke", &lease]).status.success(), "B may revoke its own");

    // B's sidekicks may announce; A's may not.
    assert!(auth.etcdctl(&b, &["put", "/announce/services/web/1", "10.0.0.2:80"]).status.success());
    assert!(denied(&auth.etcdctl(&a, &["put", "/announce/services/web/1", "evil"])));

    // A machine cannot schedule.
    let out = auth.clusterctl(&a, &["schedule"], "");
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("permission denied"));

    let gone = auth.root(&["revoke-machine", A], "");
    assert!(gone.contains("deleted"), "{gone}");
    assert!(!auth.etcdctl(&a, &["get", "/fleetkit/units/web.service"]).status.success());
    assert!(auth.root(&["revoke-machine", A], "").contains("was not there"), "revoking twice is fine");
}

#[test]
fn a_scheduler_credential_schedules_and_nothing_more() {
    let auth = Auth::start();
    auth.root(&["grant-scheduler", "s1", "--password-stdin"], "ps\n");
    let root = format!("root:{ROOT_PASSWORD}");
    let dir = tempfile::TempDir::new().unwrap();
    let unit = dir.path().join("web.service");
    std::fs::write(&unit, "[Service]\nExecStart=/bin/true\n").unwrap();
    auth.root(&["submit", unit.to_str().unwrap()], "");
    let lease = auth.etcdctl(&root, &["lease", "grant", "60"]);
    let lease = String::from_utf8_lossy(&lease.stdout).split_whitespace().nth(1).unwrap().to_owned();
    let rec = format!(r#"{{"id":"{A}","ip":"10.0.0.1","metadata":{{}}}}"#);
    assert!(auth
        .etcdctl(&root, &["put", &format!("--lease={lease}"), &format!("/fleetkit/machines/{A}"), &rec])
        .status
        .success());

    auth.root(&["start", "--no-block", "web.service"], "");
    let s = "fleetkit-scheduler-s1:ps";
    let out = auth.clusterctl(s, &["schedule"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let placed = auth.etcdctl(&root, &["get", "--prefix", "--keys-only", "/fleetkit/assign/"]);
    assert!(String::from_utf8_lossy(&placed.stdout).contains(&format!("/fleetkit/assign/{A}/web.service")));
    // Under the same role, --watch holds the election and fails over.
    let lease_b = auth.etcdctl(&root, &["lease", "grant", "60"]);
    let lease_b = String::from_utf8_lossy(&lease_b.stdout).split_whitespace().nth(1).unwrap().to_owned();
    let rec_b = format!(r#"{{"id":"{B}","ip":"10.0.0.2","metadata":{{}}}}"#);
    assert!(auth
        .etcdctl(&root, &["put", &format!("--lease={lease_b}"), &format!("/fleetkit/machines/{B}"), &rec_b])
        .status
        .success());
    let mut watch = Command::new(env!("CARGO_BIN_EXE_clusterctl"))
        .args(["--endpoints", &auth.etcd.endpoints_arg(), "--user", s, "schedule", "--watch", "--ttl", "2"])
        .env_remove("ETCDCTL_ENDPOINTS")
        .env_remove("FLEETKIT_PREFIX")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(auth.etcdctl(&root, &["lease", "revoke", &lease]).status.success(), "machine A dies");
    let _ = fleetkit_tests::wait::wait_for("web.service on B", std::time::Duration::from_secs(15), || {
        let out = auth.etcdctl(&root, &["get", "--prefix", "--keys-only", "/fleetkit/assign/"]);
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("/fleetkit/assign/{B}/web.service"))
            .then_some(())
    });
    let _ = watch.kill();
    let _ = watch.wait();

    for args in [
        vec!["put", "/fleetkit/units/evil.service", "{}"],
        vec!["put", "/fleetkit/desired/web.service", "inactive"],
        vec!["put", &*format!("/fleetkit/machines/{B}"), "{}"],
        vec!["get", "/fleetkit/states/", "--prefix"],
    ] {
        assert!(denied(&auth.etcdctl(s, &args)), "the scheduler must not: {args:?}");
    }
}

#[test]
fn a_machine_logs_in_by_client_certificate_whose_cn_is_its_user() {
    let etcd = EtcdCluster::builder(1).tls().auth().start();
    let tls = etcd.tls().expect("TLS files");
    let out = Command::new(env!("CARGO_BIN_EXE_clusterctl"))
        .args(etcd.client_args())
        .args(["--user", &format!("root:{ROOT_PASSWORD}"), "grant-machine", A, "--no-password"])
        .env_remove("ETCDCTL_ENDPOINTS")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (cert, key) = tls.client(&format!("fleetkit-machine-{A}"));
    let as_a = |args: &[&str]| {
        Command::new("etcdctl")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", etcd.endpoints_arg()))
            .arg(format!("--cacert={}", tls.ca.display()))
            .arg(format!("--cert={}", cert.display()))
            .arg(format!("--key={}", key.display()))
            .args(["--dial-timeout=2s", "--command-timeout=3s"])
            .args(args)
            .output()
            .unwrap()
    };
    let mine = as_a(&["put", &format!("/fleetkit/machines/{A}"), "{}"]);
    assert!(mine.status.success(), "{}", String::from_utf8_lossy(&mine.stderr));
    assert!(denied(&as_a(&["put", &format!("/fleetkit/machines/{B}"), "{}"])));
    assert!(denied(&as_a(&["put", "/fleetkit/units/evil.service", "{}"])));
}
