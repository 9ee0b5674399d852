//! Turns docker-run-style flags into the engine's container config.
//!
//! This is where `-p`, `-e`, `--env-file`, `-v`, `--label` and the health
//! flags get docker's meaning. It does no I/O except reading env files, and
//! takes the environment as a function, so every rule is tested inline.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use bollard::models::{ContainerCreateBody, HealthConfig, HostConfig, PortBinding};

use crate::cli::Cli;
use crate::error::{shown, Error, Invalid};

/// The container config for `cli`, reading env files and `-e KEY` values
/// through `lookup_env`.
///
/// # Errors
/// [`Error::Flag`] for a malformed `-p`, `-e`, `--label` or env file, or
/// `-p` on the host network (where it would be silently dropped).
pub fn container_config(
    cli: &Cli,
    image: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<ContainerCreateBody, Error> {
    let mut env = Vec::new();
    for file in &cli.env_file {
        env.extend(read_env_file(file, lookup_env)?);
    }
    for item in &cli.env {
        env.extend(env_item(item, lookup_env).map_err(|m| Error::Flag(format!("-e {item:?}: {m}")))?);
    }

    if let (Some(spec), Some("host")) = (cli.publish.first(), cli.network.as_deref()) {
        return Err(Error::Flag(format!(
            "-p {spec:?}: published ports are discarded with --network host, and the container \
             would listen on the host's own addresses, whatever -p says: leave out -p, or use a \
             bridge network (the default) to publish only what -p asks"
        )));
    }
    let mut exposed = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for spec in &cli.publish {
        for (port, binding) in parse_publish(spec).map_err(|m| Error::Flag(format!("-p {spec:?}: {m}")))? {
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
            return Err(Error::Flag(format!("--label {item:?}: a label needs a key (KEY=VALUE)")));
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
fn env_item(item: &str, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<Option<String>, Invalid> {
    let key = item.split_once('=').map_or(item, |(k, _)| k);
    if key.is_empty() {
        return Err(Invalid("a variable needs a name (KEY=VALUE)".to_owned()));
    }
    if key.chars().any(char::is_whitespace) {
        return Err(Invalid(format!("variable name {key:?} contains whitespace")));
    }
    if item.contains('=') {
        return Ok(Some(item.to_owned()));
    }
    Ok(lookup_env(key).map(|v| format!("{key}={v}")))
}

/// docker's env-file format: one `KEY=VALUE` or `KEY` per line, `#` comments,
/// blank lines skipped, values taken verbatim (no quotes, no expansion).
fn read_env_file(path: &Path, lookup_env: &dyn Fn(&str) -> Option<String>) -> Result<Vec<String>, Error> {
    let file = shown(&path.display().to_string());
    let text = std::fs::read_to_string(path).map_err(|e| Error::Flag(format!("--env-file {file}: {e}")))?;
    parse_env_file(&text, lookup_env).map_err(|(line, m)| Error::Flag(format!("{file}:{line}: {m}")))
}

fn parse_env_file(
    text: &str,
    lookup_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, (usize, Invalid)> {
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
///
/// The IP must be an IP address: the engine publishes a binding whose
/// address it cannot parse (`localhost`, `127.0.1`) on every address, so
/// such a spec is refused, as `docker run` refuses it. An empty IP
/// (`:8080:80`, `[]:8080:80`, what `${IP}:8080:80` gives with IP unset) is
/// refused too, where docker would publish on every address.
fn parse_publish(spec: &str) -> Result<Vec<(String, PortBinding)>, Invalid> {
    let (addr, proto) = match spec.rsplit_once('/') {
        Some((a, "")) => (a, "tcp".to_owned()),
        Some((a, p)) => (a, p.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Invalid(format!("unknown protocol {proto:?}: use tcp, udp or sctp")));
    }
    let (ip, host, container) = split_publish(addr)?;
    let ip = match ip {
        None => None,
        Some(text) => Some(host_ip(text).map_err(|why| {
            let suffix = spec.strip_prefix(addr).unwrap_or_default();
            Invalid(format!(
                "{why}: give an IP address, e.g. 127.0.0.1:{host}:{container}{suffix} or \
                 [::1]:{host}:{container}{suffix}, or leave the IP out ({host}:{container}{suffix}) \
                 to publish on every address",
                host = shown(host),
                container = shown(container),
                suffix = shown(suffix),
            ))
        })?),
    };
    let (first, last) = port_range(container, "container port")?;
    let hosts = if host.is_empty() { None } else { Some(port_range(host, "host port")?) };
    if let Some((h1, h2)) = hosts {
        if first != last && h2 - h1 != last - first {
            return Err(Invalid(format!(
                "host ports {host} and container ports {container} are ranges of different lengths; \
                 give ranges of the same length, or one container port"
            )));
        }
    }
    let host_ip = ip.map(|i| i.to_string());
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

/// docker's split of `[IP:][HOST_PORT:]CONTAINER_PORT`: the last part is
/// the container port, the one before it the host port, and everything
/// before those the IP, so an IPv6 address may come bare (`::1:8080:80`)
/// or in brackets (`[::1]:8080:80`).
fn split_publish(addr: &str) -> Result<(Option<&str>, &str, &str), Invalid> {
    if let Some(rest) = addr.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return Err(Invalid("the IPv6 address has no closing ]: e.g. [::1]:8080:80".to_owned()));
        };
        let ports = &rest[close + 1..];
        let Some((host, container)) = ports.strip_prefix(':').and_then(|p| p.split_once(':')) else {
            return Err(Invalid(
                "after [IP] come HOST_PORT:CONTAINER_PORT: e.g. [::1]:8080:80, or [::1]::80 \
                 for a free host port"
                    .to_owned(),
            ));
        };
        return Ok((Some(&addr[..close + 2]), host, container));
    }
    let mut parts = addr.rsplitn(3, ':');
    let container = parts.next().unwrap_or_default();
    Ok(match (parts.next(), parts.next()) {
        (None, _) => (None, "", container),
        (Some(host), None) => (None, host, container),
        (Some(host), Some(ip)) => (Some(ip), host, container),
    })
}

/// The host address of a binding, which must be an IP address (IPv6 may be
/// in brackets); names and short forms are refused as `docker run` does.
fn host_ip(text: &str) -> Result<IpAddr, Invalid> {
    let bare = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).unwrap_or(text);
    if bare.is_empty() {
        return Err(Invalid(format!(
            "the IP address {text:?} is empty (an unset variable?), and dockrun will not \
             publish on every address for it"
        )));
    }
    bare.parse().map_err(|_| Invalid(format!("{text:?} is not an IP address (a host name is not resolved)")))
}

/// `80` or `8000-8009`: the first and last port.
fn port_range(text: &str, what: &str) -> Result<(u16, u16), Invalid> {
    let port = |p: &str| match p.parse::<u16>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(Invalid(format!("{what} {p:?} is not a port number (1-65535)"))),
    };
    match text.split_once('-') {
        None => port(text).map(|p| (p, p)),
        Some((a, b)) => {
            let (a, b) = (port(a)?, port(b)?);
            if b < a {
                return Err(Invalid(format!("{what} range {text:?} ends before it starts")));
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
        assert!(all("8000-8002:80-81").unwrap_err().0.contains("different lengths"));
        assert!(all("90-80").unwrap_err().0.contains("ends before it starts"));
        assert!(all("80-").is_err());
        assert!(p("http").is_err());
        assert!(p("80/icmp").is_err());
        assert!(p("1:2:3:4").is_err());
        assert_eq!(p("80/TCP"), Ok(("80/tcp".into(), None, String::new())));
        assert_eq!(p("80/"), Ok(("80/tcp".into(), None, String::new())));
    }

    #[test]
    fn publish_never_widens_the_address() {
        let ip = |s| parse_publish(s).map(|mut v| v.remove(0).1.host_ip);
        assert_eq!(ip("::1:8080:80"), Ok(Some("::1".into())), "bare IPv6, as docker takes it");
        assert_eq!(ip("[::1]::80"), Ok(Some("::1".into())));
        assert_eq!(ip("[0:0::1]:8080:80"), Ok(Some("::1".into())), "written the engine's way");
        assert_eq!(ip("0.0.0.0:8080:80"), Ok(Some("0.0.0.0".into())), "every address, when asked");
        for bad in [
            "localhost:18084:80",
            "127.0.1:18084:80",
            "1.2.3:18084:80",
            "01.2.3.4:1:80",
            "256.1.1.1:1:80",
            ":18084:80",
            "::80",
            "[]:18084:80",
            "[localhost]:1:80",
            "[fe80::1%eth0]:1:80",
            "127.0.0.1:8080:80:90",
        ] {
            let err = parse_publish(bad).expect_err(bad).0;
            assert!(err.contains("127.0.0.1:") && err.contains("[::1]:"), "{bad}: {err}");
        }
        for bad in ["[::1]:80", "[::1:8080:80", "[::1]8080:80"] {
            assert!(parse_publish(bad).expect_err(bad).0.contains("[::1]:8080:80"), "{bad}");
        }
        let err = parse_publish("localhost:18084:80/udp").expect_err("a name").0;
        assert!(err.contains("e.g. 127.0.0.1:18084:80/udp or [::1]:18084:80/udp"), "{err}");
    }

    #[test]
    fn ports_on_the_host_network_are_refused() {
        let cli = Cli::try_parse_from(["dockrun", "--network", "host", "-p", "127.0.0.1:80:80", "img"])
            .expect("parses");
        let err = container_config(&cli, "img", &no_env).expect_err("refused");
        assert!(err.to_string().contains("--network host"), "{err}");
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
            "nm",
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
