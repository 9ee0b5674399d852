//! unitgen end to end: the built binary on the tutorial's two unit files,
//! with systemd (`systemd-analyze verify`) judging the units it writes.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The record schema as documented in `unitgen --help`, kept apart from the
/// library's types so a change there shows up here.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    name: String,
    template: Option<String>,
    instance: Option<String>,
    hash: String,
    constraints: Constraints,
    text: String,
}

#[derive(Debug, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
struct Constraints {
    machine_id: Option<String>,
    machine_of: Vec<String>,
    machine_metadata: BTreeMap<String, Vec<String>>,
    conflicts: Vec<String>,
    global: bool,
    replaces: Vec<String>,
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data").join(name)
}

/// The tutorial's files as published (with its `%1` typo).
fn tutorial() -> [PathBuf; 2] {
    [data("node-etcd@.service"), data("node-etcd-discovery@.service")]
}

/// The tutorial's files with `%1` corrected to `%i`, which systemd accepts.
fn fixed() -> [PathBuf; 2] {
    [data("fixed/node-etcd@.service"), data("fixed/node-etcd-discovery@.service")]
}

fn unitgen(args: &[&str], files: &[PathBuf], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(args)
        .args(files)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    // unitgen may exit before reading stdin (a usage error): that closes
    // the pipe, which is no failure of the test.
    if let Err(e) = input.write_all(stdin.unwrap_or_default()) {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "writing unitgen's stdin: {e}");
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn records(out: &Output) -> Vec<Record> {
    assert!(out.status.success(), "unitgen failed: {}", text(&out.stderr));
    text(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn sha256(s: &str) -> String {
    Sha256::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

fn verify(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(files).output().unwrap();
    (out.status.success(), text(&out.stderr))
}

#[test]
fn tutorial_templates_give_six_records() {
    let recs = records(&unitgen(&["-i", "1..3"], &fixed(), None));
    let names: Vec<_> = recs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "node-etcd@1.service",
            "node-etcd@2.service",
            "node-etcd@3.service",
            "node-etcd-discovery@1.service",
            "node-etcd-discovery@2.service",
            "node-etcd-discovery@3.service"
        ]
    );
    let d2 = &recs[4];
    assert_eq!(d2.template.as_deref(), Some("node-etcd-discovery@.service"));
    assert_eq!(d2.instance.as_deref(), Some("2"));
    assert_eq!(
        d2.constraints,
        Constraints { machine_of: vec!["node-etcd@2.service".into()], ..Default::default() }
    );
    assert!(
        d2.text.contains("etcdctl set /announce/services/node-etcd2 ${COREOS_PUBLIC_IPV4}:3000"),
        "{}",
        d2.text
    );
    assert!(d2.text.contains("ExecStop=/usr/bin/etcdctl rm /announce/services/node-etcd2\n"));
    assert_eq!(recs[0].constraints.conflicts, ["node-etcd@*.service"]);
    assert!(recs[0].text.contains("Requires=node-etcd-discovery@1.service\n"));
    // The continued ExecStart= is one line, joined as systemd joins it: each
    // trailing backslash became a space after the space before it.
    assert!(recs[0].text.contains(
        "-p 3000:3000  -P -e COREOS_PRIVATE_IPV4=${COREOS_PRIVATE_IPV4}  marcuspoehls/node-etcd  /bin/sh"
    ));
    for r in &recs {
        assert_eq!(r.hash, sha256(&r.text), "{}", r.name);
    }
}

#[test]
fn check_names_the_tutorial_percent_one_lines() {
    let out = unitgen(&["--check"], &tutorial(), None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let err = text(&out.stderr);
    for line in [10, 11, 13] {
        assert!(
            err.contains(&format!("node-etcd@.service:{line}: ExecStart")),
            "line {line} not named:\n{err}"
        );
    }
    assert!(err.contains("'%1'"), "{err}");
    assert!(err.contains(":8: warning: KillMode=none") && err.contains("dockrun"), "{err}");
    // Expanding the original refuses too: systemd 252 would not load it.
    let out = unitgen(&["-i", "1"], &tutorial()[..1], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn check_on_a_valid_unit_is_silent() {
    let out = unitgen(&["--check"], &tutorial()[1..], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{}", text(&out.stderr));
}

#[test]
fn unit_format_output_passes_systemd_verify() {
    let out = unitgen(&["--format", "unit", "-i", "1..2"], &fixed(), None);
    assert!(out.status.success());
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let mut current: Option<(PathBuf, String)> = None;
    for line in text(&out.stdout).lines() {
        if let Some(name) = line.strip_prefix("# ") {
            files.extend(current.take());
            current = Some((dir.path().join(name), String::new()));
        } else if let Some((_, body)) = &mut current {
            body.push_str(line);
            body.push('\n');
        }
    }
    files.extend(current);
    assert_eq!(files.len(), 4);
    for (path, body) in &files {
        std::fs::write(path, body).unwrap();
    }
    let paths: Vec<_> = files.into_iter().map(|(p, _)| p).collect();
    let (ok, err) = verify(&paths);
    assert!(ok, "systemd-analyze verify refused unitgen's units:\n{err}");
}

#[test]
fn output_dir_units_pass_verify_and_are_not_overwritten_silently() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let out = unitgen(&["-o", d, "-i", "1..3"], &fixed(), None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
    let mut written: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().path()).collect();
    written.sort();
    assert_eq!(written.len(), 6, "{written:?}");
    let (ok, err) = verify(&written);
    assert!(ok, "systemd-analyze verify refused unitgen's units:\n{err}");

    // Same contents again: fine. Different contents: refused, then --force.
    assert!(unitgen(&["-o", d, "-i", "1..3"], &fixed(), None).status.success());
    let target = dir.path().join("node-etcd@2.service");
    std::fs::write(&target, "[Unit]\nDescription=edited by hand\n").unwrap();
    let out = unitgen(&["-o", d, "-i", "2"], &fixed()[..1], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("node-etcd@2.service: exists with different contents; use --force"));
    assert!(std::fs::read_to_string(&target).unwrap().contains("edited by hand"));
    assert!(unitgen(&["-o", d, "--force", "-i", "2"], &fixed()[..1], None).status.success());
    assert!(std::fs::read_to_string(&target).unwrap().contains("Requires=node-etcd-discovery@2.service"));
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with('.'))
        .count();
    assert_eq!(leftovers, 0, "temporary files left behind");
}

#[test]
fn instance_forms_and_escaping() {
    let names = |args: &[&str], stdin: Option<&[u8]>| -> Vec<String> {
        records(&unitgen(args, &fixed()[1..], stdin)).into_iter().map(|r| r.instance.unwrap()).collect()
    };
    assert_eq!(names(&["-i", "{1..3}"], None), ["1", "2", "3"]);
    assert_eq!(names(&["-i", "3..1"], None), ["3", "2", "1"]);
    assert_eq!(names(&["-i", "09..11"], None), ["09", "10", "11"]);
    assert_eq!(names(&["-i", "a,b", "-i", "c"], None), ["a", "b", "c"]);
    assert_eq!(names(&["-i", "-"], Some(b"web1\nweb2\n")), ["web1", "web2"]);
    assert_eq!(names(&["--escape", "-i", "10.0.0.1/24"], None), ["10.0.0.1-24"]);

    let out = unitgen(&["-i", "10.0.0.1/24"], &fixed()[1..], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("'10.0.0.1/24'") && text(&out.stderr).contains("--escape"));
    assert!(out.stdout.is_empty());
}

#[test]
fn escaped_instances_resolve_as_systemd_does() {
    let unit = b"[Unit]\nDescription=%i %I %f\n[Service]\nExecStart=/bin/true\n";
    let out = unitgen(
        &["--name", "probe@.service", "--escape", "-i", "var/lib/x-1"],
        &[PathBuf::from("-")],
        Some(unit),
    );
    let r = &records(&out)[0];
    assert_eq!(r.name, "probe@var-lib-x\\x2d1.service");
    assert!(r.text.contains("Description=var-lib-x\\x2d1 var/lib/x-1 /var/lib/x-1\n"), "{}", r.text);
    // `systemd-escape /var/lib/x` gives -var-lib-x, whose %f systemd refuses.
    let out = unitgen(
        &["--name", "probe@.service", "--escape", "-i", "/var/lib/x"],
        &[PathBuf::from("-")],
        Some(unit),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("-:2: Description= cannot resolve '%f'"), "{}", text(&out.stderr));
}

#[test]
fn templates_need_instances_and_plain_units_pass_through() {
    let out = unitgen(&[], &fixed()[..1], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("is a template: give instances with -i"), "{}", text(&out.stderr));

    let unit = b"[Unit]\nDescription=plain %n\n[Service]\nExecStart=/bin/true\n";
    let recs =
        records(&unitgen(&["--name", "hello.service", "-i", "1..3"], &[PathBuf::from("-")], Some(unit)));
    assert_eq!(recs.len(), 1);
    assert_eq!(
        (recs[0].name.as_str(), recs[0].template.as_deref(), recs[0].instance.as_deref()),
        ("hello.service", None, None)
    );
    assert!(recs[0].text.contains("Description=plain hello.service\n"));

    let out = unitgen(&[], &[PathBuf::from("-")], Some(unit));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--name"));
}

#[test]
fn records_stream_one_at_a_time() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_unitgen"))
        .args(["-i", "1..100000000"])
        .arg(&fixed()[1])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    lines.read_line(&mut first).unwrap();
    let rec: Record = serde_json::from_str(&first).unwrap();
    assert_eq!(rec.name, "node-etcd-discovery@1.service");
    assert!(child.try_wait().unwrap().is_none(), "the first record came only at the end");
    // The reader goes away (like `| head -1`): unitgen ends quietly with 0.
    drop(lines);
    let out =
        fleetkit_tests::wait::wait_for("unitgen to notice the closed pipe", Duration::from_secs(30), || {
            child.try_wait().unwrap()
        })
        .0;
    assert_eq!(out.code(), Some(0));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(err.is_empty(), "{err}");
}

#[test]
fn help_and_version() {
    let out = unitgen(&["--help"], &[], None);
    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(help.contains("EXAMPLES") && help.contains("\"machine_of\"") && help.contains("%1"));
    let out = unitgen(&["--version"], &[], None);
    assert!(text(&out.stdout).starts_with("unitgen "));
    let out = unitgen(&["--bogus"], &[], None);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn check_reports_x_fleet_contradictions_and_unknown_keys() {
    let unit = b"[Unit]\nDescription=x\n[Service]\nExecStart=/bin/true\n\
        [X-Fleet]\nMachineID=abc\nMachineOf=foo@%i.service\nBogus=1\n";
    let out = unitgen(&["--check", "--name", "w@.service"], &[PathBuf::from("-")], Some(unit));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("unitgen: -:7: [X-Fleet] MachineOf="), "{err}");
    assert!(err.contains("unitgen: -:8: warning: [X-Fleet] unknown key Bogus="), "{err}");

    // Only the warning: still fine, and the record is written.
    let unit = b"[Service]\nExecStart=/bin/true\n[X-Fleet]\nBogus=1\n";
    let out = unitgen(&["--check", "--name", "w.service"], &[PathBuf::from("-")], Some(unit));
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("warning"));
}

/// A unit file called `name` with `body` in a fresh directory.
fn unit_file(dir: &tempfile::TempDir, name: &str, body: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn control_bytes_from_the_input_are_escaped_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let web = unit_file(&dir, "web@.service", b"[Service]\nExecStart=/bin/true\n");
    let out = unitgen(&["-i", "a\u{1b}[31mX"], std::slice::from_ref(&web), None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(
        err,
        "unitgen: invalid instance 'a\\x1b[31mX': character 0x1b is not allowed in a unit name; \
         use --escape to escape it as systemd-escape does\n"
    );

    // Names and values inside a unit file, and the file's own name.
    let body = b"[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=a\x1b]0;pwned\x07\nW\x00x=1\n[Bad\x1bHeader\n";
    let evil = unit_file(&dir, "evil\u{1b}[2J@.service", body);
    let out = unitgen(&["--check"], &[evil], None);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(!err.contains(['\u{1b}', '\u{7}', '\0']), "raw control bytes reached stderr: {err:?}");
    assert!(err.contains("evil\\x1b[2J@.service"), "{err}");
    assert!(err.contains("invalid section header '[Bad\\x1bHeader'"), "{err}");

    let body = b"[Service]\nExecStart=/bin/true\n[X-Fleet]\nMachineMetadata=a\x1b]0;pwned\x07\n";
    let out = unitgen(&["--check", "-i", "1"], &[unit_file(&dir, "m@.service", body)], None);
    let err = text(&out.stderr);
    assert!(err.contains("MachineMetadata=a\\x1b]0;pwned\\x07 must be KEY=VALUE"), "{err}");
    assert!(!err.contains('\u{1b}'), "{err:?}");
}

#[test]
fn ranges_out_of_bounds_negative_or_malformed_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let web = unit_file(&dir, "web@.service", b"[Service]\nExecStart=/bin/true\n");
    let cases: &[(&str, &str)] = &[
        (
            "-i 1..100000000000000000000",
            "unitgen: -i '1..100000000000000000000': 100000000000000000000 is out of range; \
             a range's ends are whole numbers from 0 to 18446744073709551615\n",
        ),
        (
            "-i=-5..3",
            "unitgen: -i '-5..3': -5 is negative; a range counts whole numbers from 0 to 18446744073709551615 (e.g. 0..3)\n",
        ),
        ("-i 1..", "unitgen: -i '1..': '1..' is not a range: write FROM..TO with two whole numbers (1..3, 01..10, 3..1)\n"),
        ("-i ..3", "unitgen: -i '..3': '..3' is not a range"),
        ("-i 1...3", "unitgen: -i '1...3': '1...3' is not a range"),
        ("-i {1..3,5...6}", "unitgen: -i '{1..3,5...6}': '5...6' is not a range"),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = match args.split_once(' ') {
            Some((flag, value)) => vec![flag, value],
            None => vec![*args],
        };
        let out = unitgen(&args, std::slice::from_ref(&web), None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let err = text(&out.stderr);
        assert!(err.starts_with(want), "{args:?}: {err}");
    }
    let names: Vec<String> =
        records(&unitgen(&["-i", "3..1"], &[web], None)).into_iter().map(|r| r.name).collect();
    assert_eq!(names, ["web@3.service", "web@2.service", "web@1.service"]);
}

/// Units that parse but that systemd refuses to run: unitgen says so in
/// systemd's words, with --check and without, and systemd agrees.
#[test]
fn units_systemd_refuses_to_run_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty.service", b"", "empty.service: the file is empty: systemd loads an empty unit file as masked"),
        ("unit-only.service", b"[Unit]\nDescription=x\n", "Service has no ExecStart=, ExecStop=, or SuccessAction=. Refusing."),
        (
            "stop-only.service",
            b"[Service]\nType=oneshot\nExecStop=/bin/true\n",
            "Service has no ExecStart= and no SuccessAction= settings and does not have RemainAfterExit=yes set. Refusing.",
        ),
        (
            "simple-stop.service",
            b"[Service]\nType=simple\nRemainAfterExit=yes\nExecStop=/bin/true\n",
            "Service has no ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.",
        ),
        (
            "two.service",
            b"[Service]\nExecStart=/bin/true\nExecStart=/bin/true\n",
            "two.service:3: Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services. Refusing.",
        ),
    ];
    for (name, body, want) in cases {
        let path = unit_file(&dir, name, body);
        for args in [&["--check"][..], &[][..]] {
            let out = unitgen(args, std::slice::from_ref(&path), None);
            assert_eq!(out.status.code(), Some(2), "{name} {args:?}");
            assert!(out.stdout.is_empty(), "{name} {args:?}");
            let err = text(&out.stderr);
            assert!(err.contains(want), "{name} {args:?}: {err}");
        }
        let (ok, err) = verify(&[path]);
        assert!(!ok, "systemd accepts {name}: {err}");
    }
    // What systemd accepts without ExecStart=, unitgen accepts too.
    for (name, body) in [
        ("keep.service", &b"[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStop=/bin/true\n"[..]),
        ("action.service", b"[Unit]\nSuccessAction=exit\n[Service]\n"),
        ("a.socket", b"[Socket]\nListenStream=127.0.0.1:9\n"),
    ] {
        let path = unit_file(&dir, name, body);
        let out = unitgen(&["--check"], std::slice::from_ref(&path), None);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert!(out.stderr.is_empty(), "{name}: {}", text(&out.stderr));
        if name.ends_with(".service") {
            let (ok, err) = verify(&[path]);
            assert!(ok, "systemd refuses {name}: {err}");
        }
    }
}
