//! The scheduler: one round (`schedule`, cron-friendly) or a loop that
//! leads by etcd election and reacts to changes (`schedule --watch`).
//!
//! A round reads the cluster at one revision, runs the placement rules with
//! the current assignments (so nothing moves without a reason), and writes
//! only the difference: removals first, then additions, so a unit that moves
//! is never seen on two machines. A leader does that once, keeps the cluster
//! and the plan in memory, and from the revision it read takes in each watch
//! event ([`crate::react`]): a machine that goes costs what it held, any
//! other change a plan from memory; neither reads etcd again, and nothing
//! but the lease keep-alive and the watch runs while nothing changes. A lost
//! or compacted watch, or a failed write, means one full read again.
//!
//! Every write is a transaction that holds only while the writer's election
//! key exists: a scheduler that lost its lease (killed, partitioned, paused)
//! can write nothing, and two schedulers never place one unit twice. Any
//! number may run; followers block in the election and take over when the
//! leader's lease ends.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::time::Duration;

use etcd_client::{Client, Compare, EventType, TxnOp, WatchOptions, WatchResponse, WatchStream};
use fleetkit_core::exit::Kind;
use fleetkit_core::log::{Level, Log};
use fleetkit_core::notify::Notifier;
use fleetkit_core::signals::Shutdown;
use fleetkit_core::{Exit, ToolError};
use futures_util::FutureExt;
use place::Plan;
use tokio::sync::oneshot;
use tokio::time::{sleep, timeout_at, Instant};

use crate::cluster::{etcd_err, leader_guard, Change, Cluster, Want, MAX_TXN_OPS};
use crate::error::Error;
use crate::keys::Dir;
use crate::react::{self, Changes, Planned, Snap};

/// What the scheduler reads, and watches from then on.
const WANT: Want = Want { units: true, desired: true, machines: true, assign: true, states: false };
const WATCHED: [Dir; 4] = [Dir::Units, Dir::Desired, Dir::Machines, Dir::Assign];

/// What a write did.
#[derive(Debug, Default)]
struct Written {
    /// The revisions of its transactions, to tell its own watch events.
    revisions: Vec<i64>,
    assigned: usize,
    removed: usize,
}

/// Writes the net of `changes` under `guard`, removals first, then
/// additions; `None` when the guard failed (nothing more was written).
/// What goes on one machine goes in one transaction where it fits in one,
/// so a unit and its `MachineOf=` followers arrive together.
async fn write(
    cluster: &Cluster,
    guard: &[Compare],
    snap: &Snap,
    changes: &Changes,
) -> Result<Option<Written>, Error> {
    let (removals, additions) = changes.ops(snap);
    let mut w = Written { assigned: additions.len(), removed: removals.len(), ..Written::default() };
    let deletes =
        removals.iter().map(|&(m, u)| (m, TxnOp::delete(cluster.keys.assign(m, u), None))).collect();
    let puts =
        additions.iter().map(|&((m, u), v)| (m, TxnOp::put(cluster.keys.assign(m, u), v, None))).collect();
    for ops in [deletes, puts] {
        let ops: Vec<(&String, TxnOp)> = ops;
        if ops.is_empty() {
            continue;
        }
        match cluster.commit_batches(by_machine(ops), guard).await? {
            Some(revisions) => w.revisions.extend(revisions),
            None => return Ok(None),
        }
    }
    Ok(Some(w))
}

/// Transactions of at most [`MAX_TXN_OPS`] operations from `ops` (sorted by
/// machine), a machine's operations not split unless they alone are more.
fn by_machine(ops: Vec<(&String, TxnOp)>) -> Vec<Vec<TxnOp>> {
    let mut groups: Vec<Vec<TxnOp>> = Vec::new();
    let mut last: Option<&String> = None;
    for (m, op) in ops {
        match groups.last_mut() {
            Some(g) if last == Some(m) && g.len() < MAX_TXN_OPS => g.push(op),
            _ => groups.push(vec![op]),
        }
        last = Some(m);
    }
    let mut batches: Vec<Vec<TxnOp>> = Vec::new();
    for g in groups {
        match batches.last_mut() {
            Some(b) if b.len() + g.len() <= MAX_TXN_OPS => b.extend(g),
            _ => batches.push(g),
        }
    }
    batches
}

/// Who this scheduler is, as written in its election key.
fn identity() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    format!("{}:{}", host.trim(), std::process::id())
}

/// What the log has been told, so that each warning is said once, and
/// again only when it changes.
#[derive(Debug, Default)]
struct Said {
    unreadable: Vec<String>,
    unplaceable: BTreeMap<String, String>,
}

impl Said {
    fn tell(&mut self, unreadable: &[String], unplaceable: &BTreeMap<String, String>, log: Log) {
        if unreadable != self.unreadable.as_slice() {
            for line in unreadable.iter().filter(|l| !self.unreadable.contains(l)) {
                log.line(Level::Warning, &format!("warning: {line}"));
            }
            self.unreadable = unreadable.to_vec();
        }
        if *unplaceable != self.unplaceable {
            for (unit, reason) in unplaceable {
                if self.unplaceable.get(unit) != Some(reason) {
                    log.line(Level::Warning, &format!("cannot place {unit}: {reason}"));
                }
            }
            self.unplaceable.clone_from(unplaceable);
        }
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
        let mut snap = cluster.snapshot_of::<Planned>(WANT).await?;
        let input = react::input(&snap);
        let plan = Plan::new(&input.units, &input.machines, &input.current)?;
        let (mut changes, mut unplaceable) = (Changes::default(), BTreeMap::new());
        react::full(&plan, &mut snap, &mut changes, &mut unplaceable);
        let written = write(cluster, &leader_guard(&key), &snap, &changes).await?;
        Ok::<_, Error>((snap, written, unplaceable))
    }
    .await;
    session.close(&cluster.client).await;
    let (snap, written, unplaceable) = result?;
    snap.warn();
    let Some(w) = written else {
        return Err(ToolError::lines(
            Kind::Unavailable,
            ["the round's election key ended while it wrote (etcd unreachable or slow): run it again"],
        ));
    };
    writeln!(out, "round at revision {}: {} assigned, {} removed", snap.revision, w.assigned, w.removed)?;
    out.flush()?;
    if unplaceable.is_empty() {
        return Ok(Exit::SUCCESS);
    }
    let lines: Vec<String> = unplaceable.iter().map(|(u, why)| format!("cannot place {u}: {why}")).collect();
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

/// One term as leader: a full read, then [`follow`] from its revision
/// for as long as the watch holds; a full read again when it does not.
async fn lead(
    cluster: &Cluster,
    key: &[u8],
    session: &mut Session,
    shutdown: &mut Shutdown,
    log: Log,
) -> Ended {
    let guard = leader_guard(key);
    let mut said = Said::default();
    loop {
        let why = match cluster.snapshot_of::<Planned>(WANT).await {
            Ok(snap) => match follow(cluster, key, &guard, snap, session, shutdown, log, &mut said).await {
                Ok(ended) => return ended,
                Err(why) => why,
            },
            Err(e) => format!("reading the cluster: {e}"),
        };
        log.line(Level::Warning, &format!("{why}; reading the cluster again in 1s"));
        tokio::select! {
            () = sleep(Duration::from_secs(1)) => {}
            _ = &mut session.lost => return Ended::Lost,
            _ = shutdown.recv() => return Ended::Shutdown,
        }
    }
}

/// Why the leader stops following the watch.
enum Stop {
    Ended(Ended),
    /// The watch or a write failed: the cluster must be read again.
    Reread(String),
}

/// What a batch of watch events changed.
#[derive(Debug, Default)]
struct Batch {
    /// Machines that are no longer machines, in the order they went.
    gone: Vec<String>,
    /// Units stopped or started again: only their assignments change.
    restated: Vec<String>,
    /// Anything else the rules read changed: plan everything again.
    dirty: bool,
}

impl Batch {
    /// Takes in one watch response.
    fn absorb(
        &mut self,
        resp: &WatchResponse,
        snap: &mut Snap,
        prefixes: &[(Dir, String)],
        key: &[u8],
        own: &mut BTreeSet<i64>,
    ) -> Result<(), Stop> {
        if resp.canceled() || resp.compact_revision() > 0 {
            return Err(Stop::Reread(format!(
                "the watch ended ({})",
                if resp.compact_revision() > 0 { "compacted" } else { resp.cancel_reason() }
            )));
        }
        for ev in resp.events() {
            let Some(kv) = ev.kv() else { continue };
            if kv.key() == key {
                if ev.event_type() == EventType::Delete {
                    return Err(Stop::Ended(Ended::Lost));
                }
                continue;
            }
            let Some((dir, prefix)) = prefixes.iter().find(|(_, p)| kv.key().starts_with(p.as_bytes()))
            else {
                continue;
            };
            let rev = kv.mod_revision();
            snap.revision = snap.revision.max(rev);
            if *dir == Dir::Assign {
                // This leader's own writes are in memory already.
                *own = own.split_off(&rev);
                if own.contains(&rev) {
                    continue;
                }
            }
            let name = String::from_utf8_lossy(&kv.key()[prefix.len()..]).into_owned();
            let value = (ev.event_type() == EventType::Put).then(|| (kv.value(), kv.lease()));
            match snap.apply(*dir, name, value) {
                Change::None => {}
                Change::MachineGone(id) => self.gone.push(id),
                Change::State(name) => self.restated.push(name),
                Change::Other => self.dirty = true,
            }
        }
        Ok(())
    }
}

/// Leads from `snap`: plans and writes, then answers each batch of watch
/// events, from just after the revision `snap` was read at, from memory.
///
/// # Errors
/// Why the cluster must be read again.
#[allow(clippy::too_many_arguments)]
async fn follow(
    cluster: &Cluster,
    key: &[u8],
    guard: &[Compare],
    mut snap: Snap,
    session: &mut Session,
    shutdown: &mut Shutdown,
    log: Log,
    said: &mut Said,
) -> Result<Ended, String> {
    /// Other changes come in bursts (a submit of many units is many
    /// transactions): they are gathered this long before planning.
    const SETTLE: Duration = Duration::from_millis(20);
    let prefixes: Vec<(Dir, String)> = WATCHED.iter().map(|d| (*d, cluster.keys.dir(*d))).collect();
    let mut stream = watch_from(cluster, &prefixes, key, snap.revision + 1)
        .await
        .map_err(|e| format!("watching: {}", fleetkit_core::etcd::describe(&e)))?;
    let mut own = BTreeSet::new();
    let mut changes = Changes::default();
    let mut unplaceable = BTreeMap::new();
    let mut replans = 0;
    loop {
        let input = react::input(&snap);
        let mut plan = match Plan::new(&input.units, &input.machines, &input.current) {
            Ok(p) => Some(p),
            Err(e) => {
                log.line(Level::Warning, &format!("cannot plan: {e}; nothing moves until that changes"));
                None
            }
        };
        if let Some(p) = &plan {
            react::full(p, &mut snap, &mut changes, &mut unplaceable);
        }
        // A unit with a bad desired value takes its state from its
        // assignments: when those changed it, plan again (it settles at once).
        if snap.settle(&cluster.keys) && replans < 3 {
            replans += 1;
            continue;
        }
        replans = 0;
        let mut what = format!("round at revision {}", snap.revision);
        loop {
            match write(cluster, guard, &snap, &changes).await {
                Ok(Some(w)) => {
                    own.extend(w.revisions);
                    if w.assigned > 0 || w.removed > 0 {
                        log.line(
                            Level::Info,
                            &format!("{what}: {} assigned, {} removed", w.assigned, w.removed),
                        );
                    }
                }
                Ok(None) => return Ok(Ended::Lost),
                Err(e) => return Err(format!("writing: {e}")),
            }
            changes.clear();
            said.tell(&snap.unreadable, &unplaceable, log);

            let mut batch = Batch::default();
            let first = tokio::select! {
                msg = stream.message() => msg,
                _ = &mut session.lost => return Ok(Ended::Lost),
                _ = shutdown.recv() => return Ok(Ended::Shutdown),
            };
            let mut settle: Option<Instant> = None;
            let mut next = Some(first);
            while let Some(msg) = next {
                let resp = match msg {
                    Ok(Some(resp)) => resp,
                    Ok(None) => return Err("the watch ended".into()),
                    Err(e) => return Err(format!("watching: {}", fleetkit_core::etcd::describe(&e))),
                };
                match batch.absorb(&resp, &mut snap, &prefixes, key, &mut own) {
                    Ok(()) => {}
                    Err(Stop::Ended(e)) => return Ok(e),
                    Err(Stop::Reread(why)) => return Err(why),
                }
                if batch.dirty && settle.is_none() {
                    settle = Some(Instant::now() + SETTLE);
                }
                // What has come already; a burst of other changes a little longer.
                next = match settle {
                    Some(at) => timeout_at(at, stream.message()).await.ok(),
                    None => stream.message().now_or_never(),
                };
            }
            if snap.settle(&cluster.keys) || batch.dirty {
                break;
            }
            let Some(p) = plan.as_mut() else { continue };
            let gone: Vec<&str> = batch.gone.iter().map(String::as_str).collect();
            if !react::lost(p, &mut snap, &gone, &mut changes, &mut unplaceable) {
                break;
            }
            for name in &batch.restated {
                react::restate(&mut snap, name, &mut changes);
            }
            if snap.settle(&cluster.keys) {
                break;
            }
            what = match batch.gone.as_slice() {
                [] => format!("at revision {}", snap.revision),
                gone => format!("machine {} gone at revision {}", gone.join(", "), snap.revision),
            };
        }
    }
}

/// One watch stream over what the scheduler reads and its election key,
/// from `revision` on.
async fn watch_from(
    cluster: &Cluster,
    prefixes: &[(Dir, String)],
    key: &[u8],
    revision: i64,
) -> Result<WatchStream, etcd_client::Error> {
    let opts = WatchOptions::new().with_prefix().with_start_revision(revision);
    let mut wc = cluster.client.watch_client().max_decoding_message_size(1 << 30);
    let mut stream = wc.watch(key.to_vec(), Some(WatchOptions::new().with_start_revision(revision))).await?;
    for (_, prefix) in prefixes {
        stream.watch(prefix.as_str(), Some(opts.clone())).await?;
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use etcd_client::TxnOp;

    use super::*;

    #[test]
    fn a_machines_writes_share_a_transaction_unless_they_are_more_than_one_holds() {
        let (a, b, c) = ("a".to_owned(), "b".to_owned(), "c".to_owned());
        let op = || TxnOp::delete("k", None);
        let mut ops: Vec<(&String, TxnOp)> = Vec::new();
        ops.extend((0..100).map(|_| (&a, op())));
        ops.extend((0..60).map(|_| (&b, op())));
        ops.extend((0..200).map(|_| (&c, op())));
        let sizes: Vec<usize> = by_machine(ops).iter().map(Vec::len).collect();
        assert_eq!(sizes, [100, 60, 128, 72]);
    }
}
