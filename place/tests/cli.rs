//! The `place` binary as scripts use it: files and stdin in, JSON Lines or
//! a table out, exit 0/1/2.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use fleetkit_core::records::{MachineRecord, Placement, UnitRecord};

struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Self {
        Env { dir: tempfile::tempdir().unwrap() }
    }

    fn write<T: serde::Serialize>(&self, name: &str, records: &[T]) -> PathBuf {
        let path = self.dir.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        for r in records {
            serde_json::to_writer(&mut f, r).unwrap();
            f.write_all(b"\n").unwrap();
        }
        path
    }

    fn write_text(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

fn place(args: &[&Path], stdin: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_place"));
    cmd.args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    child.wait_with_output().unwrap()
}

fn arg(s: &str) -> &Path {
    Path::new(s)
}

/// Parses stdout strictly: every line a Placement, no unknown fields.
fn placements(out: &Output) -> Vec<Placement> {
    String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect()
}

fn tutorial_machines() -> Vec<MachineRecord> {
    ["3781dfef", "767d4316", "9c1eed63", "a1b2c3d4"]
        .iter()
        .enumerate()
        .map(|(i, id)| MachineRecord {
            id: (*id).into(),
            ip: format!("172.17.8.{}", 101 + i),
            metadata: Default::default(),
            agent: None,
        })
        .collect()
}

#[test]
fn tutorial_three_instances_exit_0() {
    let env = Env::new();
    let machines = env.write("machines.json", &tutorial_machines()[..3]);
    let units = env.write("units.json", &records(&tutorial(3)));
    let out = place(&[arg("--machines"), &machines, &units], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let p = placements(&out);
    assert_eq!(p.len(), 6);
    assert!(p.iter().all(|p| p.machine.is_some() && p.reason.is_none()));
    let w = where_(&p);
    let mut hosts: Vec<&String> = (1..=3).map(|i| &w[&format!("node-etcd@{i}.service")]).collect();
    hosts.sort();
    hosts.dedup();
    assert_eq!(hosts.len(), 3);
    for i in 1..=3 {
        assert_eq!(w[&format!("node-etcd-discovery@{i}.service")], w[&format!("node-etcd@{i}.service")]);
    }
}

#[test]
fn five_instances_on_four_machines_exit_1_with_one_reason() {
    let env = Env::new();
    let machines = env.write("machines.json", &tutorial_machines());
    let units: Vec<UnitRecord> = (1..=5)
        .map(|i| record(&conflicts(&format!("node-etcd@{i}.service"), &["node-etcd@*.service"])))
        .collect();
    let text: String = units.iter().map(|u| serde_json::to_string(u).unwrap() + "\n").collect();
    // Units on stdin.
    let out = place(&[arg("--machines"), &machines], Some(&text));
    assert_eq!(out.status.code(), Some(1));
    let p = placements(&out);
    assert_eq!(p.iter().filter(|p| p.machine.is_some()).count(), 4);
    let unplaced: Vec<&Placement> = p.iter().filter(|p| p.machine.is_none()).collect();
    assert_eq!(unplaced.len(), 1);
    assert_eq!(unplaced[0].unit, "node-etcd@5.service");
    assert_eq!(unplaced[0].reason.as_deref(), Some("conflicts with node-etcd@*.service on all 4 machines"));
    let line = String::from_utf8(out.stdout.clone()).unwrap().lines().last().unwrap().to_owned();
    assert_eq!(
        line,
        r#"{"unit":"node-etcd@5.service","machine":null,"reason":"conflicts with node-etcd@*.service on all 4 machines"}"#
    );
}

#[test]
fn table_format_and_reasons_on_stderr() {
    let env = Env::new();
    let machines = env.write("machines.json", &tutorial_machines()[..1]);
    let units = env.write("units.json", &records(&tutorial(2)));
    let out = place(&[arg("--machines"), &machines, arg("--format"), arg("table"), &units], None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0].split_whitespace().collect::<Vec<_>>(), ["UNIT", "MACHINE", "IP"]);
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["node-etcd-discovery@1.service", "3781dfef", "172.17.8.101"]
    );
    assert_eq!(lines[2].split_whitespace().collect::<Vec<_>>(), ["node-etcd-discovery@2.service", "-", "-"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("place: node-etcd@2.service: conflicts with node-etcd@*.service on the only machine"),
        "{stderr}"
    );
}

#[test]
fn current_placements_are_kept_and_lost_machines_replaced() {
    let env = Env::new();
    let all = tutorial_machines();
    let machines = env.write("machines.json", &all);
    let units = env.write("units.json", &records(&tutorial(3)));
    let first = place(&[arg("--machines"), &machines, &units], None);
    assert_eq!(first.status.code(), Some(0));
    let current = env.write_text("current.json", &String::from_utf8(first.stdout.clone()).unwrap());
    // Same input with its own output as current: byte-for-byte the same.
    let again = place(&[arg("--machines"), &machines, arg("--current"), &current, &units], None);
    assert_eq!(again.stdout, first.stdout);
    // The machine running node-etcd@1 dies.
    let before = where_(&placements(&first));
    let dead = before["node-etcd@1.service"].clone();
    let alive: Vec<MachineRecord> = all.iter().filter(|m| m.id != dead).cloned().collect();
    let alive = env.write("alive.json", &alive);
    let out = place(&[arg("--machines"), &alive, arg("--current"), &current, &units], None);
    assert_eq!(out.status.code(), Some(0));
    let after = where_(&placements(&out));
    for (u, m) in &before {
        if m == &dead {
            assert_ne!(&after[u], m);
        } else {
            assert_eq!(&after[u], m, "{u} kept");
        }
    }
    assert_eq!(after["node-etcd@1.service"], after["node-etcd-discovery@1.service"]);
}

#[test]
fn bad_input_exits_2_naming_file_and_line() {
    let env = Env::new();
    let machines = env.write("machines.json", &tutorial_machines());
    let broken = env.write_text(
        "units.json",
        &format!("{}\n{{\"name\":3}}\n", serde_json::to_string(&record(&plain("a.service"))).unwrap()),
    );
    let out = place(&[arg("--machines"), &machines, &broken], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.starts_with(&format!("place: {}:2: ", broken.display())), "{stderr}");
    assert!(out.stdout.is_empty());

    let bad_glob = env.write("glob.json", &records(&[conflicts("web@1.service", &["web@[.service"])]));
    let out = place(&[arg("--machines"), &machines, &bad_glob], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr)
        .starts_with("place: web@1.service: [X-Fleet] Conflicts=malformed glob"));

    let dup = env.write("dup.json", &records(&[plain("a.service"), plain("a.service")]));
    let out = place(&[arg("--machines"), &machines, &dup], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unit a.service is listed twice"));

    let contradiction = env.write(
        "c.json",
        &records(&[unit(
            "x.service",
            fleetkit_core::constraints::Constraints {
                global: true,
                machine_of: vec!["y.service".into()],
                ..Default::default()
            },
        )]),
    );
    let out = place(&[arg("--machines"), &machines, &contradiction], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("MachineOf= cannot be combined with Global="));

    let out = place(&[arg("--machines"), arg("/nonexistent/machines.json")], Some(""));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("place: /nonexistent/machines.json: "));

    let out = place(&[arg("--format"), arg("yaml")], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn help_has_examples_and_schema_and_version_works() {
    let out = place(&[arg("--help")], None);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8(out.stdout).unwrap();
    for needle in ["EXAMPLES", "OUTPUT", "{\"unit\":NAME,\"machine\":null,\"reason\":TEXT}", "EXIT STATUS"] {
        assert!(help.contains(needle), "--help lacks {needle}");
    }
    let out = place(&[arg("--version")], None);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8(out.stdout).unwrap().starts_with("place "));
}

#[test]
fn no_units_is_success_with_no_output() {
    let env = Env::new();
    let machines = env.write("machines.json", &tutorial_machines());
    let out = place(&[arg("--machines"), &machines, arg("-")], Some("\n"));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty());
}

/// The unit fixtures of fleet's `TestScheduleMultipleConflicts`
/// (functional/fixtures/units/conflict.multiple.{1,2}.service), and a third
/// with fleet's quoted-list form: one `Conflicts=` with three globs at
/// whitespace, three `Conflicts=` lines, one quoted list. Expanded by core
/// as unitgen expands them.
fn multiple_conflicts() -> Vec<UnitRecord> {
    let body = "[Unit]\nDescription=Test Unit\n\n[Service]\n\
        ExecStart=/bin/bash -c \"while true; do echo Hello, World!; sleep 1; done\"\n\n[X-Fleet]\n";
    let fleet = [
        (
            "conflict.multiple.0.service",
            "Conflicts=\"conflict.2.service\" \"conflict.1.service\" \"conflict.0.service\"\n",
        ),
        (
            "conflict.multiple.1.service",
            "Conflicts=conflict.2.service conflict.1.service conflict.0.service\n",
        ),
        (
            "conflict.multiple.2.service",
            "Conflicts=conflict.2.service\nConflicts=conflict.1.service\nConflicts=conflict.0.service\n",
        ),
    ];
    fleet
        .iter()
        .map(|(name, x_fleet)| {
            let (record, warnings) =
                fleetkit_core::expand::expand(name, &format!("{body}{x_fleet}"), None).unwrap();
            assert!(warnings.is_empty(), "{name}: {warnings:?}");
            record
        })
        .collect()
}

/// fleet's scheduling scenario for multi-glob `Conflicts=`: with
/// conflict.0, .1 and .2 running on three of four machines, each of the
/// three units that conflict with all of them can only go to the fourth,
/// however its globs are written.
#[test]
fn multiple_conflicts_globs_split_at_whitespace_as_in_fleet() {
    let env = Env::new();
    let machines = env.write("machines.json", &machines(&["m1", "m2", "m3", "m4"]));
    let mut units = multiple_conflicts();
    assert_eq!(
        units[1].constraints.conflicts,
        ["conflict.2.service", "conflict.1.service", "conflict.0.service"],
        "three globs, not one with spaces"
    );
    units.extend(records(&[
        plain("conflict.0.service"),
        plain("conflict.1.service"),
        plain("conflict.2.service"),
    ]));
    let current = env.write(
        "current.json",
        &[
            placed("conflict.0.service", "m1"),
            placed("conflict.1.service", "m2"),
            placed("conflict.2.service", "m3"),
        ],
    );
    let units = env.write("units.json", &units);
    let out = place(&[arg("--machines"), &machines, arg("--current"), &current, &units], None);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let got = where_(&placements(&out));
    for i in 0..3 {
        assert_eq!(got[&format!("conflict.multiple.{i}.service")], "m4", "{got:?}");
        assert_eq!(got[&format!("conflict.{i}.service")], format!("m{}", i + 1), "{got:?}");
    }
}

/// ESC and other control bytes in names reach stderr and the table escaped
/// (`\x1b`), never raw.
#[test]
fn control_bytes_in_records_are_escaped_in_messages_and_tables() {
    let env = Env::new();
    let machines = env.write("machines.json", &machines(&["m1"]));
    let evil = "a\u{1b}[31mX\u{7}.service";
    let dup = env.write("dup.json", &records(&[plain(evil), plain(evil)]));
    let out = place(&[arg("--machines"), &machines, &dup], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr, "place: unit a\\x1b[31mX\\x07.service is listed twice; give each unit once\n");

    let glob = env.write("glob.json", &records(&[conflicts("b.service", &["\u{1b}[2J["])]));
    let out = place(&[arg("--machines"), &machines, &glob], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.starts_with("place: b.service: [X-Fleet] Conflicts=malformed glob \"\\x1b[2J[\""),
        "{stderr}"
    );

    let broken = env.write_text("units\u{1b}.json", "{\"name\":\"a\",\"\\u001b[31m\":1}\n");
    let out = place(&[arg("--machines"), &machines, &broken], None);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !stderr.contains('\u{1b}') && stderr.contains("units\\x1b.json:1: unknown field `\\x1b[31m`"),
        "{stderr}"
    );

    // Two units that cannot share the one machine: the reason names both.
    let two = env.write("two.json", &records(&[conflicts(evil, &["*"]), plain("b.service")]));
    let out = place(&[arg("--machines"), &machines, arg("--format"), arg("table"), &two], None);
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap());
    assert!(!stdout.contains('\u{1b}') && stdout.contains("a\\x1b[31mX\\x07.service"), "{stdout}");
    assert!(!stderr.contains('\u{1b}') && stderr.contains("a\\x1b[31mX\\x07.service"), "{stderr}");
}
