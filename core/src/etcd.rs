//! How announce and clusterctl reach etcd.
//!
//! The options carry etcdctl's names and `ETCDCTL_*` variables so an
//! operator's environment works unchanged. Everything a user can get wrong
//! (an endpoint that is not host:port or a URL, an unreadable certificate, a
//! user without a password) is rejected by [`EtcdArgs::options`] before any
//! connection is tried.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use crate::duration::parse_duration;

/// The etcd connection flags shared by announce and clusterctl.
#[derive(Debug, Clone, Args)]
pub struct EtcdArgs {
    /// etcd endpoints, comma separated (host:port or http(s)://host:port)
    #[arg(
        long,
        env = "ETCDCTL_ENDPOINTS",
        value_delimiter = ',',
        default_value = "127.0.0.1:2379",
        value_name = "LIST"
    )]
    pub endpoints: Vec<String>,

    /// CA certificate (PEM) to verify etcd's server certificate
    #[arg(long, env = "ETCDCTL_CACERT", value_name = "FILE")]
    pub cacert: Option<PathBuf>,

    /// client certificate (PEM) for TLS client authentication
    #[arg(long, env = "ETCDCTL_CERT", value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,

    /// client private key (PEM) for TLS client authentication
    #[arg(long, env = "ETCDCTL_KEY", value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,

    /// user and password for etcd authentication
    #[arg(long, env = "ETCDCTL_USER", value_name = "NAME:PASSWORD")]
    pub user: Option<String>,

    /// give up connecting to an endpoint after this long (e.g. 2s, 500ms, 1m30s; a bare number is
    /// seconds)
    #[arg(long, env = "ETCDCTL_DIAL_TIMEOUT", default_value = "2s", value_parser = parse_duration, value_name = "DURATION")]
    pub dial_timeout: Duration,

    /// give up on a single request after this long (e.g. 5s, 1m30s; a bare number is seconds)
    #[arg(long, env = "ETCDCTL_COMMAND_TIMEOUT", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub command_timeout: Duration,
}

impl EtcdArgs {
    /// Checks every option and returns the endpoints and connect options.
    ///
    /// # Errors
    /// A message naming the bad option and what to give instead.
    pub fn options(&self) -> Result<(Vec<String>, ConnectOptions), String> {
        let tls = self.cacert.is_some() || self.cert.is_some();
        let mut endpoints = Vec::new();
        for e in &self.endpoints {
            endpoints.push(check_endpoint(e.trim(), tls)?);
        }
        if endpoints.is_empty() {
            return Err("--endpoints is empty: give host:port, e.g. 127.0.0.1:2379".into());
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(self.dial_timeout)
            .with_timeout(self.command_timeout)
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(3));
        if let Some(user) = &self.user {
            let Some((name, password)) = user.split_once(':') else {
                return Err(format!("--user '{user}': give NAME:PASSWORD"));
            };
            if name.is_empty() {
                return Err("--user: the user name is empty; give NAME:PASSWORD".into());
            }
            opts = opts.with_user(name, password);
        }
        if tls {
            let mut t = TlsOptions::new();
            if let Some(ca) = &self.cacert {
                t = t.ca_certificate(Certificate::from_pem(read_pem(ca, "--cacert")?));
            }
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                t = t.identity(Identity::from_pem(read_pem(cert, "--cert")?, read_pem(key, "--key")?));
            }
            opts = opts.with_tls(t);
        }
        Ok((endpoints, opts))
    }

    /// Connects to etcd with these options.
    ///
    /// # Errors
    /// Bad options (see [`EtcdArgs::options`]) or a failed connection, as a
    /// message that names the endpoints.
    pub async fn connect(&self) -> Result<Client, String> {
        let (endpoints, opts) = self.options()?;
        Client::connect(&endpoints, Some(opts))
            .await
            .map_err(|e| format!("cannot reach etcd at {}: {e}", endpoints.join(",")))
    }
}

fn read_pem(path: &PathBuf, flag: &str) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(format!("{flag} {}: not a PEM file (no '-----BEGIN' line)", path.display()));
    }
    Ok(bytes)
}

/// Accepts `host:port`, `http://host:port` or `https://host:port`.
fn check_endpoint(e: &str, tls: bool) -> Result<String, String> {
    let bad = || format!("endpoint '{e}' is not host:port or http(s)://host:port (e.g. 127.0.0.1:2379)");
    let rest = e.strip_prefix("http://").or_else(|| e.strip_prefix("https://")).unwrap_or(e);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
    if host.is_empty() || host.contains('/') || port.parse::<u16>().map_or(true, |p| p == 0) {
        return Err(bad());
    }
    if e.starts_with("http://") && tls {
        return Err(format!(
            "endpoint '{e}' is http:// but TLS options are given: use https:// or host:port"
        ));
    }
    Ok(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        assert!(check_endpoint("127.0.0.1:2379", false).is_ok());
        assert!(check_endpoint("http://127.0.0.1:2379", false).is_ok());
        assert!(check_endpoint("https://etcd.example:2379", true).is_ok());
        assert!(check_endpoint("[::1]:2379", false).is_ok());
        for bad in ["127.0.0.1", ":2379", "host:0", "host:port", "http://a/b:1", ""] {
            assert!(check_endpoint(bad, false).is_err(), "{bad}");
        }
        assert!(check_endpoint("http://127.0.0.1:2379", true).is_err());
    }
}
