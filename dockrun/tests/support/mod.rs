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
