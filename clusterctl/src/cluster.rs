//! The cluster as clusterctl sees it in etcd: one range read per prefix, all
//! at one revision, and writes batched into transactions.
//!
//! fleet's agents issued one GET per unit per host and overloaded etcd; here
//! every reader takes each kind of key (`units/`, `desired/`, `machines/`,
//! `assign/`, `states/`) in one range request pinned to the revision of the
//! first, so the picture is consistent and costs a handful of requests
//! whatever the cluster's size. Writes go in transactions of at most
//! [`MAX_TXN_OPS`] operations (etcd's default `--max-txn-ops`), several in
//! flight at once.

use std::collections::{BTreeMap, BTreeSet};

use etcd_client::{Client, Compare, CompareOp, GetOptions, KvClient, Txn, TxnOp};
use fleetkit_core::etcd::{retrying, EtcdError, Retry};
use fleetkit_core::records::{MachineRecord, UnitRecord};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::keys::{Dir, Keys};

/// etcd's default `--max-txn-ops`.
pub const MAX_TXN_OPS: usize = 128;
/// Transactions sent at once when writing many.
const TXN_IN_FLIGHT: usize = 8;
/// Range responses for 100,000 units are far above gRPC's 4 MiB default.
const MAX_MESSAGE: usize = 1 << 30;

/// What users and the scheduler ask a unit to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Desired {
    Inactive,
    Loaded,
    Launched,
}

impl Desired {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inactive => "inactive",
            Self::Loaded => "loaded",
            Self::Launched => "launched",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "inactive" => Some(Self::Inactive),
            "loaded" => Some(Self::Loaded),
            "launched" => Some(Self::Launched),
            _ => None,
        }
    }

    /// Loaded and launched units need a machine.
    #[must_use]
    pub fn wants_machine(self) -> bool {
        self != Self::Inactive
    }
}

/// `assign/ID/NAME`: the unit placed on machine ID and what the machine is
/// to make of it, `{"hash","state"}` with state `loaded` or `launched`. The
/// desired state travels here so that a stop wakes only the unit's machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// SHA-256 of the unit text to run (`units/NAME`'s hash).
    pub hash: String,
    pub state: Desired,
}

impl Assignment {
    /// The value as stored: compact JSON, fields in this order, so that the
    /// scheduler can compare what is there with what should be.
    #[must_use]
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Parses a stored value, or says why a machine cannot act on it (an
    /// earlier fleetkit stored the bare hash; the scheduler's next round
    /// rewrites it).
    ///
    /// # Errors
    /// A message naming the value, with control bytes escaped.
    pub fn parse(value: &[u8]) -> Result<Self, String> {
        let bad = |why: String| {
            let shown = shown(value);
            format!(
                "assignment value \"{shown}\" is not {{\"hash\",\"state\":\"loaded\"|\"launched\"}} ({why}): \
                 leaving the unit as it is until the scheduler rewrites it"
            )
        };
        match serde_json::from_slice::<Self>(value) {
            Ok(a) if a.state == Desired::Inactive => Err(bad("an inactive unit has no assignment".into())),
            Ok(a) => Ok(a),
            Err(e) => Err(bad(e.to_string())),
        }
    }
}

/// What a machine reports for a unit under `states/ID/NAME`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct UnitState {
    #[serde(default)]
    pub load: String,
    #[serde(default)]
    pub active: String,
    #[serde(default)]
    pub sub: String,
    #[serde(default)]
    pub hash: String,
    /// When the unit failed: the service's Result (`exit-code` ...).
    #[serde(default)]
    pub result: Option<String>,
    /// When the unit failed: the last lines of its journal.
    #[serde(default)]
    pub journal: Vec<String>,
    /// What the machine's agent could not do for the unit.
    #[serde(default)]
    pub error: Option<String>,
}

/// A unit record as a reader takes it from `units/NAME`.
pub trait Record: DeserializeOwned {
    /// What makes a record that parsed unusable, in words that follow its
    /// key (`units/a.service has ...`): a name other than its key's, rules
    /// the placement refuses. None for readers that only show records.
    fn problem(&self, _key: &str) -> Option<String> {
        None
    }
}

/// The problems [`Record::problem`] finds in a record named `name` with
/// rules `c`, stored under `key`.
fn rules_problem(key: &str, name: &str, c: &fleetkit_core::constraints::Constraints) -> Option<String> {
    if name != key {
        return Some(format!("holds the record of another unit ({})", shown(name.as_bytes())));
    }
    c.problems().into_iter().next().map(|p| format!("has rules no plan can follow ({p})"))
}

impl Record for UnitRecord {
    fn problem(&self, key: &str) -> Option<String> {
        rules_problem(key, &self.name, &self.constraints)
    }
}

impl<H: DeserializeOwned> Record for place::Unit<H> {
    fn problem(&self, key: &str) -> Option<String> {
        rules_problem(key, &self.name, &self.constraints)
    }
}

/// One consistent read of the cluster.
#[derive(Debug, Clone)]
pub struct Snapshot<U = UnitRecord> {
    pub revision: i64,
    pub units: BTreeMap<String, U>,
    pub desired: BTreeMap<String, Desired>,
    pub machines: BTreeMap<String, MachineRecord>,
    /// (machine, unit) → hash stored in `assign/ID/NAME`.
    pub assign: BTreeMap<(String, String), String>,
    /// (unit, machine) → reported state.
    pub states: BTreeMap<(String, String), UnitState>,
    /// Keys that could not be used, each a warning that names the key and
    /// the fix: one bad key never stops the rest of the cluster.
    pub unreadable: Vec<String>,
    /// Units whose record or desired value is unreadable: their
    /// assignments are left as they are, neither moved nor removed.
    pub as_is: BTreeSet<String>,
    /// `machines/` keys that are not machines (not a record, or no lease),
    /// with why: never placed on, flagged by `list-machines`.
    pub not_machines: BTreeMap<String, String>,
    /// `units/` keys that are not usable unit records, with why.
    bad_units: BTreeMap<String, String>,
    /// `desired/` values that are none of the three states.
    bad_desired: BTreeMap<String, Vec<u8>>,
}

/// What one key's change means to the placement rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Nothing they read.
    None,
    /// A machine stopped being one (its key deleted or no longer a record
    /// on a lease): only its units need a place.
    MachineGone(String),
    /// A unit's desired state changed between loaded and launched: its
    /// assignments carry the new state, nothing moves.
    State(String),
    /// Anything else they read.
    Other,
}

/// One key read from a prefix: the part after the prefix, its value and
/// its lease (0 for none).
#[derive(Debug)]
pub struct Entry {
    pub key: String,
    pub value: Vec<u8>,
    pub lease: i64,
}

/// A value for a message: at most 80 bytes, control bytes escaped.
#[must_use]
pub fn shown(value: &[u8]) -> String {
    let cut = &value[..value.len().min(80)];
    let text = fleetkit_core::diag::escaped(&String::from_utf8_lossy(cut)).into_owned();
    if value.len() > 80 {
        format!("{text}...")
    } else {
        text
    }
}

impl<U> Default for Snapshot<U> {
    fn default() -> Self {
        Self {
            revision: 0,
            units: BTreeMap::new(),
            desired: BTreeMap::new(),
            machines: BTreeMap::new(),
            assign: BTreeMap::new(),
            states: BTreeMap::new(),
            unreadable: Vec::new(),
            as_is: BTreeSet::new(),
            not_machines: BTreeMap::new(),
            bad_units: BTreeMap::new(),
            bad_desired: BTreeMap::new(),
        }
    }
}

impl<U: Record> Snapshot<U> {
    /// Takes in one key of `dir` (the part after the directory), as read or
    /// as a watch event tells it: its value and lease, or `None` once it is
    /// deleted. The one parser of fleetkit's records: a full read and the
    /// scheduler's watch go through here, so both see a bad key alike.
    /// Call [`Snapshot::settle`] after a batch.
    pub fn apply(&mut self, dir: Dir, key: String, value: Option<(&[u8], i64)>) -> Change {
        match dir {
            Dir::Units => {
                self.bad_units.remove(&key);
                let Some((value, _)) = value else {
                    return if self.units.remove(&key).is_some() { Change::Other } else { Change::None };
                };
                let why = match serde_json::from_slice::<U>(value) {
                    Ok(_) if key.is_empty() => "has an empty name".to_owned(),
                    Ok(rec) => match rec.problem(&key) {
                        None => {
                            self.units.insert(key, rec);
                            return Change::Other;
                        }
                        Some(why) => why,
                    },
                    Err(e) => format!("is not a unit record ({e})"),
                };
                self.units.remove(&key);
                self.bad_units.insert(key, why);
                Change::Other
            }
            Dir::Desired => {
                let had = self.desired.remove(&key);
                let was_bad = self.bad_desired.remove(&key).is_some();
                let now = value
                    .map(|(v, _)| (Desired::parse(std::str::from_utf8(v).unwrap_or_default().trim()), v));
                match now {
                    Some((Some(d), _)) => {
                        self.desired.insert(key.clone(), d);
                        match had {
                            Some(old) if old == d => return Change::None,
                            Some(old) if old.wants_machine() && d.wants_machine() && !was_bad => {
                                return Change::State(key);
                            }
                            _ => {}
                        }
                    }
                    Some((None, v)) => {
                        self.bad_desired.insert(key, v.to_vec());
                    }
                    None if had.is_none() => return Change::None,
                    None => {}
                }
                Change::Other
            }
            Dir::Machines => {
                self.not_machines.remove(&key);
                let why = match value.map(|(v, lease)| (serde_json::from_slice::<MachineRecord>(v), lease)) {
                    None => None,
                    Some((Ok(_), 0)) => Some("has no lease, so nothing keeps it alive".to_owned()),
                    Some((Ok(_), _)) if key.is_empty() => Some("has an empty machine ID".to_owned()),
                    Some((Ok(rec), _)) if rec.id != key => {
                        Some(format!("names another machine ({})", shown(rec.id.as_bytes())))
                    }
                    Some((Ok(rec), _)) => {
                        return match self.machines.insert(key, rec.clone()) {
                            Some(old) if old == rec => Change::None,
                            _ => Change::Other,
                        };
                    }
                    Some((Err(e), _)) => Some(format!("is not a machine record ({e})")),
                };
                let gone = self.machines.remove(&key).is_some();
                if let Some(why) = why {
                    self.not_machines.insert(key.clone(), why);
                }
                if gone {
                    Change::MachineGone(key)
                } else {
                    Change::None
                }
            }
            Dir::Assign => {
                // assign/ID/NAME: machine IDs hold no '/'.
                let Some((m, u)) = key.split_once('/') else { return Change::None };
                let k = (m.to_owned(), u.to_owned());
                match value {
                    Some((v, _)) => {
                        let v = String::from_utf8_lossy(v);
                        if self.assign.get(&k).is_some_and(|old| *old == v) {
                            return Change::None;
                        }
                        self.assign.insert(k, v.into_owned());
                    }
                    None if self.assign.remove(&k).is_none() => return Change::None,
                    None => {}
                }
                Change::Other
            }
            Dir::States => {
                if let Some((m, u)) = key.split_once('/') {
                    let k = (u.to_owned(), m.to_owned());
                    match value {
                        Some((v, _)) => {
                            self.states.insert(k, serde_json::from_slice(v).unwrap_or_default());
                        }
                        None => {
                            self.states.remove(&k);
                        }
                    }
                }
                Change::None
            }
        }
    }
}

impl<U> Snapshot<U> {
    /// Derives what depends on more than one key: the warnings, the units
    /// left as they are, and the state a unit with a bad desired value
    /// keeps. Costs what the bad keys cost, not what the cluster holds.
    ///
    /// Returns whether that changed what the rules read: the units left as
    /// they are, or the state a unit keeps.
    pub fn settle(&mut self, keys: &Keys) -> bool {
        self.unreadable.clear();
        let as_is = std::mem::take(&mut self.as_is);
        let mut changed = false;
        for (name, why) in &self.bad_units {
            self.unreadable.push(format!(
                "{}{} {why}: skipped, its machines keep what they run; submit \
                 it again or remove it with `clusterctl destroy {}`",
                keys.dir(Dir::Units),
                shown(name.as_bytes()),
                shown(name.as_bytes()),
            ));
            self.as_is.insert(name.clone());
        }
        for (id, why) in &self.not_machines {
            self.unreadable.push(format!(
                "{}{} {why}: not a machine, nothing is placed on it; a machine's agent or presence key \
                 writes its record under a lease (remove this one with `etcdctl del {}{}`)",
                keys.dir(Dir::Machines),
                shown(id.as_bytes()),
                keys.dir(Dir::Machines),
                shown(id.as_bytes()),
            ));
        }
        // A desired value that is none of the three states says nothing
        // new: the unit keeps the state its assignments carry (or stays
        // unassigned), and the value is reported until someone fixes it.
        for (name, value) in &self.bad_desired {
            let kept = self
                .assign
                .iter()
                .filter(|((_, u), _)| u == name)
                .find_map(|(_, v)| Assignment::parse(v.as_bytes()).ok())
                .map(|a| a.state);
            self.unreadable.push(format!(
                "{}{} is \"{}\", not inactive, loaded or launched: the unit keeps {}; set it with \
                 `clusterctl start|stop|unload {}`",
                keys.dir(Dir::Desired),
                shown(name.as_bytes()),
                shown(value),
                kept.map_or("no machine".to_owned(), |d| format!("its machines, {}", d.as_str())),
                shown(name.as_bytes()),
            ));
            let before = match kept {
                Some(d) => self.desired.insert(name.clone(), d),
                None => {
                    self.as_is.insert(name.clone());
                    self.desired.remove(name)
                }
            };
            changed |= before != kept;
        }
        changed || as_is != self.as_is
    }
}

impl<U> Snapshot<U> {
    /// Says on stderr (or to the journal) what could not be used.
    pub fn warn(&self) {
        let log = fleetkit_core::log::Log::detect("clusterctl");
        for line in &self.unreadable {
            log.line(fleetkit_core::log::Level::Warning, &format!("warning: {line}"));
        }
    }

    /// The machines a unit is assigned to (one, or several for a global unit).
    #[must_use]
    pub fn machines_of(&self, unit: &str) -> Vec<&str> {
        self.assign.keys().filter(|(_, u)| u == unit).map(|(m, _)| m.as_str()).collect()
    }

    /// Unit → machines, for tables over many units.
    #[must_use]
    pub fn assignments_by_unit(&self) -> BTreeMap<&str, Vec<&str>> {
        let mut out: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for (m, u) in self.assign.keys() {
            out.entry(u.as_str()).or_default().push(m.as_str());
        }
        out
    }

    #[must_use]
    pub fn desired_of(&self, unit: &str) -> Desired {
        self.desired.get(unit).copied().unwrap_or(Desired::Inactive)
    }
}

/// Which kinds of keys a reader needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Want {
    pub units: bool,
    pub desired: bool,
    pub machines: bool,
    pub assign: bool,
    pub states: bool,
}

impl Want {
    pub const ALL: Want = Want { units: true, desired: true, machines: true, assign: true, states: true };
}

/// A connection plus the key layout.
#[derive(Clone)]
pub struct Cluster {
    pub client: Client,
    pub keys: Keys,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("keys", &self.keys).finish_non_exhaustive()
    }
}

/// An etcd failure that names what was being done.
pub fn etcd_err(what: &str) -> impl Fn(etcd_client::Error) -> Error + '_ {
    move |e| Error::Etcd(EtcdError::new(what, e))
}

impl Cluster {
    #[must_use]
    pub fn kv(&self) -> KvClient {
        self.client.kv_client().max_decoding_message_size(MAX_MESSAGE)
    }

    /// One range request, sent again while etcd is briefly unavailable (a
    /// member died, its leadership is being taken over), so that a dead
    /// member goes unnoticed by every reader.
    ///
    /// # Errors
    /// etcd's error once the request cannot succeed or the window is over.
    pub async fn get(
        &self,
        key: impl Into<Vec<u8>>,
        opts: Option<GetOptions>,
    ) -> Result<etcd_client::GetResponse, etcd_client::Error> {
        let key = key.into();
        retrying(Retry::Read, || {
            let mut kv = self.kv();
            let (key, opts) = (key.clone(), opts.clone());
            async move { kv.get(key, opts).await }
        })
        .await
    }

    /// One transaction, sent again only when etcd surely did not apply it
    /// (no leader yet, no member reachable).
    ///
    /// # Errors
    /// etcd's error.
    pub async fn txn(&self, txn: Txn) -> Result<etcd_client::TxnResponse, etcd_client::Error> {
        retrying(Retry::Write, || {
            let mut kv = self.kv();
            let txn = txn.clone();
            async move { kv.txn(txn).await }
        })
        .await
    }

    /// Reads one prefix at `revision` (0: the newest), returning the
    /// revision read and `(key suffix, value)` pairs.
    ///
    /// # Errors
    /// etcd's error, as a message.
    pub async fn range(&self, dir: Dir, revision: i64, keys_only: bool) -> Result<(i64, Vec<Entry>), Error> {
        let prefix = self.keys.dir(dir);
        let mut opts = GetOptions::new().with_prefix();
        if revision > 0 {
            opts = opts.with_revision(revision);
        }
        if keys_only {
            opts = opts.with_keys_only();
        }
        let mut resp =
            self.get(prefix.as_str(), Some(opts)).await.map_err(etcd_err(&format!("reading {prefix}")))?;
        let rev = resp.header().map_or(0, etcd_client::ResponseHeader::revision);
        let kvs = resp
            .take_kvs()
            .into_iter()
            .map(|kv| {
                let lease = kv.lease();
                let (k, value) = kv.into_key_value();
                let key = String::from_utf8_lossy(&k[prefix.len().min(k.len())..]).into_owned();
                Entry { key, value, lease }
            })
            .collect();
        Ok((rev, kvs))
    }

    /// Reads the prefixes `dirs` concurrently, all pinned to one revision.
    ///
    /// # Errors
    /// etcd's error, as a message.
    pub async fn read_all(&self, dirs: &[Dir]) -> Result<(i64, Vec<Vec<Entry>>), Error> {
        // One cheap request fixes the revision every range is pinned to.
        let probe = self.keys.probe();
        let resp = self.get(probe.as_str(), None).await.map_err(etcd_err("reading the revision"))?;
        let rev = resp.header().map_or(0, etcd_client::ResponseHeader::revision);
        let reads = dirs.iter().map(|d| self.range(*d, rev, false));
        let results = futures_util::future::try_join_all(reads).await?;
        Ok((rev, results.into_iter().map(|(_, kvs)| kvs).collect()))
    }

    /// Reads the kinds of keys in `want` at one revision, unit records as
    /// `U` (the whole [`UnitRecord`], or a summary that skips the text).
    ///
    /// # Errors
    /// etcd's error, or a record that is not fleetkit's JSON.
    pub async fn snapshot_of<U: Record>(&self, want: Want) -> Result<Snapshot<U>, Error> {
        let kinds = [
            (want.units, Dir::Units),
            (want.desired, Dir::Desired),
            (want.machines, Dir::Machines),
            (want.assign, Dir::Assign),
            (want.states, Dir::States),
        ];
        let dirs: Vec<Dir> = kinds.iter().filter(|(w, _)| *w).map(|(_, d)| *d).collect();
        let (rev, mut raw) = self.read_all(&dirs).await?;
        let mut snap = Snapshot::<U> { revision: rev, ..Snapshot::default() };
        for (dir, kvs) in dirs.iter().zip(raw.iter_mut()) {
            for Entry { key, value, lease } in std::mem::take(kvs) {
                snap.apply(*dir, key, Some((&value, lease)));
            }
        }
        snap.settle(&self.keys);
        Ok(snap)
    }

    /// [`Cluster::snapshot_of`] with whole unit records.
    ///
    /// # Errors
    /// As [`Cluster::snapshot_of`].
    pub async fn snapshot(&self, want: Want) -> Result<Snapshot, Error> {
        self.snapshot_of::<UnitRecord>(want).await
    }

    /// Runs `ops` in transactions of at most [`MAX_TXN_OPS`], each guarded by
    /// `guard` (all must hold). Returns false as soon as a guard fails.
    ///
    /// # Errors
    /// etcd's error.
    pub async fn write(&self, ops: Vec<TxnOp>, guard: &[Compare]) -> Result<bool, Error> {
        Ok(self.commit(ops, guard).await?.is_some())
    }

    /// [`Cluster::write`], returning the revision of each transaction that
    /// committed (so that a watcher can tell its own writes), or `None`
    /// when a guard failed.
    ///
    /// # Errors
    /// etcd's error.
    pub async fn commit(&self, ops: Vec<TxnOp>, guard: &[Compare]) -> Result<Option<Vec<i64>>, Error> {
        self.commit_batches(chunk(ops, MAX_TXN_OPS), guard).await
    }

    /// [`Cluster::commit`] with the transactions given: each batch (at most
    /// [`MAX_TXN_OPS`] operations) is one transaction.
    ///
    /// # Errors
    /// etcd's error.
    pub async fn commit_batches(
        &self,
        batches: Vec<Vec<TxnOp>>,
        guard: &[Compare],
    ) -> Result<Option<Vec<i64>>, Error> {
        let results: Vec<Option<i64>> = stream::iter(batches)
            .map(|batch| {
                let txn = Txn::new().when(guard.to_vec()).and_then(batch);
                async move {
                    let r = self.txn(txn).await.map_err(etcd_err("writing"))?;
                    Ok::<_, Error>(
                        r.succeeded().then(|| r.header().map_or(0, etcd_client::ResponseHeader::revision)),
                    )
                }
            })
            .buffer_unordered(TXN_IN_FLIGHT)
            .try_collect()
            .await?;
        Ok(results.into_iter().collect())
    }

    /// Any key under `election/`: is a scheduler campaigning or leading?
    ///
    /// # Errors
    /// etcd's error.
    pub async fn scheduler_leader(&self) -> Result<Option<String>, Error> {
        let prefix = format!("{}/", self.keys.election());
        let opts = GetOptions::new()
            .with_prefix()
            .with_sort(etcd_client::SortTarget::Create, etcd_client::SortOrder::Ascend)
            .with_limit(1);
        let resp = self.get(prefix.as_str(), Some(opts)).await.map_err(etcd_err("reading the election"))?;
        Ok(resp.kvs().first().map(|kv| String::from_utf8_lossy(kv.value()).into_owned()))
    }
}

/// The guard for a leader's writes: its election key still exists.
#[must_use]
pub fn leader_guard(leader_key: &[u8]) -> Vec<Compare> {
    vec![Compare::create_revision(leader_key.to_vec(), CompareOp::Greater, 0)]
}

fn chunk<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::with_capacity(items.len().div_ceil(size));
    let mut cur = Vec::with_capacity(size.min(items.len()));
    for item in items {
        cur.push(item);
        if cur.len() == size {
            out.push(std::mem::replace(&mut cur, Vec::with_capacity(size)));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assignments_round_trip_and_bad_ones_say_why() {
        let a = Assignment { hash: "ab".into(), state: Desired::Launched };
        assert_eq!(a.to_json(), r#"{"hash":"ab","state":"launched"}"#);
        assert_eq!(Assignment::parse(a.to_json().as_bytes()).unwrap(), a);
        assert_eq!(Assignment::parse(br#"{"hash":"ab","state":"loaded"}"#).unwrap().state, Desired::Loaded);
        let bad: [&[u8]; 5] = [
            b"abcdef",
            br#"{"hash":"ab","state":"LAUNCHED "}"#,
            br#"{"hash":"ab"}"#,
            br#"{"hash":"ab","state":"inactive"}"#,
            b"\x1b[31m",
        ];
        for v in bad {
            let e = Assignment::parse(v).unwrap_err();
            assert!(e.contains("leaving the unit as it is"), "{e}");
            assert!(!e.contains('\x1b'), "control bytes are escaped: {e}");
        }
    }

    #[test]
    fn chunks_respect_the_txn_limit() {
        let c = chunk((0..300).collect(), MAX_TXN_OPS);
        assert_eq!(c.iter().map(Vec::len).collect::<Vec<_>>(), vec![128, 128, 44]);
        assert!(chunk(Vec::<u8>::new(), 128).is_empty());
    }

    #[test]
    fn desired_states_round_trip() {
        for d in [Desired::Inactive, Desired::Loaded, Desired::Launched] {
            assert_eq!(Desired::parse(d.as_str()), Some(d));
        }
        assert_eq!(Desired::parse("running"), None);
    }
}
