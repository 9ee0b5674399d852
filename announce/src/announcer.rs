//! The announce loop: one lease, one key, kept alive until told to stop.
//!
//! This is where announce keeps its promises. It reaches etcd through one
//! client from core's [`EtcdArgs::connect_with`]: that client talks to every
//! member that answers and follows members that die and come back, and
//! every request goes through core's `retrying`, so a dead member or a
//! leader election costs a retry, not the lease. A *session* makes sure the
//! lease exists (keeps the old one when etcd
//! still has it, grants a new one when it expired), makes sure the key is on
//! it with a transaction that never touches a key another lease holds
//! (unless `--force`), then renews the lease every TTL/3 on one keep-alive
//! stream, and watches the key, until something happens. The loop around
//! sessions reacts to what happened: a key deleted by someone else is put
//! back; a stream cut by a dying member is opened again (on a live member)
//! after a capped, jittered backoff; a request etcd refuses for what it is
//! (too large, wrong credentials, no permission) ends announce, as no retry
//! can fix it; an expired lease is replaced at once; a failing health check
//! revokes the lease (withdrawing the key) and a passing one announces again;
//! a shutdown signal revokes the lease so the key is gone at once.
//!
//! Everything runs on one current-thread runtime; a session is a future that
//! the loop drops when a signal or a health change wins the race, so no state
//! is shared across tasks except the health verdict's watch channel.

use std::time::Duration;

use etcd_client::{
    Client, Compare, CompareOp, EventType, KeyValue, PutOptions, Txn, TxnOp, TxnOpResponse, WatchOptions,
    WatchStream,
};
use fleetkit_core::etcd::{describe, kind_of, retrying, EtcdArgs, EtcdError, Retry, TRANSIENT_WINDOW};
use fleetkit_core::exit::Kind;
use fleetkit_core::log::{Level, Log};
use fleetkit_core::notify::Notifier;
use fleetkit_core::signals::{Received, Shutdown};
use fleetkit_core::{Exit, ToolError};
use tokio::sync::watch;
use tokio::time::{sleep_until, timeout, Instant};

use crate::backoff::Backoff;
use crate::check::Health;
use crate::cli::Config;
use crate::error::{shown, Error};

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
    /// etcd is unavailable (down, no leader, timeout, a stream cut): what
    /// happened, in etcd's words.
    Lost(String),
    /// etcd no longer has our lease: it expired while we were away.
    LeaseGone,
    /// Another lease holds the key (0: a key with no lease), as of etcd
    /// revision `revision`.
    Conflict {
        owner: i64,
        revision: i64,
    },
    /// Someone else deleted or overwrote the key while we held it.
    KeyChanged(String),
    /// etcd refused a request for what it is: retrying cannot help.
    Fatal(Error),
}

/// What the put transaction found.
enum Put {
    /// The key is on our lease now (it was absent, or we took it over), as
    /// of etcd revision `revision`.
    Done { took_from: Option<i64>, revision: i64 },
    /// The key was already ours at `revision`.
    AlreadyOurs { revision: i64 },
    /// Another lease holds it, as of `revision`.
    HeldBy { owner: i64, revision: i64 },
}

/// The announce loop's state.
pub struct Announcer {
    etcd: EtcdArgs,
    /// The endpoints as given, for messages.
    at: String,
    command_timeout: Duration,
    key: String,
    /// The key as messages show it (control bytes escaped).
    shown: String,
    value: Vec<u8>,
    ttl: i64,
    force: bool,
    /// Made once and kept: it follows the live members itself.
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
        let at = cfg.etcd.endpoints.iter().map(|e| shown(e.trim())).collect::<Vec<_>>().join(",");
        Self {
            etcd: cfg.etcd.clone(),
            at,
            command_timeout: cfg.command_timeout,
            key: cfg.key.clone(),
            shown: shown(&cfg.key),
            value: cfg.value.clone(),
            ttl: cfg.ttl,
            force: cfg.force,
            client: None,
            lease: None,
            state: State::Starting,
            ready_sent: false,
            notify,
            log,
        }
    }

    /// Runs until a shutdown signal (exit 0, lease revoked) or a request
    /// etcd refuses for what it is (exit 2).
    ///
    /// # Errors
    /// etcd refused the credentials, the permissions or the request.
    pub async fn run(
        mut self,
        mut shutdown: Shutdown,
        mut health: Option<watch::Receiver<Option<Health>>>,
    ) -> Result<Exit, ToolError> {
        let mut backoff = Backoff::default();
        let mut delay = Duration::ZERO;
        // While another lease holds the key: a watch on it.
        let mut freed: Option<WatchStream> = None;
        loop {
            if !delay.is_zero() {
                tokio::select! {
                    sig = shutdown.recv() => return Ok(self.stop(sig).await),
                    () = health_changed(&mut health) => {}
                    () = tokio::time::sleep(delay) => {}
                    () = key_changed(&mut freed) => {}
                }
            }
            freed = None;
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
                Outcome::Conflict { owner, revision } => {
                    backoff.reset();
                    self.conflict(owner);
                    // Again when the key changes (its holder's lease ended,
                    // say), or after a while in any case.
                    delay = self.renew_interval().max(Duration::from_secs(1));
                    freed = self.watch_key(revision + 1).await;
                }
                Outcome::Fatal(err) => {
                    self.notify.status(&format!("failed: {err}"));
                    self.abandon().await;
                    return Err(ToolError::from_error(&err));
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
    /// etcd unavailable (exit 75), the request refused (exit 2), or the key
    /// held by another lease (exit 1).
    pub async fn once(mut self) -> Result<i64, Error> {
        // A member whose leader just died holds a request until it times
        // out; the next try goes to a member that has a leader again.
        let deadline = Instant::now() + self.command_timeout + TRANSIENT_WINDOW;
        let put = loop {
            let id = match self.lease {
                Some(id) => Ok(id),
                None => self.grant().await,
            };
            let put = match id {
                Ok(id) => self.put(id).await.map(|p| (id, p)),
                Err(o) => Err(o),
            };
            match put {
                Err(Outcome::Lost(_)) if self.client.is_some() && Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => break other,
            }
        };
        match put {
            Ok((id, Put::Done { took_from, .. })) => {
                if let Some(owner) = took_from {
                    self.log
                        .line(Level::Notice, &format!("took {} over from {}", self.shown, owner_text(owner)));
                }
                Ok(id)
            }
            Ok((id, Put::AlreadyOurs { .. })) => Ok(id),
            Ok((_, Put::HeldBy { owner, .. })) => {
                self.abandon().await;
                Err(Error::Held { key: self.shown.clone(), owner: owner_text(owner) })
            }
            Err(o) => {
                self.abandon().await;
                Err(match o {
                    Outcome::Fatal(e) => e,
                    Outcome::Lost(reason) => {
                        Error::Unavailable { key: self.shown.clone(), at: self.at.clone(), reason }
                    }
                    // grant and put end only as above; say something true anyway.
                    _ => Error::Unavailable {
                        key: self.shown.clone(),
                        at: self.at.clone(),
                        reason: "the key changed while it was being put; try again".into(),
                    },
                })
            }
        }
    }

    /// Revokes a lease that holds nothing we want (best effort, briefly).
    async fn abandon(&mut self) {
        if let (Some(id), Some(client)) = (self.lease.take(), self.client.clone()) {
            let mut client = client;
            let _ = timeout(self.command_timeout, client.lease_revoke(id)).await;
        }
    }

    /// One session; ends only with a reason.
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
            Ok(Put::HeldBy { owner, revision }) => {
                // Our lease holds nothing now; do not leave it to expire.
                self.abandon().await;
                return Outcome::Conflict { owner, revision };
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
        let key = self.key.clone();
        let opts = WatchOptions::new().with_start_revision(revision + 1);
        let watch = match self
            .request(Retry::Read, "watching the key", |mut c| {
                let (key, opts) = (key.clone(), opts.clone());
                async move { c.watch(key, Some(opts)).await }
            })
            .await
        {
            Ok(w) => w,
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
                    Err(e) => return self.failed("renewing the lease", e),
                },
                w = watch.message() => match w {
                    Ok(Some(r)) => {
                        if r.canceled() {
                            return Outcome::Lost(format!(
                                "etcd cancelled the watch on the key: {}",
                                shown(r.cancel_reason())
                            ));
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
                    Err(e) => return self.failed("watching the key", e),
                },
                () = sleep_until(answer_deadline), if waiting.is_some() => {
                    return Outcome::Lost(format!(
                        "no keep-alive answer within {answer_within:?} (check that etcd runs and that \
                         --endpoints or ETCDCTL_ENDPOINTS names it)"
                    ));
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
        let how = match self.revoke(id).await {
            Ok(()) => "lease revoked".to_string(),
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
        match self.revoke(id).await {
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

    /// Revokes lease `id` (a lease already gone is fine: so is its key).
    /// A member whose leader just died holds a request until it times out,
    /// so each try gets a second and the revoke (which does no harm sent
    /// twice) is sent again until a new leader takes it, for at most the
    /// command timeout plus an election.
    async fn revoke(&mut self, id: i64) -> Result<(), Error> {
        let Some(client) = self.client.clone() else {
            return Err(Error::NoAnswer(format!("never reached etcd at {}", self.at)));
        };
        let budget = self.command_timeout + TRANSIENT_WINDOW;
        let deadline = Instant::now() + budget;
        let each = self.command_timeout.min(Duration::from_secs(1));
        let what = || format!("revoking lease {id:x} at {}", self.at);
        loop {
            let mut c = client.clone();
            let last = match timeout(each, c.lease_revoke(id)).await {
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if describe(&e).contains("lease not found") => return Ok(()),
                Ok(Err(e)) if kind_of(&e) != Kind::Unavailable => {
                    return Err(EtcdError::new(what(), e).into())
                }
                Ok(Err(e)) => EtcdError::new(what(), e).into(),
                Err(_) => Error::NoAnswer(self.no_answer(each)),
            };
            if Instant::now() + Duration::from_millis(100) >= deadline {
                return Err(last);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn grant(&mut self) -> Result<i64, Outcome> {
        let ttl = self.ttl;
        // A grant sent twice leaves a spare lease behind: sent again only
        // when etcd surely did not take it.
        let resp = self
            .request(Retry::Write, "granting a lease", |mut c| async move { c.lease_grant(ttl, None).await })
            .await?;
        self.lease = Some(resp.id());
        Ok(resp.id())
    }

    async fn open_keep_alive(
        &mut self,
        id: i64,
    ) -> Result<(etcd_client::LeaseKeeper, etcd_client::LeaseKeepAliveStream), Outcome> {
        self.request(Retry::Read, "renewing the lease", |mut c| async move { c.lease_keep_alive(id).await })
            .await
    }

    /// Puts the key on lease `id` only if it is absent or already ours (or
    /// with `--force`, whoever holds it), in transactions. Each is guarded
    /// by a compare, so one that etcd applied but whose answer was lost
    /// finds the key ours when it is sent again: retried as a read.
    async fn put(&mut self, id: i64) -> Result<Put, Outcome> {
        let key = self.key.clone();
        let value = self.value.clone();
        let force = self.force;
        let put = || TxnOp::put(key.clone(), value.clone(), Some(PutOptions::new().with_lease(id)));
        for _ in 0..5 {
            let txn = Txn::new()
                .when([Compare::create_revision(key.clone(), CompareOp::Equal, 0)])
                .and_then([put()])
                .or_else([TxnOp::get(key.clone(), None)]);
            let resp = self.txn(txn).await?;
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
                return Ok(Put::HeldBy { owner, revision });
            };
            let resp = self.txn(Txn::new().when([guard]).and_then([put()])).await?;
            if resp.succeeded() {
                let revision = resp.header().map_or(revision, etcd_client::ResponseHeader::revision);
                return Ok(Put::Done { took_from: (owner != id).then_some(owner), revision });
            }
        }
        Err(Outcome::Lost(format!("{} kept changing under us; trying again", self.shown)))
    }

    async fn txn(&mut self, txn: Txn) -> Result<etcd_client::TxnResponse, Outcome> {
        let what = format!("putting {}", self.shown);
        self.request(Retry::Read, &what, |mut c| {
            let txn = txn.clone();
            async move { c.txn(txn).await }
        })
        .await
    }

    /// Sends `op` on the client (connecting first when needed), again while
    /// etcd is briefly unavailable (core's `retrying`); what etcd refuses
    /// for the request itself ends announce.
    async fn request<T, F, Fut>(&mut self, retry: Retry, what: &str, op: F) -> Result<T, Outcome>
    where
        F: Fn(Client) -> Fut,
        Fut: std::future::Future<Output = Result<T, etcd_client::Error>>,
    {
        let client = self.client().await?;
        // Each try has the command timeout (the client's own); this bounds
        // the whole run of them.
        let limit = TRANSIENT_WINDOW + self.command_timeout;
        match timeout(limit, retrying(retry, || op(client.clone()))).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failed(what, e)),
            Err(_) => Err(Outcome::Lost(self.no_answer(limit))),
        }
    }

    /// A failed request as an outcome: unavailability is waited out, a
    /// refusal ends announce with etcd's words, the endpoints and the fix.
    fn failed(&self, what: &str, err: etcd_client::Error) -> Outcome {
        if matches!(&err, etcd_client::Error::LeaseKeepAliveError(e) if e.contains("not found")) {
            return Outcome::LeaseGone;
        }
        if kind_of(&err) == Kind::Unavailable {
            Outcome::Lost(describe(&err))
        } else {
            Outcome::Fatal(Error::Etcd(EtcdError::new(format!("{what} at {}", self.at), err)))
        }
    }

    fn no_answer(&self, t: Duration) -> String {
        format!(
            "etcd at {} did not answer within {t:?} (check that etcd runs and that --endpoints or \
             ETCDCTL_ENDPOINTS names it)",
            self.at
        )
    }

    /// The client, connecting when there is none yet: one for the whole
    /// run, following the live members (core's mechanism).
    async fn client(&mut self) -> Result<Client, Outcome> {
        if let Some(c) = &self.client {
            return Ok(c.clone());
        }
        // A member cut off from its leader fails requests at once instead of
        // hanging, so the request is sent again, on another member.
        match self.etcd.connect_with(|o| o.with_require_leader(true)).await {
            Ok(c) => {
                self.client = Some(c.clone());
                Ok(c)
            }
            Err(e) if e.exit() == Exit::UNAVAILABLE => Err(Outcome::Lost(e.to_string())),
            Err(e) => Err(Outcome::Fatal(Error::Connect { message: e.to_string(), kind: Kind::Usage })),
        }
    }

    /// A watch on the key from `revision`; none when etcd will not give one
    /// (the caller then waits its delay out).
    async fn watch_key(&mut self, revision: i64) -> Option<WatchStream> {
        let key = self.key.clone();
        let opts = WatchOptions::new().with_start_revision(revision);
        self.request(Retry::Read, "watching the key", |mut c| {
            let (key, opts) = (key.clone(), opts.clone());
            async move { c.watch(key, Some(opts)).await }
        })
        .await
        .ok()
    }

    fn renew_interval(&self) -> Duration {
        Duration::from_millis(u64::try_from(self.ttl).unwrap_or(60).saturating_mul(1000) / 3)
    }

    fn announced(&mut self, id: i64, kept_lease: bool, took_from: Option<i64>) {
        let key = self.shown.clone();
        let at = self.at.clone();
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
        if self.state != State::Lost {
            let fate = if self.lease.is_some() {
                format!("{} stays until its lease expires ({}s)", self.shown, self.ttl)
            } else {
                format!("{} is not announced", self.shown)
            };
            self.enter(
                State::Lost,
                Level::Warning,
                &format!("lost etcd at {}: {err}; retrying; {fate}", self.at),
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

/// Waits until the watched key changes (or the watch ends); never, without
/// a watch.
async fn key_changed(watch: &mut Option<WatchStream>) {
    match watch {
        Some(w) => loop {
            match w.message().await {
                Ok(Some(r)) if r.events().is_empty() && !r.canceled() => {}
                _ => return,
            }
        },
        None => std::future::pending().await,
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
