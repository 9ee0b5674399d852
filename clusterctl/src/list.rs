//! The list verbs: `list-unit-files`, `list-units`, `list-machines` and
//! `list-announcements`, as fleetctl's tables or as JSON Lines.
//!
//! Each verb reads what it shows and makes one row per line; [`print`] is
//! the one routine that turns rows into a table (the columns `--fields`
//! names, each a variant of the verb's column enum) or into JSON Lines. A
//! row serialises to its JSON record, whose field names (the lowercased
//! column names) stay stable whatever the key layout becomes; what only the
//! table shows is skipped there.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use etcd_client::GetOptions;
use fleetkit_core::records::UnitRecord;
use fleetkit_core::ToolError;
use serde::{Deserialize, Serialize};

use crate::cli::ListArgs;
use crate::cluster::{etcd_err, Cluster, Snapshot, Want};
use crate::table::{self, Column};

/// One line of a list: serialised, its JSON record; cell by cell, its
/// table line.
pub trait Row: Serialize {
    type Column: Column;
    /// The text under `column`; `full` keeps machine IDs and hashes whole.
    fn cell(&self, column: Self::Column, full: bool) -> String;
}

/// Prints `rows` as `args` asks: JSON Lines (every field, full values), or
/// a table of `columns` with a header unless `--no-legend`. A list is read
/// in one go, so lines are flushed together at the end rather than one
/// write per record.
///
/// # Errors
/// A closed stdout.
pub fn print<R: Row>(
    out: &mut impl Write,
    args: &ListArgs,
    columns: &[R::Column],
    rows: impl IntoIterator<Item = R>,
) -> Result<(), ToolError> {
    if args.json {
        for row in rows {
            serde_json::to_writer(&mut *out, &row).map_err(|e| ToolError::from(std::io::Error::from(e)))?;
            out.write_all(b"\n")?;
        }
    } else {
        let mut lines = Vec::new();
        if !args.no_legend {
            lines.push(columns.iter().map(|c| c.name().to_ascii_uppercase()).collect());
        }
        lines.extend(rows.into_iter().map(|row| columns.iter().map(|c| row.cell(*c, args.full)).collect()));
        out.write_all(table::render(&lines).as_bytes())?;
    }
    out.flush()?;
    Ok(())
}

/// `--fields` of one verb, as a usage error when it names no column.
fn columns<C: Column>(args: &ListArgs) -> Result<Vec<C>, ToolError> {
    table::fields(args.fields.as_deref()).map_err(ToolError::usage)
}

/// `9c1eed6` unless `full`.
fn short_hash(hash: &str, full: bool) -> String {
    if full {
        hash.to_string()
    } else {
        hash.chars().take(7).collect()
    }
}

fn ip_of<'a, U>(snap: &'a Snapshot<U>, machine: &str) -> Option<&'a str> {
    snap.machines.get(machine).map(|m| m.ip.as_str())
}

// ------------------------------------------------------------ list-unit-files

/// The columns of `list-unit-files`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitFileColumn {
    Unit,
    Hash,
    DState,
    State,
    Target,
    Global,
    Desc,
}

impl Column for UnitFileColumn {
    const ALL: &'static [Self] =
        &[Self::Unit, Self::Hash, Self::DState, Self::State, Self::Target, Self::Global, Self::Desc];
    const DEFAULT: &'static [Self] = &[Self::Unit, Self::Hash, Self::DState, Self::State, Self::Target];
    fn name(self) -> &'static str {
        match self {
            Self::Unit => "unit",
            Self::Hash => "hash",
            Self::DState => "dstate",
            Self::State => "state",
            Self::Target => "target",
            Self::Global => "global",
            Self::Desc => "desc",
        }
    }
}

/// One line of `list-unit-files`.
#[derive(Debug, Serialize)]
pub struct UnitFileRow<'a> {
    pub unit: &'a str,
    pub hash: &'a str,
    pub dstate: &'a str,
    pub state: &'a str,
    /// The machine ID, or null (not placed, or global).
    pub target: Option<&'a str>,
    #[serde(skip)]
    pub global: bool,
    /// The target machine's IP, for the table's legend.
    #[serde(skip)]
    pub ip: Option<&'a str>,
    /// The unit file, for the table's desc column (empty when not read).
    #[serde(skip)]
    pub text: &'a str,
}

impl Row for UnitFileRow<'_> {
    type Column = UnitFileColumn;
    fn cell(&self, column: UnitFileColumn, full: bool) -> String {
        match column {
            UnitFileColumn::Unit => self.unit.to_string(),
            UnitFileColumn::Hash => short_hash(self.hash, full),
            UnitFileColumn::DState => self.dstate.to_string(),
            UnitFileColumn::State => self.state.to_string(),
            UnitFileColumn::Target if self.global => "global".to_string(),
            UnitFileColumn::Target => {
                self.target.map_or_else(|| "-".to_string(), |m| table::machine_legend(m, self.ip, full))
            }
            UnitFileColumn::Global => self.global.to_string(),
            UnitFileColumn::Desc => table::or_dash(&description(self.text)),
        }
    }
}

/// What list-unit-files needs of a unit record.
pub trait UnitInfo: crate::cluster::Record {
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

impl crate::cluster::Record for UnitSummary {}

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
    let cols = columns::<UnitFileColumn>(args)?;
    // Only the desc column needs the unit text.
    if !args.json && cols.contains(&UnitFileColumn::Desc) {
        unit_files_of::<UnitRecord>(cluster, args, &cols, out).await
    } else {
        unit_files_of::<UnitSummary>(cluster, args, &cols, out).await
    }
}

async fn unit_files_of<U: UnitInfo>(
    cluster: &Cluster,
    args: &ListArgs,
    cols: &[UnitFileColumn],
    out: &mut impl Write,
) -> Result<(), ToolError> {
    let want = Want { units: true, desired: true, machines: true, assign: true, states: true };
    let snap = cluster.snapshot_of::<U>(want).await?;
    snap.warn();
    let by_unit = snap.assignments_by_unit();
    let rows = snap.units.iter().map(|(name, rec)| {
        let machines = by_unit.get(name.as_str()).map_or(&[][..], Vec::as_slice);
        let global = rec.global();
        let target = if global { None } else { machines.first().copied() };
        UnitFileRow {
            unit: name,
            hash: rec.hash(),
            dstate: snap.desired.get(name).map_or("-", |d| d.as_str()),
            state: if global { "-" } else { current_state(&snap, name, machines) },
            target,
            global,
            ip: target.and_then(|m| ip_of(&snap, m)),
            text: rec.text(),
        }
    });
    print(out, args, cols, rows)
}

// ----------------------------------------------------------------- list-units

/// The columns of `list-units`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnitColumn {
    Unit,
    Machine,
    Active,
    Sub,
    Load,
    Hash,
}

impl Column for UnitColumn {
    const ALL: &'static [Self] =
        &[Self::Unit, Self::Machine, Self::Active, Self::Sub, Self::Load, Self::Hash];
    const DEFAULT: &'static [Self] = &[Self::Unit, Self::Machine, Self::Active, Self::Sub];
    fn name(self) -> &'static str {
        match self {
            Self::Unit => "unit",
            Self::Machine => "machine",
            Self::Active => "active",
            Self::Sub => "sub",
            Self::Load => "load",
            Self::Hash => "hash",
        }
    }
}

/// One line of `list-units`.
#[derive(Debug, Serialize)]
pub struct UnitRow<'a> {
    pub unit: &'a str,
    pub machine: &'a str,
    /// As the machine reports it; null until it does.
    pub active: Option<&'a str>,
    pub sub: Option<&'a str>,
    #[serde(skip)]
    pub load: Option<&'a str>,
    /// The hash the machine reports, else the one assigned.
    #[serde(skip)]
    pub hash: Option<&'a str>,
    /// The machine's IP, for the table's legend.
    #[serde(skip)]
    pub ip: Option<&'a str>,
}

impl Row for UnitRow<'_> {
    type Column = UnitColumn;
    fn cell(&self, column: UnitColumn, full: bool) -> String {
        match column {
            UnitColumn::Unit => self.unit.to_string(),
            UnitColumn::Machine => table::machine_legend(self.machine, self.ip, full),
            UnitColumn::Active => table::or_dash(self.active.unwrap_or_default()),
            UnitColumn::Sub => table::or_dash(self.sub.unwrap_or_default()),
            UnitColumn::Load => table::or_dash(self.load.unwrap_or_default()),
            UnitColumn::Hash => {
                self.hash.map_or_else(|| "-".to_string(), |h| table::or_dash(&short_hash(h, full)))
            }
        }
    }
}

/// `list-units`: every unit placed on a machine, with what that machine
/// reports for it.
///
/// # Errors
/// Bad `--fields`, etcd's error, or a closed stdout.
pub async fn units(cluster: &Cluster, args: &ListArgs, out: &mut impl Write) -> Result<(), ToolError> {
    let cols = columns::<UnitColumn>(args)?;
    let want = Want { units: false, desired: false, machines: true, assign: true, states: true };
    let snap = cluster.snapshot(want).await?;
    snap.warn();
    let mut pairs: BTreeSet<(&str, &str)> =
        snap.assign.keys().map(|(m, u)| (u.as_str(), m.as_str())).collect();
    pairs.extend(snap.states.keys().map(|(u, m)| (u.as_str(), m.as_str())));
    let rows = pairs.into_iter().map(|(unit, machine)| {
        let st = snap.states.get(&(unit.to_string(), machine.to_string()));
        UnitRow {
            unit,
            machine,
            active: st.map(|s| s.active.as_str()),
            sub: st.map(|s| s.sub.as_str()),
            load: st.map(|s| s.load.as_str()),
            hash: st
                .map(|s| s.hash.as_str())
                .or_else(|| snap.assign.get(&(machine.to_string(), unit.to_string())).map(String::as_str)),
            ip: ip_of(&snap, machine),
        }
    });
    print(out, args, &cols, rows)
}

// -------------------------------------------------------------- list-machines

/// The columns of `list-machines`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MachineColumn {
    Machine,
    Ip,
    Metadata,
}

impl Column for MachineColumn {
    const ALL: &'static [Self] = &[Self::Machine, Self::Ip, Self::Metadata];
    const DEFAULT: &'static [Self] = Self::ALL;
    fn name(self) -> &'static str {
        match self {
            Self::Machine => "machine",
            Self::Ip => "ip",
            Self::Metadata => "metadata",
        }
    }
}

/// One line of `list-machines`.
#[derive(Debug, Serialize)]
pub struct MachineRow<'a> {
    pub machine: &'a str,
    pub ip: &'a str,
    pub metadata: &'a BTreeMap<String, String>,
}

impl Row for MachineRow<'_> {
    type Column = MachineColumn;
    fn cell(&self, column: MachineColumn, full: bool) -> String {
        match column {
            MachineColumn::Machine => table::machine_id(self.machine, full),
            MachineColumn::Ip => table::or_dash(self.ip),
            MachineColumn::Metadata => format_metadata(self.metadata),
        }
    }
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
    let cols = columns::<MachineColumn>(args)?;
    let want = Want { machines: true, ..Want::default() };
    let snap = cluster.snapshot(want).await?;
    snap.warn();
    let rows =
        snap.machines.iter().map(|(id, m)| MachineRow { machine: id, ip: &m.ip, metadata: &m.metadata });
    print(out, args, &cols, rows)
}

// --------------------------------------------------------- list-announcements

/// The columns of `list-announcements`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnouncementColumn {
    Key,
    Value,
    Ttl,
}

impl Column for AnnouncementColumn {
    const ALL: &'static [Self] = &[Self::Key, Self::Value, Self::Ttl];
    const DEFAULT: &'static [Self] = Self::ALL;
    fn name(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Value => "value",
            Self::Ttl => "ttl",
        }
    }
}

/// One line of `list-announcements`.
#[derive(Debug, Serialize)]
pub struct AnnouncementRow<'a> {
    pub key: Cow<'a, str>,
    pub value: Cow<'a, str>,
    /// Seconds left on the key's lease; null for a key without one.
    pub ttl: Option<i64>,
}

impl Row for AnnouncementRow<'_> {
    type Column = AnnouncementColumn;
    fn cell(&self, column: AnnouncementColumn, _full: bool) -> String {
        match column {
            AnnouncementColumn::Key => self.key.to_string(),
            AnnouncementColumn::Value => table::or_dash(&self.value),
            AnnouncementColumn::Ttl => self.ttl.map_or_else(|| "-".to_string(), |t| format!("{t}s")),
        }
    }
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
    let cols = columns::<AnnouncementColumn>(args)?;
    let resp = cluster
        .get(prefix, Some(GetOptions::new().with_prefix()))
        .await
        .map_err(etcd_err(&format!("reading {prefix}")))?;
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
    let rows = resp.kvs().iter().map(|kv| AnnouncementRow {
        key: String::from_utf8_lossy(kv.key()),
        value: String::from_utf8_lossy(kv.value()),
        ttl: ttls.get(&kv.lease()).copied().flatten(),
    });
    print(out, args, &cols, rows)
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

    /// The COLUMNS line of a list verb's help names its column enum's variants.
    fn assert_help_lists<C: Column>(verb: &str) {
        let cmd = crate::command();
        let help = cmd.find_subcommand(verb).and_then(|c| c.get_after_long_help()).unwrap().to_string();
        let names: Vec<&str> = C::ALL.iter().map(|c| c.name()).collect();
        let line = format!("COLUMNS (--fields): {}.", names.join(", "));
        assert!(help.contains(&line), "{verb}: help lacks {line:?}");
    }

    #[test]
    fn help_names_every_column() {
        assert_help_lists::<UnitFileColumn>("list-unit-files");
        assert_help_lists::<UnitColumn>("list-units");
        assert_help_lists::<MachineColumn>("list-machines");
        assert_help_lists::<AnnouncementColumn>("list-announcements");
    }

    #[test]
    fn rows_fill_cells_and_records() {
        let row = UnitFileRow {
            unit: "web@1.service",
            hash: "0123456789abcdef",
            dstate: "launched",
            state: "loaded",
            target: Some("9c1eed63abcdef"),
            global: false,
            ip: Some("10.0.0.1"),
            text: "[Unit]\nDescription=Web\n",
        };
        let cells: Vec<String> = UnitFileColumn::ALL.iter().map(|c| row.cell(*c, false)).collect();
        assert_eq!(
            cells,
            ["web@1.service", "0123456", "launched", "loaded", "9c1eed63.../10.0.0.1", "false", "Web"]
        );
        assert_eq!(
            serde_json::to_string(&row).unwrap(),
            r#"{"unit":"web@1.service","hash":"0123456789abcdef","dstate":"launched","state":"loaded","target":"9c1eed63abcdef"}"#
        );
        let global = UnitFileRow { global: true, target: None, ..row };
        assert_eq!(global.cell(UnitFileColumn::Target, true), "global");
    }

    #[test]
    fn description_comes_from_the_unit_section() {
        assert_eq!(description("[Unit]\nDescription=Web app\n[Service]\nDescription=no\n"), "Web app");
        assert_eq!(description("[Service]\nExecStart=/bin/true\n"), "");
    }
}
