//! unitgen's command line: one clap definition, with the examples, the
//! record format and the specifier rules as its long help, from which
//! `--help`, the man page and the shell completions are all generated.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

const EXAMPLES: &str = "\
EXAMPLES
  Three instances of each of the tutorial's templates, as JSON Lines:
      unitgen -i 1..3 node-etcd@.service node-etcd-discovery@.service

  Zero-padded, descending, listed, and from a file of names:
      unitgen -i 01..10 web@.service
      unitgen -i 3..1 -i a,b web@.service
      cut -d' ' -f1 hosts.txt | unitgen -i - probe@.service

  Instances that are not unit-name text, escaped as systemd-escape does:
      unitgen --escape -i 10.0.0.1/24 route@.service     # route@10.0.0.1-24.service

  Unit files for systemd, on stdout or written atomically into a directory:
      unitgen --format unit -i 1 node-etcd@.service
      unitgen -o /etc/systemd/system -i 1..3 node-etcd@.service

  Check files as systemd would, without output (exit 2 on any error):
      unitgen --check node-etcd@.service node-etcd-discovery@.service

  A unit read from stdin needs its name:
      generate-unit | unitgen --name web@.service -i 1..2 -

  Where would they run? (place reads unit records on stdin):
      unitgen -i 1..3 node-etcd@.service | place --machines machines.json

OUTPUT
  One JSON object per line and unit (--format json, the default):
    {\"name\":\"node-etcd@1.service\",          full unit name
     \"template\":\"node-etcd@.service\",        template it came from, or null
     \"instance\":\"1\",                         instance string, or null
     \"hash\":\"<64 hex digits>\",               SHA-256 of \"text\"
     \"constraints\":{                         the [X-Fleet] section, resolved
        \"machine_id\":null|\"ID\", \"machine_of\":[\"UNIT\"...],
        \"machine_metadata\":{\"KEY\":[\"VALUE\"...]}, \"conflicts\":[\"GLOB\"...],
        \"global\":false, \"replaces\":[\"GLOB\"...]},
     \"text\":\"[Unit]\\n...\"}                    the expanded unit file, canonical form
  --format unit prints each unit file after a \"# NAME\" line.
  Into a pipe, socket or terminal every unit is flushed as soon as it is
  made, so a reader sees it at once; into a regular file or /dev/null they
  are written in 64 KiB blocks, and all that is waiting before any message
  goes to stderr, so both sent to one file keep their order.

INSTANCES
  FROM..TO counts whole numbers from FROM to TO (both 0 to 18446744073709551615,
  either direction), zero padded when either end starts with 0; {...} around a
  list is optional. An item of only digits, dots and minus signs must be such a
  range: 1.., ..3, 1...3, 1..2..9, -5..3 (negative) and ends past the limit are
  errors, not instance names. Other text (a..b, v1..2) is one instance name.
  There is no limit on a range's length: instances stream, like seq.

CHECKS
  Besides syntax, names and specifiers, --check (and every run) refuses what
  systemd 252 would refuse to run although it parses: an empty file (systemd
  loads it as masked) and a service without the commands it needs, in
  systemd's words: \"Service has no ExecStart=, ExecStop=, or SuccessAction=.
  Refusing.\" (ExecStart= is needed unless Type=oneshot and RemainAfterExit=yes
  or SuccessAction=; only Type=oneshot may have several). Text from the input
  that a message quotes has its control bytes escaped (ESC shows as \\x1b).

SPECIFIERS
  %n %N %p %P %i %I %f %j %J and %% are resolved from the unit name exactly as
  systemd 252 resolves them, in every value including [X-Fleet]. Host ones
  (%H %m %b %v %u %t %h ...) are left for systemd on the target machine. An
  unknown one such as %1 is an error, as in systemd 252: write %%1 for a
  literal %1.

EXIT STATUS
  0 done (warnings may be printed); 2 bad usage or a unit with errors.";

/// Output format on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// One JSON record per unit (JSON Lines).
    Json,
    /// The expanded unit files, each after a `# NAME` line.
    Unit,
}

/// Expand systemd unit templates into instance units.
#[derive(Debug, Parser)]
#[command(
    name = "unitgen",
    version,
    about = "Expand systemd unit templates into instance units, or check unit files",
    long_about = "Reads unit files (a template such as node-etcd@.service, or a plain unit) exactly \
as systemd 252 parses them, makes one unit per instance given with -i, resolves the specifiers \
that depend only on the unit name, and prints one JSON record per unit (for place and clusterctl) \
or the unit files themselves. --check reports every problem as FILE:LINE: message.",
    after_long_help = EXAMPLES
)]
pub struct Cli {
    /// Instances for templates: 1..3, {1..3}, 01..10 (zero padded), 3..1, a,b,c, or - (one per
    /// line on stdin). Range ends are whole numbers 0 to 2^64-1; a malformed range (1.., ..3,
    /// 1...3, -5..3) is an error. Repeatable; plain units ignore them.
    #[arg(short = 'i', long = "instances", value_name = "LIST")]
    pub instances: Vec<String>,

    /// Write each unit to DIR/NAME (atomically) instead of printing it.
    #[arg(short = 'o', long = "output", value_name = "DIR", conflicts_with_all = ["format", "check"])]
    pub output: Option<PathBuf>,

    /// Overwrite files in DIR whose contents differ.
    #[arg(long, requires = "output")]
    pub force: bool,

    /// What to print on stdout.
    #[arg(long, value_enum, default_value_t = Format::Json, value_name = "FORMAT")]
    pub format: Format,

    /// Escape instance strings as systemd-escape does (10.0.0.1/24 -> 10.0.0.1-24).
    #[arg(long)]
    pub escape: bool,

    /// Only parse and validate; print every problem as FILE:LINE: message.
    #[arg(long)]
    pub check: bool,

    /// Unit name for a unit read from stdin (-), e.g. web@.service.
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,

    /// Unit files; - reads one from stdin (with --name).
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn cli_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn output_dir_conflicts_with_format() {
        let err = Cli::try_parse_from(["unitgen", "-o", "d", "--format", "unit", "a.service"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::ArgumentConflict);
    }
}
