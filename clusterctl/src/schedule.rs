//! The scheduler: one round (`schedule`, cron-friendly) or a loop that
//! leads by etcd election and reacts to changes (`schedule --watch`).
//!
//! A round reads the cluster at one revision, runs the placement rules with
//! the current assignments (so nothing moves without a reason), and writes
//! only the difference: removals first, then additions, so a unit that moves
//! is never seen on two machines. Every write is a transaction that holds
//! only while the writer's election key exists: a scheduler that lost its
//! lease (killed, partitioned, paused) can write nothing, and two schedulers
//! never place one unit twice. Any number may run; followers block in the
//! election and take over when the leader's lease ends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use etcd_client::{Client, Compare, EventType, TxnOp, WatchOptions};
use fleetkit_core::exit::Kind;
use fleetkit_core::log::{Level, Log};
use fleetkit_core::notify::Notifier;
use fleetkit_core::signals::Shutdown;
use fleetkit_core::{Exit, ToolError};
use tokio::sync::oneshot;
use tokio::time::{sleep, sleep_until, Instant};

use crate::cluster::{etcd_err, leader_guard, Assignment, Cluster, Want};
use crate::error::Error;
use crate::keys::Dir;
use crate::placement;

/// What a round reads of a unit record: what the rules read, and the hash
/// that each `assign/` key it writes holds; not the text, which at 100,000
/// units is most of the bytes and nothing the rules look at. (list's
/// `UnitSummary` reads even less: parsing whole constraints there made
/// `list-unit-files` about a quarter slower.)
type Planned = place::Unit<String>;

/// What one round did.
#[derive(Debug, Default)]
pub struct Round {
    /// The revision the round read.
    pub revision: i64,
    pub assigned: usize,
    pub removed: usize,
    /// Units that could not be placed, with place's reason.
    pub unplaceable: BTreeMap<String, String>,
    /// False when the leadership guard failed: nothing more was written.
    pub held: bool,
    /// Keys the round could not use (each names the key and the fix).
    pub unreadable: Vec<String>,
}

/// Reads the cluster, plans, and writes the difference under `guard`.
///
/// # Errors
/// etcd's error, or a unit whose rules contradict each other.
pub async fn round(cluster: &Cluster, guard: &[Compare]) -> Result<Round, Error> {
    let mut snap = cluster
        .snapshot_of::<Planned>(Want {
            units: true,
            desired: true,
            machines: true,
            assign: true,
            states: false,
        })
        .await?;
    let all = std::mem::take(&mut snap.units);
    let input = placement::input(&snap, all.into_values(), &BTreeSet::new());
    let plan = input.plan()?;

    let hashes: BTreeMap<&str, &str> =
        input.units.iter().map(|u| (u.name.as_str(), u.hash.as_str())).collect();
    let mut target: BTreeMap<(String, String), String> = BTreeMap::new();
    let mut out = Round {
        revision: snap.revision,
        held: true,
        unreadable: std::mem::take(&mut snap.unreadable),
        ..Round::default()
    };
    for p in plan {
        match p.machine {
            Some(m) => {
                let hash = hashes.get(p.unit.as_str()).copied().unwrap_or_default().to_owned();
                let assignment = Assignment { hash, state: snap.desired_of(&p.unit) };
                target.insert((m, p.unit), assignment.to_json());
            }
            None => {
                out.unplaceable.insert(p.unit, p.reason.unwrap_or_default());
            }
        }
    }
    let mut removals = Vec::new();
    for key in snap.assign.keys() {
        // A unit whose record or desired value cannot be read keeps what it has.
        if !target.contains_key(key) && !snap.as_is.contains(&key.1) {
            removals.push(TxnOp::delete(cluster.keys.assign(&key.0, &key.1), None));
        }
    }
    let mut additions = Vec::new();
    // A value that differs (another hash, another state, or an earlier
    // fleetkit's bare hash) is rewritten.
    for (key, value) in &target {
        if snap.assign.get(key) != Some(value) && !snap.as_is.contains(&key.1) {
            additions.push(TxnOp::put(cluster.keys.assign(&key.0, &key.1), value.as_str(), None));
        }
    }
    out.removed = removals.len();
    out.assigned = additions.len();
    if !removals.is_empty() && !cluster.write(removals, guard).await? {
        out.held = false;
        return Ok(out);
    }
    if !additions.is_empty() && !cluster.write(additions, guard).await? {
        out.held = false;
    }
    Ok(out)
}

/// Who this scheduler is, as written in its election key.
fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

fn report(r: &Round, last: &mut BTreeMap<String, String>, said: &mut Vec<String>, log: Log) {
    if r.unreadable != *said {
        for line in r.unreadable.iter().filter(|l| !said.contains(l)) {
            log.line(Level::Warning, &format!("warning: {line}"));
        }
        said.clone_from(&r.unreadable);
    }
    if r.assigned > 0 || r.removed > 0 {
        log.line(
            Level::Info,
            &format!("round at revision {}: {} assigned, {} removed", r.revision, r.assigned, r.removed),
        );
    }
    if r.unplaceable != *last {
        for (unit, reason) in &r.unplaceable {
            if last.get(unit) != Some(reason) {
                log.line(Level::Warning, &format!("cannot place {unit}: {reason}"));
            }
        }
        last.clone_from(&r.unplaceable);
    }
}

/// A lease kept alive in the background; `lost` fires when it ends.
struct Session {
    id: i64,
    lost: oneshot::Receiver<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Session {
    async fn open(client: &Client, ttl: i64) -> Result<Session, Error> {
        let mut c = client.clone();
        let id = c.lease_grant(ttl, None).await.map_err(etcd_err("granting a lease"))?.id();
        let (mut keeper, mut stream) =
            c.lease_keep_alive(id).await.map_err(etcd_err("keeping the lease alive"))?;
        let (tx, lost) = oneshot::channel();
        let every = Duration::from_millis(u64::try_from(ttl).unwrap_or(1).max(1) * 1000 / 3);
        let task = tokio::spawn(async move {
            loop {
                if keeper.keep_alive().await.is_err() {
                    break;
                }
                match stream.message().await {
                    Ok(Some(r)) if r.ttl() > 0 => {}
                    _ => break,
                }
                sleep(every).await;
            }
            let _ = tx.send(());
        });
        Ok(Session { id, lost, task })
    }

    async fn close(self, client: &Client) {
        self.task.abort();
        let _ = client.clone().lease_revoke(self.id).await;
    }
}

/// `schedule`: one round, unless a `--watch` scheduler already leads.
///
/// # Errors
/// etcd's error; exit 1 when some unit could not be placed.
pub async fn once(cluster: &Cluster, ttl: i64, out: &mut impl Write) -> Result<Exit, ToolError> {
    if let Some(leader) = cluster.scheduler_leader().await? {
        writeln!(out, "scheduler {leader} is running and acts on every change: nothing to do")?;
        return Ok(Exit::SUCCESS);
    }
    let session = Session::open(&cluster.client, ttl).await?;
    let mut election = cluster.client.election_client();
    let result = async {
        let resp = election
            .campaign(cluster.keys.election(), identity(), session.id)
            .await
            .map_err(etcd_err("campaigning in the scheduler election"))?;
        let key = resp.leader().map(|l| l.key().to_vec()).unwrap_or_default();
        round(cluster, &leader_guard(&key)).await
    }
    .await;
    session.close(&cluster.client).await;
    let r = result?;
    for line in &r.unreadable {
        Log::detect("clusterctl").line(Level::Warning, &format!("warning: {line}"));
    }
    writeln!(out, "round at revision {}: {} assigned, {} removed", r.revision, r.assigned, r.removed)?;
    out.flush()?;
    if r.unplaceable.is_empty() {
        return Ok(Exit::SUCCESS);
    }
    let lines: Vec<String> =
        r.unplaceable.iter().map(|(u, why)| format!("cannot place {u}: {why}")).collect();
    Err(ToolError::lines(Kind::Negative, lines))
}

/// `schedule --watch` tells systemd when it is in the election and whether it leads.
const NOTIFY: Notifier = Notifier::new("clusterctl");

/// How a term of leadership ended.
enum Ended {
    /// The election key or the lease is gone: campaign again.
    Lost,
    /// SIGTERM/SIGINT/SIGHUP: resign and exit.
    Shutdown,
}

/// `schedule --watch`: campaign, lead, react; follow when not leading.
///
/// `waiter` is a client without a request timeout, for the campaign call
/// that blocks for as long as another scheduler leads.
///
/// # Errors
/// Only when the signal handlers cannot be installed; etcd's errors are
/// logged and retried.
pub async fn watch(cluster: &Cluster, waiter: &Client, ttl: i64) -> Result<Exit, ToolError> {
    let mut shutdown = Shutdown::install()
        .map_err(|e| ToolError::negative(format!("cannot install signal handlers: {e}")))?;
    let log = Log::detect("clusterctl");
    let me = identity();
    let mut said_follow = false;
    loop {
        let mut session = match Session::open(&cluster.client, ttl).await {
            Ok(s) => s,
            Err(e) => {
                log.line(Level::Warning, &format!("{e}; retrying in 1s"));
                tokio::select! {
                    () = sleep(Duration::from_secs(1)) => continue,
                    _ = shutdown.recv() => return Ok(Exit::SUCCESS),
                }
            }
        };
        let name = cluster.keys.election();
        let mut election = waiter.election_client();
        // In the election: ready, as far as systemd (Type=notify) is concerned.
        NOTIFY.ready("campaigning");
        if !said_follow {
            if let Ok(Some(l)) = cluster.scheduler_leader().await {
                log.line(Level::Notice, &format!("following scheduler {l}; taking over when it ends"));
                said_follow = true;
            }
        }
        let campaign = tokio::select! {
            r = election.campaign(name.as_str(), me.as_str(), session.id) => r,
            _ = &mut session.lost => {
                log.line(Level::Warning, &format!("lease {:x} ended while campaigning; campaigning again", session.id));
                continue;
            }
            _ = shutdown.recv() => {
                session.close(&cluster.client).await;
                return Ok(Exit::SUCCESS);
            }
        };
        let key = match campaign {
            Ok(r) => r.leader().map(|l| l.key().to_vec()).unwrap_or_default(),
            Err(e) => {
                log.line(Level::Warning, &format!("campaigning: {e}; retrying in 1s"));
                session.close(&cluster.client).await;
                sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        said_follow = false;
        log.line(Level::Notice, &format!("scheduler {me} leads ({})", String::from_utf8_lossy(&key)));
        NOTIFY.status("leading");
        let ended = lead(cluster, &key, &mut session, &mut shutdown, log).await;
        match ended {
            Ended::Shutdown => {
                session.close(&cluster.client).await;
                log.line(Level::Notice, &format!("scheduler {me} resigned"));
                return Ok(Exit::SUCCESS);
            }
            Ended::Lost => {
                log.line(Level::Warning, &format!("scheduler {me} lost the lead; campaigning again"));
                session.close(&cluster.client).await;
            }
        }
    }
}

/// One term as leader: a round, then a round after every relevant change
/// (coalesced over 50 ms) and at least every 30 s.
async fn lead(
    cluster: &Cluster,
    key: &[u8],
    session: &mut Session,
    shutdown: &mut Shutdown,
    log: Log,
) -> Ended {
    const SETTLE: Duration = Duration::from_millis(50);
    const PERIOD: Duration = Duration::from_secs(30);
    let guard = leader_guard(key);
    let mut last = BTreeMap::new();
    let mut said = Vec::new();
    loop {
        let first = match round(cluster, &guard).await {
            Ok(r) if !r.held => return Ended::Lost,
            Ok(r) => {
                report(&r, &mut last, &mut said, log);
                r.revision
            }
            Err(e) => {
                log.line(Level::Warning, &format!("round failed: {e}; retrying in 1s"));
                tokio::select! {
                    () = sleep(Duration::from_secs(1)) => continue,
                    _ = &mut session.lost => return Ended::Lost,
                    _ = shutdown.recv() => return Ended::Shutdown,
                }
            }
        };
        // Watch what a round depends on, from just after what it read.
        let opts = WatchOptions::new().with_prefix().with_start_revision(first + 1);
        let mut wc = cluster.client.watch_client().max_decoding_message_size(1 << 30);
        let stream = async {
            let mut s = wc.watch(cluster.keys.dir(Dir::Units), Some(opts.clone())).await?;
            s.watch(cluster.keys.dir(Dir::Desired), Some(opts.clone())).await?;
            s.watch(cluster.keys.dir(Dir::Machines), Some(opts.clone())).await?;
            s.watch(key.to_vec(), Some(WatchOptions::new().with_start_revision(first + 1))).await?;
            Ok::<_, etcd_client::Error>(s)
        }
        .await;
        let mut stream = match stream {
            Ok(s) => s,
            Err(e) => {
                log.line(Level::Warning, &format!("watching: {e}; retrying in 1s"));
                sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let mut due: Option<Instant> = None;
        let mut periodic = Instant::now() + PERIOD;
        loop {
            let wake = due.unwrap_or(periodic);
            tokio::select! {
                msg = stream.message() => match msg {
                    Ok(Some(resp)) => {
                        if resp.canceled() {
                            break;
                        }
                        for ev in resp.events() {
                            let is_leader = ev.kv().is_some_and(|kv| kv.key() == key);
                            if is_leader && ev.event_type() == EventType::Delete {
                                return Ended::Lost;
                            }
                            if !is_leader && due.is_none() {
                                due = Some(Instant::now() + SETTLE);
                            }
                        }
                    }
                    _ => break,
                },
                () = sleep_until(wake) => {
                    due = None;
                    periodic = Instant::now() + PERIOD;
                    match round(cluster, &guard).await {
                        Ok(r) if !r.held => return Ended::Lost,
                        Ok(r) => report(&r, &mut last, &mut said, log),
                        Err(e) => log.line(Level::Warning, &format!("round failed: {e}")),
                    }
                }
                _ = &mut session.lost => return Ended::Lost,
                _ = shutdown.recv() => return Ended::Shutdown,
            }
        }
    }
}
