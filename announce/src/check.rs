//! Health checks: the key should exist only while the service answers.
//!
//! A check runs every `--check-interval` in its own task and publishes the
//! verdict on a watch channel; the announce loop withdraws the key after N
//! consecutive failures and puts it back on the first pass. Three kinds cover
//! what the tutorial's users had: a TCP port that accepts, an HTTP page that
//! answers 2xx/3xx (plain HTTP, written here in a few lines rather than
//! pulling in an HTTP client), and any command's exit status.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::error::{shown, Error};

/// Why a check failed, for the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Failure(pub String);

/// One health check, validated.
#[derive(Debug, Clone)]
pub enum Check {
    Tcp(String),
    Http { addr: String, host: String, path: String },
    Exec(Vec<String>),
}

/// What the checker last concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    /// Whether the key should be announced.
    pub up: bool,
    /// Why not, when it should not: the last failure.
    pub reason: String,
}

impl Check {
    /// `--check-tcp HOST:PORT`.
    ///
    /// # Errors
    /// When `addr` is not host:port.
    pub fn tcp(addr: &str) -> Result<Self, Error> {
        check_host_port(addr).map_err(|()| {
            Error::Usage(format!(
                "--check-tcp '{}' is not HOST:PORT (e.g. 127.0.0.1:3000 or [::1]:3000)",
                shown(addr)
            ))
        })?;
        Ok(Self::Tcp(addr.to_string()))
    }

    /// `--check-http http://HOST[:PORT][/PATH]`.
    ///
    /// # Errors
    /// When `url` is not a plain http:// URL.
    pub fn http(url: &str) -> Result<Self, Error> {
        let url_shown = shown(url);
        let bad = || Error::Usage(format!("--check-http '{url_shown}' is not http://HOST[:PORT][/PATH]"));
        if url.starts_with("https://") {
            return Err(Error::Usage(format!(
                "--check-http '{url_shown}': https is not supported; use --check-exec curl -fsS {url_shown}"
            )));
        }
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() || authority.contains('@') || path.contains(char::is_whitespace) {
            return Err(bad());
        }
        let has_port = authority.rsplit_once(':').is_some_and(|(_, p)| !p.contains(']'));
        let addr = if has_port { authority.to_string() } else { format!("{authority}:80") };
        check_host_port(&addr).map_err(|()| bad())?;
        Ok(Self::Http { addr, host: authority.to_string(), path: path.to_string() })
    }

    /// `--check-exec CMD [ARG...]`.
    ///
    /// # Errors
    /// When the command is empty.
    pub fn exec(argv: Vec<String>) -> Result<Self, Error> {
        if argv.first().is_none_or(String::is_empty) {
            return Err(Error::Usage(
                "--check-exec needs a command, e.g. --check-exec pg_isready -h 127.0.0.1".into(),
            ));
        }
        Ok(Self::Exec(argv))
    }

    /// Runs the check once, within `timeout`.
    ///
    /// # Errors
    /// Why it failed, for the log line (input shown escaped).
    pub async fn run(&self, timeout: Duration) -> Result<(), Failure> {
        let result = match tokio::time::timeout(timeout, self.run_inner()).await {
            Ok(r) => r,
            Err(_) => Err(Failure(format!("{} timed out after {timeout:?}", self.describe()))),
        };
        result.map_err(|reason| Failure(shown(&reason.0)))
    }

    /// Reasons are plain text here; `run` escapes them once.
    async fn run_inner(&self) -> Result<(), Failure> {
        match self {
            Self::Tcp(addr) => {
                TcpStream::connect(addr.as_str()).await.map_err(|e| Failure(format!("tcp {addr}: {e}")))?;
                Ok(())
            }
            Self::Http { addr, host, path } => http_get(addr, host, path).await,
            Self::Exec(argv) => {
                let status = tokio::process::Command::new(&argv[0])
                    .args(&argv[1..])
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .kill_on_drop(true)
                    .status()
                    .await
                    .map_err(|e| Failure(format!("cannot run {}: {e}", argv[0])))?;
                if status.success() {
                    Ok(())
                } else {
                    Err(Failure(format!("{} exited with {status}", argv[0])))
                }
            }
        }
    }

    /// A short name for log lines.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Tcp(addr) => format!("tcp {addr}"),
            Self::Http { host, path, .. } => format!("http://{host}{path}"),
            Self::Exec(argv) => argv[0].clone(),
        }
    }
}

/// Runs `check` forever, every `interval`, publishing the verdict: down
/// after `failures` consecutive failures, up on the first pass. The first
/// verdict comes from the first run (down until a check passes).
pub async fn run_checks(check: Check, interval: Duration, failures: u32, tx: watch::Sender<Option<Health>>) {
    let mut failed = 0u32;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let verdict = match check.run(interval).await {
            Ok(()) => {
                failed = 0;
                Some(Health { up: true, reason: String::new() })
            }
            Err(Failure(reason)) => {
                failed = failed.saturating_add(1);
                let never_up = tx.borrow().is_none();
                (failed >= failures || never_up).then(|| Health {
                    up: false,
                    reason: format!("{reason} ({failed} failed check{} in a row)", plural(failed)),
                })
            }
        };
        if let Some(v) = verdict {
            // Only changes wake the announce loop.
            tx.send_if_modified(|cur| {
                let changed = cur.as_ref().map(|c| c.up) != Some(v.up);
                if changed {
                    *cur = Some(v);
                }
                changed
            });
        }
        if tx.is_closed() {
            return;
        }
    }
}

fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn check_host_port(addr: &str) -> Result<(), ()> {
    let (host, port) = addr.rsplit_once(':').ok_or(())?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(());
    }
    Ok(())
}

async fn http_get(addr: &str, host: &str, path: &str) -> Result<(), Failure> {
    let url = format!("http://{host}{path}");
    let mut s = TcpStream::connect(addr).await.map_err(|e| Failure(format!("{url}: {e}")))?;
    let req =
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: announce\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.map_err(|e| Failure(format!("{url}: {e}")))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 8192 {
        let n = s.read(&mut buf).await.map_err(|e| Failure(format!("{url}: {e}")))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let line = String::from_utf8_lossy(&head);
    let line = line.lines().next().unwrap_or_default();
    let code: u16 = line
        .strip_prefix("HTTP/")
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| Failure(format!("{url}: not an HTTP response")))?;
    if (200..400).contains(&code) {
        Ok(())
    } else {
        Err(Failure(format!("{url}: HTTP {code}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_check_targets() {
        assert!(Check::tcp("127.0.0.1:3000").is_ok());
        assert!(Check::tcp("[::1]:3000").is_ok());
        for bad in ["127.0.0.1", ":80", "host:0", "host:http", ""] {
            assert!(Check::tcp(bad).is_err(), "{bad}");
        }
        match Check::http("http://127.0.0.1:8080/health?x=1").unwrap() {
            Check::Http { addr, host, path } => {
                assert_eq!(addr, "127.0.0.1:8080");
                assert_eq!(host, "127.0.0.1:8080");
                assert_eq!(path, "/health?x=1");
            }
            other => panic!("{other:?}"),
        }
        match Check::http("http://example.invalid").unwrap() {
            Check::Http { addr, path, .. } => {
                assert_eq!((addr.as_str(), path.as_str()), ("example.invalid:80", "/"));
            }
            other => panic!("{other:?}"),
        }
        assert!(Check::http("https://x/").unwrap_err().to_string().contains("curl"));
        for bad in ["ftp://x/", "http://", "http:///x", "http://u@h/", "127.0.0.1:80"] {
            assert!(Check::http(bad).is_err(), "{bad}");
        }
        assert!(Check::exec(vec![]).is_err());
        assert!(Check::exec(vec![String::new()]).is_err());
        assert!(Check::exec(vec!["true".into()]).is_ok());
    }
}
