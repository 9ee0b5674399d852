//! dockrun's command line: `docker run`'s flag names for what a service needs.
//!
//! People paste `docker run` lines into units; keeping the names (and their
//! value syntax: `-p 127.0.0.1:8080:80/tcp`, `--memory 512m`, `--health-interval 30s`)
//! lets those lines work after the binary name changes. The value parsers
//! here are pure so they are tested inline; turning values into the engine's
//! container config is `spec`'s job.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use fleetkit_core::duration::parse_duration;

use crate::error::Invalid;

/// `--engine-timeout`'s default: far longer than any healthy engine takes
/// to answer a call, and far shorter than systemd's start timeout.
pub const DEFAULT_ENGINE_TIMEOUT: &str = "30s";

/// When to pull the image, as `docker run --pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PullPolicy {
    /// Pull every time, so a moved tag is followed.
    Always,
    /// Pull only when the image is not present (docker run's default).
    Missing,
    /// Never pull: a missing image is an error.
    Never,
}

/// When to tell systemd `READY=1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NotifyWhen {
    /// As soon as the container has started.
    Running,
    /// When the container's health check first passes.
    Healthy,
}

const AFTER_HELP: &str = concat!(
    "\
LIFE CYCLE:
  1. A container with the same --name (running, stopped or created, e.g. left by a
     dockrun that was SIGKILLed) is removed.
  2. The image is pulled per --pull (progress bars on a TTY, one line per layer
     otherwise, on stderr).
  3. The container is created, attached and started. Its stdout goes to dockrun's
     stdout and its stderr to dockrun's stderr, in order, flushed as they arrive, so
     under systemd both land in the journal.
  4. When NOTIFY_SOCKET is set, READY=1 is sent once the container runs (or, with
     --notify healthy, once its health check passes), with STATUS= lines on the way.
  5. SIGTERM or SIGINT stops the container with its stop signal and --stop-timeout,
     removes it and exits 0 (a second one kills it at once). SIGHUP is passed to the
     container. A signal before the container runs (while connecting, pulling,
     creating or starting) ends dockrun at once, removing the container if one was
     created.
  6. When the container ends by itself it is removed (unless --keep) and dockrun exits
     with the container's exit code.

DEADLINES:
  Every call to the engine must be answered within --engine-timeout (a graceful
  stop gets --stop-timeout on top), so an engine that accepts connections and never
  answers fails the unit instead of holding it in activating. A pull may take as
  long as it needs while the engine reports progress, but fails after
  --engine-timeout without any. The container's output and its wait have no
  deadline.

EXIT STATUS:
  0    stopped by SIGTERM/SIGINT (at any step, also before the container runs), or
       the container exited 0
  125  the engine or dockrun failed: an engine that cannot be reached or does not
       answer within --engine-timeout, image not found, a pull with no progress for
       --engine-timeout, bad flag or flag value (docker run's code, so units written
       for it keep working)
  126  the container's command cannot be invoked (permission denied)
  127  the container's command was not found
  N    otherwise the container's own exit code (128+n when signal n killed it)

ENVIRONMENT:
  DOCKER_HOST    engine address (unix:///path, tcp://host:port); default
                 unix:///var/run/docker.sock. The API version is negotiated.
  NOTIFY_SOCKET  set by systemd for Type=notify services.

EXAMPLES:
  Serve busybox httpd on port 8080 until stopped:
    dockrun --name web --init -p 8080:80 busybox httpd -f -p 80

  Ready only when the app answers:
    dockrun --name api -p 8080:8080 --health-cmd 'wget -q -O- localhost:8080/health' \\
      --health-interval 2s --notify healthy registry.local/api:1.4

THE TUTORIAL'S UNIT, REWRITTEN:
  node-etcd@.service without KillMode=none and without docker lines in
  ExecStartPre=/ExecStop= (dockrun removes the stale container, pulls, runs, stops):

",
    include_str!("../units/node-etcd@.service")
);

/// Runs one Docker container as a proper systemd service.
#[derive(Debug, Parser)]
#[command(
    name = "dockrun",
    version,
    about = "Run one Docker container as a proper systemd service",
    long_about = "Run one Docker container as a proper systemd service.\n\n\
        dockrun replaces the `docker kill`, `docker rm`, `docker pull`, `docker run` and \
        `docker stop` lines of a unit, and its KillMode=none, with one process that systemd \
        supervises: the container's life is dockrun's life. Flags follow docker run's names.",
    override_usage = "dockrun [OPTIONS] IMAGE [COMMAND [ARG...]]",
    after_long_help = AFTER_HELP
)]
pub struct Cli {
    /// Container name: a letter or digit, then at least one of [a-zA-Z0-9_.-]; a container already holding it is removed first
    #[arg(long, value_name = "NAME", value_parser = parse_name)]
    pub name: Option<String>,

    /// Publish container ports: [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO] (IPv6 as [::1]); either port may be a range (8000-8009:80-89); IP must be an IP address, not a name or an empty string
    #[arg(short = 'p', long = "publish", value_name = "PORT")]
    pub publish: Vec<String>,

    /// Publish every port the image exposes on random host ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,

    /// Set an environment variable: KEY=VALUE, or KEY to copy it from dockrun's environment
    #[arg(short = 'e', long = "env", value_name = "KEY[=VALUE]")]
    pub env: Vec<String>,

    /// Read environment variables from a file, one KEY=VALUE (or KEY) per line, # comments
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Bind mount or volume: SRC:DST[:OPTS], or DST for an anonymous volume
    #[arg(short = 'v', long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,

    /// Connect the container to this network (bridge, host, none, or a network name)
    #[arg(long, value_name = "NETWORK")]
    pub network: Option<String>,

    /// Set a container label: KEY=VALUE or KEY
    #[arg(short = 'l', long = "label", value_name = "KEY[=VALUE]")]
    pub label: Vec<String>,

    /// User to run as inside the container: NAME|UID[:GROUP|GID]
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,

    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Override the image's entrypoint ("" clears it)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,

    /// Memory limit: bytes, or a number with b, k, m or g
    #[arg(short = 'm', long, value_name = "BYTES", value_parser = parse_memory)]
    pub memory: Option<i64>,

    /// Number of CPUs the container may use (e.g. 1.5)
    #[arg(long, value_name = "CPUS", value_parser = parse_cpus)]
    pub cpus: Option<i64>,

    /// Run an init (docker-init) as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,

    /// Seconds to wait after the stop signal before the engine kills the container
    #[arg(long = "stop-timeout", value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,

    /// Signal that stops the container (e.g. SIGTERM, SIGQUIT, 3)
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// Longest the engine may take to answer a call, and a pull may go without progress (e.g. 10s, 1m; 0: no limit)
    #[arg(
        long = "engine-timeout",
        value_name = "DURATION",
        value_parser = parse_duration,
        default_value = DEFAULT_ENGINE_TIMEOUT
    )]
    pub engine_timeout: Duration,

    /// When to pull the image
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = PullPolicy::Missing)]
    pub pull: PullPolicy,

    /// Remove the container when it ends (the default)
    #[arg(long, overrides_with = "keep")]
    pub rm: bool,

    /// Keep the container after it ends (for `docker logs` or `docker inspect`)
    #[arg(long, overrides_with = "rm")]
    pub keep: bool,

    /// Health check command, run with /bin/sh -c inside the container
    #[arg(long = "health-cmd", value_name = "CMD")]
    pub health_cmd: Option<String>,

    /// Time between health checks (e.g. 500ms, 30s, 1m30s; a bare number is seconds)
    #[arg(long = "health-interval", value_name = "DURATION", value_parser = parse_duration)]
    pub health_interval: Option<Duration>,

    /// Longest a health check may run (e.g. 5s, 1m30s; a bare number is seconds)
    #[arg(long = "health-timeout", value_name = "DURATION", value_parser = parse_duration)]
    pub health_timeout: Option<Duration>,

    /// Consecutive failures that make the container unhealthy
    #[arg(long = "health-retries", value_name = "N")]
    pub health_retries: Option<u32>,

    /// Start-up time during which failures do not count (e.g. 1m, 90s; a bare number is seconds)
    #[arg(long = "health-start-period", value_name = "DURATION", value_parser = parse_duration)]
    pub health_start_period: Option<Duration>,

    /// When to send READY=1 to systemd: once running, or once the health check passes
    #[arg(long, value_enum, value_name = "WHEN", default_value_t = NotifyWhen::Running)]
    pub notify: NotifyWhen,

    /// The image, then the command and its arguments (everything after IMAGE goes to the container)
    #[arg(
        value_name = "IMAGE",
        required = true,
        num_args = 1..,
        trailing_var_arg = true
    )]
    pub image_and_command: Vec<String>,
}

impl Cli {
    /// The image named on the command line.
    #[must_use]
    pub fn image(&self) -> &str {
        self.image_and_command.first().map_or("", String::as_str)
    }

    /// The command and arguments after the image (empty: the image's own).
    #[must_use]
    pub fn container_command(&self) -> &[String] {
        self.image_and_command.get(1..).unwrap_or(&[])
    }

    /// The deadline of one engine call; `None` for `--engine-timeout 0`.
    #[must_use]
    pub fn engine_timeout(&self) -> Option<Duration> {
        (!self.engine_timeout.is_zero()).then_some(self.engine_timeout)
    }
}

/// The engine's rule for container names, `[a-zA-Z0-9][a-zA-Z0-9_.-]+`
/// (a leading `/`, as `docker inspect` prints names, is dropped). Checked
/// here so that an empty `--name ${NAME}` is a clear usage error, not a
/// container without a name and without stale-name cleanup.
pub fn parse_name(s: &str) -> Result<String, Invalid> {
    let name = s.strip_prefix('/').unwrap_or(s);
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if first_ok && rest_ok && name.len() >= 2 {
        return Ok(name.to_owned());
    }
    let why = if name.is_empty() {
        "the name is empty".to_owned()
    } else {
        format!("{name:?} is not a container name")
    };
    Err(Invalid(format!(
        "{why}: a container name is [a-zA-Z0-9][a-zA-Z0-9_.-]+ (a letter or digit, then at \
         least one more letter, digit, _, . or -), e.g. web-1"
    )))
}

/// docker's `RAMInBytes`: `1024`, `512m`, `1.5g`, `100kb`, case-insensitive.
pub fn parse_memory(s: &str) -> Result<i64, Invalid> {
    let bad =
        || Invalid(format!("invalid memory size {s:?}: use bytes or a number with b, k, m or g (e.g. 512m)"));
    let lower = s.trim().to_ascii_lowercase();
    let num_len = lower.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(lower.len());
    let value: f64 = lower[..num_len].parse().map_err(|_| bad())?;
    let unit = lower[num_len..].trim_end_matches('b');
    let unit = if lower[num_len..].is_empty() { "" } else { unit };
    let scale: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = (value * scale).floor();
    if !(0.0..9.0e18).contains(&bytes) {
        return Err(bad());
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(bytes as i64)
}

/// `--cpus 1.5` as the engine's NanoCpus.
pub fn parse_cpus(s: &str) -> Result<i64, Invalid> {
    let bad = || Invalid(format!("invalid --cpus {s:?}: use a positive number such as 0.5 or 2"));
    let value: f64 = s.trim().parse().map_err(|_| bad())?;
    if !(value > 0.0 && value < 1.0e6) {
        return Err(bad());
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok((value * 1e9).round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_spelt_as_everywhere_in_fleetkit() {
        for (given, want) in [("1m30s", 90_000), ("500ms", 500), ("5s", 5_000), ("10", 10_000), ("0", 0)] {
            let cli = Cli::try_parse_from([
                "dockrun",
                "--health-interval",
                given,
                "--health-timeout",
                given,
                "--health-start-period",
                given,
                "img",
            ])
            .unwrap_or_else(|e| panic!("{given}: {e}"));
            let want = Some(Duration::from_millis(want));
            assert_eq!(
                (cli.health_interval, cli.health_timeout, cli.health_start_period),
                (want, want, want)
            );
        }
        assert!(Cli::try_parse_from(["dockrun", "--health-interval", "3 days", "img"]).is_err());
    }

    #[test]
    fn memory_sizes_follow_docker() {
        assert_eq!(parse_memory("1024"), Ok(1024));
        assert_eq!(parse_memory("512m"), Ok(512 << 20));
        assert_eq!(parse_memory("512MB"), Ok(512 << 20));
        assert_eq!(parse_memory("1g"), Ok(1 << 30));
        assert_eq!(parse_memory("100k"), Ok(100 << 10));
        assert!(parse_memory("lots").is_err());
        assert!(parse_memory("5x").is_err());
    }

    #[test]
    fn cpus_become_nano_cpus() {
        assert_eq!(parse_cpus("1.5"), Ok(1_500_000_000));
        assert!(parse_cpus("0").is_err());
        assert!(parse_cpus("-1").is_err());
    }

    #[test]
    fn everything_after_the_image_is_the_command() {
        let cli =
            Cli::try_parse_from(["dockrun", "--name", "xx", "img", "sh", "-c", "echo hi", "--name", "y"])
                .expect("parses");
        assert_eq!(cli.name.as_deref(), Some("xx"));
        assert_eq!(cli.image(), "img");
        assert_eq!(cli.container_command(), ["sh", "-c", "echo hi", "--name", "y"]);
    }

    #[test]
    fn unknown_flags_before_the_image_are_errors() {
        assert!(Cli::try_parse_from(["dockrun", "--bogus", "img"]).is_err());
        let cli = Cli::try_parse_from(["dockrun", "img", "-x", "--bogus"]).expect("parses");
        assert_eq!(cli.container_command(), ["-x", "--bogus"]);
    }

    #[test]
    fn names_follow_the_engines_rule() {
        assert_eq!(parse_name("web-1"), Ok("web-1".to_owned()));
        assert_eq!(parse_name("/node.etcd_2"), Ok("node.etcd_2".to_owned()));
        for bad in ["", "/", "a", "-web", "_web", ".web", "web/1", "web 1", "wéb"] {
            let err = parse_name(bad).expect_err(bad).0;
            assert!(err.contains("[a-zA-Z0-9][a-zA-Z0-9_.-]+"), "{bad}: {err}");
        }
        assert!(parse_name("").expect_err("empty").0.starts_with("the name is empty"));
        assert!(!parse_name("x\u{1b}[2J").expect_err("escape").0.contains('\u{1b}'));
    }

    #[test]
    fn the_engine_timeout_defaults_to_30s_and_0_turns_it_off() {
        let cli = Cli::try_parse_from(["dockrun", "img"]).expect("parses");
        assert_eq!(cli.engine_timeout(), Some(Duration::from_secs(30)));
        let cli = Cli::try_parse_from(["dockrun", "--engine-timeout", "1m30s", "img"]).expect("parses");
        assert_eq!(cli.engine_timeout(), Some(Duration::from_secs(90)));
        let cli = Cli::try_parse_from(["dockrun", "--engine-timeout", "0", "img"]).expect("parses");
        assert_eq!(cli.engine_timeout(), None);
        assert!(Cli::try_parse_from(["dockrun", "--engine-timeout", "soon", "img"]).is_err());
    }

    #[test]
    fn keep_and_rm_last_one_wins() {
        let cli = Cli::try_parse_from(["dockrun", "--keep", "--rm", "img"]).expect("parses");
        assert!(!cli.keep);
        let cli = Cli::try_parse_from(["dockrun", "--rm", "--keep", "img"]).expect("parses");
        assert!(cli.keep);
    }
}
