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
    /// Bad options (see [`EtcdArgs::options`], exit 2) or no member
    /// reachable (exit 75), as a message that names the endpoints.
    pub async fn connect(&self) -> Result<Client, crate::ToolError> {
        self.connect_with(|opts| opts).await
    }

    /// [`EtcdArgs::connect`] with the connect options adjusted by `adjust`
    /// (announce asks members to refuse requests while they have no leader).
    ///
    /// # Errors
    /// As [`EtcdArgs::connect`].
    pub async fn connect_with(
        &self,
        adjust: impl FnOnce(ConnectOptions) -> ConnectOptions,
    ) -> Result<Client, crate::ToolError> {
        let (endpoints, opts) = self.options().map_err(crate::ToolError::usage)?;
        let opts = adjust(opts);
        let tls = self.cacert.is_some() || self.cert.is_some();
        let urls: Vec<String> = endpoints.iter().map(|e| full_url(e, tls)).collect();
        // etcd-client spreads requests over every endpoint it was given and
        // does not move on from one that is down: a dead member fails a
        // share of every request. So the client gets the members that
        // answer, and a task keeps that set current while the client lives.
        let live = reachable(&urls, self.dial_timeout).await;
        if live.is_empty() {
            return Err(crate::ToolError::unavailable(format!(
                "cannot reach etcd at {}: no member accepts connections (dial timeout {:?}) \
                 (check that etcd runs and that --endpoints or ETCDCTL_ENDPOINTS names it)",
                endpoints.join(","),
                self.dial_timeout
            )));
        }
        let start = live.clone();
        let client = Client::connect(&start, Some(opts)).await.map_err(|e| {
            let message = format!("cannot reach etcd at {}: {}", endpoints.join(","), describe(&e));
            crate::ToolError::Message { code: kind_of(&e).exit(), message }
        })?;
        if urls.len() > 1 {
            tokio::spawn(follow_endpoints(client.clone(), urls, start, self.dial_timeout));
        }
        Ok(client)
    }
}

/// How often the set of live endpoints is checked again.
const ENDPOINT_CHECK: Duration = Duration::from_secs(1);

/// `host:port` as the URL etcd-client makes of it, so that adding and
/// removing it later names the same endpoint.
fn full_url(endpoint: &str, tls: bool) -> String {
    if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
        endpoint.trim_end_matches('/').to_owned()
    } else {
        format!("{}://{endpoint}", if tls { "https" } else { "http" })
    }
}

/// The endpoints that accept a TCP connection: all that answer by the time
/// the first has, plus a moment, or none within `timeout`.
async fn reachable(urls: &[String], timeout: Duration) -> Vec<String> {
    use futures_util::stream::{FuturesUnordered, StreamExt};
    let mut probes: FuturesUnordered<_> =
        urls.iter().map(|u| async move { (u.clone(), tcp_alive(u, timeout).await) }).collect();
    let mut live = Vec::new();
    let mut deadline = tokio::time::Instant::now() + timeout;
    while let Ok(Some((url, alive))) = tokio::time::timeout_at(deadline, probes.next()).await {
        if alive {
            if live.is_empty() {
                deadline = deadline.min(tokio::time::Instant::now() + Duration::from_millis(200));
            }
            live.push(url);
        }
    }
    // In the order given, as the user listed them.
    urls.iter().filter(|u| live.contains(u)).cloned().collect()
}

async fn tcp_alive(url: &str, timeout: Duration) -> bool {
    let hostport = url.split("://").last().unwrap_or(url).trim_end_matches('/');
    matches!(tokio::time::timeout(timeout, tokio::net::TcpStream::connect(hostport)).await, Ok(Ok(_)))
}

/// Keeps `client`'s endpoints to those of `all` that answer: a member that
/// dies is taken out within about a second, one that comes back is put back.
/// The last endpoint is never taken out (with all down there is nothing
/// better to try).
async fn follow_endpoints(client: Client, all: Vec<String>, mut current: Vec<String>, timeout: Duration) {
    let mut every = tokio::time::interval(ENDPOINT_CHECK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await; // the first tick is now: the set was just checked
    loop {
        every.tick().await;
        let live = reachable(&all, timeout.min(ENDPOINT_CHECK)).await;
        let back: Vec<String> = live.iter().filter(|u| !current.contains(u)).cloned().collect();
        for url in back {
            if client.add_endpoint(&url).await.is_ok() {
                current.push(url);
            }
        }
        for url in all.iter().filter(|u| !live.contains(u)) {
            if current.len() > 1 && current.contains(url) && client.remove_endpoint(url).await.is_ok() {
                current.retain(|c| c != url);
            }
        }
    }
}

/// An etcd request that failed: what was being done and etcd's own words
/// with what to check, never gRPC's debug dump. The kind tells "try again
/// later" (etcd unavailable) from "fix the request" (refused for its
/// content or for the credentials).
#[derive(Debug, thiserror::Error)]
#[error("etcd: {what}: {}", describe(.err))]
pub struct EtcdError {
    pub what: String,
    pub err: etcd_client::Error,
}

impl EtcdError {
    pub fn new(what: impl Into<String>, err: etcd_client::Error) -> Self {
        Self { what: what.into(), err }
    }

    /// `map_err(EtcdError::doing("reading units/"))`.
    pub fn doing(what: &str) -> impl Fn(etcd_client::Error) -> Self + '_ {
        move |err| Self::new(what, err)
    }
}

impl crate::exit::Classify for EtcdError {
    fn kind(&self) -> crate::exit::Kind {
        kind_of(&self.err)
    }
}

impl From<EtcdError> for crate::ToolError {
    fn from(e: EtcdError) -> Self {
        Self::from_error(&e)
    }
}

/// Unavailable unless etcd refused the request itself (its size, its
/// arguments, the credentials): that is the user's to fix.
#[must_use]
pub fn kind_of(err: &etcd_client::Error) -> crate::exit::Kind {
    use crate::exit::Kind;
    use tonic::Code;
    match err {
        etcd_client::Error::GRpcStatus(s) if too_large(s.message()) => Kind::Usage,
        etcd_client::Error::GRpcStatus(s) => match s.code() {
            Code::InvalidArgument
            | Code::PermissionDenied
            | Code::Unauthenticated
            | Code::FailedPrecondition
            | Code::OutOfRange
            | Code::AlreadyExists
            | Code::NotFound => Kind::Usage,
            _ => Kind::Unavailable,
        },
        etcd_client::Error::InvalidArgs(_)
        | etcd_client::Error::InvalidUri(_)
        | etcd_client::Error::InvalidMetadataValue(_)
        | etcd_client::Error::Utf8Error(_)
        | etcd_client::Error::EndpointError(_) => Kind::Usage,
        _ => Kind::Unavailable,
    }
}

/// etcd's words ("request is too large") or gRPC's ("received message
/// larger than max") for a request over the size limit.
fn too_large(message: &str) -> bool {
    message.contains("too large") || message.contains("larger than max")
}

/// etcd's message for `err` and, where it helps, what to check.
#[must_use]
pub fn describe(err: &etcd_client::Error) -> String {
    use tonic::Code;
    match err {
        etcd_client::Error::GRpcStatus(s) => {
            let msg = if s.message().is_empty() { s.code().description() } else { s.message() };
            let hint = match s.code() {
                Code::Unavailable | Code::DeadlineExceeded => {
                    " (no etcd member answered in time: check that etcd runs and that --endpoints or \
                     ETCDCTL_ENDPOINTS names it)"
                }
                // The client's own timeout (--command-timeout).
                Code::Cancelled if msg == "Timeout expired" => {
                    " (no etcd member answered within --command-timeout: check that etcd runs, has a \
                     leader, and that --endpoints or ETCDCTL_ENDPOINTS names it)"
                }
                Code::PermissionDenied | Code::Unauthenticated => {
                    " (check --user, ETCDCTL_USER or the client certificate, and the role's permissions)"
                }
                _ if too_large(msg) => {
                    " (etcd's request limit is --max-request-bytes, 1.5 MiB by default: send less, \
                     or raise the limit on every member)"
                }
                _ => "",
            };
            format!("{msg}{hint}")
        }
        etcd_client::Error::TransportError(e) => {
            // The innermost cause says it ("Connection refused"); tonic's
            // outer layers only repeat "transport error".
            let mut cause: &dyn std::error::Error = e;
            while let Some(next) = cause.source() {
                cause = next;
            }
            format!("cannot connect: {cause} (check that etcd runs and that --endpoints names it)")
        }
        other => other.to_string(),
    }
}

/// How long a request is sent again while etcd is briefly unavailable: a
/// member that dies takes its leadership with it, and the election that
/// follows takes a second or two.
pub const TRANSIENT_WINDOW: Duration = Duration::from_secs(6);

/// Whether a request may be sent again after `err`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// A read changes nothing: any unavailability ("leader changed", a
    /// member going away, no connection) is worth another try.
    Read,
    /// A write may have been applied when the answer was lost, so it is
    /// sent again only when etcd said it did not take it ("no leader") or
    /// no member could be reached at all.
    Write,
}

/// Whether `err` says etcd was unavailable for a moment, so that sending the
/// request of kind `retry` again is safe and may succeed.
#[must_use]
pub fn is_transient(err: &etcd_client::Error, retry: Retry) -> bool {
    use etcd_client::Error as E;
    match err {
        E::GRpcStatus(s) if s.code() == tonic::Code::Unavailable => {
            let m = s.message();
            retry == Retry::Read
                || m.contains("no leader")
                || m.contains("transport error")
                || m.contains("no address available")
                || m.contains("error trying to connect")
        }
        E::TransportError(_) => true,
        _ => false,
    }
}

/// Runs `op`, sending it again (after 50 ms, then up to 500 ms) while etcd
/// answers with a transient error, for at most [`TRANSIENT_WINDOW`]. What
/// etcd refuses for the request itself is returned at once.
///
/// # Errors
/// The last error, transient or not.
pub async fn retrying<T, F, Fut>(retry: Retry, mut op: F) -> Result<T, etcd_client::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
{
    let deadline = tokio::time::Instant::now() + TRANSIENT_WINDOW;
    let mut pause = Duration::from_millis(50);
    loop {
        match op().await {
            Err(e) if is_transient(&e, retry) && tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            other => return other,
        }
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

    #[test]
    fn a_request_over_grpcs_limit_is_the_users_to_fix() {
        use crate::exit::Kind;
        let status = |code, msg: &str| etcd_client::Error::GRpcStatus(tonic::Status::new(code, msg));
        let big = status(
            tonic::Code::ResourceExhausted,
            "grpc: received message larger than max (2097205 vs. 2097152)",
        );
        assert_eq!(kind_of(&big), Kind::Usage);
        assert!(describe(&big).contains("--max-request-bytes"), "{}", describe(&big));
        let busy = status(tonic::Code::ResourceExhausted, "etcdserver: too many requests");
        assert_eq!(kind_of(&busy), Kind::Unavailable);
    }
}
