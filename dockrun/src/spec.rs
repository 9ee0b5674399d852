//! Turns docker-run-style flags into the engine's container config.
//!
//! This is where `-p`, `-e`, `--env-file`, `-v`, `--label` and the health
//! flags get docker's meaning. It does no I/O except reading env files, and
//! takes the environment as a function, so every rule is tested inline.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig, PortBinding};

use crate::cli::Cli;

/// A flag value the engine would reject or misread; the message names the flag.
#[derive(Debug, PartialEq, Eq)]
pub struct BadFlag(pub String);

/// The container config for `cli`, reading env files and `-e KEY` values
/// through `lookup_env`.
///
/// # Errors
/// A malformed `-p`, `-e`, `--label` or env file.
pub fn container_config(
    cli: &Cli,
    image: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<ContainerCreateBody, BadFlag> {
    let mut env = Vec::new();
    for file in &cli.env_file {
        env.extend(read_env_file(file, lookup_env)?);
    }
    for item in &cli.env {
        env.extend(env_item(item, lookup_env).map_err(|m| BadFlag(format!("-e {item:?}: {m}")))?);
    }

    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for spec in &cli.publish {
        for (port, binding) in parse_publish(spec).map_err(|m| BadFlag(format!("-p {spec:?}: {m}")))? {
            if !exposed.contains(&port) {
                exposed.push(port.clone());
            }
            bindings
                .entry(port)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(binding);
        }
    }

    let mut labels = HashMap::new();
    for item in &cli.label {
        let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
        if k.is_empty() {
            return Err(BadFlag(format!("--label {item:?}: a label needs a key (KEY=VALUE)")));
        }
        labels.insert(k.to_owned(), v.to_owned());
    }

    let (binds, volumes): (Vec<String>, Vec<String>) =
        cli.volume.iter().cloned().partition(|v| v.contains(':'));

    let healthcheck = cli.health_cmd.as_ref().map(|cmd| HealthConfig {
        test: Some(vec!["CMD-SHELL".to_owned(), cmd.clone()]),
        interval: cli.health_interval.map(nanos),
        timeout: cli.health_timeout.map(nanos),
        retries: cli.health_retries.map(i64::from),
        start_period: cli.health_start_period.map(nanos),
        start_interval: None,
    });

    let host_config = HostConfig {
        binds: non_empty(binds),
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        publish_all_ports: cli.publish_all.then_some(true),
        network_mode: cli.network.clone(),
        memory: cli.memory,
        nano_cpus: cli.cpus,
        init: cli.init.then_some(true),
        ..HostConfig::default()
    };

    Ok(ContainerCreateBody {
        image: Some(image.to_owned()),
        cmd: non_empty(cli.container_command().to_vec()),
        entrypoint: cli.entrypoint.as_ref().map(|e| if e.is_empty() { Vec::new() } else { vec![e.clone()] }),
        env: non_empty(env),
        labels: (!labels.is_empty()).then_some(labels),
        user: cli.user.clone(),
        working_dir: cli.workdir.clone(),
        exposed_ports: non_empty(exposed),
        volumes: non_empty(volumes),
        stop_signal: cli.stop_signal.clone(),
        stop_timeout: cli.stop_timeout.map(i64::from),
        healthcheck,
        attach_stdin: Some(false),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        open_stdin: Some(false),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    })
}

fn non_empty(v: Vec<String>) -> Option<Vec<String>> {
    (!v.is_empty()).then_some(v)
}

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// `KEY=VALUE` as is; `KEY` copies dockrun's own value, or is left out when unset (as docker does).
fn env_item(item: &str, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, String> {
    let key = item.split_once('=').map_or(item, |(k, _)| k);
    if key.is_empty() {
        return Err("a variable needs a name (KEY=VALUE)".to_owned());
    }
    if key.chars().any(char::is_whitespace) {
        return Err(format!("variable name {key:?} contains whitespace"));
    }
    if item.contains('=') {
        return Ok(Some(item.to_owned()));
    }
    Ok(lookup_env(key).map(|v| format!("{key}={v}")))
}

/// docker's env-file format: one `KEY=VALUE` or `KEY` per line, `#` comments,
/// blank lines skipped, values taken verbatim (no quotes, no expansion).
fn read_env_file(path: &Path, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, BadFlag> {
    let text =
        std::fs::read_to_string(path).map_err(|e| BadFlag(format!("--env-file {}: {e}", path.display())))?;
    parse_env_file(&text, lookup_env).map_err(|(line, m)| BadFlag(format!("{}:{line}: {m}", path.display())))
}

fn parse_env_file(
    text: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, (usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(v) = env_item(line, lookup_env).map_err(|m| (n + 1, m))? {
            out.push(v);
        }
    }
    Ok(out)
}

/// `[IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]` into the engine's port keys
/// (`80/tcp`) and the host side of each binding. Either port may be a range
/// (`8000-8009:80-89`): ranges of the same length pair up port by port; a
/// host range with one container port lets the engine pick a free host
/// port in it, as `docker run` does.
fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>, String> {
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, p)) => (a, p),
        None => (spec, "tcp"),
    };
    if !matches!(proto, "tcp" | "udp" | "sctp") {
        return Err(format!("unknown protocol {proto:?}: use tcp, udp or sctp"));
    }
    // An IPv6 host address comes in brackets: [::1]:8080:80.
    let (ip, rest) = if let Some(stripped) = addr.strip_prefix('[') {
        let (ip, rest) = stripped.split_once("]:").ok_or("unclosed [ in the IPv6 address")?;
        (Some(ip), rest)
    } else {
        (None, addr)
    };
    let parts: Vec<&str> = rest.split(':').collect();
    let (ip, host, container) = match (ip, parts.as_slice()) {
        (None, [c]) => (None, "", *c),
        (None, [h, c]) => (None, *h, *c),
        (None, [i, h, c]) => (Some(*i), *h, *c),
        (Some(i), [h, c]) => (Some(i), *h, *c),
        _ => return Err("expected [IP:][HOST_PORT:]CONTAINER_PORT[/PROTO]".to_owned()),
    };
    let (first, last) = port_range(container, "container port")?;
    let hosts = if host.is_empty() { None } else { Some(port_range(host, "host port")?) };
    let host_ip = ip.filter(|i| !i.is_empty()).map(str::to_owned);
    if let Some((h1, h2)) = hosts {
        if first != last && h2 - h1 != last - first {
            return Err(format!(
                "host ports {host} and container ports {container} are ranges of different lengths; \
                 give ranges of the same length, or one container port"
            ));
        }
    }
    let bindings = (first..=last).map(|port| {
        let host_port = match hosts {
            None => String::new(),
            // One container port, a host range: the engine picks in the range.
            Some((h1, h2)) if first == last && h1 != h2 => format!("{h1}-{h2}"),
            // Paired port by port; h1 + (port - first) is at most h2.
            Some((h1, _)) => (h1 + (port - first)).to_string(),
        };
        (format!("{port}/{proto}"), PortBinding { host_ip: host_ip.clone(), host_port: Some(host_port) })
    });
    Ok(bindings.collect())
}

/// `80` or `8000-8009`: the first and last port.
fn port_range(text: &str, what: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{what} {p:?} is not a port number (1-65535)")),
    };
    match text.split_once('-') {
        None => port(text).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(format!("{what} range {text:?} ends before it starts"));
            }
            Ok((a, b))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn publish_forms() {
        let all = |s| {
            parse_publish(s).map(|v| {
                v.into_iter()
                    .map(|(k, b)| (k, b.host_ip, b.host_port.unwrap_or_default()))
                    .collect::<Vec<_>>()
            })
        };
        let p = |s| all(s).map(|mut v| v.remove(0));
        assert_eq!(p("80"), Ok(("80/tcp".into(), None, String::new())));
        assert_eq!(p("8080:80"), Ok(("80/tcp".into(), None, "8080".into())));
        assert_eq!(
            p("127.0.0.1:8080:80/udp"),
            Ok(("80/udp".into(), Some("127.0.0.1".into()), "8080".into()))
        );
        assert_eq!(p("127.0.0.1::80"), Ok(("80/tcp".into(), Some("127.0.0.1".into()), String::new())));
        assert_eq!(p("[::1]:8080:80"), Ok(("80/tcp".into(), Some("::1".into()), "8080".into())));
        assert_eq!(
            all("127.0.0.1:8000-8001:80-81/udp"),
            Ok(vec![
                ("80/udp".into(), Some("127.0.0.1".into()), "8000".into()),
                ("81/udp".into(), Some("127.0.0.1".into()), "8001".into())
            ])
        );
        assert_eq!(all("8000-8009:80"), Ok(vec![("80/tcp".into(), None, "8000-8009".into())]));
        assert_eq!(all("80-81").map(|v| v.len()), Ok(2));
        assert!(all("8000-8002:80-81").unwrap_err().contains("different lengths"));
        assert!(all("90-80").unwrap_err().contains("ends before it starts"));
        assert!(all("80-").is_err());
        assert!(p("http").is_err());
        assert!(p("80/icmp").is_err());
        assert!(p("1:2:3:4").is_err());
    }

    #[test]
    fn env_items_copy_or_drop_unset_keys() {
        let env = |k: &str| (k == "HOME").then(|| "/root".to_owned());
        assert_eq!(env_item("A=b=c", &env), Ok(Some("A=b=c".into())));
        assert_eq!(env_item("HOME", &env), Ok(Some("HOME=/root".into())));
        assert_eq!(env_item("UNSET", &env), Ok(None));
        assert!(env_item("=x", &env).is_err());
        assert!(env_item("A B=1", &env).is_err());
    }

    #[test]
    fn env_files_skip_comments_and_keep_values_verbatim() {
        let text = "# comment\n\nA=1\n  B=\"two words\"\nC\n";
        assert_eq!(parse_env_file(text, &no_env), Ok(vec!["A=1".into(), "B=\"two words\"".into()]));
        assert_eq!(parse_env_file("ok=1\nbad key=2\n", &no_env).map_err(|e| e.0), Err(2));
    }

    #[test]
    fn config_carries_every_flag() {
        let cli = Cli::try_parse_from([
            "dockrun",
            "--name",
            "n",
            "-p",
            "8080:80",
            "-p",
            "8081:80",
            "-e",
            "A=1",
            "-v",
            "/data",
            "-v",
            "/tmp:/tmp:ro",
            "-l",
            "k=v",
            "--init",
            "--memory",
            "64m",
            "--cpus",
            "0.5",
            "--stop-timeout",
            "3",
            "--stop-signal",
            "SIGQUIT",
            "--health-cmd",
            "true",
            "--health-interval",
            "100ms",
            "--entrypoint",
            "",
            "img",
            "sh",
            "-c",
            "x",
        ])
        .expect("parses");
        let c = container_config(&cli, "img:latest", &no_env).expect("valid");
        let h = c.host_config.clone().unwrap_or_default();
        assert_eq!(c.image.as_deref(), Some("img:latest"));
        assert_eq!(c.cmd, Some(vec!["sh".into(), "-c".into(), "x".into()]));
        assert_eq!(c.entrypoint, Some(vec![]));
        assert_eq!(c.exposed_ports, Some(vec!["80/tcp".into()]));
        assert_eq!(
            h.port_bindings.and_then(|b| b.get("80/tcp").cloned().flatten()).map(|v| v.len()),
            Some(2)
        );
        assert_eq!(h.binds, Some(vec!["/tmp:/tmp:ro".into()]));
        assert_eq!(c.volumes, Some(vec!["/data".into()]));
        assert_eq!(h.memory, Some(64 << 20));
        assert_eq!(h.nano_cpus, Some(500_000_000));
        assert_eq!(h.init, Some(true));
        assert_eq!(c.stop_timeout, Some(3));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        let hc = c.healthcheck.unwrap_or_default();
        assert_eq!(hc.test, Some(vec!["CMD-SHELL".into(), "true".into()]));
        assert_eq!(hc.interval, Some(100_000_000));
        assert_eq!(c.labels.and_then(|l| l.get("k").cloned()).as_deref(), Some("v"));
    }
}
