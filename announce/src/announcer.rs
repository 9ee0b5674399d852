//! The announce loop: one lease, one key, kept alive until told to stop.
//!
//! This is where announce keeps its promises. A *session* talks to one etcd
//! endpoint: it makes sure the lease exists (keeps the old one when etcd
//! still has it, grants a new one when it expired), makes sure the key is on
//! it with a transaction that never touches a key another lease holds
//! (unless `--force`), then renews the lease every TTL/3 on one keep-alive
//! stream, and watches the key, until something happens. The loop around sessions reacts to what
//! happened: a key deleted by someone else is put back; a lost endpoint moves on to the next one after a capped, jittered
//! backoff; an expired lease is replaced at once; a failing health check
//! revokes the lease (withdrawing the key) and a passing one announces again;
//! a shutdown signal revokes the lease so the key is gone at once.
//!
//! Everything runs on one current-thread runtime; a session is a future that
//! the loop drops when a signal or a health change wins the race, so no state
//! is shared across tasks except the health verdict's watch channel.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse,
    WatchOptions, WatchStream,
};
use fleetkit_core::log::{Level, Log};
use fleetkit_core::notify::Notifier;
use fleetkit_core::signals::{Received, Shutdown};
use fleetkit_core::{Exit, ToolError};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use crate::backoff::Backoff;
use crate::check::Health;
use crate::cli::Config;

/// What the key is doing, as far as the log and systemd are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Starting,
    Announced,
    Lost,
    Withdrawn,
    Conflict,
}

/// Why a session ended.
#[derive(Debug)]
enum Outcome {
    Signal(Received),
    /// The health verdict changed.
    Health,
    /// The endpoint failed (down, no leader, timeout).
    Lost(String),
    /// etcd no longer has our lease: it expired while we were away.
    LeaseGone,
    /// Another lease holds the key (0: a key with no lease).
    Conflict(i64),
    /// Someone else deleted or overwrote the key while we held it.
    KeyChanged(String),
    /// etcd refused our credentials or the key: retrying cannot help.
    Fatal(String),
}

/// What the put transaction found.
enum Put {
    /// The key is on our lease now (it was absent, or we took it over), as
    /// of etcd revision `revision`.
    Done { took_from: Option<i64>, revision: i64 },
    /// The key was already ours at `revision`.
    AlreadyOurs { revision: i64 },
    /// Another lease holds it.
    HeldBy(i64),
}

/// The announce loop's state.
pub struct Announcer {
    endpoints: Vec<String>,
    connect: ConnectOptions,
    command_timeout: Duration,
    key: String,
    /// The key as messages show it: control bytes escaped.
    shown: String,
    value: Vec<u8>,
    ttl: i64,
    force: bool,
    endpoint: usize,
    client: Option<Client>,
    lease: Option<i64>,
    state: State,
    ready_sent: bool,
    notify: Notifier,
    log: Log,
}

impl Announcer {
    /// Sets up the loop; nothing is sent to etcd yet.
    #[must_use]
    pub fn new(cfg: &Config, notify: Notifier, log: Log) -> Self {
        // Start on a random endpoint so many announcers spread over members.
        let start = usize::try_from(Backoff::random_u64() % cfg.endpoints.len().max(1) as u64).unwrap_or(0);
        Self {
            endpoints: cfg.endpoints.clone(),
            connect: cfg.connect.clone(),
            command_timeout: cfg.command_timeout,
            key: cfg.key.clone(),
            shown: fleetkit_core::diag::escaped(&cfg.key).into_owned(),
            value: cfg.value.clone(),
            ttl: cfg.ttl,
            force: cfg.force,
            endpoint: start,
            client: None,
            lease: None,
            state: State::Starting,
            ready_sent: false,
            notify,
            log,
        }
    }

    /// Runs until a shutdown signal (exit 0, lease revoked) or an error that
    /// retrying cannot fix (exit 1).
    ///
    /// # Errors
    /// etcd refused the credentials or the key.
    pub async fn run(
        mut self,
        mut shutdown: Shutdown,
        mut health: Option<watch::Receiver<Option<Health>>>,
    ) -> Result<Exit, ToolError> {
        let mut backoff = Backoff::default();
        let mut delay = Duration::ZERO;
        loop {
            if !delay.is_zero() {
                tokio::select! {
                    sig = shutdown.recv() => return Ok(self.stop(sig).await),
                    () = health_changed(&mut health) => {}
                    () = tokio::time::sleep(delay) => {}
                }
            }
            let (want, reason) = match health.as_mut().map(|h| h.borrow_and_update().clone()) {
                None => (true, String::new()),
                // No verdict yet: wait quietly for the first check.
                Some(None) => (false, String::new()),
                Some(Some(h)) => (h.up, h.reason),
            };
            let outcome = tokio::select! {
                sig = shutdown.recv() => Outcome::Signal(sig),
                () = health_changed(&mut health) => Outcome::Health,
                o = self.session(want, &reason) => o,
            };
            delay = Duration::ZERO;
            match outcome {
                Outcome::Signal(sig) => return Ok(self.stop(sig).await),
                Outcome::Health => backoff.reset(),
                Outcome::Lost(err) => {
                    self.lost(&err);
                    delay = backoff.next_delay();
                }
                Outcome::LeaseGone => {
                    if let Some(id) = self.lease.take() {
                        self.log.line(
                            Level::Warning,
                            &format!("lease {id:x} is gone (expired or revoked); granting a new one"),
                        );
                    }
                }
                Outcome::KeyChanged(what) => {
                    self.enter(State::Starting, Level::Warning, &format!("{what}; checking it again"));
                    // Two --force announcers on one key would otherwise fight
                    // as fast as etcd answers.
                    delay = Duration::from_millis(200);
                }
                Outcome::Conflict(owner) => {
                    backoff.reset();
                    self.conflict(owner);
                    delay = self.renew_interval().max(Duration::from_secs(1));
                }
                Outcome::Fatal(msg) => {
                    self.notify.status(&format!("failed: {msg}"));
                    return Err(ToolError::usage(msg));
                }
            }
            if matches!(self.state, State::Announced | State::Withdrawn) {
                backoff.reset();
            }
        }
    }

    /// Announce once: put the key on a fresh lease, print the lease ID.
    ///
    /// # Errors
    /// etcd unreachable on every endpoint, or the key held by another lease.
    pub async fn once(mut self) -> Result<i64, ToolError> {
        let mut last = String::new();
        for _ in 0..self.endpoints.len() {
            match self.once_on_endpoint().await {
                Ok(Put::Done { took_from, .. }) => {
                    if let Some(owner) = took_from {
                        self.log.line(
                            Level::Notice,
                            &format!("took {} over from {}", self.shown, owner_text(owner)),
                        );
                    }
                    return Ok(self.lease.unwrap_or_default());
                }
                Ok(Put::AlreadyOurs { .. }) => return Ok(self.lease.unwrap_or_default()),
                Ok(Put::HeldBy(owner)) => {
                    if let (Some(id), Some(client)) = (self.lease.take(), self.client.as_mut()) {
                        let _ = timeout(self.command_timeout, client.lease_revoke(id)).await;
                    }
                    return Err(ToolError::negative(format!(
                        "{} is held by {}; not overwritten (--force takes it over)",
                        self.shown,
                        owner_text(owner)
                    )));
                }
                Err(Outcome::Fatal(msg)) => return Err(ToolError::usage(msg)),
                Err(other) => {
                    last = match other {
                        Outcome::Lost(e) => e,
                        o => format!("{o:?}"),
                    };
                    self.client = None;
                    self.endpoint = (self.endpoint + 1) % self.endpoints.len();
                }
            }
        }
        Err(ToolError::unavailable(format!("cannot announce {}: {last}", self.shown)))
    }

    async fn once_on_endpoint(&mut self) -> Result<Put, Outcome> {
        let id = self.grant().await?;
        self.put(id).await
    }

    /// One session on the current endpoint; ends only with a reason.
    async fn session(&mut self, want: bool, reason: &str) -> Outcome {
        if want {
            self.hold().await
        } else {
            self.withdraw(reason).await;
            std::future::pending().await
        }
    }

    async fn hold(&mut self) -> Outcome {
        // 1. The lease: keep ours if etcd still has it, else grant one.
        let mut keep = None;
        let mut kept_lease = false;
        if let Some(id) = self.lease {
            match self.open_keep_alive(id).await {
                Ok(k) => {
                    keep = Some(k);
                    kept_lease = true;
                }
                Err(Outcome::LeaseGone) => {
                    self.log.line(
                        Level::Warning,
                        &format!("lease {id:x} is gone (expired or revoked); granting a new one"),
                    );
                    self.lease = None;
                }
                Err(o) => return o,
            }
        }
        let id = match self.lease {
            Some(id) => id,
            None => match self.grant().await {
                Ok(id) => id,
                Err(o) => return o,
            },
        };
        // 2. The key, on our lease, unless someone else holds it.
        let (took_from, revision) = match self.put(id).await {
            Ok(Put::Done { took_from, revision }) => (took_from, revision),
            Ok(Put::AlreadyOurs { revision }) => (None, revision),
            Ok(Put::HeldBy(owner)) => {
                // Our lease holds nothing now; do not leave it to expire.
                self.lease = None;
                let t = self.command_timeout;
                if let Ok(client) = self.client().await {
                    let _ = timeout(t, client.lease_revoke(id)).await;
                }
                return Outcome::Conflict(owner);
            }
            Err(o) => return o,
        };
        let (keeper, stream) = match keep {
            Some(k) => k,
            None => match self.open_keep_alive(id).await {
                Ok(k) => k,
                Err(o) => return o,
            },
        };
        // 3. Watch the key from just after our put, so a delete or an
        //    overwrite by someone else is noticed at once.
        let t = self.command_timeout;
        let key = self.key.clone();
        let watch = match self.client().await {
            Ok(client) => {
                let opts = WatchOptions::new().with_start_revision(revision + 1);
                match timeout(t, client.watch(key, Some(opts))).await {
                    Ok(Ok(w)) => w,
                    Ok(Err(e)) => return classify(&e),
                    Err(_) => return timed_out(t),
                }
            }
            Err(o) => return o,
        };
        self.announced(id, kept_lease, took_from);
        // 4. Renew every TTL/3 until something happens.
        self.keep_alive(id, keeper, stream, watch).await
    }

    async fn keep_alive(
        &mut self,
        id: i64,
        mut keeper: etcd_client::LeaseKeeper,
        mut stream: etcd_client::LeaseKeepAliveStream,
        mut watch: WatchStream,
    ) -> Outcome {
        let interval = self.renew_interval();
        let answer_within = self.command_timeout.min(interval.max(Duration::from_secs(1)));
        let mut next = Instant::now() + interval;
        let mut waiting: Option<Instant> = None;
        loop {
            let answer_deadline = waiting.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                () = sleep_until(next) => {
                    if keeper.keep_alive().await.is_err() {
                        return Outcome::Lost("the keep-alive stream closed".into());
                    }
                    waiting.get_or_insert(Instant::now() + answer_within);
                    next += interval;
                }
                msg = stream.message() => match msg {
                    Ok(Some(r)) if r.ttl() > 0 => waiting = None,
                    Ok(Some(_)) => return Outcome::LeaseGone,
                    Ok(None) => return Outcome::Lost("etcd closed the keep-alive stream".into()),
                    Err(e) => return classify(&e),
                },
                w = watch.message() => match w {
                    Ok(Some(r)) => {
                        if r.canceled() {
                            return Outcome::Lost(format!("etcd cancelled the watch on the key: {}", r.cancel_reason()));
                        }
                        for ev in r.events() {
                            match (ev.event_type(), ev.kv().map(KeyValue::lease)) {
                                (EventType::Delete, _) => {
                                    return Outcome::KeyChanged(format!("{} was deleted by another client", self.shown));
                                }
                                (EventType::Put, Some(owner)) if owner != id => {
                                    return Outcome::KeyChanged(format!(
                                        "{} was overwritten by {}",
                                        self.shown,
                                        owner_text(owner)
                                    ));
                                }
                                _ => {}
                            }
                        }
                    }
                    Ok(None) => return Outcome::Lost("etcd closed the watch stream".into()),
                    Err(e) => return classify(&e),
                },
                () = sleep_until(answer_deadline), if waiting.is_some() => {
                    return Outcome::Lost(format!("no keep-alive answer within {answer_within:?}"));
                }
            }
        }
    }

    /// Revokes the lease (the key goes with it) because the check fails.
    async fn withdraw(&mut self, reason: &str) {
        let Some(id) = self.lease.take() else {
            if self.state != State::Withdrawn && !reason.is_empty() {
                self.enter(
                    State::Withdrawn,
                    Level::Notice,
                    &format!("not announcing {}: {reason}", self.shown),
                );
            }
            return;
        };
        let t = self.command_timeout;
        let revoked = match self.client().await {
            Ok(client) => timeout(t, client.lease_revoke(id)).await.map_err(|_| "timed out".to_string()),
            Err(o) => Err(format!("{o:?}")),
        };
        let how = match revoked {
            Ok(Ok(_)) => "lease revoked".to_string(),
            Ok(Err(e)) => format!("could not revoke lease {id:x} ({e}); it expires within {}s", self.ttl),
            Err(e) => format!("could not revoke lease {id:x} ({e}); it expires within {}s", self.ttl),
        };
        self.enter(State::Withdrawn, Level::Warning, &format!("withdrew {}: {reason}; {how}", self.shown));
    }

    /// On SIGTERM/SIGINT/SIGHUP: revoke, so the key is gone at once.
    async fn stop(&mut self, sig: Received) -> Exit {
        self.notify.stopping("stopping: revoking the lease");
        let name = match sig {
            Received::Term => "SIGTERM",
            Received::Int => "SIGINT",
            Received::Hup => "SIGHUP",
        };
        let Some(id) = self.lease.take() else {
            self.log.line(Level::Info, &format!("stopped on {name}; {} was not announced", self.shown));
            return Exit::SUCCESS;
        };
        let t = self.command_timeout;
        let result = match self.client().await {
            Ok(client) => match timeout(t, client.lease_revoke(id)).await {
                Ok(Ok(_)) => Ok(()),
                // Already gone: so is the key.
                Ok(Err(e)) if e.to_string().contains("lease not found") => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {t:?}")),
            },
            Err(o) => Err(format!("{o:?}")),
        };
        match result {
            Ok(()) => self.log.line(
                Level::Info,
                &format!("stopped on {name}: revoked lease {id:x}, {} removed", self.shown),
            ),
            Err(e) => self.log.line(
                Level::Warning,
                &format!(
                    "stopped on {name}; could not revoke lease {id:x} ({e}): {} expires within {}s",
                    self.shown, self.ttl
                ),
            ),
        }
        Exit::SUCCESS
    }

    async fn grant(&mut self) -> Result<i64, Outcome> {
        let ttl = self.ttl;
        let t = self.command_timeout;
        let client = self.client().await?;
        let resp = timeout(t, client.lease_grant(ttl, None))
            .await
            .map_err(|_| timed_out(t))?
            .map_err(|e| classify(&e))?;
        self.lease = Some(resp.id());
        Ok(resp.id())
    }

    async fn open_keep_alive(
        &mut self,
        id: i64,
    ) -> Result<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream), Outcome> {
        let t = self.command_timeout;
        let client = self.client().await?;
        match timeout(t, client.lease_keep_alive(id)).await {
            Err(_) => Err(timed_out(t)),
            Ok(Ok(k)) => Ok(k),
            Ok(Err(etcd_client::Error::LeaseKeepAliveError(e))) if e.contains("not found") => {
                Err(Outcome::LeaseGone)
            }
            Ok(Err(e)) => Err(classify(&e)),
        }
    }

    /// Puts the key on lease `id` only if it is absent or already ours (or
    /// with `--force`, whoever holds it), in transactions.
    async fn put(&mut self, id: i64) -> Result<Put, Outcome> {
        let t = self.command_timeout;
        let key = self.key.clone();
        let value = self.value.clone();
        let force = self.force;
        let client = self.client().await?;
        let put = || TxnOp::put(key.clone(), value.clone(), Some(PutOptions::new().with_lease(id)));
        for _ in 0..5 {
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([put()])
                .or_else([TxnOp::get(key.clone(), None)]);
            let resp =
                timeout(t, client.txn(txn)).await.map_err(|_| timed_out(t))?.map_err(|e| classify(&e))?;
            let revision = resp.header().map_or(0, etcd_client::ResponseHeader::revision);
            if resp.succeeded() {
                return Ok(Put::Done { took_from: None, revision });
            }
            let current = resp.op_responses().into_iter().find_map(|r| match r {
                TxnOpResponse::Get(g) => {
                    g.kvs().first().map(|kv| (kv.lease(), kv.value().to_vec(), kv.mod_revision()))
                }
                _ => None,
            });
            // Gone between the compare and the get: try again.
            let Some((owner, current_value, mod_revision)) = current else { continue };
            let guard = if owner == id {
                if current_value == value {
                    return Ok(Put::AlreadyOurs { revision });
                }
                Compare::lease(key.clone(), CompareOp::Equal, id)
            } else if force {
                Compare::mod_revision(key.clone(), CompareOp::Equal, mod_revision)
            } else {
                return Ok(Put::HeldBy(owner));
            };
            let txn = Txn::new().when([guard]).and_then([put()]);
            let resp =
                timeout(t, client.txn(txn)).await.map_err(|_| timed_out(t))?.map_err(|e| classify(&e))?;
            if resp.succeeded() {
                let revision = resp.header().map_or(revision, etcd_client::ResponseHeader::revision);
                return Ok(Put::Done { took_from: (owner != id).then_some(owner), revision });
            }
        }
        Err(Outcome::Lost(format!("{key} kept changing under us; trying again")))
    }

    /// The client for the current endpoint, connecting when needed.
    async fn client(&mut self) -> Result<&mut Client, Outcome> {
        if self.client.is_none() {
            let endpoint = self.endpoints[self.endpoint % self.endpoints.len()].clone();
            let t = self.command_timeout;
            let client = timeout(t, Client::connect([endpoint.as_str()], Some(self.connect.clone())))
                .await
                .map_err(|_| timed_out(t))?
                .map_err(|e| classify(&e))?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or_else(|| Outcome::Lost("no client".into()))
    }

    fn renew_interval(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.ttl).unwrap_or(60).saturating_mul(1000) / 3)
    }

    fn announced(&mut self, id: i64, kept_lease: bool, took_from: Option<i64>) {
        let key = self.key.clone();
        let at = self.endpoints[self.endpoint % self.endpoints.len()].clone();
        let message = match (self.state, kept_lease) {
            (State::Lost, true) => format!("etcd is back at {at}: {key} still announced on lease {id:x}"),
            (State::Lost, false) => format!("etcd is back at {at}: re-announced {key} on new lease {id:x}"),
            (State::Withdrawn, _) => format!("check passes: re-announced {key} on lease {id:x}"),
            (State::Conflict, _) => format!("{key} is free again: announced on lease {id:x}"),
            _ => format!("announced {key} on lease {id:x} (ttl {}s)", self.ttl),
        };
        let message = match took_from {
            Some(owner) => format!("{message}, taken over from {} (--force)", owner_text(owner)),
            None => message,
        };
        self.enter(State::Announced, Level::Notice, &message);
        if !self.ready_sent {
            self.notify.ready(&format!("announced {key}"));
            self.ready_sent = true;
        }
    }

    fn lost(&mut self, err: &str) {
        let endpoint = self.endpoints[self.endpoint % self.endpoints.len()].clone();
        self.client = None;
        self.endpoint = (self.endpoint + 1) % self.endpoints.len();
        if self.state != State::Lost {
            let fate = if self.lease.is_some() {
                format!("{} stays until its lease expires ({}s)", self.shown, self.ttl)
            } else {
                format!("{} is not announced", self.shown)
            };
            self.enter(
                State::Lost,
                Level::Warning,
                &format!("lost etcd at {endpoint}: {err}; retrying; {fate}"),
            );
        }
    }

    fn conflict(&mut self, owner: i64) {
        if self.state != State::Conflict {
            let message = format!(
                "{} is held by {}; waiting for it to go (--force takes it over)",
                self.shown,
                owner_text(owner)
            );
            self.enter(State::Conflict, Level::Warning, &message);
        }
    }

    fn enter(&mut self, state: State, level: Level, message: &str) {
        self.state = state;
        self.log.line(level, message);
        self.notify.status(message);
    }
}

/// Waits until the health verdict changes; never, without a check.
async fn health_changed(health: &mut Option<watch::Receiver<Option<Health>>>) {
    match health {
        Some(rx) => {
            if rx.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
        None => std::future::pending().await,
    }
}

fn owner_text(owner: i64) -> String {
    if owner == 0 {
        "a writer without a lease".to_string()
    } else {
        format!("lease {owner:x} of another process")
    }
}

fn timed_out(t: Duration) -> Outcome {
    Outcome::Lost(format!("no answer within {t:?}"))
}

/// What etcd refuses for the request itself (credentials, permissions,
/// a value over its size limit) ends announce: retrying cannot help.
/// Everything else is etcd being away, which announce waits out.
fn classify(e: &etcd_client::Error) -> Outcome {
    let text = fleetkit_core::etcd::describe(e);
    if text.contains("authentication is not enabled") {
        return Outcome::Fatal(format!("etcd refused: {text} (drop --user, or enable auth in etcd)"));
    }
    match fleetkit_core::etcd::kind_of(e) {
        fleetkit_core::exit::Kind::Usage => Outcome::Fatal(format!("etcd refused: {text}")),
        _ => Outcome::Lost(text),
    }
}
