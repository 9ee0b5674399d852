//! `clusterctl agent`: the machine side, one per machine, run by systemd.
//!
//! It keeps the machine present (`machines/ID` on a lease), watches only its
//! own `assign/ID/` prefix, writes what it is given as runtime units, has
//! systemd load, start and stop them over D-Bus, and reports each unit's
//! states under `states/ID/NAME` as systemd signals them. While nothing
//! changes it makes no etcd request but the lease's keep-alive.
//!
//! What fleet's agent got wrong is the shape of this loop: a unit is stopped
//! only when its assignment is really gone (a watch event, or its absence
//! from a full read), never because etcd is slow, restarting or away; the
//! units it finds running when it starts are adopted, not restarted; and a
//! report that could not be written is written when etcd is back.

mod files;
mod presence;
mod report;
pub mod systemd;

use fleetkit_core::etcd::EtcdError;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{ToSocketAddrs, UdpSocket};
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use etcd_client::{EventType, GetOptions, Txn, TxnOp, WatchOptions, WatchStream};
use fleetkit_core::expand::hex_sha256;
use fleetkit_core::log::{Level, Log};
use fleetkit_core::notify::Notifier;
use fleetkit_core::records::{MachineRecord, UnitRecord};
use fleetkit_core::signals::Shutdown;
use fleetkit_core::{Exit, ToolError};
use tokio::time::{sleep_until, Instant};
use zbus_systemd::zbus::OwnedObjectPath;

use self::files::{check_name, UnitDir, Written, SYSTEMD_RUNTIME};
use self::presence::{Presence, Renewal};
use self::report::Report;
use self::systemd::{JobDone, Systemd, UnitProps};
use crate::cli::AgentArgs;
use crate::cluster::{Assignment, Cluster, Desired, MAX_TXN_OPS};

/// Where the agent keeps what must survive its own restart but not a reboot.
const RUN_DIR: &str = "/run/fleetkit";
/// How often unit states are read from systemd although no signal said they
/// changed: a backstop for a lost signal, local and cheap.
const RESYNC: Duration = Duration::from_secs(60);
/// How long to wait before trying etcd again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// Who this machine is, checked before anything connects.
#[derive(Debug, Clone)]
struct Identity {
    record: MachineRecord,
}

impl Identity {
    fn resolve(args: &AgentArgs, endpoints: &[String]) -> Result<Self, String> {
        let id = match &args.machine_id {
            Some(id) => id.trim().to_owned(),
            None => std::fs::read_to_string("/etc/machine-id")
                .map_err(|e| format!("/etc/machine-id: {e} (give --machine-id)"))?
                .trim()
                .to_owned(),
        };
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(format!(
                "machine ID {id:?}: use letters, digits, '-', '_' or '.' (as /etc/machine-id has)"
            ));
        }
        let ip = match args.public_ip {
            Some(ip) => ip.to_string(),
            None => route_to(endpoints.first().map_or("", String::as_str))
                .ok_or("cannot find the local address that routes to etcd: give --public-ip")?,
        };
        let metadata = parse_metadata(&args.metadata)?;
        Ok(Self {
            record: MachineRecord { id, ip, metadata, agent: Some(env!("CARGO_PKG_VERSION").to_owned()) },
        })
    }
}

/// fleet's `--metadata` form: `k=v` items, comma separated.
fn parse_metadata(s: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!("--metadata item {item:?}: give KEY=VALUE, e.g. region=us-west,disk=ssd"));
        };
        let (k, v) = (k.trim(), v.trim());
        if k.is_empty() {
            return Err(format!("--metadata item {item:?}: the key is empty"));
        }
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            return Err(format!("--metadata: key {k:?} is given twice; one value per key"));
        }
    }
    Ok(out)
}

/// The local address the kernel would use to reach `endpoint` (no packet is sent).
fn route_to(endpoint: &str) -> Option<String> {
    let hostport = endpoint.split("://").last()?.trim_end_matches('/');
    let target = hostport.to_socket_addrs().ok()?.next()?;
    let socket = UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }).ok()?;
    socket.connect(target).ok()?;
    Some(socket.local_addr().ok()?.ip().to_string())
}

/// A unit this agent has written and looks after.
#[derive(Debug, Default)]
struct Managed {
    /// Hash of the text written (empty while none could be written).
    hash: String,
    path: Option<OwnedObjectPath>,
    props: UnitProps,
    /// Why the agent could not do what the assignment asks, if it could not.
    error: Option<String>,
    /// The last lines of the unit's journal, read when it failed.
    journal: Vec<String>,
}

struct Agent<'c> {
    cluster: &'c Cluster,
    me: Identity,
    systemd: Systemd,
    dir: UnitDir,
    /// `assign/ID/` as last read or watched: name → assignment (an error for
    /// a value the agent cannot read).
    wanted: BTreeMap<String, Result<Assignment, String>>,
    units: BTreeMap<String, Managed>,
    paths: HashMap<OwnedObjectPath, String>,
    /// State keys to write: the last JSON written for each name.
    reported: BTreeMap<String, String>,
    dirty: BTreeSet<String>,
    /// Names already warned about (refused assignments), so each is said once.
    warned: BTreeSet<String>,
    revision: i64,
}

/// Runs the agent until SIGTERM/SIGINT/SIGHUP.
///
/// # Errors
/// Bad options or no systemd (exit 2 and 1); etcd's failures are retried.
pub async fn run(cluster: &Cluster, args: &AgentArgs, endpoints: &[String]) -> Result<Exit, ToolError> {
    let me = Identity::resolve(args, endpoints).map_err(ToolError::usage)?;
    let mut shutdown = Shutdown::install()
        .map_err(|e| ToolError::negative(format!("cannot install signal handlers: {e}")))?;
    let systemd = Systemd::connect().await?;
    let mut changes = systemd.changes().await?;
    let mut jobs = systemd.jobs().await?;
    let dir = UnitDir::open(&Path::new(RUN_DIR).join("units"), Path::new(SYSTEMD_RUNTIME))
        .map_err(ToolError::negative)?;
    let mut agent = Agent {
        cluster,
        me,
        systemd,
        dir,
        wanted: BTreeMap::new(),
        units: BTreeMap::new(),
        paths: HashMap::new(),
        reported: BTreeMap::new(),
        dirty: BTreeSet::new(),
        warned: BTreeSet::new(),
        revision: 0,
    };
    agent.adopt().await;
    log(&format!(
        "machine {} ({}) managing {} unit(s) already here; connecting to etcd",
        agent.me.record.id,
        agent.me.record.ip,
        agent.units.len()
    ));
    NOTIFY.ready("connecting to etcd");

    let lease_file = Path::new(RUN_DIR).join("agent.lease");
    let mut presence: Option<Presence> = None;
    let mut watch: Option<WatchStream> = None;
    let mut full_read = true;
    let mut outage: Option<String> = None;
    let mut said_running = false;
    let mut renew_trouble: Option<String> = None;
    let mut last_renewed = Instant::now();
    let mut fenced = false;
    let mut renew_at = Instant::now();
    let mut resync_at = Instant::now() + RESYNC;
    let mut retry_at: Option<Instant> = None;
    loop {
        if retry_at.is_none_or(|t| t <= Instant::now()) {
            retry_at = None;
            match agent.connect(&mut presence, &mut watch, &mut full_read, &lease_file, args.ttl).await {
                Err(e) => {
                    if outage.as_deref() != Some(&e) {
                        warn(&format!("{e}; units keep running, retrying"));
                        NOTIFY.status(&format!("etcd unreachable: {e}"));
                    }
                    outage = Some(e);
                    retry_at = Some(Instant::now() + RETRY);
                }
                Ok(()) => {
                    if outage.take().is_some() {
                        log(&format!("in touch with etcd again at revision {}", agent.revision));
                        NOTIFY.status("running");
                    } else if !said_running {
                        NOTIFY.status("running");
                    }
                    said_running = true;
                }
            }
        }
        let wake_retry = retry_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            msg = next_message(&mut watch) => match msg {
                Ok(Some(resp)) if resp.compact_revision() > 0 || resp.canceled() => {
                    warn(&format!("the watch on {} was cut (compacted at {}); reading it again", agent.assign_dir(), resp.compact_revision()));
                    watch = None;
                    full_read = true;
                }
                Ok(Some(resp)) => {
                    let mut changed = BTreeSet::new();
                    for ev in resp.events() {
                        let Some(kv) = ev.kv() else { continue };
                        agent.revision = agent.revision.max(kv.mod_revision());
                        let Some(name) = kv.key_str().ok().and_then(|k| k.strip_prefix(agent.assign_dir().as_str())) else { continue };
                        let name = name.to_owned();
                        match ev.event_type() {
                            EventType::Put => { agent.wanted.insert(name.clone(), Assignment::parse(kv.value())); }
                            EventType::Delete => { agent.wanted.remove(&name); }
                        }
                        changed.insert(name);
                    }
                    if let Some(h) = resp.header() {
                        agent.revision = agent.revision.max(h.revision());
                    }
                    agent.reconcile(changed).await;
                }
                Ok(None) | Err(_) => {
                    watch = None; // reopened from the revision reached, at the top of the loop
                    retry_at = Some(Instant::now());
                }
            },
            Some(path) = changes.recv() => {
                // A start or a stop is a burst of signals: read each unit once.
                let mut names = BTreeSet::new();
                let mut next = Some(path);
                while let Some(p) = next {
                    names.extend(agent.paths.get(&p).cloned());
                    next = changes.try_recv().ok();
                }
                for name in names {
                    agent.refresh(&name).await;
                }
            }
            Some(job) = jobs.recv() => agent.job_done(job).await,
            () = sleep_until(renew_at) => {
                renew_at = Instant::now() + presence::renew_period(args.ttl);
                if let Some(p) = presence.as_mut() {
                    match p.renew(&cluster.client).await {
                        Ok(Renewal::Alive) => {
                            last_renewed = Instant::now();
                            if renew_trouble.take().is_some() {
                                log(&format!("lease {:x} renewed again", p.lease()));
                            }
                            if fenced {
                                // Start again what etcd says is still here.
                                fenced = false;
                                full_read = true;
                                retry_at = Some(Instant::now());
                            }
                        }
                        Ok(Renewal::Expired) => {
                            warn(&format!("lease {:x} expired (this machine was away for longer than its TTL); joining again", p.lease()));
                            match p.regrant(&cluster.client).await {
                                Ok(()) => {
                                    last_renewed = Instant::now();
                                    renew_trouble = None;
                                    fenced = false; // the full read below starts what is still here
                                    agent.reported.clear(); // the old lease took the state keys with it
                                    agent.dirty.extend(agent.units.keys().cloned());
                                    full_read = true;
                                    watch = None;
                                }
                                Err(e) => {
                                    presence = None;
                                    retry_at = Some(Instant::now() + RETRY);
                                    warn(&EtcdError::new("granting a new lease", e).to_string());
                                }
                            }
                        }
                        Err(e) => {
                            if renew_trouble.is_none() {
                                warn(&format!("etcd: renewing lease {:x}: {e}; units keep running, retrying", p.lease()));
                                renew_trouble = Some(e);
                            }
                        }
                    }
                }
                if args.fence && !fenced && last_renewed.elapsed() > Duration::from_secs(args.ttl.unsigned_abs()) {
                    warn("--fence: the lease could not be renewed for a TTL; stopping this machine's units");
                    agent.fence().await;
                    fenced = true;
                }
            }
            () = sleep_until(resync_at) => {
                resync_at = Instant::now() + RESYNC;
                let names: Vec<String> = agent.units.keys().cloned().collect();
                for name in names {
                    agent.refresh(&name).await;
                }
            }
            () = sleep_until(wake_retry) => {}
            _ = shutdown.recv() => break,
        }
        if presence.is_some() {
            agent.flush(presence.as_ref().map_or(0, Presence::lease)).await;
        }
    }
    // A machine going down moves its units now; an agent restarted alone keeps its lease.
    if agent.systemd.system_state().await.is_ok_and(|s| s == "stopping") {
        if let Some(p) = presence {
            log("the machine is shutting down: ending its lease so its units move now");
            p.revoke(&cluster.client).await;
        }
    }
    log("agent stopped; units keep running");
    Ok(Exit::SUCCESS)
}

async fn next_message(
    watch: &mut Option<WatchStream>,
) -> Result<Option<etcd_client::WatchResponse>, etcd_client::Error> {
    match watch {
        Some(w) => w.message().await,
        None => std::future::pending().await,
    }
}

impl Agent<'_> {
    fn assign_dir(&self) -> String {
        self.cluster.keys.assign_dir(&self.me.record.id)
    }

    fn states_dir(&self) -> String {
        self.cluster.keys.states_dir(&self.me.record.id)
    }

    /// Takes over the units a previous run of the agent wrote: they keep
    /// running as they are until etcd says otherwise.
    async fn adopt(&mut self) {
        for (name, hash) in self.dir.existing() {
            self.units.insert(name.clone(), Managed { hash, ..Managed::default() });
            self.refresh(&name).await;
        }
    }

    /// Whatever is missing of presence, the full read and the watch.
    async fn connect(
        &mut self,
        presence: &mut Option<Presence>,
        watch: &mut Option<WatchStream>,
        full_read: &mut bool,
        lease_file: &Path,
        ttl: i64,
    ) -> Result<(), String> {
        let client = &self.cluster.client;
        if presence.is_none() {
            let key = self.cluster.keys.machine(&self.me.record.id);
            let record = serde_json::to_string(&self.me.record).unwrap_or_default();
            let (p, resumed) = Presence::establish(client, key, record, ttl, lease_file)
                .await
                .map_err(|e| EtcdError::new("joining the cluster", e).to_string())?;
            log(&format!(
                "lease {:x} {}",
                p.lease(),
                if resumed { "resumed: nothing moves" } else { "granted" }
            ));
            if !resumed {
                self.reported.clear();
                self.dirty.extend(self.units.keys().cloned());
            }
            *presence = Some(p);
        }
        if *full_read {
            self.read_all().await?;
            *full_read = false;
            *watch = None;
        }
        if watch.is_none() {
            let opts = WatchOptions::new().with_prefix().with_start_revision(self.revision + 1);
            let stream = client
                .watch_client()
                .watch(self.assign_dir(), Some(opts))
                .await
                .map_err(|e| EtcdError::new(format!("watching {}", self.assign_dir()), e).to_string())?;
            *watch = Some(stream);
        }
        Ok(())
    }

    /// Reads `assign/ID/` whole (at start, after compaction, after the lease
    /// was lost) and acts on every difference; removes reports of units
    /// this machine no longer has.
    async fn read_all(&mut self) -> Result<(), String> {
        let dir = self.assign_dir();
        let resp = self
            .cluster
            .get(dir.as_str(), Some(GetOptions::new().with_prefix()))
            .await
            .map_err(|e| EtcdError::new(format!("reading {dir}"), e).to_string())?;
        self.revision = resp.header().map_or(0, etcd_client::ResponseHeader::revision);
        let mut wanted = BTreeMap::new();
        for kv in resp.kvs() {
            if let Some(name) = kv.key_str().ok().and_then(|k| k.strip_prefix(dir.as_str())) {
                wanted.insert(name.to_owned(), Assignment::parse(kv.value()));
            }
        }
        let states = self.states_dir();
        let stale = self
            .cluster
            .get(states.as_str(), Some(GetOptions::new().with_prefix().with_keys_only()))
            .await
            .map_err(|e| EtcdError::new(format!("reading {states}"), e).to_string())?;
        for kv in stale.kvs() {
            if let Some(name) = kv.key_str().ok().and_then(|k| k.strip_prefix(states.as_str())) {
                if !wanted.contains_key(name) && !self.units.contains_key(name) {
                    // Reported under an earlier lease for a unit this agent no longer has.
                    self.reported.insert(name.to_owned(), String::new());
                    self.dirty.insert(name.to_owned());
                }
            }
        }
        let changed: BTreeSet<String> =
            wanted.keys().chain(self.wanted.keys()).chain(self.units.keys()).cloned().collect();
        self.wanted = wanted;
        self.reconcile(changed).await;
        Ok(())
    }

    /// Brings the units `names` to what their assignments ask: files first
    /// (one daemon-reload for all, and only when a unit systemd has loaded
    /// changed or went: a new unit is loaded on first use without one, which
    /// keeps a reload's cost off the path from assignment to running), then
    /// start and stop jobs.
    async fn reconcile(&mut self, names: BTreeSet<String>) {
        let mut reload = false;
        let mut fetch = Vec::new();
        let mut gone = Vec::new();
        let mut created = Vec::new();
        for name in &names {
            match self.wanted.get(name) {
                Some(Ok(a)) => {
                    if let Err(e) = check_name(name) {
                        self.warn_once(name, &e);
                        continue;
                    }
                    if self.units.get(name).is_none_or(|m| m.hash != a.hash) {
                        fetch.push((name.clone(), a.hash.clone()));
                    }
                }
                Some(Err(e)) => {
                    let e = e.clone();
                    self.warn_once(name, &e);
                }
                None => {
                    if self.units.contains_key(name) {
                        gone.push(name.clone());
                    }
                }
            }
        }
        for name in &gone {
            if let Err(e) = self.systemd.stop(name).await {
                warn(&e.to_string());
            }
            reload |= self.dir.remove(name);
            if let Some(m) = self.units.remove(name) {
                if let Some(p) = m.path {
                    self.paths.remove(&p);
                }
            }
            self.dirty.insert(name.clone());
            log(&format!("{name}: no longer assigned here: stopped and removed"));
        }
        for (name, result) in self.fetch_texts(&fetch).await {
            let managed = self.units.entry(name.clone()).or_default();
            managed.error = None;
            match result.and_then(|text| self.dir.write(&name, &text).map(|written| (text, written))) {
                Ok((text, written)) => {
                    reload |= written == Written::Replaced;
                    managed.hash = hex_sha256(text.as_bytes());
                    if written == Written::New {
                        created.push(name.clone());
                    }
                }
                Err(e) => {
                    warn(&e);
                    managed.error = Some(e);
                }
            }
            self.dirty.insert(name);
        }
        // systemd notices new files in its directories when a unit is first
        // asked for; should it not have (an old systemd), a reload does it.
        for name in &created {
            self.refresh(name).await;
            reload |= self.units.get(name).is_some_and(|m| m.props.load == "not-found");
        }
        if reload {
            if let Err(e) = self.systemd.reload().await {
                warn(&e.to_string());
            }
            // A reload changes LoadState without a signal: read every unit again.
            let all: Vec<String> = self.units.keys().cloned().collect();
            for name in all {
                self.refresh(&name).await;
            }
        }
        for name in &names {
            let Some(Ok(a)) = self.wanted.get(name) else { continue };
            let Some(m) = self.units.get(name) else { continue };
            if m.error.is_some() || m.hash != a.hash {
                continue;
            }
            let running = matches!(m.props.active.as_str(), "active" | "activating" | "reloading");
            let job = match a.state {
                Desired::Launched if !running => Some(self.systemd.start(name).await),
                Desired::Loaded if running => Some(self.systemd.stop(name).await),
                _ => None,
            };
            if let Some(Err(e)) = job {
                warn(&e.to_string());
                if let Some(m) = self.units.get_mut(name) {
                    m.error = Some(e.to_string());
                }
                self.dirty.insert(name.clone());
            }
            if self.units.get(name).is_some_and(|m| m.path.is_none()) {
                self.refresh(name).await;
            }
        }
    }

    /// The texts of `units/NAME` for `(name, hash)`, checked against the hash
    /// the assignment carries; several names per request.
    async fn fetch_texts(&self, wanted: &[(String, String)]) -> Vec<(String, Result<String, String>)> {
        let mut out = Vec::with_capacity(wanted.len());
        for chunk in wanted.chunks(MAX_TXN_OPS) {
            let ops: Vec<TxnOp> =
                chunk.iter().map(|(name, _)| TxnOp::get(self.cluster.keys.unit(name), None)).collect();
            let resp = self.cluster.txn(Txn::new().and_then(ops)).await;
            let responses = match resp {
                Ok(r) => r.op_responses(),
                Err(e) => {
                    let why = fleetkit_core::etcd::describe(&e);
                    for (name, _) in chunk {
                        out.push((
                            name.clone(),
                            Err(format!("etcd: reading {}: {why}", self.cluster.keys.unit(name))),
                        ));
                    }
                    continue;
                }
            };
            for ((name, hash), op) in chunk.iter().zip(responses) {
                let key = self.cluster.keys.unit(name);
                let value = match op {
                    etcd_client::TxnOpResponse::Get(g) => g.kvs().first().map(|kv| kv.value().to_vec()),
                    _ => None,
                };
                let result = match value {
                    None => Err(format!("{name} is assigned here but {key} is missing (clusterctl submit it again)")),
                    Some(v) => match serde_json::from_slice::<UnitRecord>(&v) {
                        Err(e) => Err(format!("{key}: not a unit record: {e} (clusterctl destroy {name}, then submit it)")),
                        Ok(rec) if rec.name != *name => Err(format!("{key} holds unit {:?}, not {name}", rec.name)),
                        Ok(rec) if hex_sha256(rec.text.as_bytes()) != *hash || rec.hash != *hash => Err(format!(
                            "{key}: its text does not match the assigned hash {hash} (changed since it was placed; \
                             the scheduler reassigns it)"
                        )),
                        Ok(rec) => Ok(rec.text),
                    },
                };
                out.push((name.clone(), result));
            }
        }
        out
    }

    /// Reads a unit's states from systemd and marks its report dirty.
    async fn refresh(&mut self, name: &str) {
        let Some(m) = self.units.get(name) else { return };
        let path = match &m.path {
            Some(p) => Ok(p.clone()),
            None => self.systemd.load(name).await,
        };
        let props = match &path {
            Ok(p) => self.systemd.props(p).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let Some(m) = self.units.get_mut(name) else { return };
        if let Ok(p) = path {
            self.paths.insert(p.clone(), name.to_owned());
            m.path = Some(p);
        }
        match props {
            Ok(p) => {
                let failed_now = p.active == "failed" && m.props.active != "failed";
                m.props = p;
                if failed_now {
                    m.journal = journal_tail(name).await;
                } else if m.props.active != "failed" {
                    m.journal.clear();
                }
            }
            Err(e) => log(&e),
        }
        self.dirty.insert(name.to_owned());
    }

    async fn job_done(&mut self, job: JobDone) {
        if !self.units.contains_key(&job.unit) {
            return;
        }
        if !matches!(job.result.as_str(), "done" | "canceled") {
            log(&format!("{}: job {}", job.unit, job.result));
        }
        self.refresh(&job.unit).await;
    }

    /// `--fence`: stop every unit; they start again once etcd confirms
    /// they are still assigned here.
    async fn fence(&mut self) {
        let names: Vec<String> = self.units.keys().cloned().collect();
        for name in names {
            if let Err(e) = self.systemd.stop(&name).await {
                warn(&e.to_string());
            }
        }
    }

    fn warn_once(&mut self, name: &str, message: &str) {
        if self.warned.insert(format!("{name}\n{message}")) {
            log(message);
        }
    }

    /// Writes the reports that changed, on the lease, in as few requests as
    /// etcd allows; what fails stays dirty for the next pass.
    async fn flush(&mut self, lease: i64) {
        if self.dirty.is_empty() {
            return;
        }
        let mut ops = Vec::new();
        let mut done = Vec::new();
        for name in &self.dirty {
            let key = self.cluster.keys.state(&self.me.record.id, name);
            match self.units.get(name) {
                Some(m) => {
                    let report = Report {
                        load: if m.error.is_some() && m.props.load.is_empty() {
                            "error"
                        } else {
                            &m.props.load
                        },
                        active: &m.props.active,
                        sub: &m.props.sub,
                        hash: &m.hash,
                        result: (m.props.active == "failed").then_some(m.props.result.as_str()),
                        journal: &m.journal,
                        error: m.error.as_deref(),
                    };
                    let json = serde_json::to_string(&report).unwrap_or_default();
                    if self.reported.get(name) != Some(&json) {
                        ops.push(TxnOp::put(
                            key,
                            json.clone(),
                            Some(etcd_client::PutOptions::new().with_lease(lease)),
                        ));
                    }
                    done.push((name.clone(), Some(json)));
                }
                None => {
                    if self.reported.contains_key(name) {
                        ops.push(TxnOp::delete(key, None));
                    }
                    done.push((name.clone(), None));
                }
            }
        }
        for chunk in ops.chunks(MAX_TXN_OPS) {
            if let Err(e) = self.cluster.txn(Txn::new().and_then(chunk.to_vec())).await {
                warn(&format!("{}; retrying", EtcdError::new("writing unit states", e)));
                return;
            }
        }
        for (name, json) in done {
            self.dirty.remove(&name);
            match json {
                Some(j) => {
                    self.reported.insert(name, j);
                }
                None => {
                    self.reported.remove(&name);
                }
            }
        }
    }
}

/// The unit's last journal lines, for the report of a failure.
async fn journal_tail(name: &str) -> Vec<String> {
    let run = tokio::process::Command::new("journalctl")
        .args(["--no-pager", "-o", "cat", "-n", "10", "-u", name])
        .stdin(std::process::Stdio::null())
        .output();
    match tokio::time::timeout(Duration::from_secs(3), run).await {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect(),
        _ => Vec::new(),
    }
}

/// The agent's log lines: journal priorities under systemd, `clusterctl: ` elsewhere.
fn log_at(level: Level, message: &str) {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| Log::detect("clusterctl")).line(level, message);
}

fn log(message: &str) {
    log_at(Level::Notice, message);
}

fn warn(message: &str) {
    log_at(Level::Warning, message);
}

const NOTIFY: Notifier = Notifier::new("clusterctl");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_read_as_fleet_wrote_it() {
        let m = parse_metadata("region=us-west, disk=ssd").unwrap();
        assert_eq!(m.get("region").map(String::as_str), Some("us-west"));
        assert_eq!(m.get("disk").map(String::as_str), Some("ssd"));
        assert!(parse_metadata("").unwrap().is_empty());
        assert!(parse_metadata("region").unwrap_err().contains("KEY=VALUE"));
        assert!(parse_metadata("a=1,a=2").unwrap_err().contains("twice"));
        assert!(parse_metadata("=x").is_err());
    }

    #[test]
    fn the_route_to_loopback_is_loopback() {
        assert_eq!(route_to("http://127.0.0.1:2379").as_deref(), Some("127.0.0.1"));
        assert_eq!(route_to("127.0.0.1:2379").as_deref(), Some("127.0.0.1"));
    }
}
