//! The etcd test support against the real etcd: clusters come up, members
//! die and come back, leaders change, TLS and auth are what they claim, and
//! nothing is left behind.

use std::time::Duration;

use fleetkit_tests::etcd::{EtcdCluster, PASSWORD, USER};

const T: Duration = Duration::from_secs(30);

/// Issue 2's acceptance: kill the leader of three, see a new leader.
#[test]
fn three_nodes_kill_the_leader_and_a_new_one_leads() {
    let mut c = EtcdCluster::three();
    let old = c.wait_leader(None, T);
    assert!(c.etcdctl().args(["put", "/k", "v"]).output().unwrap().status.success());

    c.member(old).kill();
    assert!(!c.member_ref(old).is_running());
    let new = c.wait_leader(Some(old), T);
    assert_ne!(new, old);
    assert_eq!(c.get("/k").as_deref(), Some("v"), "data survives the leader's death");

    // The killed member comes back on its ports and data dir and follows.
    c.restart(old);
    c.wait_healthy(T);
    assert!(c.member_ref(old).is_running());
    assert!(c.leader().is_some());
}

#[test]
fn a_stopped_single_member_restarts_with_its_data() {
    let mut c = EtcdCluster::single();
    assert!(c.etcdctl().args(["put", "/k", "kept"]).output().unwrap().status.success());
    let pid = c.member_ref(0).pid();
    c.member(0).stop();
    assert!(!c.etcdctl().args(["get", "/k"]).output().unwrap().status.success(), "etcd is down");
    c.member(0).restart();
    assert_ne!(c.member_ref(0).pid(), pid);
    assert_eq!(c.get("/k").as_deref(), Some("kept"));
}

#[test]
fn tls_and_auth_are_enforced() {
    let c = EtcdCluster::builder(1).tls().auth().start();
    let tls = c.tls().unwrap();
    let ep = format!("--endpoints={}", c.endpoints_arg());
    assert!(ep.contains("https://"));

    // The harness's own etcdctl (root, client cert) works.
    assert!(c.etcdctl().args(["put", "/a", "1"]).output().unwrap().status.success());

    let ctl = |extra: &[String]| {
        std::process::Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .args(["--dial-timeout=2s", "--command-timeout=3s", &ep])
            .args(extra)
            .args(["get", "/a"])
            .output()
            .unwrap()
    };
    let cacert = format!("--cacert={}", tls.ca.display());
    let cert = format!("--cert={}", tls.client_cert.display());
    let key = format!("--key={}", tls.client_key.display());
    let user = format!("--user={USER}:{PASSWORD}");

    // No client certificate: refused by TLS.
    assert!(!ctl(&[cacert.clone(), user.clone()]).status.success());
    // Certificate but a wrong password: refused by auth.
    let wrong = ctl(&[cacert.clone(), cert.clone(), key.clone(), format!("--user={USER}:nope")]);
    assert!(!wrong.status.success());
    // Certificate and the test user: allowed.
    let ok = ctl(&[cacert, cert, key, user]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains('1'));

    let args = c.client_args();
    assert_eq!(args[0], "--endpoints");
    assert!(args.iter().any(|a| a == "--cacert"));
}

#[test]
fn drop_kills_members_and_removes_the_dir() {
    let (pid, dir) = {
        let c = EtcdCluster::single();
        (c.member_ref(0).pid().unwrap(), c.dir().to_path_buf())
    };
    assert!(!dir.exists(), "{} left behind", dir.display());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    assert!(status.is_empty() || status.contains("zombie"), "etcd {pid} still runs");
}
