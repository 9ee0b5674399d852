//! announce's command line, and the checks that run before etcd is touched.
//!
//! Everything a user can get wrong (an empty key, a TTL under 2 s, an
//! endpoint that is not host:port, an unreadable certificate, a check that
//! cannot work) is an exit 2 here, so a unit with a typo fails at once instead
//! of retrying against etcd forever.

use std::io::Read;
use std::time::Duration;

use clap::{ArgGroup, Parser};
use fleetkit_core::duration::parse_duration;
use fleetkit_core::etcd::EtcdArgs;

use crate::check::Check;
use crate::error::{shown, Error};

const AFTER_HELP: &str = "\
EXAMPLES:
  Announce an instance while it runs (the tutorial's discovery unit):
    ExecStart=/usr/bin/announce /announce/services/node-etcd%i ${COREOS_PUBLIC_IPV4}:3000

  Only while the app answers on its port, checked every 5 s:
    announce --check-tcp 127.0.0.1:3000 /announce/services/web1 10.0.0.1:3000

  Only while an HTTP health page answers 2xx/3xx:
    announce --check-http http://127.0.0.1:3000/health /announce/services/web1 10.0.0.1:3000

  Only while a command succeeds (end its arguments with ';' or put it last):
    announce /announce/db1 10.0.0.2:5432 --check-exec pg_isready -h 127.0.0.1

  Put once with a 30 s lease and print the lease ID (hex, as etcdctl prints it):
    lease=$(announce --once --ttl 30 /locks/job ok)

  The value from stdin:
    hostname -I | announce /announce/hosts/$(hostname) -

BEHAVIOUR:
  announce grants a lease of --ttl seconds, puts KEY=VALUE on it and renews the
  lease every TTL/3 seconds on one keep-alive stream. SIGTERM, SIGINT or SIGHUP
  revoke the lease, so the key is gone at once, and announce exits 0. If
  announce or its machine dies, the key is gone within TTL.

  announce talks to every member of --endpoints that answers and follows
  members that die and come back, so a dead member (listed first or not) or
  a leader election costs a retry, not the key. When etcd is away (restart,
  leader change, outage) announce keeps running, retries with capped backoff
  and jitter, and as soon as etcd answers makes sure its lease and key exist
  again (re-grant and re-put if the lease was lost). What etcd refuses for
  what it is (too large, invalid, wrong credentials, no permission) is not
  retried: announce exits 2 and says why. Control characters in the key or
  in other input are shown escaped in every message. It watches its key: if another client deletes it, announce puts it
  back at once. It never overwrites or deletes a key held by another lease
  unless --force is given; it waits for that key to go instead (a watch on
  it: the moment the holder's lease ends, announce takes the key).

  With a check, the key exists only while the check passes: after
  --check-failures consecutive failures the lease is revoked (the key is
  withdrawn); the first pass puts it back.

  Under systemd (NOTIFY_SOCKET set) announce sends READY=1 after the first
  put and STATUS= with its state, so Type=notify units start when the key is
  there. State changes are logged on stderr, one line each; when stderr is the
  journal, lines carry syslog priorities.

EXIT STATUS:
  0  stopped by a signal (lease revoked), or --once succeeded
  1  --once did not put the key: another lease holds it, or the check failed
  2  bad usage or input (reported before etcd is touched), or a request etcd
     refuses for what it is and that no retry can fix: a value over etcd's
     request limit, an invalid argument, wrong credentials, no permission
     on the key; the message names the limit or the reason
  75 --once could not reach etcd, or etcd did not answer: try again later
     (without --once announce waits etcd out and never exits for that)";

/// Keep one key alive in etcd under a lease while a service runs.
#[derive(Debug, Parser)]
#[command(
    name = "announce",
    version,
    about = "Keep one key alive in etcd under a lease while a service runs",
    long_about = "Keep KEY=VALUE in etcd under a lease for as long as announce runs (and, with a \
                  check, only while the check passes). Replaces the sidekick loop \
                  `while true; do etcdctl set KEY VALUE --ttl 60; sleep 45; done` and its \
                  `ExecStop=etcdctl rm KEY`: the key is gone at once on stop and within TTL \
                  on a crash, and it survives etcd restarts, leader changes and outages.",
    after_long_help = AFTER_HELP,
    group(ArgGroup::new("check").multiple(false).args(["check_tcp", "check_http", "check_exec"]))
)]
pub struct Cli {
    #[command(flatten)]
    pub etcd: EtcdArgs,

    /// Lease TTL in seconds: the key outlives a crash by at most this long
    #[arg(long, default_value_t = 60, value_name = "SECS",
          value_parser = clap::value_parser!(i64).range(2..=1_000_000_000))]
    pub ttl: i64,

    /// Announce only while a TCP connection to HOST:PORT succeeds
    #[arg(long, value_name = "HOST:PORT")]
    pub check_tcp: Option<String>,

    /// Announce only while GET URL (http://) answers 2xx or 3xx
    #[arg(long, value_name = "URL")]
    pub check_http: Option<String>,

    /// Announce only while CMD exits 0; takes the following arguments up to
    /// a lone ';' (or the end)
    #[arg(long, value_name = "CMD", num_args = 1.., allow_hyphen_values = true, value_terminator = ";")]
    pub check_exec: Option<Vec<String>>,

    /// Time between checks, and each check's timeout (e.g. 5s, 500ms, 1m30s; a bare number is
    /// seconds)
    #[arg(long, default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub check_interval: Duration,

    /// Consecutive failed checks before the key is withdrawn
    #[arg(long, default_value_t = 3, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub check_failures: u32,

    /// Put the key on a new lease, print the lease ID (hex) and exit
    /// without keeping it alive
    #[arg(long)]
    pub once: bool,

    /// Take the key over even when another process's lease holds it
    #[arg(long)]
    pub force: bool,

    /// The key to announce, e.g. /announce/services/web1
    #[arg(id = "announce_key", value_name = "KEY")]
    pub key: String,

    /// The value; `-` reads it from stdin (one trailing newline dropped)
    #[arg(value_name = "VALUE", allow_hyphen_values = true)]
    pub value: String,
}

/// A checked configuration: what the announce loop runs with.
#[derive(Debug)]
pub struct Config {
    /// The etcd options, checked; connecting is the announcer's.
    pub etcd: EtcdArgs,
    pub command_timeout: Duration,
    pub key: String,
    pub value: Vec<u8>,
    pub ttl: i64,
    pub check: Option<Check>,
    pub check_interval: Duration,
    pub check_failures: u32,
    pub once: bool,
    pub force: bool,
}

impl Cli {
    /// Validates everything and reads the value from stdin when it is `-`.
    ///
    /// # Errors
    /// A usage error (exit 2) naming the bad option.
    pub fn into_config(self) -> Result<Config, Error> {
        if self.key.is_empty() {
            return Err(Error::Usage(
                "KEY is empty: give the key to announce, e.g. /announce/services/web1".into(),
            ));
        }
        // Core's messages quote the options as given.
        self.etcd.options().map_err(|e| Error::Usage(shown(&e)))?;
        let check = if let Some(addr) = self.check_tcp {
            Some(Check::tcp(&addr)?)
        } else if let Some(url) = self.check_http {
            Some(Check::http(&url)?)
        } else if let Some(argv) = self.check_exec {
            Some(Check::exec(argv)?)
        } else {
            None
        };
        if self.check_interval.is_zero() {
            return Err(Error::Usage("--check-interval must be more than 0 (e.g. 5s)".into()));
        }
        let value = if self.value == "-" {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| Error::Usage(format!("stdin (VALUE -): {e}")))?;
            if buf.ends_with(b"\n") {
                buf.pop();
                if buf.ends_with(b"\r") {
                    buf.pop();
                }
            }
            buf
        } else {
            self.value.into_bytes()
        };
        Ok(Config {
            etcd: self.etcd.clone(),
            command_timeout: self.etcd.command_timeout,
            key: self.key,
            value,
            ttl: self.ttl,
            check,
            check_interval: self.check_interval,
            check_failures: self.check_failures,
            once: self.once,
            force: self.force,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_spelt_as_everywhere_in_fleetkit() {
        for (given, want) in [("1m30s", 90_000), ("500ms", 500), ("5s", 5_000), ("7", 7_000)] {
            let cli = Cli::try_parse_from([
                "announce",
                "--check-interval",
                given,
                "--dial-timeout",
                given,
                "--command-timeout",
                given,
                "/k",
                "v",
            ])
            .unwrap_or_else(|e| panic!("{given}: {e}"));
            let want = Duration::from_millis(want);
            assert_eq!(
                (cli.check_interval, cli.etcd.dial_timeout, cli.etcd.command_timeout),
                (want, want, want)
            );
        }
    }
}
