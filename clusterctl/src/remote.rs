//! `status`, `journal` and `ssh`: reaching a unit's machine, as fleetctl did.
//!
//! The machine's address comes from its record (`machines/ID`); the way
//! there is the system's OpenSSH client, so users' keys, agents, jump hosts
//! and known-hosts files work as they do for everything else. On the
//! unit's own machine no ssh is involved: the command runs here. The exit
//! status is the remote command's (ssh's 255 when it could not connect),
//! and a machine that is gone is said to be gone before anything is tried.

use std::ffi::OsString;
use std::process::Command;

use fleetkit_core::{Exit, ToolError};

use crate::cli::SshArgs;
use crate::cluster::{Cluster, Want};

/// Where a command runs: here, or at a machine's address.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Place {
    Local,
    Remote { id: String, ip: String },
}

/// `status UNIT...`: `systemctl status -l` on each unit's machine.
///
/// # Errors
/// A unit that is not placed, a machine that is gone, etcd's error.
pub async fn status(cluster: &Cluster, units: &[String], ssh: &SshArgs) -> Result<Exit, ToolError> {
    let mut exit = Exit::SUCCESS;
    for unit in units {
        let place = place_of_unit(cluster, unit).await?;
        let code = run_at(&place, ssh, &["systemctl", "status", "-l", "--no-pager", unit], false)?;
        if code != Exit::SUCCESS {
            exit = code;
        }
    }
    Ok(exit)
}

/// `journal [-n N] [-f] UNIT`: `journalctl -u UNIT` on the unit's machine.
///
/// # Errors
/// As [`status`].
pub async fn journal(
    cluster: &Cluster,
    unit: &str,
    lines: u32,
    follow: bool,
    ssh: &SshArgs,
) -> Result<Exit, ToolError> {
    let place = place_of_unit(cluster, unit).await?;
    let lines = lines.to_string();
    let mut cmd = vec!["journalctl", "--no-pager", "-u", unit, "-n", &lines];
    if follow {
        cmd.push("-f");
    }
    run_at(&place, ssh, &cmd, false)
}

/// `ssh MACHINE|UNIT [-- COMMAND...]`: a shell (or COMMAND) on a machine
/// named by an ID prefix, or on the machine of a unit.
///
/// # Errors
/// No such machine or unit, an ambiguous prefix, etcd's error.
pub async fn ssh(
    cluster: &Cluster,
    target: &str,
    command: &[String],
    ssh: &SshArgs,
) -> Result<Exit, ToolError> {
    let place = if target.contains('.') {
        place_of_unit(cluster, target).await?
    } else {
        place_of_machine(cluster, target).await?
    };
    let command: Vec<&str> = command.iter().map(String::as_str).collect();
    if place == Place::Local && command.is_empty() {
        let shell = std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".to_owned());
        return run_at(&place, ssh, &[&shell], true);
    }
    run_at(&place, ssh, &command, true)
}

async fn place_of_unit(cluster: &Cluster, unit: &str) -> Result<Place, ToolError> {
    let unit = crate::units::canonical(unit);
    let want = Want { machines: true, assign: true, ..Want::default() };
    let snap = cluster.snapshot(want).await?;
    snap.warn();
    let Some(id) = snap.machines_of(&unit).first().map(|m| (*m).to_owned()) else {
        return Err(ToolError::negative(format!(
            "{unit} is not placed on any machine (clusterctl list-unit-files shows its state)"
        )));
    };
    let Some(record) = snap.machines.get(&id) else {
        return Err(ToolError::negative(format!(
            "{unit} is assigned to machine {id}, which is gone (its lease ended): nothing to connect to; \
             the scheduler moves the unit"
        )));
    };
    Ok(place(&id, &record.ip))
}

async fn place_of_machine(cluster: &Cluster, prefix: &str) -> Result<Place, ToolError> {
    let want = Want { machines: true, ..Want::default() };
    let snap = cluster.snapshot(want).await?;
    snap.warn();
    let found: Vec<_> = snap.machines.iter().filter(|(id, _)| id.starts_with(prefix)).collect();
    match found.as_slice() {
        [(id, record)] => Ok(place(id, &record.ip)),
        [] => Err(ToolError::negative(format!(
            "no machine's ID starts with {prefix:?} (clusterctl list-machines lists them)"
        ))),
        many => Err(ToolError::usage(format!(
            "{prefix:?} names {} machines ({}): give more of the ID",
            many.len(),
            many.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// This machine, or the other one at `ip`.
fn place(id: &str, ip: &str) -> Place {
    let here = std::fs::read_to_string("/etc/machine-id").is_ok_and(|m| m.trim() == id);
    if here {
        Place::Local
    } else {
        Place::Remote { id: id.to_owned(), ip: ip.to_owned() }
    }
}

/// Runs `command` at `place` with the terminal attached; its exit status.
fn run_at(place: &Place, ssh: &SshArgs, command: &[&str], interactive: bool) -> Result<Exit, ToolError> {
    let mut cmd = match place {
        Place::Local => {
            let mut c = Command::new(command[0]);
            c.args(&command[1..]);
            c
        }
        Place::Remote { id, ip } => {
            if ip.is_empty() {
                return Err(ToolError::negative(format!(
                    "machine {id} has no address in its record: its agent's --public-ip is not set"
                )));
            }
            ssh_command(ssh, ip, command, interactive)
        }
    };
    let status = cmd.status().map_err(|e| ToolError::negative(format!("cannot run {}: {e}", command[0])))?;
    let exit = Exit::from_status(status);
    if let (Place::Remote { id, ip }, Exit(255)) = (place, exit) {
        // ssh's own failure (it said why on stderr): name the machine.
        return Err(ToolError::with_code(255, format!("ssh to machine {id} at {ip} failed")));
    }
    Ok(exit)
}

/// The ssh command line for `command` at `ip`, from the options.
fn ssh_command(ssh: &SshArgs, ip: &str, command: &[&str], interactive: bool) -> Command {
    let mut args: Vec<OsString> = Vec::new();
    let mut opt = |o: String| {
        args.push("-o".into());
        args.push(o.into());
    };
    opt(format!("ConnectTimeout={}", ssh.ssh_timeout.as_secs().max(1)));
    opt(format!("StrictHostKeyChecking={}", if ssh.strict_host_key_checking { "yes" } else { "no" }));
    if let Some(file) = &ssh.known_hosts_file {
        opt(format!("UserKnownHostsFile={}", file.display()));
    }
    let mut cmd = Command::new("ssh");
    cmd.args(args);
    cmd.args(["-p", &ssh.ssh_port.to_string()]);
    if let Some(jump) = &ssh.tunnel {
        cmd.args(["-J", jump]);
    }
    if ssh.forward_agent {
        cmd.arg("-A");
    }
    if interactive && command.is_empty() {
        cmd.arg("-t");
    }
    let host = match &ssh.ssh_username {
        Some(user) => format!("{user}@{ip}"),
        None => ip.to_owned(),
    };
    cmd.arg(host);
    if !command.is_empty() {
        cmd.arg("--");
        // The remote side joins the words and hands them to a shell: quote
        // what clusterctl itself passes (unit names may hold `\`).
        if interactive {
            cmd.args(command);
        } else {
            cmd.args(command.iter().map(|w| quote(w)));
        }
    }
    cmd
}

/// `word` as one word for a POSIX shell.
fn quote(word: &str) -> String {
    if !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.@:/=".contains(&b)) {
        return word.to_owned();
    }
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> SshArgs {
        SshArgs {
            ssh_username: Some("core".into()),
            ssh_port: 2222,
            tunnel: Some("bastion.example".into()),
            known_hosts_file: Some("/tmp/kh".into()),
            strict_host_key_checking: false,
            forward_agent: true,
            ssh_timeout: std::time::Duration::from_secs(7),
        }
    }

    #[test]
    fn the_ssh_line_carries_every_option_and_quotes_what_needs_it() {
        let cmd = ssh_command(&args(), "10.0.0.5", &["systemctl", "status", r"a\x2db@1.service"], false);
        let line: Vec<String> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            line.join(" "),
            r"-o ConnectTimeout=7 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/tmp/kh -p 2222 -J bastion.example -A core@10.0.0.5 -- systemctl status 'a\x2db@1.service'"
        );
    }

    #[test]
    fn quoting_survives_a_shell() {
        for w in ["plain", "it's", r"back\slash", "sp ace", "$HOME", ""] {
            let out = Command::new("sh").arg("-c").arg(format!("printf %s {}", quote(w))).output().unwrap();
            assert_eq!(String::from_utf8_lossy(&out.stdout), w);
        }
    }

    #[test]
    fn an_interactive_shell_gets_a_terminal() {
        let cmd = ssh_command(&args(), "10.0.0.5", &[], true);
        assert!(cmd.get_args().any(|a| a == "-t"));
    }
}
