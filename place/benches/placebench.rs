//! Benchmark driver for bench/place.sh: generates clusters, times place's
//! planner, and runs a straightforward re-implementation of fleet's
//! scheduler on the same input as the reference.
//!
//! Subcommands (cargo bench appends `--bench`, which is ignored):
//!   gen MACHINES UNITS DIR   write DIR/machines.json and DIR/units.json
//!   lib DIR                  time place::Plan::new and a walk over its answer
//!   read DIR                 only read the input (its peak RSS is the input's share)
//!   lost DIR                 time re-placing one lost machine's units
//!   ref DIR LIMIT_SECS       fleet's algorithm, stopped after LIMIT_SECS
//! Each prints one `key=value ...` line for the script to read.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use fleetkit_core::constraints::Constraints;
use fleetkit_core::glob::match_glob;
use fleetkit_core::records::{read_records, MachineRecord, UnitRecord};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        ["gen", m, n, dir] => {
            generate(m.parse().expect("MACHINES"), n.parse().expect("UNITS"), Path::new(dir));
        }
        ["lib", dir] => lib(Path::new(dir)),
        ["read", dir] => {
            let (units, machines) = load(Path::new(dir));
            println!("units={} machines={}", units.len(), machines.len());
        }
        ["lost", dir] => lost(Path::new(dir)),
        ["ref", dir, limit] => reference(Path::new(dir), limit.parse().expect("LIMIT_SECS")),
        _ => {
            eprintln!("usage: placebench gen M N DIR | lib DIR | lost DIR | ref DIR LIMIT_SECS");
            std::process::exit(2);
        }
    }
}

fn load(dir: &Path) -> (Vec<place::Unit>, Vec<MachineRecord>) {
    let read = |name: &str| -> BufReader<File> { BufReader::new(File::open(dir.join(name)).expect(name)) };
    // As the place binary reads them: without the fields planning ignores.
    let units = place::read_units(read("units.json"), "units.json").expect("units");
    let machines = read_records(read("machines.json"), "machines.json").expect("machines");
    (units, machines)
}

/// A small deterministic generator (splitmix64), so runs are comparable.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn record(name: String, c: Constraints) -> UnitRecord {
    let (template, instance) = match name.split_once('@') {
        Some((p, rest)) => (Some(format!("{p}@.service")), rest.strip_suffix(".service").map(str::to_owned)),
        None => (None, None),
    };
    UnitRecord {
        name,
        template,
        instance,
        hash: format!("{:016x}", mix(7)),
        constraints: c,
        text: "[Service]\nExecStart=/bin/true\n".to_owned(),
    }
}

/// Groups of 10 instances: 40% anti-affine templates with a MachineOf
/// sidekick per instance, 20% anti-affine alone, 20% anti-affine and
/// region-constrained, 10% disk=ssd, 10% unconstrained; plus 3 globals.
fn generate(m: usize, n: usize, dir: &Path) {
    std::fs::create_dir_all(dir).expect("dir");
    let mut out = BufWriter::new(File::create(dir.join("machines.json")).expect("machines.json"));
    for i in 0..m {
        let mut metadata = BTreeMap::new();
        metadata.insert("region".to_owned(), format!("r{}", i % 4));
        metadata.insert("disk".to_owned(), if i % 3 == 0 { "ssd" } else { "hdd" }.to_owned());
        let rec = MachineRecord {
            id: format!("{:016x}{:016x}", mix(i as u64), mix(i as u64 + 1_000_000_007)),
            ip: format!("10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255),
            metadata,
            agent: None,
        };
        serde_json::to_writer(&mut out, &rec).expect("write");
        out.write_all(b"\n").expect("write");
    }
    out.flush().expect("flush");
    let mut out = BufWriter::new(File::create(dir.join("units.json")).expect("units.json"));
    let mut write = |r: UnitRecord| {
        serde_json::to_writer(&mut out, &r).expect("write");
        out.write_all(b"\n").expect("write");
    };
    write(record("logger.service".into(), Constraints { global: true, ..Default::default() }));
    let mut ssd = BTreeMap::new();
    ssd.insert("disk".to_owned(), vec!["ssd".to_owned()]);
    write(record(
        "ssd-agent.service".into(),
        Constraints { global: true, machine_metadata: ssd.clone(), ..Default::default() },
    ));
    write(record(
        "monitor.service".into(),
        Constraints { global: true, conflicts: vec!["nomonitor*".into()], ..Default::default() },
    ));
    let mut count = 3;
    let mut g = 0usize;
    while count < n {
        let kind = g % 10;
        for k in 1..=10 {
            if count >= n {
                break;
            }
            let app = format!("app{g}@{k}.service");
            let anti = vec![format!("app{g}@*.service")];
            let c = match kind {
                0..=5 => Constraints { conflicts: anti, ..Default::default() },
                6 | 7 => {
                    let mut region = BTreeMap::new();
                    region.insert("region".to_owned(), vec![format!("r{}", g % 4)]);
                    Constraints { conflicts: anti, machine_metadata: region, ..Default::default() }
                }
                8 => Constraints { machine_metadata: ssd.clone(), ..Default::default() },
                _ => Constraints::default(),
            };
            write(record(app.clone(), c));
            count += 1;
            if kind <= 3 && count < n {
                write(record(
                    format!("app{g}-side@{k}.service"),
                    Constraints { machine_of: vec![app], ..Default::default() },
                ));
                count += 1;
            }
        }
        g += 1;
    }
    println!("machines={m} units={count} dir={}", dir.display());
}

fn lib(dir: &Path) {
    let (units, machines) = load(dir);
    let cpu = cpu_secs();
    let start = Instant::now();
    let plan = place::Plan::new(&units, &machines, &[]).expect("plan");
    // Every answer line is visited, borrowed from the plan.
    let (mut lines, mut unplaced, mut bytes) = (0usize, 0usize, 0usize);
    let walked = plan.for_each(|p| {
        lines += 1;
        unplaced += usize::from(p.machine.is_none());
        bytes += p.unit.len() + p.machine.map_or(0, str::len);
        Ok::<(), ()>(())
    });
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_secs() - cpu;
    walked.expect("walk");
    println!("secs={secs:.4} cpu_secs={cpu:.2} lines={lines} unplaced={unplaced} bytes={bytes}");
}

/// User plus system CPU seconds of this process so far (Linux, 10 ms
/// ticks): on a shared machine wall time also counts other work.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / 100.0
}

fn lost(dir: &Path) {
    let (units, machines) = load(dir);
    let mut plan = place::Plan::new(&units, &machines, &[]).expect("plan");
    let current = plan.placements();
    // Lose a few machines one after another; report the slowest.
    let mut worst = 0f64;
    let mut moved = 0;
    for m in machines.iter().step_by((machines.len() / 5).max(1)).take(5) {
        let start = Instant::now();
        let changes = plan.remove_machine(&m.id);
        worst = worst.max(start.elapsed().as_secs_f64());
        moved += changes.len();
    }
    // The same loss recomputed from scratch with current placements.
    let alive: Vec<MachineRecord> = machines[1..].to_vec();
    let start = Instant::now();
    let full = place::plan(&units, &alive, &current).expect("plan");
    let full_secs = start.elapsed().as_secs_f64();
    println!("worst_secs={worst:.6} moved={moved} full_replan_secs={full_secs:.4} lines={}", full.len());
}

/// fleet's scheduler as it was: for each unit, sort the machines by load
/// (then ID), and take the first one where `AbleToRun` holds, which checks
/// every unit on the machine against every Conflicts glob in both
/// directions with `path.Match` on the raw pattern.
fn reference(dir: &Path, limit: f64) {
    let (mut units, machines) = load(dir);
    units.sort_by(|a, b| a.name.cmp(&b.name));
    struct Agent<'a> {
        m: &'a MachineRecord,
        units: Vec<usize>,
        names: HashSet<&'a str>,
    }
    let mut agents: Vec<Agent> =
        machines.iter().map(|m| Agent { m, units: Vec::new(), names: HashSet::new() }).collect();
    let able = |u: &place::Unit, a: &Agent, units: &[place::Unit]| -> bool {
        let c = &u.constraints;
        if c.machine_id.as_ref().is_some_and(|id| !a.m.id.starts_with(id.as_str())) {
            return false;
        }
        for (k, vs) in &c.machine_metadata {
            if !a.m.metadata.get(k).is_some_and(|v| vs.contains(v)) {
                return false;
            }
        }
        if !c.machine_of.iter().all(|p| a.names.contains(p.as_str())) {
            return false;
        }
        for &o in &a.units {
            let other = &units[o];
            if c.conflicts.iter().any(|g| match_glob(g, &other.name).unwrap_or(false))
                || other.constraints.conflicts.iter().any(|g| match_glob(g, &u.name).unwrap_or(false))
            {
                return false;
            }
        }
        true
    };
    let start = Instant::now();
    let mut done = 0usize;
    let mut placed = 0usize;
    // Globals on every agent that can run them, then units without peers,
    // then followers (so every peer is scheduled before its followers).
    let passes: [&dyn Fn(&place::Unit) -> bool; 3] = [
        &|u| u.constraints.global,
        &|u| !u.constraints.global && u.constraints.machine_of.is_empty(),
        &|u| !u.constraints.global && !u.constraints.machine_of.is_empty(),
    ];
    let mut stopped = false;
    'passes: for (pass, wanted) in passes.iter().enumerate() {
        for i in 0..units.len() {
            if !wanted(&units[i]) {
                continue;
            }
            if pass == 0 {
                for a in &mut agents {
                    if able(&units[i], a, &units) {
                        a.units.push(i);
                        a.names.insert(units[i].name.as_str());
                    }
                }
            } else {
                let mut order: Vec<usize> = (0..agents.len()).collect();
                order.sort_by(|&x, &y| {
                    let (ax, ay) = (&agents[x], &agents[y]);
                    ax.units.len().cmp(&ay.units.len()).then_with(|| ax.m.id.cmp(&ay.m.id))
                });
                if let Some(a) = order.into_iter().find(|&a| able(&units[i], &agents[a], &units)) {
                    agents[a].units.push(i);
                    agents[a].names.insert(units[i].name.as_str());
                    placed += 1;
                }
            }
            done += 1;
            if done.is_multiple_of(64) && start.elapsed().as_secs_f64() > limit {
                stopped = true;
                break 'passes;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let total = units.len();
    let estimate = if stopped { secs * total as f64 / done as f64 } else { secs };
    println!(
        "secs={secs:.3} done={done} total={total} placed={placed} complete={} estimate_secs={estimate:.3}",
        !stopped
    );
}
