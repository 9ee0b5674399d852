//! The verbs that change what the cluster should run: `submit`, `cat`,
//! `load`, `start`, `stop`, `unload`, `destroy`, with fleetctl's desired
//! states (submit: inactive, load: loaded, start: launched, stop: loaded,
//! unload: inactive, destroy: gone).
//!
//! Unlike fleetctl, `start` and `load` first ask the placement rules whether
//! every unit can go somewhere in the cluster as it is now, and stop at once
//! with the reason when one cannot; and while they wait for the scheduler
//! they say what they wait for, and say plainly when no scheduler runs.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, Txn, TxnOp, TxnOpResponse};
use fleetkit_core::exit::Kind;
use fleetkit_core::records::UnitRecord;
use fleetkit_core::{Exit, ToolError};

use crate::cluster::{etcd_err, Cluster, Desired, Snapshot, UnitState, Want};
use crate::{placement, table, units, BlockArgs};

/// How often a blocking verb looks at the cluster.
const POLL: Duration = Duration::from_millis(500);
/// How often a waiting verb repeats what it waits for.
const REMIND: Duration = Duration::from_secs(10);

/// `submit FILE...`: store unit files (templates too) as inactive.
///
/// # Errors
/// An unreadable file or bad name (exit 2), a name already submitted with
/// other contents (exit 1), or etcd's error.
pub async fn submit(
    cluster: &Cluster,
    files: &[std::path::PathBuf],
    out: &mut impl Write,
) -> Result<Exit, ToolError> {
    let mut records = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ToolError::usage(format!("{}: {e}", file.display())))?;
        let name = file.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        units::check_name(&name).map_err(|e| ToolError::usage(format!("{}: {e}", file.display())))?;
        units::check_runnable(&name, &text).map_err(ToolError::usage)?;
        let rec = if units::is_template(&name) {
            units::template_record(&name, &text).map_err(ToolError::usage)?
        } else {
            units::expand(&name, &text, None).map_err(ToolError::usage)?
        };
        records.push((file, rec));
    }
    let mut conflicts = Vec::new();
    for (file, rec) in records {
        let key = cluster.keys.unit(&rec.name);
        let json = serde_json::to_string(&rec).map_err(|e| ToolError::usage(e.to_string()))?;
        let txn = Txn::new()
            .when(vec![Compare::version(key.as_str(), CompareOp::Equal, 0)])
            .and_then(vec![
                TxnOp::put(key.as_str(), json, None),
                TxnOp::put(cluster.keys.desired(&rec.name), Desired::Inactive.as_str(), None),
            ])
            .or_else(vec![TxnOp::get(key.as_str(), None)]);
        let resp = cluster.txn(txn).await.map_err(etcd_err(&format!(
            "submitting {} (from {})",
            rec.name,
            file.display()
        )))?;
        if resp.succeeded() {
            writeln!(out, "Unit {} inactive", rec.name)?;
            continue;
        }
        let existing = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
            _ => None,
        });
        let same = existing
            .and_then(|v| serde_json::from_slice::<UnitRecord>(&v).ok())
            .is_some_and(|old| old.hash == rec.hash);
        if !same {
            conflicts.push(format!(
                "{} is already submitted with other contents: run 'clusterctl destroy {}' first to replace it",
                rec.name, rec.name
            ));
        }
    }
    out.flush()?;
    if conflicts.is_empty() {
        Ok(Exit::SUCCESS)
    } else {
        Err(ToolError::lines(Kind::Negative, conflicts))
    }
}

/// `cat UNIT`: the unit file as stored (an instance as it would be expanded).
///
/// # Errors
/// A unit that is not submitted (exit 2), or etcd's error.
pub async fn cat(cluster: &Cluster, name: &str, out: &mut impl Write) -> Result<Exit, ToolError> {
    let name = units::canonical(name);
    let get = |n: String| async move {
        let resp = cluster.get(cluster.keys.unit(&n), None).await.map_err(etcd_err("reading the unit"))?;
        match resp.kvs().first() {
            Some(kv) => serde_json::from_slice::<UnitRecord>(kv.value()).map(Some).map_err(|e| {
                ToolError::usage(format!(
                    "{} is not a unit record ({e}): submit it again or remove it with `clusterctl destroy {n}`",
                    cluster.keys.unit(&n)
                ))
            }),
            None => Ok(None),
        }
    };
    let rec = match get(name.clone()).await? {
        Some(r) => r,
        None => {
            let template = units::split_instance(&name).map(|(t, _)| t);
            let t = match template {
                Some(t) => get(t).await?,
                None => None,
            };
            match (t, units::split_instance(&name)) {
                (Some(t), Some((_, i))) => {
                    units::expand(&t.name, &t.text, Some(&i)).map_err(ToolError::usage)?
                }
                _ => return Err(ToolError::usage(format!("{name} is not submitted"))),
            }
        }
    };
    out.write_all(rec.text.as_bytes())?;
    if !rec.text.ends_with('\n') {
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(Exit::SUCCESS)
}

/// `load`, `start`, `stop`, `unload`: set the desired state, then wait.
///
/// # Errors
/// An unknown unit (exit 2), a unit that cannot be placed (exit 1), etcd's
/// error, or giving up after `--block-attempts`.
pub async fn set_desired(
    cluster: &Cluster,
    names: &[String],
    action: Action,
    follow: bool,
    block: &BlockArgs,
    out: &mut impl Write,
) -> Result<Exit, ToolError> {
    let snap = cluster.snapshot(Want::ALL).await?;
    snap.warn();
    let target = action.target();
    let resolved = units::resolve(names, &snap.units, follow).map_err(ToolError::usage)?;
    if action == Action::Stop {
        // As fleetctl: stopping is for what runs or may run; it never
        // creates an instance nor places an inactive unit.
        let idle: Vec<String> = resolved
            .names
            .iter()
            .filter(|n| resolved.created.contains_key(*n) || !snap.desired_of(n).wants_machine())
            .map(|n| format!("{n} is not loaded: nothing to stop (start or load it first)"))
            .collect();
        if !idle.is_empty() {
            return Err(ToolError::lines(Kind::Usage, idle));
        }
    }
    if target.wants_machine() {
        let problems = unplaceable(&snap, &resolved.names, &resolved.created)?;
        if !problems.is_empty() {
            // All or nothing: say so, lest the others be taken for started.
            return Err(ToolError::negative(format!(
                "{}\nnothing was {}: leave the units above out, or make room for them",
                problems.join("\n"),
                action.done()
            )));
        }
    } else if let Some(name) = resolved.created.keys().next() {
        return Err(ToolError::usage(format!("{name} is not loaded: nothing to {}", action.verb())));
    }
    let mut ops = Vec::new();
    for rec in resolved.created.values() {
        let json = serde_json::to_string(rec).map_err(|e| ToolError::usage(e.to_string()))?;
        ops.push(TxnOp::put(cluster.keys.unit(&rec.name), json, None));
    }
    for name in &resolved.names {
        ops.push(TxnOp::put(cluster.keys.desired(name), target.as_str(), None));
    }
    cluster.write(ops, &[]).await?;
    for name in resolved.names.iter().filter(|n| resolved.created.contains_key(*n)) {
        writeln!(out, "Unit {name} inactive")?;
    }
    out.flush()?;
    if block.no_block {
        for name in &resolved.names {
            if !resolved.created.contains_key(name) {
                writeln!(out, "Triggered unit {name} {}", action.verb())?;
            }
        }
        out.flush()?;
        return Ok(Exit::SUCCESS);
    }
    wait(cluster, &resolved.names, target, block.block_attempts, out).await
}

/// What `load`, `start`, `stop` and `unload` ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Load,
    Start,
    Stop,
    Unload,
}

impl Action {
    /// The desired state the verb sets.
    #[must_use]
    pub fn target(self) -> Desired {
        match self {
            Self::Load | Self::Stop => Desired::Loaded,
            Self::Start => Desired::Launched,
            Self::Unload => Desired::Inactive,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Self::Load => "load",
            Self::Start => "start",
            Self::Stop => "stop",
            Self::Unload => "unload",
        }
    }

    fn done(self) -> &'static str {
        match self {
            Self::Load => "loaded",
            Self::Start => "started",
            Self::Stop => "stopped",
            Self::Unload => "unloaded",
        }
    }
}

/// Runs the placement rules over the cluster as it would be with `names`
/// wanting a machine; says which of them cannot go anywhere, and why.
fn unplaceable(
    snap: &Snapshot,
    names: &[String],
    created: &BTreeMap<String, UnitRecord>,
) -> Result<Vec<String>, ToolError> {
    // Every name is either submitted or created (an instance expanded now).
    let records = snap.units.values().chain(created.values());
    let starting: BTreeSet<&str> = names.iter().map(String::as_str).collect();
    let input = placement::input(snap, records.map(place::Unit::from), &starting);
    let plan = input.plan().map_err(|e| ToolError::usage(e.to_string()))?;
    let mut problems = Vec::new();
    for name in names {
        let unplaced = plan.iter().find(|p| &p.unit == name && p.machine.is_none());
        if let Some(p) = unplaced {
            let reason = p.reason.as_deref().unwrap_or("no machine satisfies its rules");
            problems.push(format!("cannot place {name}: {reason}"));
        }
    }
    Ok(problems)
}

/// Where a unit stands against the state asked of it.
enum Progress {
    /// There: the line to print.
    Reached(String),
    Pending,
    /// Its machine says it failed (or could not run it): why, in full.
    Failed(String),
}

/// Has `name` reached `target`? On a machine with an agent (its record says
/// so), launched means active there and loaded means loaded and not running,
/// as the machine reports it, and a reported failure ends the wait; on a
/// machine that only announces itself, being placed is all there is.
fn reached(snap: &Snapshot, name: &str, target: Desired) -> Progress {
    let machines = snap.machines_of(name);
    let legend = |m: &str| table::machine_legend(m, snap.machines.get(m).map(|r| r.ip.as_str()), false);
    match target {
        Desired::Inactive if machines.is_empty() => Progress::Reached(format!("Unit {name} inactive")),
        Desired::Inactive => Progress::Pending,
        Desired::Loaded | Desired::Launched => {
            let Some(m) = machines.first().copied() else { return Progress::Pending };
            if snap.machines.get(m).is_some_and(|r| r.agent.is_some()) {
                let Some(st) = snap.states.get(&(name.to_string(), m.to_string())) else {
                    return Progress::Pending;
                };
                if let Some(why) = failure(st) {
                    return Progress::Failed(format!("{name} failed on {}: {why}", legend(m)));
                }
                let active = st.active == "active";
                if (target == Desired::Launched) != active || st.load != "loaded" {
                    return Progress::Pending;
                }
            }
            Progress::Reached(format!("Unit {name} {} on {}", target.as_str(), legend(m)))
        }
    }
}

/// What a machine's report says went wrong, if anything did.
fn failure(st: &UnitState) -> Option<String> {
    if let Some(e) = &st.error {
        return Some(e.clone());
    }
    if st.active == "failed" {
        let result = st.result.as_deref().unwrap_or("failed");
        let mut why = format!("systemd's result: {result}");
        if !st.journal.is_empty() {
            why.push_str("; the end of its journal:");
            for line in &st.journal {
                why.push_str("\n  ");
                why.push_str(line);
            }
        }
        return Some(why);
    }
    matches!(st.load.as_str(), "not-found" | "bad-setting" | "error" | "masked")
        .then(|| format!("systemd did not load it ({})", st.load))
}

async fn wait(
    cluster: &Cluster,
    names: &[String],
    target: Desired,
    attempts: u32,
    out: &mut impl Write,
) -> Result<Exit, ToolError> {
    let mut pending: Vec<String> = names.to_vec();
    let start = Instant::now();
    let mut next_note = start + Duration::from_secs(1);
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let want = Want { machines: true, assign: true, states: true, ..Want::default() };
        let snap = cluster.snapshot(want).await?;
        let mut still = Vec::new();
        let mut failed = Vec::new();
        for name in pending {
            match reached(&snap, &name, target) {
                Progress::Reached(line) => writeln!(out, "{line}")?,
                Progress::Pending => still.push(name),
                Progress::Failed(why) => failed.push(why),
            }
        }
        out.flush()?;
        if !failed.is_empty() {
            return Err(ToolError::lines(Kind::Negative, failed));
        }
        pending = still;
        if pending.is_empty() {
            return Ok(Exit::SUCCESS);
        }
        let what = match target {
            Desired::Inactive => "to be unloaded from its machine",
            Desired::Loaded => "to be loaded on a machine",
            Desired::Launched => "to be placed and running",
        };
        if attempts > 0 && attempt >= attempts {
            return Err(ToolError::negative(format!(
                "gave up after {attempts} attempts waiting for {} {what}",
                pending.join(", ")
            )));
        }
        if Instant::now() >= next_note {
            next_note = Instant::now() + REMIND;
            let leader = cluster.scheduler_leader().await?;
            let who = match leader {
                Some(l) => format!("scheduler {l} is leading"),
                None => format!(
                    "no scheduler is running (no key under {}/): start one with 'clusterctl schedule --watch' or run 'clusterctl schedule'",
                    cluster.keys.election()
                ),
            };
            let machines = if snap.machines.is_empty() { "; no machines are present" } else { "" };
            eprintln!(
                "clusterctl: waiting {}s for {} {what}: {who}{machines}",
                start.elapsed().as_secs(),
                pending.join(", ")
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// `destroy UNIT...`: remove the units and their desired state; the
/// scheduler then takes them off their machines.
///
/// # Errors
/// A unit that was not submitted (exit 2), or etcd's error.
pub async fn destroy(cluster: &Cluster, names: &[String], out: &mut impl Write) -> Result<Exit, ToolError> {
    let mut missing = Vec::new();
    for name in names {
        let name = units::canonical(name);
        let txn = Txn::new().and_then(vec![
            TxnOp::delete(cluster.keys.unit(&name), None),
            TxnOp::delete(cluster.keys.desired(&name), None),
        ]);
        let resp = cluster.txn(txn).await.map_err(etcd_err(&format!("destroying {name}")))?;
        let deleted: i64 = resp
            .op_responses()
            .into_iter()
            .map(|r| match r {
                TxnOpResponse::Delete(d) => d.deleted(),
                _ => 0,
            })
            .sum();
        if deleted > 0 {
            writeln!(out, "Destroyed {name}")?;
        } else {
            missing.push(name);
        }
    }
    out.flush()?;
    if missing.is_empty() {
        Ok(Exit::SUCCESS)
    } else {
        Err(ToolError::lines(Kind::Usage, missing.iter().map(|n| format!("{n} is not submitted"))))
    }
}

/// True when `path` names an existing file (so `start ./web.service` can
/// submit it first, as fleetctl did).
#[must_use]
pub fn is_file(path: &str) -> bool {
    path.contains('/') && Path::new(path).is_file()
}
