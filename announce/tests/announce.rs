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
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, lines }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(i32::try_from(self.child.id()).unwrap()), sig).unwrap();
    }

    fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        wait_for("announce to exit", timeout, || self.child.try_wait().unwrap()).0
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

#[test]
fn a_value_over_etcds_request_limit_exits_2_at_once_naming_the_limit() {
    let etcd = EtcdCluster::single();
    for once in [true, false] {
        let mut cmd = Command::new(BIN);
        cmd.args(etcd.client_args());
        if once {
            cmd.arg("--once");
        }
        let mut child = cmd
            .args(["/big", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(&vec![b'x'; 2 << 20]).unwrap();
        let started = Instant::now();
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "once={once}: {err}");
        assert!(err.contains("--max-request-bytes"), "once={once}: {err}");
        assert!(!err.contains("retrying"), "refused for its content, not retried: {err}");
        assert!(started.elapsed() < LONG);
    }
    assert!(etcd.get("/big").is_none());
}

#[test]
fn once_works_with_the_first_endpoint_dead_and_says_75_when_none_answers() {
    let mut etcd = EtcdCluster::three();
    etcd.member(0).kill();
    let endpoints = etcd.endpoints_arg();
    for i in 0..5 {
        let out = Command::new(BIN)
            .args(["--endpoints", &endpoints, "--once", "--ttl", "30", &format!("/dead-first/{i}"), "v"])
            .env_remove("ETCDCTL_ENDPOINTS")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = Command::new(BIN)
        .args(["--endpoints", "127.0.0.1:9", "--dial-timeout", "300ms", "--once", "/k", "v"])
        .env_remove("ETCDCTL_ENDPOINTS")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn control_bytes_in_the_key_are_escaped_in_messages() {
    let etcd = EtcdCluster::single();
    let key = "/esc\u{1b}[31m";
    let first = Command::new(BIN).args(etcd.client_args()).args(["--once", key, "a"]).output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let taken = Command::new(BIN).args(etcd.client_args()).args(["--once", key, "b"]).output().unwrap();
    assert_eq!(taken.status.code(), Some(1));
    let err = String::from_utf8_lossy(&taken.stderr);
    assert!(!err.contains('\u{1b}'), "raw ESC in: {err:?}");
    assert!(err.contains("/esc\\x1b[31m is held by"), "{err}");
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
