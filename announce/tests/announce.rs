//! announce against real etcd: issue 5's acceptance, one story per test.
//!
//! Every test starts its own etcd (fleetkit-tests), runs the built binary,
//! and looks at etcd with etcdctl, never with announce's own code.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fleetkit_tests::etcd::{EtcdCluster, PASSWORD, USER};
use fleetkit_tests::notify::NotifySocket;
use fleetkit_tests::wait::{wait_for, wait_until};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

const BIN: &str = env!("CARGO_BIN_EXE_announce");
const LONG: Duration = Duration::from_secs(30);

/// A running announce with its stderr collected line by line.
struct Announce {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Reads stderr until announce closes it; waited for once announce
    /// exited, so the log then holds every line.
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Announce {
    fn start(etcd: &EtcdCluster, args: &[&str]) -> Self {
        Self::start_with(etcd, args, &[])
    }

    fn start_with(etcd: &EtcdCluster, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(etcd.client_args()).args(args).stdin(Stdio::null()).stdout(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        Self::spawn(cmd)
    }

    fn spawn(mut cmd: Command) -> Self {
        let mut child =
            cmd.env_remove("JOURNAL_STREAM").stderr(Stdio::piped()).spawn().expect("run announce");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stderr = child.stderr.take().expect("stderr");
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines, reader: Some(reader) }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(i32::try_from(self.child.id()).unwrap()), sig).unwrap();
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let status = wait_for("announce to exit", timeout, || self.child.try_wait().unwrap()).0;
        // A check's child may hold stderr open a little longer: wait for
        // the reader a moment, never for ever.
        let until = Instant::now() + Duration::from_secs(2);
        while self.reader.as_ref().is_some_and(|r| !r.is_finished()) && Instant::now() < until {
            std::thread::park_timeout(Duration::from_millis(10));
        }
        status
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    fn wait_log(&self, needle: &str, timeout: Duration) {
        wait_until(&format!("log line with {needle:?}"), timeout, || self.log().contains(needle));
    }
}

impl Drop for Announce {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- announce stderr ---\n{}", self.log());
        }
    }
}

/// Asserts `key` stays present for `how_long`, polling.
fn stays_present(etcd: &EtcdCluster, key: &str, how_long: Duration, a: &mut Announce) {
    let end = Instant::now() + how_long;
    while Instant::now() < end {
        assert!(etcd.get(key).is_some(), "{key} vanished");
        assert!(a.running(), "announce exited");
        std::thread::park_timeout(Duration::from_millis(100));
    }
}

fn create_revision(etcd: &EtcdCluster, key: &str) -> i64 {
    let out = etcd.etcdctl().args(["get", "-w", "json", key]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["kvs"][0]["create_revision"].as_i64().unwrap()
}

#[test]
fn announces_renews_and_removes_on_sigterm() {
    let etcd = EtcdCluster::single();
    let start = Instant::now();
    let mut a = Announce::start(&etcd, &["--ttl", "2", "/announce/services/web1", "10.0.0.1:3000"]);
    wait_until("key present", LONG, || etcd.get("/announce/services/web1").is_some());
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "key took {took:?} to appear");

    let (value, lease) = etcd.get_with_lease("/announce/services/web1").unwrap();
    assert_eq!(value, "10.0.0.1:3000");
    let (_, granted) = etcd.lease_ttl(lease).expect("lease exists");
    assert_eq!(granted, 2, "lease of the TTL given");

    stays_present(&etcd, "/announce/services/web1", Duration::from_secs(6), &mut a);
    assert_eq!(etcd.get_with_lease("/announce/services/web1").unwrap().1, lease, "same lease throughout");

    a.signal(Signal::SIGTERM);
    let status = a.wait_exit(LONG);
    assert_eq!(status.code(), Some(0));
    let gone = wait_until("key gone after SIGTERM", LONG, || etcd.get("/announce/services/web1").is_none());
    assert!(gone < Duration::from_secs(1), "key took {gone:?} to go");
    assert!(a.log().contains("announced /announce/services/web1"), "{}", a.log());
    assert!(a.log().contains("stopped on SIGTERM"), "{}", a.log());
    assert_eq!(a.log().lines().count(), 2, "one line per state change: {}", a.log());
}

#[test]
fn sigint_and_sighup_also_revoke() {
    let etcd = EtcdCluster::single();
    for sig in [Signal::SIGINT, Signal::SIGHUP] {
        let mut a = Announce::start(&etcd, &["--ttl", "30", "/sig", "v"]);
        wait_until("key present", LONG, || etcd.get("/sig").is_some());
        a.signal(sig);
        assert_eq!(a.wait_exit(LONG).code(), Some(0));
        assert!(etcd.get("/sig").is_none(), "{sig}: key gone at once");
    }
}

#[test]
fn sigkill_leaves_the_key_for_at_most_the_ttl() {
    let etcd = EtcdCluster::single();
    let mut a = Announce::start(&etcd, &["--ttl", "2", "/crash", "v"]);
    wait_until("key present", LONG, || etcd.get("/crash").is_some());
    a.signal(Signal::SIGKILL);
    a.wait_exit(LONG);
    let gone = wait_until("key gone after SIGKILL", LONG, || etcd.get("/crash").is_none());
    assert!(gone <= Duration::from_secs(4), "gone after {gone:?}, TTL is 2 s");
}

#[test]
fn survives_etcd_stopped_for_twice_the_ttl() {
    let mut etcd = EtcdCluster::single();
    let mut a = Announce::start(&etcd, &["--ttl", "2", "/outage", "v"]);
    wait_until("key present", LONG, || etcd.get("/outage").is_some());

    etcd.member(0).stop();
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        assert!(a.running(), "announce must ride out the outage");
        std::thread::park_timeout(Duration::from_millis(100));
    }
    a.wait_log("lost etcd", LONG);

    etcd.member(0).restart();
    let back = wait_until("key back", LONG, || etcd.get("/outage").is_some());
    assert!(back < Duration::from_secs(2), "key back after {back:?}");
    a.wait_log("etcd is back", Duration::from_secs(5));
    // And it is kept alive again, well past the TTL.
    stays_present(&etcd, "/outage", Duration::from_secs(5), &mut a);
    let (_, lease) = etcd.get_with_lease("/outage").unwrap();
    assert!(etcd.lease_ttl(lease).is_some());
    assert!(a.log().contains("still announced on lease"), "{}", a.log());
}

#[test]
fn three_nodes_losing_members_never_deletes_the_key() {
    let mut etcd = EtcdCluster::three();
    let key = "/announce/services/ha";
    let mut a = Announce::start(&etcd, &["--ttl", "3", key, "v"]);
    wait_until("key present", LONG, || etcd.get(key).is_some());
    let created = create_revision(&etcd, key);

    // A watch running through the whole test, on every endpoint.
    let mut watch = etcd
        .etcdctl()
        .args(["watch", key, &format!("--rev={created}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let sink = seen.clone();
    let mut out = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    wait_until("watch sees the PUT", LONG, || seen.lock().unwrap().contains("PUT"));

    // Kill the leader first, then every other member in turn: one of them is
    // the member announce is connected to.
    let leader = etcd.wait_leader(None, LONG);
    let order: Vec<usize> = std::iter::once(leader).chain((0..3).filter(|&i| i != leader)).collect();
    for victim in order {
        etcd.member(victim).kill();
        etcd.wait_leader(Some(victim), LONG);
        stays_present(&etcd, key, Duration::from_secs(2), &mut a);
        etcd.restart(victim);
        etcd.wait_healthy(LONG);
    }
    stays_present(&etcd, key, Duration::from_secs(4), &mut a);
    assert_eq!(create_revision(&etcd, key), created, "the key was never deleted and re-created");
    let _ = watch.kill();
    let _ = watch.wait();
    let events = seen.lock().unwrap().clone();
    assert!(!events.contains("DELETE"), "watch saw a DELETE:\n{events}");
    // announce did lose its member (each one died once) and kept its lease.
    let log = a.log();
    assert!(log.contains("lost etcd") && log.contains("still announced on lease"), "{log}");
    assert!(!log.contains("re-announced"), "{log}");
}

#[test]
fn puts_back_a_deleted_key_and_replaces_a_revoked_lease() {
    let etcd = EtcdCluster::single();
    let a = Announce::start(&etcd, &["--ttl", "30", "/back", "v"]);
    wait_until("key present", LONG, || etcd.get("/back").is_some());
    let (_, lease) = etcd.get_with_lease("/back").unwrap();

    assert!(etcd.etcdctl().args(["del", "/back"]).output().unwrap().status.success());
    a.wait_log("was deleted by another client", LONG);
    wait_until("key put back", Duration::from_secs(5), || etcd.get("/back").is_some());
    assert_eq!(etcd.get_with_lease("/back").unwrap().1, lease, "on the same lease");

    let revoke = etcd.etcdctl().args(["lease", "revoke", &format!("{lease:x}")]).output().unwrap();
    assert!(revoke.status.success());
    wait_until("key back on a new lease", Duration::from_secs(5), || {
        etcd.get_with_lease("/back").is_some_and(|(_, l)| l != lease)
    });
    let (_, new_lease) = etcd.get_with_lease("/back").unwrap();
    assert_eq!(etcd.lease_ttl(new_lease).unwrap().1, 30);
}

#[test]
fn tcp_check_withdraws_and_restores() {
    let etcd = EtcdCluster::single();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut a = Announce::start(
        &etcd,
        &[
            "--ttl",
            "5",
            "--check-tcp",
            &addr,
            "--check-interval",
            "200ms",
            "--check-failures",
            "2",
            "/tcp",
            "v",
        ],
    );
    wait_until("key present while the port listens", LONG, || etcd.get("/tcp").is_some());
    drop(listener);
    wait_until("key withdrawn", LONG, || etcd.get("/tcp").is_none());
    a.wait_log("withdrew /tcp", LONG);
    let _listener = TcpListener::bind(&addr).unwrap();
    wait_until("key back", LONG, || etcd.get("/tcp").is_some());
    a.wait_log("check passes", LONG);
    assert!(a.running());
}

#[test]
fn http_check_withdraws_and_restores() {
    let etcd = EtcdCluster::single();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/health", listener.local_addr().unwrap());
    let healthy = Arc::new(AtomicBool::new(true));
    let flag = healthy.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let status = if flag.load(Ordering::SeqCst) { "200 OK" } else { "503 Service Unavailable" };
            let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let _a = Announce::start(
        &etcd,
        &["--check-http", &url, "--check-interval", "200ms", "--check-failures", "2", "/http", "v"],
    );
    wait_until("key present while 200", LONG, || etcd.get("/http").is_some());
    healthy.store(false, Ordering::SeqCst);
    wait_until("key withdrawn on 503", LONG, || etcd.get("/http").is_none());
    healthy.store(true, Ordering::SeqCst);
    wait_until("key back on 200", LONG, || etcd.get("/http").is_some());
}

#[test]
fn exec_check_withdraws_and_restores() {
    let etcd = EtcdCluster::single();
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("up");
    let flag_s = flag.to_str().unwrap();
    // The command comes last here; its arguments may start with '-'.
    let a = Announce::start(
        &etcd,
        &[
            "--check-interval",
            "200ms",
            "--check-failures",
            "1",
            "/exec",
            "v",
            "--check-exec",
            "test",
            "-e",
            flag_s,
        ],
    );
    // Down until the first check passes: nothing announced yet.
    a.wait_log("not announcing /exec", LONG);
    assert!(etcd.get("/exec").is_none());
    std::fs::write(&flag, "").unwrap();
    wait_until("key present once the check passes", LONG, || etcd.get("/exec").is_some());
    std::fs::remove_file(&flag).unwrap();
    wait_until("key withdrawn", LONG, || etcd.get("/exec").is_none());
    std::fs::write(&flag, "").unwrap();
    wait_until("key back", LONG, || etcd.get("/exec").is_some());
}

#[test]
fn tls_client_certificates_and_user_password() {
    let etcd = EtcdCluster::builder(1).tls().auth().start();
    let user = format!("{USER}:{PASSWORD}");
    let mut a = Announce::start(&etcd, &["--user", &user, "--ttl", "3", "/secure", "v"]);
    wait_until("key present over TLS with auth", LONG, || etcd.get("/secure").is_some());
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait_exit(LONG).code(), Some(0));
    assert!(etcd.get("/secure").is_none());

    // A wrong password is not something to retry: exit 2, saying why.
    let mut bad = Announce::start(&etcd, &["--user", &format!("{USER}:wrong"), "/secure", "v"]);
    assert_eq!(bad.wait_exit(LONG).code(), Some(2));
    assert!(bad.log().contains("authentication failed"), "{}", bad.log());
}

#[test]
fn a_user_for_an_etcd_without_auth_is_exit_2() {
    let etcd = EtcdCluster::single();
    let mut a = Announce::start(&etcd, &["--user", "someone:pw", "/k", "v"]);
    assert_eq!(a.wait_exit(LONG).code(), Some(2));
    assert!(a.log().contains("authentication is not enabled"), "{}", a.log());
}

#[test]
fn tells_systemd_ready_after_the_first_put() {
    let etcd = EtcdCluster::single();
    let sock = NotifySocket::new();
    let path = sock.path().to_str().unwrap().to_string();
    let _a = Announce::start_with(&etcd, &["/ready", "v"], &[("NOTIFY_SOCKET", &path)]);
    let seen = sock.wait_for("READY=1", LONG);
    assert!(etcd.get("/ready").is_some(), "the key is there when READY=1 arrives");
    assert!(seen.iter().any(|m| m.contains("STATUS=announced /ready")), "{seen:?}");
}

#[test]
fn never_overwrites_a_key_another_process_holds() {
    let etcd = EtcdCluster::single();
    let mut first = Announce::start(&etcd, &["--ttl", "3", "/owned", "first"]);
    wait_until("first owns the key", LONG, || etcd.get("/owned").as_deref() == Some("first"));
    let second = Announce::start(&etcd, &["--ttl", "3", "/owned", "second"]);
    second.wait_log("is held by lease", LONG);
    assert_eq!(etcd.get("/owned").as_deref(), Some("first"));

    // When the owner goes, the waiting one takes the key.
    first.signal(Signal::SIGTERM);
    first.wait_exit(LONG);
    wait_until("second announces", LONG, || etcd.get("/owned").as_deref() == Some("second"));
    second.wait_log("is free again", LONG);
}

#[test]
fn a_waiting_announcer_takes_the_key_when_a_dead_holders_lease_ends() {
    let etcd = EtcdCluster::single();
    let mut first = Announce::start(&etcd, &["--ttl", "2", "/dead", "first"]);
    wait_until("first owns the key", LONG, || etcd.get("/dead").as_deref() == Some("first"));
    // A long TTL: the second would look again only every 10 s on its own.
    let second = Announce::start(&etcd, &["--ttl", "30", "/dead", "second"]);
    second.wait_log("is held by lease", LONG);
    // Its holder dies without revoking: the key lives out its 2 s lease.
    first.signal(Signal::SIGKILL);
    first.wait_exit(LONG);
    let took = wait_until("second takes the key as the lease ends", LONG, || {
        etcd.get("/dead").as_deref() == Some("second")
    });
    assert!(took < Duration::from_secs(5), "took {took:?}: it waited for its own next look, not for the key");
}

#[test]
fn once_prints_the_lease_and_force_takes_over() {
    let etcd = EtcdCluster::single();
    let run = |args: &[&str]| {
        Command::new(BIN).args(etcd.client_args()).args(args).stdin(Stdio::null()).output().unwrap()
    };
    let out = run(&["--once", "--ttl", "30", "/once", "a"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let id = i64::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).unwrap();
    assert_eq!(etcd.get_with_lease("/once"), Some(("a".to_string(), id)));
    assert_eq!(etcd.lease_ttl(id).unwrap().1, 30);

    let taken = run(&["--once", "/once", "b"]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&taken.stderr).contains("--force"));
    assert_eq!(etcd.get("/once").as_deref(), Some("a"));

    let forced = run(&["--once", "--force", "/once", "b"]);
    assert!(forced.status.success());
    assert_eq!(etcd.get("/once").as_deref(), Some("b"));
}

#[test]
fn value_from_stdin() {
    let etcd = EtcdCluster::single();
    let mut child = Command::new(BIN)
        .args(etcd.client_args())
        .args(["--once", "/stdin", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"10.0.0.7:3000\n").unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(etcd.get("/stdin").as_deref(), Some("10.0.0.7:3000"));
}

/// Bad input is exit 2 before etcd is touched: nothing listens at the
/// endpoint given, so reaching for etcd would hang or exit 1 instead.
#[test]
fn bad_input_is_exit_2_before_etcd() {
    let nowhere = format!("127.0.0.1:{}", fleetkit_tests::port::free_port());
    let cases: &[(&[&str], &str)] = &[
        (&["", "v"], "KEY is empty"),
        (&["--ttl", "1", "k", "v"], "--ttl"),
        (&["--endpoints", "etcd1", "k", "v"], "endpoint 'etcd1'"),
        (&["--cacert", "/nonexistent/ca.pem", "k", "v"], "/nonexistent/ca.pem"),
        (&["--check-tcp", "nohost", "k", "v"], "--check-tcp"),
        (&["--check-http", "https://x/", "k", "v"], "curl"),
        (&["--check-tcp", "a:1", "--check-http", "http://a/", "k", "v"], "cannot be used"),
        (&["k"], "VALUE"),
    ];
    for (args, needle) in cases {
        let mut cmd = Command::new(BIN);
        if !args.contains(&"--endpoints") {
            cmd.args(["--endpoints", &nowhere]);
        }
        let out = cmd.args(*args).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn cli_definition_is_consistent() {
    announce::command().debug_assert();
    let help = announce::command().render_long_help().to_string();
    assert!(help.contains("EXAMPLES:") && help.contains("--check-exec"));
}

// ---- Hardening: endpoint failover, requests that can never succeed, etcd's
// ---- words in messages, control bytes, exit codes.

/// The members `pid` holds an established TCP connection to (their client
/// ports), as the kernel sees it: what announce is talking to right now.
fn connected_members(etcd: &EtcdCluster, pid: u32) -> Vec<usize> {
    let out = Command::new("ss").args(["-Htnp", "state", "established"]).output().expect("run ss");
    let text = String::from_utf8_lossy(&out.stdout);
    let ports: Vec<u16> = text
        .lines()
        .filter(|l| l.contains(&format!("pid={pid},")))
        .filter_map(|l| l.split_whitespace().nth(3)?.rsplit_once(':')?.1.parse().ok())
        .collect();
    (0..etcd.len()).filter(|&i| ports.contains(&etcd.member_ref(i).client_port())).collect()
}

/// A watch on `key` from another process (etcdctl, on every running
/// member), collecting what it prints.
struct Watch {
    child: Child,
    seen: Arc<Mutex<String>>,
}

impl Watch {
    fn start(etcd: &EtcdCluster, key: &str, from: i64) -> Self {
        let mut child = etcd
            .etcdctl()
            .args(["watch", key, &format!("--rev={from}")])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let seen = Arc::new(Mutex::new(String::new()));
        let sink = seen.clone();
        let mut out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = out.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        wait_until("watch sees the PUT", LONG, || seen.lock().unwrap().contains("PUT"));
        Self { child, seen }
    }

    fn events(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let seen = self.seen.lock().unwrap().clone();
        seen
    }
}

/// Hands etcd's leadership to member `to` (`etcdctl move-leader`).
fn move_leader(etcd: &EtcdCluster, to: usize) {
    if etcd.leader() == Some(to) {
        return;
    }
    let out = etcd.etcdctl().args(["member", "list", "-w", "json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let endpoint = etcd.member_ref(to).endpoint();
    let id = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["clientURLs"].as_array().is_some_and(|u| u.iter().any(|u| u == &endpoint)))
        .and_then(|m| m["ID"].as_u64())
        .unwrap();
    let out = etcd.etcdctl().args(["move-leader", &format!("{id:x}")]).output().unwrap();
    assert!(out.status.success(), "move-leader: {}", String::from_utf8_lossy(&out.stderr));
    wait_until("the new leader", LONG, || etcd.leader() == Some(to));
}

fn once(etcd: &EtcdCluster, endpoints: &str, key: &str) -> std::process::Output {
    let _ = etcd;
    Command::new(BIN)
        .args(["--endpoints", endpoints, "--once", "--ttl", "30", key, "v"])
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn once_with_the_first_endpoint_dead_succeeds_every_time() {
    let mut etcd = EtcdCluster::three();
    // The first listed member is the leader, killed just before: the
    // others have not noticed yet, a request to them waits for a leader.
    for round in 0..3 {
        let leader = etcd.wait_leader(None, LONG);
        let mut order = vec![leader];
        order.extend((0..3).filter(|&i| i != leader));
        let endpoints: Vec<String> = order.iter().map(|&i| etcd.member_ref(i).endpoint()).collect();
        etcd.member(leader).kill();
        let key = format!("/dead-leader/{round}");
        let out = once(&etcd, &endpoints.join(","), &key);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "round {round}: {:?} {err}", out.status);
        let id = i64::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).unwrap();
        assert_eq!(etcd.get_with_lease(&key), Some(("v".to_string(), id)), "round {round}");
        etcd.restart(leader);
        etcd.wait_healthy(LONG);
    }
    // A member dead for a while, listed first.
    etcd.member(0).kill();
    etcd.wait_leader(Some(0), LONG);
    for i in 0..6 {
        let key = format!("/dead-first/{i}");
        let start = Instant::now();
        let out = once(&etcd, &etcd.endpoints_arg(), &key);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "run {i}: {:?} {err}", out.status);
        assert!(err.is_empty(), "run {i}: nothing to say when a live member answers: {err}");
        let id = i64::from_str_radix(String::from_utf8_lossy(&out.stdout).trim(), 16).unwrap();
        assert_eq!(etcd.get_with_lease(&key), Some(("v".to_string(), id)), "run {i}");
        // A dead member is skipped, not waited on for the command timeout.
        assert!(start.elapsed() < Duration::from_secs(4), "run {i} took {:?}", start.elapsed());
    }
}

/// A member announce talks to, preferring (`leader`) or avoiding the leader,
/// made so with `move-leader` when needed.
fn talking_member(etcd: &EtcdCluster, pid: u32, leader: bool) -> usize {
    let talking = wait_for("announce connected to a member", LONG, || {
        let c = connected_members(etcd, pid);
        (!c.is_empty()).then_some(c)
    })
    .0;
    let now = etcd.wait_leader(None, LONG);
    if leader {
        move_leader(etcd, talking[0]);
        talking[0]
    } else if let Some(&f) = talking.iter().find(|&&m| m != now) {
        f
    } else {
        move_leader(etcd, (talking[0] + 1) % 3);
        talking[0]
    }
}

#[test]
fn members_killed_mid_run_never_remove_the_key() {
    let mut etcd = EtcdCluster::three();
    let key = "/announce/services/failover";
    // TTL 2: announce may not stall on a dead member for long.
    let mut a = Announce::start(&etcd, &["--ttl", "2", key, "v"]);
    wait_until("key present", LONG, || etcd.get(key).is_some());
    let (_, lease) = etcd.get_with_lease(key).unwrap();
    let watch = Watch::start(&etcd, key, create_revision(&etcd, key));
    let pid = a.child.id();

    // The member announce talks to when it leads, then when it follows.
    for (round, leader) in [true, false, true].into_iter().enumerate() {
        let victim = talking_member(&etcd, pid, leader);
        etcd.member(victim).kill();
        etcd.wait_leader(Some(victim), LONG);
        stays_present(&etcd, key, Duration::from_secs(8), &mut a);
        assert_eq!(etcd.get_with_lease(key).unwrap().1, lease, "round {round}: the same lease");
        assert!(etcd.lease_ttl(lease).is_some(), "round {round}: lease kept alive");
        etcd.restart(victim);
        etcd.wait_healthy(LONG);
    }
    let events = watch.events();
    assert!(!events.contains("DELETE"), "watch saw a DELETE:\n{events}");
    assert!(!a.log().contains("re-announced"), "{}", a.log());
}

#[test]
fn stopped_right_after_its_member_dies_the_key_still_goes_at_once() {
    let mut etcd = EtcdCluster::three();
    for round in 0..3 {
        let key = format!("/stop-after-kill/{round}");
        let mut a = Announce::start(&etcd, &["--ttl", "30", &key, "v"]);
        wait_until("key present", LONG, || etcd.get(&key).is_some());
        let victim = talking_member(&etcd, a.child.id(), round % 2 == 0);
        etcd.member(victim).kill();
        a.signal(Signal::SIGTERM);
        assert_eq!(a.wait_exit(LONG).code(), Some(0));
        assert!(etcd.get(&key).is_none(), "round {round}: {key} left for its TTL:\n{}", a.log());
        etcd.restart(victim);
        etcd.wait_healthy(LONG);
    }
}

/// Runs announce with `value` on stdin and waits (bounded) for it to exit.
fn run_with_stdin(etcd: &EtcdCluster, args: &[&str], value: &[u8]) -> (Option<i32>, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(etcd.client_args()).args(args).stdin(Stdio::piped()).stdout(Stdio::null());
    let mut a = Announce::spawn(cmd);
    let mut stdin = a.child.stdin.take().unwrap();
    stdin.write_all(value).unwrap();
    drop(stdin);
    let code = a.wait_exit(Duration::from_secs(20)).code();
    (code, a.log())
}

#[test]
fn a_value_over_etcds_limits_is_exit_2_at_once() {
    let etcd = EtcdCluster::single();
    // Over gRPC's message limit (2 MiB), and over etcd's request limit
    // (1.5 MiB) but under gRPC's: two different refusals, one answer.
    for (size, args) in [(2 << 20, &["/big", "-"][..]), (1_600_000, &["--once", "/big", "-"][..])] {
        let (code, log) = run_with_stdin(&etcd, args, &vec![b'x'; size]);
        assert_eq!(code, Some(2), "{size} bytes: {log}");
        assert!(log.contains("--max-request-bytes"), "{size} bytes: names the limit: {log}");
        assert!(!log.contains("retrying") && !log.contains("lost etcd"), "{size} bytes: {log}");
        assert!(etcd.get("/big").is_none());
    }
}

#[test]
fn permission_denied_is_exit_2_with_the_reason() {
    let etcd = EtcdCluster::builder(1).auth().start();
    for step in [
        &["role", "add", "reader"][..],
        &["role", "grant-permission", "reader", "--prefix=true", "read", "/"],
        &["user", "add", "reader:reader-pw"],
        &["user", "grant-role", "reader", "reader"],
    ] {
        let out = etcd.etcdctl().args(step).output().unwrap();
        assert!(out.status.success(), "{step:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    for once in [false, true] {
        let mut args = vec!["--user", "reader:reader-pw", "/ro", "v"];
        if once {
            args.insert(0, "--once");
        }
        let mut a = Announce::start(&etcd, &args);
        let code = a.wait_exit(Duration::from_secs(20)).code();
        let log = a.log();
        assert_eq!(code, Some(2), "once={once}: {log}");
        assert!(log.contains("permission denied") && log.contains("--user"), "once={once}: {log}");
        assert!(!log.contains("retrying"), "once={once}: {log}");
    }
}

/// What tonic's Debug output looks like; never for a user's eyes.
fn assert_no_grpc_dump(log: &str) {
    for dump in
        ["MetadataMap", "details: [", "status: ", "GRpcStatus", "Lost(", "Fatal(", "grpc request error"]
    {
        assert!(!log.contains(dump), "gRPC dump ({dump}) in:\n{log}");
    }
}

#[test]
fn etcd_errors_are_etcds_words_with_the_endpoint_and_what_to_check() {
    let mut etcd = EtcdCluster::single();
    let endpoint = etcd.endpoints_arg();
    let endpoint = endpoint.trim_start_matches("http://");
    let mut a = Announce::start(&etcd, &["--ttl", "30", "/words", "v"]);
    wait_until("key present", LONG, || etcd.get("/words").is_some());
    // etcd goes away while announce runs, and announce is stopped before it
    // comes back: the revoke cannot be sent.
    etcd.member(0).stop();
    a.wait_log("lost etcd", LONG);
    a.signal(Signal::SIGTERM);
    assert_eq!(a.wait_exit(LONG).code(), Some(0));
    let log = a.log();
    assert_no_grpc_dump(&log);
    assert!(log.contains(endpoint), "names the endpoint: {log}");
    assert!(log.contains("check that etcd runs"), "says what to check: {log}");

    // --once against a stopped etcd: unavailable, exit 75, same words.
    let out = Command::new(BIN)
        .args(etcd.client_args())
        .args(["--once", "/words", "v"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{err}");
    assert_no_grpc_dump(&err);
    assert!(err.contains(endpoint) && err.contains("check that etcd runs"), "{err}");
}

#[test]
fn control_bytes_in_input_are_escaped_in_messages() {
    let etcd = EtcdCluster::single();
    let key = "/esc/\x1b[2J\x1b]0;pwned\x07\nannounce: forged line";
    let mut a = Announce::start(&etcd, &["--ttl", "5", key, "v"]);
    a.wait_log("announced", LONG);
    assert_eq!(etcd.get(key).as_deref(), Some("v"), "the key itself is kept as given");
    a.signal(Signal::SIGTERM);
    a.wait_exit(LONG);
    let log = a.log();
    assert!(!log.contains('\x1b') && !log.contains('\x07'), "raw control bytes: {log:?}");
    assert!(!log.lines().any(|l| l.starts_with("announce: forged")), "a forged line: {log}");
    assert!(log.contains(r"/esc/\x1b[2J"), "escaped: {log}");

    // Held by another lease: the --once refusal names the key, escaped.
    let out = Command::new(BIN)
        .args(etcd.client_args())
        .args(["--once", "/esc/\x1b[31m", "first"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = Command::new(BIN)
        .args(etcd.client_args())
        .args(["--once", "/esc/\x1b[31m", "second"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains('\x1b') && err.contains(r"\x1b[31m"), "{err:?}");

    // Usage errors that quote the input.
    for args in [&["--check-tcp", "\x1b[2Jx", "k", "v"][..], &["--endpoints", "\x1b[2J", "k", "v"]] {
        let out = Command::new(BIN).args(args).stdin(Stdio::null()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(!err.contains('\x1b') && err.contains(r"\x1b[2J"), "{err:?}");
    }
}

#[test]
fn exit_codes_are_documented_in_help() {
    let help = announce::command().render_long_help().to_string();
    for line in ["0  ", "1  ", "2  ", "75 "] {
        assert!(help.contains(&format!("\n  {line}")), "EXIT STATUS line {line:?} in:\n{help}");
    }
    let out = Command::new(BIN)
        .args(["--endpoints", &format!("127.0.0.1:{}", fleetkit_tests::port::free_port())])
        .args(["--once", "--dial-timeout", "500ms", "/k", "v"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
}
