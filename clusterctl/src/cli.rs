//! clusterctl's command line: one clap definition of the global options,
//! the verbs and their help texts, from which `--help`, the man pages and
//! the shell completions are all generated.
//!
//! The help texts are long because they are the reference: each verb's
//! after-help says what it waits for, its table's columns and its JSON
//! record, with examples, and the man page repeats it as DETAILS.

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use fleetkit_core::etcd::EtcdArgs;

use crate::keys::Keys;

const ABOUT: &str = "Control a fleetkit cluster: submit and start units, list them, run the scheduler";

const LONG_ABOUT: &str = "\
clusterctl does what fleetctl did, over fleetkit's keys in etcd v3: submit unit files \
(templates such as node-etcd@.service too), start instances of them on the machines of \
the cluster under their [X-Fleet] rules, and show the whole state in fleetctl's tables.

Desired states follow fleetctl: submit makes a unit inactive, load makes it loaded \
(placed on a machine), start makes it launched (placed and running), stop makes it \
loaded again, unload inactive, and destroy removes it. A scheduler (`clusterctl schedule \
--watch`, any number of them, one leads) turns desired states into assignments under \
PREFIX/assign/MACHINE/UNIT; every machine's agent (`clusterctl agent`) keeps it present \
under PREFIX/machines/ID on a lease, runs what is assigned to it through systemd, and \
reports each unit's state.

Unlike fleetctl, start says at once which unit cannot be placed and why, and exits 1; \
and while it waits it says what it waits for, and whether a scheduler runs at all.

Keys (under --prefix, default /fleetkit): units/NAME (unit record JSON), desired/NAME \
(inactive|loaded|launched), machines/ID (machine record JSON, on the machine's lease), \
assign/ID/NAME (unit NAME placed on machine ID; value {\"hash\",\"state\"}), states/ID/NAME \
(what machine ID reports for NAME), election/scheduler (the scheduler's election).";

const EXAMPLES: &str = "\
EXAMPLES:
  The tutorial: two templates, three instances, each with its discovery sidekick:
    clusterctl submit node-etcd@.service node-etcd-discovery@.service
    clusterctl start node-etcd@{1..3}.service
    clusterctl list-units

  Run a scheduler (as a systemd service on a few machines; one leads):
    clusterctl schedule --watch

  One scheduling round from cron:
    clusterctl schedule

  Machine-readable output:
    clusterctl list-unit-files --json | jq -r 'select(.target == null) | .unit'

EXIT STATUS:
  0 done; 1 a clean negative answer (a unit cannot be placed, a unit failed on its machine,
  a wait gave up); 2 bad usage or input (a unit that is not submitted, a record etcd refused
  for its size or the credentials); 75 etcd cannot be reached now: try again later.
  A key in etcd that cannot be read (not a unit record, a desired state that is none of the
  three, a machine record without a lease) is skipped with a warning that names it and the
  fix; everything else goes on.

ENVIRONMENT:
  ETCDCTL_ENDPOINTS, ETCDCTL_CACERT, ETCDCTL_CERT, ETCDCTL_KEY, ETCDCTL_USER,
  ETCDCTL_DIAL_TIMEOUT, ETCDCTL_COMMAND_TIMEOUT as for etcdctl; FLEETKIT_PREFIX.";

const GRANT_MACHINE_HELP: &str = "\
Creates, or brings up to date, the role fleetkit-machine-ID with exactly what machine ID's agent
needs, and a user holding it (idempotent: run it again to change the password or repair the
role):
  read       PREFIX/units/ (the unit records), PREFIX/assign/ID/ (its assignments)
  readwrite  PREFIX/machines/ID (its record), PREFIX/states/ID/ (its reports)
A holder of that credential cannot write another machine's keys, units/, desired/ or assign/,
read other machines' assignments, or revoke another machine's lease. --announce PREFIX adds
readwrite on PREFIX for the machine's announce sidekicks (a stolen credential can then forge
announcements there, nothing more). etcd must have auth
enabled, and the caller must be root (or hold etcd's root role): give --user root:PASSWORD or
root's client certificate.

Examples:
  Password login, the agent's machine then runs with ETCDCTL_USER=fleetkit-machine-ID:PASSWORD:
    printf '%s\\n' \"$PASSWORD\" | clusterctl --user root:ROOTPW grant-machine ID --password-stdin
  Client-certificate login (the certificate's CN is fleetkit-machine-ID):
    clusterctl --cacert ca.pem --cert root.pem --key root-key.pem grant-machine ID --no-password";

const GRANT_SCHEDULER_HELP: &str = "\
Creates, or brings up to date, the role fleetkit-scheduler-NAME and a user holding it:
  read       PREFIX/ (the revision probe), PREFIX/units/, PREFIX/desired/, PREFIX/machines/
  readwrite  PREFIX/assign/, PREFIX/election/scheduler/
That is everything `schedule` and `schedule --watch` read and write; a machine's credential
cannot schedule.";

const LIST_UNIT_FILES_HELP: &str = "\
COLUMNS (--fields): unit, hash, dstate, state, target, global, desc.
  DSTATE is the desired state; STATE what the cluster did: inactive (no machine), loaded
  (assigned to a machine), launched (its machine reports it active); TARGET is the machine
  as ID.../IP (--full: the whole ID), `global` for a global unit, `-` when not placed.

JSON (--json), one object per unit:
  {\"unit\": string, \"hash\": string (full SHA-256), \"dstate\": string,
   \"state\": string, \"target\": machine ID or null}

EXAMPLES:
  clusterctl list-unit-files
  clusterctl list-unit-files --fields unit,dstate --no-legend";

const LIST_UNITS_HELP: &str = "\
Lists every unit placed on a machine, with the state that machine reports for it
(`-` until it reports).

COLUMNS (--fields): unit, machine, active, sub, load, hash.

JSON (--json), one object per unit and machine:
  {\"unit\": string, \"machine\": machine ID, \"active\": string or null, \"sub\": string or null}

EXAMPLES:
  clusterctl list-units
  clusterctl list-units --full --fields unit,machine";

const LIST_MACHINES_HELP: &str = "\
Lists the machines whose presence key (PREFIX/machines/ID, on a lease) is alive.

COLUMNS (--fields): machine, ip, metadata.

JSON (--json), one object per machine:
  {\"machine\": machine ID, \"ip\": string, \"metadata\": {key: value}}

EXAMPLES:
  clusterctl list-machines
  clusterctl list-machines --json";

const LIST_ANNOUNCEMENTS_HELP: &str = "\
Lists the keys under PREFIX (an absolute etcd prefix, default /announce/) with their
values and the seconds left on their lease: what announce keeps alive.

COLUMNS (--fields): key, value, ttl.

JSON (--json), one object per key:
  {\"key\": string, \"value\": string, \"ttl\": seconds or null (no lease)}

EXAMPLES:
  clusterctl list-announcements
  clusterctl list-announcements /announce/services/";

const START_HELP: &str = "\
UNIT is a submitted unit, or an instance of a submitted template (foo@1.service from
foo@.service); a bare name means NAME.service. The units that a started unit's
Requires=, Wants= and BindsTo= name come along when they are submitted (or instances of
submitted templates). Before anything is written, the placement rules run on the cluster
as it is: a unit that cannot be placed is reported with the reason, clusterctl exits 1, and
none of the units given is started (all or nothing).

Then clusterctl waits until every unit is placed (and, where machines report states,
running), printing `Unit NAME launched on ID.../IP`; while waiting it says what it waits
for and whether a scheduler is running.

EXAMPLES:
  clusterctl start node-etcd@{1..3}.service
  clusterctl start --no-block web
  clusterctl start --block-attempts 20 web.service";

const SCHEDULE_HELP: &str = "\
Without --watch: one round (cron-friendly): read the cluster at one revision, place every
loaded or launched unit with the [X-Fleet] rules keeping current assignments that still
hold, and write the difference in transactions. If a --watch scheduler leads already, the
round is left to it. Exits 1 when some unit could not be placed (each named on stderr).

With --watch: campaign in the etcd election PREFIX/election/scheduler; the leader reads the
cluster once, runs a round, keeps the cluster and the plan in memory and answers each watch
event from there, without reading etcd again: a machine whose lease ends costs what it held
(its units re-placed in milliseconds), any other change (a submit, a start, a stop, an
assignment deleted by hand) is planned again from memory, keeping what holds. While nothing
changes it sends etcd nothing but its lease keep-alives. A lost or compacted watch, or a
failed write, means one full read again. Every write is a transaction that holds only while
the leader's election key exists. Followers take over when the leader's lease (--ttl) ends;
on SIGTERM/SIGINT the leader resigns at once. A key that cannot be used (a record that does
not parse, rules no plan can follow) is named in a warning and left as it is.

EXAMPLES:
  clusterctl schedule
  clusterctl schedule --watch --ttl 5";

const REMOTE_HELP: &str = "\
The unit's machine is found in etcd (its assignment, then the machine's record for its
address) and reached with the system's OpenSSH client, as fleetctl did: your keys, agent,
~/.ssh/config and known hosts apply. On the unit's own machine the command runs here,
without ssh. The exit status is the command's; 255 when ssh could not connect (within
--ssh-timeout); 1 when the unit is not placed or its machine is gone.";

const STATUS_HELP: &str = "\
Runs `systemctl status -l --no-pager UNIT` on each unit's machine.

EXAMPLES:
  clusterctl status node-etcd@1.service
  clusterctl status --ssh-username core --tunnel bastion.example node-etcd@{1..3}.service";

const JOURNAL_HELP: &str = "\
Runs `journalctl --no-pager -u UNIT -n N` (and -f) on the unit's machine.

EXAMPLES:
  clusterctl journal node-etcd@1.service
  clusterctl journal -n 100 -f node-etcd-discovery@1.service";

const SSH_HELP: &str = "\
MACHINE is a machine ID or a unique prefix of one (as list-machines shows them); a name
with a dot is a unit, and the shell opens on its machine. Without COMMAND an interactive
shell; with it, COMMAND's status is clusterctl's.

EXAMPLES:
  clusterctl ssh 9c1eed63
  clusterctl ssh node-etcd@1.service -- docker ps
  clusterctl ssh -A --ssh-username core node-etcd@1.service";

const AGENT_HELP: &str = "\
The machine side, one per machine, run by systemd (fleetkit-agent.service). It keeps
PREFIX/machines/ID on a lease of --ttl seconds (resumed after a restart of the agent, so a
restart moves nothing), watches only PREFIX/assign/ID/, writes each assigned unit to
/run/fleetkit/units/NAME linked from /run/systemd/system, has systemd load, start and stop
it over D-Bus, and reports its LoadState/ActiveState/SubState to PREFIX/states/ID/NAME as
systemd signals them (with systemd's Result and the journal's last lines when it failed).
While nothing changes it makes no etcd request but the lease's keep-alive.

Units keep running while etcd is slow, restarting or away; a unit is stopped only when its
assignment is gone. A unit file that exists on the machine and is not fleetkit's is never
replaced, and an assigned name that is not a unit name is refused: the unit's report or the
agent's log says so. The TTL trades failover time against tolerance of a short outage: a
machine away for longer has its units moved elsewhere, and stops its own copies when it is
back. With --fence it stops them as soon as the lease cannot be renewed for a TTL (at most
one copy anywhere, but an etcd-wide outage stops every unit).

EXAMPLES:
  systemctl enable --now fleetkit-agent      (reads /etc/fleetkit/fleetkit.env)
  clusterctl agent --metadata region=eu,disk=ssd
  clusterctl --endpoints http://10.0.0.1:2379,http://10.0.0.2:2379 agent --ttl 10";

#[derive(Debug, Parser)]
#[command(name = "clusterctl", version, about = ABOUT, long_about = LONG_ABOUT, after_long_help = EXAMPLES)]
pub struct Cli {
    #[command(flatten)]
    pub etcd: EtcdArgs,

    /// where fleetkit's keys live in etcd
    #[arg(long, env = "FLEETKIT_PREFIX", default_value = "/fleetkit", value_name = "PREFIX", global = true,
          value_parser = Keys::parse_prefix)]
    pub prefix: String,

    #[command(subcommand)]
    pub verb: Verb,
}

/// `--no-block` and `--block-attempts` of the verbs that wait.
#[derive(Debug, Clone, Args)]
pub struct BlockArgs {
    /// do not wait for the cluster to reach the state
    #[arg(long)]
    pub no_block: bool,

    /// give up (exit 1) after N checks, one every 500 ms; 0 waits for ever
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub block_attempts: u32,
}

/// The options every list verb shares.
#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    /// columns to print, comma separated (see COLUMNS below)
    #[arg(long, value_name = "LIST")]
    pub fields: Option<String>,

    /// do not print the header line
    #[arg(long)]
    pub no_legend: bool,

    /// do not shorten machine IDs and hashes
    #[arg(long, short = 'l')]
    pub full: bool,

    /// JSON Lines instead of a table (all columns, full values)
    #[arg(long)]
    pub json: bool,
}

/// fleetctl's verbs, and the scheduler.
#[derive(Debug, Subcommand)]
pub enum Verb {
    /// Store unit files (templates too) in the cluster, inactive
    #[command(
        after_long_help = "EXAMPLES:\n  clusterctl submit node-etcd@.service node-etcd-discovery@.service"
    )]
    Submit {
        /// unit files; each is stored under its file name
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print a submitted unit file (an instance as expanded from its template)
    #[command(after_long_help = "EXAMPLES:\n  clusterctl cat node-etcd@1.service")]
    Cat {
        #[arg(value_name = "UNIT")]
        unit: String,
    },
    /// Place units on machines without starting them (desired state: loaded)
    #[command(after_long_help = "EXAMPLES:\n  clusterctl load node-etcd@1.service")]
    Load {
        #[command(flatten)]
        block: BlockArgs,
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// Place and start units, with their Requires=/Wants=/BindsTo= (desired state: launched)
    #[command(after_long_help = START_HELP)]
    Start {
        #[command(flatten)]
        block: BlockArgs,
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// Stop units, leaving them on their machines (desired state: loaded)
    #[command(after_long_help = "EXAMPLES:\n  clusterctl stop node-etcd@{1..3}.service")]
    Stop {
        #[command(flatten)]
        block: BlockArgs,
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// Take units off their machines (desired state: inactive)
    #[command(after_long_help = "EXAMPLES:\n  clusterctl unload node-etcd@3.service")]
    Unload {
        #[command(flatten)]
        block: BlockArgs,
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// Remove units from the cluster; the scheduler takes them off their machines
    #[command(
        after_long_help = "EXAMPLES:\n  clusterctl destroy node-etcd@3.service node-etcd-discovery@3.service"
    )]
    Destroy {
        #[arg(required = true, value_name = "UNIT")]
        units: Vec<String>,
    },
    /// List every submitted unit: UNIT HASH DSTATE STATE TARGET
    #[command(after_long_help = LIST_UNIT_FILES_HELP)]
    ListUnitFiles(ListArgs),
    /// List units placed on machines: UNIT MACHINE ACTIVE SUB
    #[command(after_long_help = LIST_UNITS_HELP)]
    ListUnits(ListArgs),
    /// List the machines present: MACHINE IP METADATA
    #[command(after_long_help = LIST_MACHINES_HELP)]
    ListMachines(ListArgs),
    /// List announced keys with their values and lease TTLs: KEY VALUE TTL
    #[command(after_long_help = LIST_ANNOUNCEMENTS_HELP)]
    ListAnnouncements {
        #[command(flatten)]
        list: ListArgs,
        /// etcd key prefix to list (absolute, not under --prefix)
        #[arg(default_value = "/announce/", value_name = "PREFIX", value_parser = Keys::parse_prefix)]
        key_prefix: String,
    },
    /// Show `systemctl status` of units on their machines (over ssh unless local)
    #[command(after_long_help = format!("{STATUS_HELP}\n\n{REMOTE_HELP}"))]
    Status {
        #[arg(value_name = "UNIT", required = true)]
        units: Vec<String>,
        #[command(flatten)]
        ssh: SshArgs,
    },
    /// Show a unit's journal on its machine (over ssh unless local)
    #[command(after_long_help = format!("{JOURNAL_HELP}\n\n{REMOTE_HELP}"))]
    Journal {
        /// how many of the last lines to show
        #[arg(short = 'n', long, default_value_t = 10, value_name = "N")]
        lines: u32,
        /// keep showing new lines as they come
        #[arg(short, long)]
        follow: bool,
        #[arg(value_name = "UNIT")]
        unit: String,
        #[command(flatten)]
        ssh: SshArgs,
    },
    /// Open a shell, or run a command, on a machine or a unit's machine
    #[command(after_long_help = format!("{SSH_HELP}\n\n{REMOTE_HELP}"))]
    Ssh {
        #[arg(value_name = "MACHINE|UNIT")]
        target: String,
        /// the command to run there, after `--`
        #[arg(last = true, value_name = "COMMAND")]
        command: Vec<String>,
        #[command(flatten)]
        ssh: SshArgs,
    },
    /// Run this machine's agent: keep it present, run the units assigned to it, report their states
    #[command(after_long_help = AGENT_HELP)]
    Agent(AgentArgs),

    /// Create an etcd role and user that confine machine ID's agent to its own keys
    #[command(after_long_help = GRANT_MACHINE_HELP)]
    GrantMachine {
        /// the machine's ID (as its agent uses it: /etc/machine-id)
        #[arg(value_name = "ID")]
        id: String,
        /// also let the machine's units announce under this etcd prefix (readwrite; absolute; may
        /// be given more than once), e.g. /announce/services/ for the tutorial's sidekicks
        #[arg(long, value_name = "PREFIX", value_parser = Keys::parse_prefix)]
        announce: Vec<String>,
        #[command(flatten)]
        login: LoginArgs,
    },
    /// Remove the role and user that grant-machine created for machine ID
    RevokeMachine {
        #[arg(value_name = "ID")]
        id: String,
        /// the user's name, if grant-machine was given --username
        #[arg(long, value_name = "NAME")]
        username: Option<String>,
    },
    /// Create an etcd role and user for a scheduler: read the cluster, write assign/ and its election
    #[command(after_long_help = GRANT_SCHEDULER_HELP)]
    GrantScheduler {
        /// a name for this scheduler (its role is fleetkit-scheduler-NAME)
        #[arg(value_name = "NAME")]
        name: String,
        #[command(flatten)]
        login: LoginArgs,
    },

    /// Run the scheduler: one round, or --watch to lead and react to changes
    #[command(after_long_help = SCHEDULE_HELP)]
    Schedule {
        /// keep running: campaign, and while leading react to every change
        #[arg(long)]
        watch: bool,

        /// seconds a dead scheduler keeps its leadership (its lease TTL)
        #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(i64).range(2..=3600))]
        ttl: i64,
    },
}

/// How the user that a grant creates logs in to etcd.
#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// the user's name [default: the role's name, fleetkit-machine-ID or fleetkit-scheduler-NAME]
    #[arg(long, value_name = "NAME")]
    pub username: Option<String>,

    /// read the user's password from stdin's first line
    #[arg(long, conflicts_with = "no_password", required_unless_present = "no_password")]
    pub password_stdin: bool,

    /// no password: the user logs in by TLS client certificate, whose CN is the user's name
    #[arg(long)]
    pub no_password: bool,
}

/// How `status`, `journal` and `ssh` reach another machine.
#[derive(Debug, Clone, Args)]
pub struct SshArgs {
    /// log in as this user [default: ssh's, your local user or ~/.ssh/config's]
    #[arg(long, value_name = "USER")]
    pub ssh_username: Option<String>,

    /// the machines' ssh port
    #[arg(long, default_value_t = 22, value_name = "PORT")]
    pub ssh_port: u16,

    /// reach the machine through this jump host (ssh -J)
    #[arg(long, value_name = "[USER@]HOST[:PORT]")]
    pub tunnel: Option<String>,

    /// known-hosts file to check the machines' host keys against
    #[arg(long, value_name = "FILE")]
    pub known_hosts_file: Option<PathBuf>,

    /// refuse a machine whose host key is unknown or changed (ssh's StrictHostKeyChecking)
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub strict_host_key_checking: bool,

    /// forward your ssh agent to the machine (ssh -A)
    #[arg(short = 'A', long)]
    pub forward_agent: bool,

    /// give up connecting after this long (e.g. 10s)
    #[arg(long, default_value = "10s", value_parser = fleetkit_core::duration::parse_duration, value_name = "DURATION")]
    pub ssh_timeout: std::time::Duration,
}

/// `clusterctl agent`'s options.
#[derive(Debug, Clone, Args)]
pub struct AgentArgs {
    /// this machine's ID [default: the contents of /etc/machine-id]
    #[arg(long, env = "FLEETKIT_MACHINE_ID", value_name = "ID")]
    pub machine_id: Option<String>,

    /// the address shown for this machine [default: the local address that routes to the first etcd endpoint]
    #[arg(long, env = "FLEETKIT_PUBLIC_IP", value_name = "IP")]
    pub public_ip: Option<IpAddr>,

    /// metadata for MachineMetadata=, fleet's form: region=us-west,disk=ssd
    #[arg(long, env = "FLEETKIT_METADATA", value_name = "K=V,...", default_value = "")]
    pub metadata: String,

    /// seconds the machine stays present after its agent stops renewing (its lease TTL): a machine
    /// that dies or is cut off for longer has its units moved
    #[arg(long, default_value_t = 10, value_name = "SECS", value_parser = clap::value_parser!(i64).range(2..=3600))]
    pub ttl: i64,

    /// stop this machine's units once its lease cannot be renewed for a TTL (at most one copy of a
    /// unit anywhere, at the price of stopping everything when etcd itself is down)
    #[arg(long)]
    pub fence: bool,
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
    fn prefix_and_endpoints_parse() {
        let cli =
            Cli::try_parse_from(["clusterctl", "--endpoints", "127.0.0.1:1", "list-units", "--prefix", "/x"])
                .unwrap();
        assert_eq!(cli.prefix, "/x");
        assert_eq!(cli.etcd.endpoints, vec!["127.0.0.1:1"]);
    }

    #[test]
    fn schedule_ttl_is_bounded() {
        assert!(Cli::try_parse_from(["clusterctl", "schedule", "--ttl", "1"]).is_err());
    }
}
