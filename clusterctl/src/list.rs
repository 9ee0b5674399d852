//! The list verbs: `list-unit-files`, `list-units`, `list-machines` and
//! `list-announcements`, as fleetctl's tables or as JSON Lines.
//!
//! The JSON records are separate types from the cluster's own (`Snapshot`)
//! so their field names, the lowercased column names, stay stable whatever
//! the key layout becomes.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use etcd_client::GetOptions;
use fleetkit_core::records::UnitRecord;
use fleetkit_core::ToolError;
use serde::{Deserialize, Serialize};

use crate::cluster::{etcd_err, Cluster, Snapshot, Want};
use crate::table;
use crate::ListArgs;

/// One line of `list-unit-files --json`.
#[derive(Debug, Serialize)]
pub struct UnitFileRow<'a> {
    pub unit: &'a str,
    pub hash: &'a str,
    pub dstate: &'a str,
    pub state: &'a str,
    /// The machine ID, or null (not placed, or global).
    pub target: Option<&'a str>,
}

/// One line of `list-units --json`.
#[derive(Debug, Serialize)]
pub struct UnitRow<'a> {
    pub unit: &'a str,
    pub machine: &'a str,
    /// As the machine reports it; null until it does.
    pub active: Option<&'a str>,
    pub sub: Option<&'a str>,
}

/// One line of `list-machines --json`.
#[derive(Debug, Serialize)]
pub struct MachineRow<'a> {
    pub machine: &'a str,
    pub ip: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
}

/// One line of `list-announcements --json`.
#[derive(Debug, Serialize)]
pub struct AnnouncementRow<'a> {
    pub key: &'a str,
    pub value: &'a str,
    /// Seconds left on the key's lease; null for a key without one.
    pub ttl: Option<i64>,
}

/// What list-unit-files needs of a unit record.
pub trait UnitInfo: serde::de::DeserializeOwned {
    fn hash(&self) -> &str;
    fn global(&self) -> bool;
    fn text(&self) -> &str;
}

impl UnitInfo for UnitRecord {
    fn hash(&self) -> &str {
        &self.hash
    }
    fn global(&self) -> bool {
        self.constraints.global
    }
    fn text(&self) -> &str {
        &self.text
    }
}

/// A unit record without its text: serde skips the text (and every other
/// field) without allocating it, which is most of list-unit-files' work.
#[derive(Debug, Deserialize)]
pub struct UnitSummary {
    hash: String,
    #[serde(default)]
    constraints: GlobalOnly,
}

#[derive(Debug, Default, Deserialize)]
struct GlobalOnly {
    #[serde(default)]
    global: bool,
}

impl UnitInfo for UnitSummary {
    fn hash(&self) -> &str {
        &self.hash
    }
    fn global(&self) -> bool {
        self.constraints.global
    }
    fn text(&self) -> &str {
        ""
    }
}

pub const UNIT_FILE_FIELDS: &[&str] = &["unit", "hash", "dstate", "state", "target", "global", "desc"];
pub const UNIT_FIELDS: &[&str] = &["unit", "machine", "active", "sub", "load", "hash"];
pub const MACHINE_FIELDS: &[&str] = &["machine", "ip", "metadata"];
pub const ANNOUNCEMENT_FIELDS: &[&str] = &["key", "value", "ttl"];

/// One JSON line. A list is read in one go, so lines are flushed together
/// at the end rather than one write per record.
fn json_line<T: Serialize>(out: &mut impl Write, record: &T) -> Result<(), ToolError> {
    serde_json::to_writer(&mut *out, record).map_err(|e| ToolError::from(std::io::Error::from(e)))?;
    out.write_all(b"\n")?;
    Ok(())
}

fn emit(
    out: &mut impl Write,
    args: &ListArgs,
    cols: &[String],
    rows: Vec<Vec<String>>,
) -> Result<(), ToolError> {
    let mut all = Vec::with_capacity(rows.len() + 1);
    if !args.no_legend {
        all.push(cols.iter().map(|c| c.to_ascii_uppercase()).collect());
    }
    all.extend(rows);
    out.write_all(table::render(&all).as_bytes())?;
    out.flush()?;
    Ok(())
}

fn description(text: &str) -> String {
    let mut in_unit = false;
    for line in text.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_unit = l == "[Unit]";
        } else if in_unit {
            if let Some(v) = l.strip_prefix("Description=") {
                return v.trim().to_string();
            }
        }
    }
    String::new()
}

/// What the cluster has done with a unit: inactive (no machine), loaded
/// (on a machine), launched (its machine reports it active).
fn current_state<U>(snap: &Snapshot<U>, unit: &str, machines: &[&str]) -> &'static str {
    match machines.first() {
        None => "inactive",
        Some(m) => match snap.states.get(&(unit.to_string(), (*m).to_string())) {
            Some(st) if st.active == "active" => "launched",
            _ => "loaded",
        },
    }
}

/// `list-unit-files`.
///
/// # Errors
/// Bad `--fields`, etcd's error, or a closed stdout.
pub async fn unit_files(cluster: &Cluster, args: &ListArgs, out: &mut impl Write) -> Result<(), ToolError> {
    let cols =
        table::fields(args.fields.as_deref().unwrap_or("unit,hash,dstate,state,target"), UNIT_FILE_FIELDS)
            .map_err(ToolError::usage)?;
    // Only the desc column needs the unit text.
    if !args.json && cols.iter().any(|c| c == "desc") {
        unit_files_of::<UnitRecord>(cluster, args, &cols, out).await
    } else {
        unit_files_of::<UnitSummary>(cluster, args, &cols, out).await
    }
}

async fn unit_files_of<U: UnitInfo>(
    cluster: &Cluster,
    args: &ListArgs,
    cols: &[String],
    out: &mut impl Write,
) -> Result<(), ToolError> {
    let want = Want { units: true, desired: true, machines: true, assign: true, states: true };
    let snap = cluster.snapshot_of::<U>(want).await.map_err(ToolError::negative)?;
    let by_unit = snap.assignments_by_unit();
    let mut rows = Vec::with_capacity(snap.units.len());
    for (name, rec) in &snap.units {
        let machines = by_unit.get(name.as_str()).cloned().unwrap_or_default();
        let global = rec.global();
        let dstate = snap.desired.get(name).map_or("-", |d| d.as_str());
        let state = if global { "-" } else { current_state(&snap, name, &machines) };
        let target = if global { None } else { machines.first().copied() };
        if args.json {
            let row = UnitFileRow { unit: name, hash: rec.hash(), dstate, state, target };
            json_line(out, &row)?;
            continue;
        }
        rows.push(
            cols.iter()
                .map(|c| match c.as_str() {
                    "unit" => name.clone(),
                    "hash" if args.full => rec.hash().to_string(),
                    "hash" => rec.hash().chars().take(7).collect(),
                    "dstate" => dstate.to_string(),
                    "state" => state.to_string(),
                    "global" => global.to_string(),
                    "desc" => table::or_dash(&description(rec.text())),
                    _ if global => "global".to_string(),
                    _ => target.map_or_else(|| "-".to_string(), |m| legend(&snap, m, args.full)),
                })
                .collect(),
        );
    }
    if args.json {
        out.flush()?;
    } else {
        emit(out, args, cols, rows)?;
    }
    Ok(())
}

fn legend<U>(snap: &Snapshot<U>, machine: &str, full: bool) -> String {
    let ip = snap.machines.get(machine).map(|m| m.ip.as_str());
    table::machine_legend(machine, ip, full)
}

/// `list-units`: every unit placed on a machine, with what that machine
/// reports for it.
///
/// # Errors
/// Bad `--fields`, etcd's error, or a closed stdout.
pub async fn units(cluster: &Cluster, args: &ListArgs, out: &mut impl Write) -> Result<(), ToolError> {
    let cols = table::fields(args.fields.as_deref().unwrap_or("unit,machine,active,sub"), UNIT_FIELDS)
        .map_err(ToolError::usage)?;
    let want = Want { units: false, desired: false, machines: true, assign: true, states: true };
    let snap = cluster.snapshot(want).await.map_err(ToolError::negative)?;
    let mut pairs: BTreeSet<(&str, &str)> =
        snap.assign.keys().map(|(m, u)| (u.as_str(), m.as_str())).collect();
    pairs.extend(snap.states.keys().map(|(u, m)| (u.as_str(), m.as_str())));
    let mut rows = Vec::with_capacity(pairs.len());
    for (unit, machine) in pairs {
        let st = snap.states.get(&(unit.to_string(), machine.to_string()));
        if args.json {
            let row = UnitRow {
                unit,
                machine,
                active: st.map(|s| s.active.as_str()),
                sub: st.map(|s| s.sub.as_str()),
            };
            json_line(out, &row)?;
            continue;
        }
        let hash = st
            .map(|s| s.hash.as_str())
            .or_else(|| snap.assign.get(&(machine.to_string(), unit.to_string())).map(String::as_str));
        rows.push(
            cols.iter()
                .map(|c| match c.as_str() {
                    "unit" => unit.to_string(),
                    "machine" => legend(&snap, machine, args.full),
                    "active" => table::or_dash(st.map_or("", |s| s.active.as_str())),
                    "sub" => table::or_dash(st.map_or("", |s| s.sub.as_str())),
                    "load" => table::or_dash(st.map_or("", |s| s.load.as_str())),
                    _ => match hash {
                        Some(h) if args.full => table::or_dash(h),
                        Some(h) => table::or_dash(&h.chars().take(7).collect::<String>()),
                        None => "-".to_string(),
                    },
                })
                .collect(),
        );
    }
    if args.json {
        out.flush()?;
    } else {
        emit(out, args, &cols, rows)?;
    }
    Ok(())
}

/// `k=v,k2=v2` sorted by key, as fleetctl printed metadata.
fn format_metadata(m: &BTreeMap<String, String>) -> String {
    if m.is_empty() {
        return "-".to_string();
    }
    m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// `list-machines`: the machines whose presence key is alive.
///
/// # Errors
/// Bad `--fields`, etcd's error, or a closed stdout.
pub async fn machines(cluster: &Cluster, args: &ListArgs, out: &mut impl Write) -> Result<(), ToolError> {
    let cols = table::fields(args.fields.as_deref().unwrap_or("machine,ip,metadata"), MACHINE_FIELDS)
        .map_err(ToolError::usage)?;
    let want = Want { machines: true, ..Want::default() };
    let snap = cluster.snapshot(want).await.map_err(ToolError::negative)?;
    let mut rows = Vec::new();
    for (id, m) in &snap.machines {
        if args.json {
            json_line(out, &MachineRow { machine: id, ip: &m.ip, metadata: &m.metadata })?;
            continue;
        }
        rows.push(
            cols.iter()
                .map(|c| match c.as_str() {
                    "machine" => table::machine_id(id, args.full),
                    "ip" => table::or_dash(&m.ip),
                    _ => format_metadata(&m.metadata),
                })
                .collect(),
        );
    }
    if args.json {
        out.flush()?;
    } else {
        emit(out, args, &cols, rows)?;
    }
    Ok(())
}

/// `list-announcements [PREFIX]`: what announce keeps alive, with the time
/// left on each key's lease.
///
/// # Errors
/// Bad `--fields`, etcd's error, or a closed stdout.
pub async fn announcements(
    cluster: &Cluster,
    prefix: &str,
    args: &ListArgs,
    out: &mut impl Write,
) -> Result<(), ToolError> {
    let cols = table::fields(args.fields.as_deref().unwrap_or("key,value,ttl"), ANNOUNCEMENT_FIELDS)
        .map_err(ToolError::usage)?;
    let resp = cluster
        .kv()
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .map_err(|e| ToolError::negative(etcd_err(&format!("reading {prefix}"))(e)))?;
    // One TTL request per lease, not per key.
    let mut ttls: BTreeMap<i64, Option<i64>> = BTreeMap::new();
    let mut lease = cluster.client.lease_client();
    for kv in resp.kvs() {
        let id = kv.lease();
        if id != 0 && !ttls.contains_key(&id) {
            let ttl = lease.time_to_live(id, None).await.ok().map(|r| r.ttl()).filter(|t| *t >= 0);
            ttls.insert(id, ttl);
        }
    }
    let mut rows = Vec::new();
    for kv in resp.kvs() {
        let key = String::from_utf8_lossy(kv.key());
        let value = String::from_utf8_lossy(kv.value());
        let ttl = ttls.get(&kv.lease()).copied().flatten();
        if args.json {
            json_line(out, &AnnouncementRow { key: &key, value: &value, ttl })?;
            continue;
        }
        rows.push(
            cols.iter()
                .map(|c| match c.as_str() {
                    "key" => key.to_string(),
                    "value" => table::or_dash(&value),
                    _ => ttl.map_or_else(|| "-".to_string(), |t| format!("{t}s")),
                })
                .collect(),
        );
    }
    if args.json {
        out.flush()?;
    } else {
        emit(out, args, &cols, rows)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_sorted_pairs() {
        let mut m = BTreeMap::new();
        assert_eq!(format_metadata(&m), "-");
        m.insert("region".to_string(), "eu".to_string());
        m.insert("disk".to_string(), "ssd".to_string());
        assert_eq!(format_metadata(&m), "disk=ssd,region=eu");
    }

    #[test]
    fn description_comes_from_the_unit_section() {
        assert_eq!(description("[Unit]\nDescription=Web app\n[Service]\nDescription=no\n"), "Web app");
        assert_eq!(description("[Service]\nExecStart=/bin/true\n"), "");
    }
}
