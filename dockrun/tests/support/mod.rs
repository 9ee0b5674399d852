//! A small harness so each dockrun test reads as a story: start dockrun with
//! some flags, watch its output and the engine, signal it, check how it ended.

#![allow(dead_code)]

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use fleetkit_tests::wait::wait_for;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// Long enough for a slow engine on a busy CI machine, short enough to fail fast.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A `dockrun` command with `args`.
pub fn dockrun(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dockrun"));
    cmd.args(args).stdin(Stdio::null()).env_remove("NOTIFY_SOCKET");
    cmd
}

/// How a dockrun run ended.
#[derive(Debug)]
pub struct Ended {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A running dockrun whose stdout and stderr are collected as they arrive.
pub struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut from: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    })
}

impl Running {
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("start dockrun");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("piped stdout"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("piped stderr"), Arc::clone(&stderr)),
        ];
        Self { child, stdout, stderr, readers }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Waits until dockrun's stdout contains `text`.
    pub fn wait_stdout(&mut self, text: &str) {
        let what = format!("{text:?} on dockrun's stdout");
        wait_for(&what, DEADLINE, || {
            if self.stdout().contains(text) {
                return Some(());
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("dockrun ended ({status}) before printing {text:?}; stderr: {}", self.stderr());
            }
            None
        });
    }

    pub fn signal(&self, signal: Signal) {
        let pid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits i32"));
        kill(pid, signal).expect("signal dockrun");
    }

    /// Waits for dockrun to exit and returns everything it wrote.
    pub fn wait(mut self, timeout: Duration) -> Ended {
        let (status, _) = wait_for("dockrun to exit", timeout, || self.child.try_wait().ok().flatten());
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Ended { code: status.code(), stdout: self.stdout(), stderr: self.stderr() }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs dockrun to its end.
pub fn run(args: &[&str]) -> Ended {
    Running::spawn(dockrun(args)).wait(DEADLINE)
}

/// A TCP listener on loopback that accepts connections and never answers:
/// an engine that hangs. Connections are kept open until it is dropped.
pub struct SilentEngine {
    port: u16,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
}

impl SilentEngine {
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = Arc::clone(&accepted);
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for conn in listener.incoming().flatten() {
                held.push(conn);
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        Self { port, accepted }
    }

    /// `tcp://127.0.0.1:PORT`, for DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// The address, as a registry name for an image (`127.0.0.1:PORT`).
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Waits until someone has connected.
    pub fn wait_connected(&self) {
        wait_for("a connection to the silent engine", DEADLINE, || {
            (self.accepted.load(std::sync::atomic::Ordering::SeqCst) > 0).then_some(())
        });
    }
}

/// A loopback TCP front for the real engine's socket that passes every
/// request through except the ones whose request line contains `hold`
/// (e.g. `/start `): those are swallowed and never answered, as an engine
/// that hangs in the middle of dockrun's work would. The engine behind it
/// is real; only the one kind of request goes unanswered.
pub struct HoldingProxy {
    port: u16,
    held: Arc<std::sync::atomic::AtomicBool>,
}

impl HoldingProxy {
    pub fn start(hold: &'static str) -> Self {
        let socket = std::env::var("DOCKER_HOST")
            .ok()
            .and_then(|h| h.strip_prefix("unix://").map(str::to_owned))
            .unwrap_or_else(|| "/var/run/docker.sock".to_owned());
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let port = listener.local_addr().expect("bound address").port();
        let held = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = Arc::clone(&held);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(engine) = std::os::unix::net::UnixStream::connect(&socket) else { continue };
                let flag = Arc::clone(&flag);
                std::thread::spawn(move || forward(client, engine, hold, &flag));
            }
        });
        Self { port, held }
    }

    /// `tcp://127.0.0.1:PORT`, for DOCKER_HOST.
    pub fn host(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Waits until a request was held.
    pub fn wait_held(&self) {
        wait_for("a held request", DEADLINE, || {
            self.held.load(std::sync::atomic::Ordering::SeqCst).then_some(())
        });
    }
}

fn forward(
    mut client: std::net::TcpStream,
    mut engine: std::os::unix::net::UnixStream,
    hold: &str,
    held: &std::sync::atomic::AtomicBool,
) {
    use std::io::Write;
    let (Ok(mut back_from), Ok(mut back_to)) = (engine.try_clone(), client.try_clone()) else { return };
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(std::net::Shutdown::Write);
    });
    let mut buf = [0u8; 65536];
    let mut holding = false;
    while let Ok(n) = client.read(&mut buf) {
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        let line_end = chunk.iter().position(|&b| b == b'\n').unwrap_or(n);
        if !holding && String::from_utf8_lossy(&chunk[..line_end]).contains(hold) {
            holding = true;
            held.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        if !holding && engine.write_all(chunk).is_err() {
            break;
        }
    }
    let _ = engine.shutdown(std::net::Shutdown::Write);
}
