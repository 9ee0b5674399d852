//! The tutorial's node-etcd@.service rewritten with dockrun is a unit systemd
//! accepts without a single warning, and the README shows that same unit.

use std::process::Command;

const UNIT: &str = include_str!("../units/node-etcd@.service");
const README: &str = include_str!("../README.md");

/// The discovery unit the app unit requires, so verify can load both.
const DISCOVERY: &str = "[Unit]\nDescription=Announce node-etcd@%i service\nBindsTo=node-etcd@%i.service\n\n\
[Service]\nExecStart=/bin/sleep infinity\n\n[X-Fleet]\nMachineOf=node-etcd@%i.service\n";

fn verify(unit_text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("node-etcd@.service"), unit_text).expect("write unit");
    std::fs::write(dir.path().join("node-etcd-discovery@.service"), DISCOVERY).expect("write unit");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("node-etcd@1.service"))
        .output()
        .expect("run systemd-analyze");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn the_rewritten_unit_passes_systemd_analyze_verify_without_warnings() {
    let unit = UNIT.replace("/usr/local/bin/dockrun", env!("CARGO_BIN_EXE_dockrun"));
    let (ok, output) = verify(&unit);
    assert!(ok, "systemd-analyze verify failed:\n{output}");
    assert_eq!(output, "", "systemd-analyze verify warned");
}

#[test]
fn the_rewritten_unit_drops_the_tutorials_hacks() {
    assert!(UNIT.contains("Type=notify"));
    assert!(!UNIT.contains("KillMode"));
    assert!(!UNIT.contains("ExecStartPre"));
    assert!(!UNIT.contains("ExecStop"));
    assert!(!UNIT.contains("/usr/bin/docker"));
}

#[test]
fn the_check_would_catch_the_tutorials_kill_mode() {
    let with_hack = UNIT.replace("[Service]\n", "[Service]\nKillMode=none\n");
    let (_, output) = verify(&with_hack.replace("/usr/local/bin/dockrun", env!("CARGO_BIN_EXE_dockrun")));
    assert!(output.contains("KillMode=none"), "{output}");
}

#[test]
fn the_readme_shows_the_tested_unit() {
    assert!(README.contains(UNIT), "dockrun/README.md must contain units/node-etcd@.service verbatim");
}
