//! The tutorial's scenario across the tools, with its units rewritten for
//! fleetkit: `dockrun/units/node-etcd@.service` (the app) and
//! `announce/units/node-etcd-discovery@.service` (its discovery sidekick).
//!
//! unitgen checks and expands them, place puts three instances on three of
//! four machines with each sidekick beside its app, and systemd accepts the
//! expanded units. The README shows these exact files.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output, Stdio};

use fleetkit_core::records::{Placement, UnitRecord};
use fleetkit_tests::bin::tool;

const APP: &str = include_str!("../../dockrun/units/node-etcd@.service");
const SIDEKICK: &str = include_str!("../../announce/units/node-etcd-discovery@.service");
const README: &str = include_str!("../../README.md");

fn units_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("node-etcd@.service"), APP).expect("write unit");
    std::fs::write(dir.path().join("node-etcd-discovery@.service"), SIDEKICK).expect("write unit");
    dir
}

fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child =
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin).expect("write stdin");
    child.wait_with_output().expect("wait")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn unitgen_check_accepts_both_units_silently() {
    let dir = units_dir();
    let out = run(
        Command::new(tool("unitgen"))
            .arg("--check")
            .arg(dir.path().join("node-etcd@.service"))
            .arg(dir.path().join("node-etcd-discovery@.service")),
        b"",
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn three_instances_land_on_three_machines_with_their_sidekicks() {
    let dir = units_dir();
    let gen = run(
        Command::new(tool("unitgen"))
            .args(["-i", "1..3"])
            .arg(dir.path().join("node-etcd@.service"))
            .arg(dir.path().join("node-etcd-discovery@.service")),
        b"",
    );
    assert!(gen.status.success(), "{}", text(&gen.stderr));
    let records: Vec<UnitRecord> =
        text(&gen.stdout).lines().map(|l| serde_json::from_str(l).expect("unit record")).collect();
    assert_eq!(records.len(), 6);
    let sidekick2 = records.iter().find(|r| r.name == "node-etcd-discovery@2.service").expect("sidekick 2");
    assert_eq!(sidekick2.constraints.machine_of, ["node-etcd@2.service"]);
    assert!(sidekick2.text.contains("/announce/services/node-etcd2 "), "{}", sidekick2.text);

    let machines: String = (1..=4)
        .map(|i| format!("{{\"id\":\"m{i}\",\"ip\":\"172.17.8.10{i}\",\"metadata\":{{}}}}\n"))
        .collect();
    std::fs::write(dir.path().join("machines.json"), machines).expect("write machines");
    let placed =
        run(Command::new(tool("place")).arg("--machines").arg(dir.path().join("machines.json")), &gen.stdout);
    assert!(placed.status.success(), "{}", text(&placed.stderr));
    let placements: BTreeMap<String, String> = text(&placed.stdout)
        .lines()
        .map(|l| {
            let p: Placement = serde_json::from_str(l).expect("placement");
            (p.unit, p.machine.expect("placed"))
        })
        .collect();
    assert_eq!(placements.len(), 6);
    let apps: std::collections::BTreeSet<&String> =
        (1..=3).map(|i| &placements[&format!("node-etcd@{i}.service")]).collect();
    assert_eq!(apps.len(), 3, "instances share a machine: {placements:?}");
    for i in 1..=3 {
        assert_eq!(
            placements[&format!("node-etcd-discovery@{i}.service")],
            placements[&format!("node-etcd@{i}.service")],
            "sidekick {i} is not beside its app"
        );
    }
}

#[test]
fn expanded_units_pass_systemd_analyze_verify() {
    let dir = units_dir();
    let out_dir = tempfile::tempdir().expect("temp dir");
    let gen = run(
        Command::new(tool("unitgen"))
            .args(["-i", "1", "-o"])
            .arg(out_dir.path())
            .arg(dir.path().join("node-etcd@.service"))
            .arg(dir.path().join("node-etcd-discovery@.service")),
        b"",
    );
    assert!(gen.status.success(), "{}", text(&gen.stderr));
    // systemd checks that ExecStart= binaries exist: point them at the builds.
    for name in ["node-etcd@1.service", "node-etcd-discovery@1.service"] {
        let path = out_dir.path().join(name);
        let unit = std::fs::read_to_string(&path).expect("read unit");
        let unit = unit
            .replace("/usr/local/bin/dockrun", &tool("dockrun").display().to_string())
            .replace("/usr/local/bin/announce", &tool("announce").display().to_string());
        std::fs::write(&path, unit).expect("write unit");
    }
    let verify = run(
        Command::new("systemd-analyze")
            .arg("verify")
            .arg(out_dir.path().join("node-etcd@1.service"))
            .arg(out_dir.path().join("node-etcd-discovery@1.service")),
        b"",
    );
    let output = format!("{}{}", text(&verify.stdout), text(&verify.stderr));
    assert!(verify.status.success(), "systemd-analyze verify failed:\n{output}");
    assert_eq!(output, "", "systemd-analyze verify warned");
}

#[test]
fn the_readme_shows_the_tested_units() {
    assert!(README.contains(APP), "README.md must show dockrun/units/node-etcd@.service verbatim");
    assert!(
        README.contains(SIDEKICK),
        "README.md must show announce/units/node-etcd-discovery@.service verbatim"
    );
}
