//! systemd is the oracle for unit syntax and specifiers: these tests hold
//! fleetkit's parser and specifier resolution to verdicts systemd 252 gave,
//! recorded as data in `tests/data/`, and re-ask systemd
//! (`systemd-analyze verify`) whenever it is installed, so the recorded data
//! cannot drift from what systemd says. Under CI (`CI` set) systemd must be
//! there: a missing tool fails the tests rather than skipping them.
//!
//! Re-record after changing the corpus or the name list:
//! `FLEETKIT_RECORD=1 cargo test -p fleetkit-core --test systemd_oracle`.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use fleetkit_core::name::UnitName;
use fleetkit_core::specifier::Specifiers;
use fleetkit_core::unit::UnitFile;

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn recording() -> bool {
    std::env::var_os("FLEETKIT_RECORD").is_some()
}

fn have_systemd_analyze() -> bool {
    Command::new("systemd-analyze").arg("--version").output().is_ok_and(|o| o.status.success())
}

fn have_systemd_escape() -> bool {
    Command::new("systemd-escape").arg("x").output().is_ok()
}

/// True, after saying what goes unchecked, when `tool` is not installed: a
/// developer's machine without systemd still checks the recorded data. With
/// `CI` set the test fails instead, so CI never passes without asking
/// systemd itself.
fn skip_without(tool: &str, present: bool, unchecked: &str) -> bool {
    if present {
        return false;
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "{tool} is not installed and CI is set: the oracle must be asked (install systemd, e.g. make deps)"
    );
    eprintln!("{tool} not installed: {unchecked}");
    true
}

/// A directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fleetkit-oracle-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs `systemd-analyze verify` on `files`; returns its exit status and
/// its combined output.
fn verify(files: &[PathBuf]) -> (bool, String) {
    let out = Command::new("systemd-analyze").args(["verify", "--man=no"]).args(files).output().unwrap();
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

// ---------------------------------------------------------------- corpus

fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(data().join("corpus"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "service"))
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

/// `NAME accept|reject` per line, recorded from `systemd-analyze verify`.
fn recorded_verdicts() -> BTreeMap<String, bool> {
    let text = fs::read_to_string(data().join("corpus/verdicts.txt")).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, verdict) = l.split_once(' ').unwrap();
            (name.to_owned(), verdict.starts_with("accept"))
        })
        .collect()
}

#[test]
fn corpus_is_big_and_fully_recorded() {
    let files = corpus();
    let verdicts = recorded_verdicts();
    assert!(files.len() >= 40, "corpus has {} files", files.len());
    let names: Vec<_> = files.iter().map(|(n, _)| n.clone()).collect();
    assert_eq!(
        names,
        verdicts.keys().cloned().collect::<Vec<_>>(),
        "verdicts.txt must list every corpus file"
    );
    assert!(verdicts.values().any(|v| *v) && verdicts.values().any(|v| !*v));
}

#[test]
fn parser_agrees_with_recorded_systemd_verdicts() {
    let verdicts = recorded_verdicts();
    let mut wrong = Vec::new();
    for (name, bytes) in corpus() {
        let ours = UnitFile::parse_bytes(&bytes).is_ok();
        if verdicts.get(&name) != Some(&ours) {
            wrong.push(format!("{name}: systemd {:?}, fleetkit {ours}", verdicts.get(&name)));
        }
    }
    assert!(wrong.is_empty(), "disagreements:\n{}", wrong.join("\n"));
}

#[test]
fn recorded_verdicts_are_what_systemd_says_now() {
    if skip_without(
        "systemd-analyze",
        have_systemd_analyze(),
        "recorded verdicts checked against the parser only",
    ) {
        return;
    }
    let tmp = TempDir::new("corpus");
    let mut lines =
        vec!["# systemd-analyze verify --man=no FILE: accept (exit 0) or reject, first message".to_owned()];
    let mut now = BTreeMap::new();
    for (name, bytes) in corpus() {
        let path = tmp.0.join(&name);
        fs::write(&path, &bytes).unwrap();
        let (ok, out) = verify(std::slice::from_ref(&path));
        let first = out.lines().next().unwrap_or("").replace(&format!("{}/", tmp.0.display()), "");
        lines.push(format!("{name} {}  {}", if ok { "accept" } else { "reject" }, first.escape_default()));
        now.insert(name, ok);
    }
    if recording() {
        fs::write(data().join("corpus/verdicts.txt"), lines.join("\n") + "\n").unwrap();
    }
    assert_eq!(now, recorded_verdicts(), "systemd's verdicts changed: re-record with FLEETKIT_RECORD=1");
}

// ------------------------------------------------------------ specifiers

/// Instance names asked of systemd: plain, escaped, with `@`, and ones for
/// which `%f` fails.
const INSTANCES: &[&str] = &[
    "1",
    "2",
    "10",
    "01",
    "a",
    "web",
    "foo@bar",
    "foo@bar@baz",
    "a\\x2db",
    "10.0.0.1-24",
    "\\x2estart",
    "a-b-c",
    "a\\x20b",
    "var-lib-docker",
    "-",
    "a:b",
    "a_b",
    "a.b",
    "\\x2d",
    "\\x2f",
    "a\\x25b",
    "a\\x25i",
    "A.B.C",
    "0.0.0.0",
    "a\\xc3\\xbcb",
    "\\x5c",
    "a-",
    "-a",
    "a--b",
    "a-.-b",
    "a-..-b",
    "\\x2e",
    "\\xff",
    "x\\x2ey@z",
    "%",
];

/// Expressions resolved for each name (one `WorkingDirectory=-x…` line each,
/// whose warning shows systemd's resolution).
const EXPRESSIONS: &[&str] =
    &["%n", "%N", "%p", "%P", "%i", "%I", "%f", "%j", "%J", "%%", "a%%b%-c%!d%", "%1", "%z", "%i.%I-%%-%f"];

fn oracle_names() -> Vec<String> {
    let mut names = Vec::new();
    for prefix in ["my-web\\x2dapp", "node-etcd"] {
        for inst in INSTANCES {
            let name = format!("{prefix}@{inst}.service");
            if UnitName::parse(&name).is_ok() {
                names.push(name);
            }
        }
    }
    names.extend([
        "node-etcd.service".to_owned(),
        "a-b\\x2dc.service".to_owned(),
        "plain.service".to_owned(),
    ]);
    names
}

/// `NAME\tEXPR\tRESULT` lines; RESULT `!error` when systemd refused it.
fn recorded_specifiers() -> Vec<(String, String, String)> {
    read_tsv("specifiers.tsv")
}

fn ours(name: &str, expr: &str) -> String {
    let specs = Specifiers::new(&UnitName::parse(name).unwrap());
    specs.resolve(expr).unwrap_or_else(|_| "!error".to_owned())
}

#[test]
fn specifiers_match_recorded_systemd_output() {
    let recorded = recorded_specifiers();
    let names: std::collections::BTreeSet<_> = recorded.iter().map(|r| &r.0).collect();
    let instances = names.iter().filter(|n| n.contains('@')).count();
    assert!(instances >= 30, "only {instances} instance names recorded");
    for escaped in ["a\\x2db", "10.0.0.1-24", "foo@bar", "\\x2estart"] {
        assert!(names.contains(&format!("node-etcd@{escaped}.service")), "{escaped} not recorded");
    }
    let wrong: Vec<_> = recorded
        .iter()
        .filter(|(n, e, r)| ours(n, e) != *r)
        .map(|(n, e, r)| format!("{n} {e}: systemd {r:?}, fleetkit {:?}", ours(n, e)))
        .collect();
    assert!(wrong.is_empty(), "{} disagreements:\n{}", wrong.len(), wrong.join("\n"));
}

/// Asks systemd to resolve `values` (index → value) in the unit `name`;
/// returns index → systemd's result (`!error` when it refused).
fn ask_systemd(dir: &Path, name: &str, values: &[String]) -> Vec<String> {
    let mut unit = String::from("[Service]\nExecStart=/bin/true\n");
    for v in values {
        unit.push_str(&format!("WorkingDirectory=-x{v}\n"));
    }
    // `FILE:NAME` loads FILE as unit NAME, which also works for names
    // holding ':'; systemd then reports lines as `…/NAME:LINE: message`.
    let path = dir.join("oracle.service");
    fs::write(&path, unit).unwrap();
    let (_, out) = verify(&[PathBuf::from(format!("{}:{name}", path.display()))]);
    let head = format!("/{name}:");
    let mut results = vec![String::from("!missing"); values.len()];
    for line in out.lines() {
        let Some(at) = line.find(&head) else { continue };
        let rest = &line[at + head.len()..];
        let Some((num, msg)) = rest.split_once(": ") else { continue };
        let Ok(num) = num.parse::<usize>() else { continue };
        let Some(slot) = num.checked_sub(3).and_then(|i| results.get_mut(i)) else { continue };
        *slot = match msg.strip_prefix("WorkingDirectory= path is not absolute, ignoring: x") {
            Some(v) => v.to_owned(),
            None => "!error".to_owned(),
        };
    }
    fs::remove_file(&path).unwrap();
    results
}

#[test]
fn recorded_specifiers_are_what_systemd_says_now() {
    if skip_without(
        "systemd-analyze",
        have_systemd_analyze(),
        "recorded specifiers checked against the resolver only",
    ) {
        return;
    }
    let tmp = TempDir::new("spec");
    let exprs: Vec<String> = EXPRESSIONS.iter().map(|s| (*s).to_owned()).collect();
    let mut rows = Vec::new();
    for name in oracle_names() {
        for (expr, result) in exprs.iter().zip(ask_systemd(&tmp.0, &name, &exprs)) {
            assert!(!result.contains('\t') && !result.contains('\n'));
            rows.push((name.clone(), expr.clone(), result));
        }
    }
    if recording() {
        let mut text = String::from(
            "# systemd 252 (systemd-analyze verify) resolving EXPR in unit NAME: NAME\\tEXPR\\tRESULT\n",
        );
        for (n, e, r) in &rows {
            text.push_str(&format!("{n}\t{e}\t{r}\n"));
        }
        fs::write(data().join("specifiers.tsv"), text).unwrap();
    }
    assert_eq!(rows, recorded_specifiers(), "systemd's answers changed: re-record with FLEETKIT_RECORD=1");
}

/// The text unitgen writes must mean to systemd what the template meant:
/// systemd resolving `rewrite(v)` under the same name gives what it gives
/// for `v`.
#[test]
fn rewritten_values_resolve_the_same_in_systemd() {
    if skip_without(
        "systemd-analyze",
        have_systemd_analyze(),
        "skipping the rewrite round trip through systemd",
    ) {
        return;
    }
    let tmp = TempDir::new("rewrite");
    let exprs = ["%i", "%I", "%n-%N-%p-%P", "%f", "%j/%J", "100%% %i", "%%i %I%%", "a%-b%!c%"];
    for name in oracle_names() {
        let specs = Specifiers::new(&UnitName::parse(&name).unwrap());
        let usable: Vec<String> =
            exprs.iter().filter(|e| specs.resolve(e).is_ok()).map(|e| (*e).to_owned()).collect();
        let rewritten: Vec<String> = usable.iter().map(|e| specs.rewrite(e).unwrap()).collect();
        // One systemd run per name: the originals, then the rewritten values.
        let both: Vec<String> = usable.iter().chain(&rewritten).cloned().collect();
        let mut before = ask_systemd(&tmp.0, &name, &both);
        let after = before.split_off(usable.len());
        assert_eq!(before, after, "{name}: {usable:?} rewritten as {rewritten:?}");
    }
}

// --------------------------------------------------------- systemd-escape

/// Strings asked of `systemd-escape` (plain and `--path`) and of
/// `systemd-escape --unescape` (plain and `--path`).
const ESCAPE_INPUTS: &[&str] = &[
    "10.0.0.1/24",
    "/var/lib/docker",
    "foo bar",
    ".start",
    "a.start",
    "a-b",
    "a\\b",
    "ü",
    "/",
    "//a//b/",
    "a/./b",
    "a/../b",
    ".",
    "./a",
    "a/",
    "@x",
    "a:b_c.d",
    "-",
    "",
    "100%",
    "x=y,z",
];

const UNESCAPE_INPUTS: &[&str] = &[
    "a\\x2db",
    "a-b",
    "\\x2estart",
    "a\\xzz",
    "a\\x2",
    "-",
    "a-",
    "-a",
    "a--b",
    "var-lib",
    "\\xc3\\xbc",
    "a\\x2fb",
    "",
];

fn systemd_escape(args: &[&str], input: &str) -> String {
    let out = Command::new("systemd-escape").args(args).arg("--").arg(input).output().unwrap();
    if out.status.success() {
        String::from_utf8(out.stdout).unwrap().trim_end_matches('\n').to_owned()
    } else {
        "!error".to_owned()
    }
}

fn our_escape(mode: &str, input: &str) -> String {
    use fleetkit_core::name;
    let bytes = |r: Result<Vec<u8>, String>| {
        r.map_or("!error".to_owned(), |b| String::from_utf8_lossy(&b).into_owned())
    };
    match mode {
        "escape" => name::escape(input),
        "path" => name::path_escape(input).unwrap_or_else(|_| "!error".to_owned()),
        "unescape" => bytes(name::unescape(input)),
        _ => bytes(name::path_unescape(input)),
    }
}

fn escape_cases() -> Vec<(&'static str, &'static str)> {
    let mut cases = Vec::new();
    for i in ESCAPE_INPUTS {
        cases.push(("escape", *i));
        cases.push(("path", *i));
    }
    for i in UNESCAPE_INPUTS {
        cases.push(("unescape", *i));
        cases.push(("path-unescape", *i));
    }
    cases
}

/// `MODE\tINPUT\tRESULT` lines recorded from systemd-escape.
fn recorded_escapes() -> Vec<(String, String, String)> {
    read_tsv("escape.tsv")
}

/// The three tab-separated fields of each line of a recorded data file,
/// `#` comment lines and blank lines skipped.
fn read_tsv(file: &str) -> Vec<(String, String, String)> {
    let text = fs::read_to_string(data().join(file)).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let (a, b, c) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            (a.to_owned(), b.to_owned(), c.to_owned())
        })
        .collect()
}

#[test]
fn escaping_matches_recorded_systemd_escape() {
    let recorded = recorded_escapes();
    assert_eq!(recorded.len(), escape_cases().len(), "escape.tsv is out of date: re-record");
    let wrong: Vec<_> = recorded
        .iter()
        .filter(|(m, i, r)| our_escape(m, i) != *r)
        .map(|(m, i, r)| format!("{m} {i:?}: systemd-escape {r:?}, fleetkit {:?}", our_escape(m, i)))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn recorded_escapes_are_what_systemd_escape_says_now() {
    if skip_without("systemd-escape", have_systemd_escape(), "recorded escapes checked against fleetkit only")
    {
        return;
    }
    let rows: Vec<(String, String, String)> = escape_cases()
        .into_iter()
        .map(|(mode, input)| {
            let args: &[&str] = match mode {
                "escape" => &[],
                "path" => &["--path"],
                "unescape" => &["--unescape"],
                _ => &["--unescape", "--path"],
            };
            (mode.to_owned(), input.to_owned(), systemd_escape(args, input))
        })
        .collect();
    if recording() {
        let mut text = String::from(
            "# systemd-escape [--path] [--unescape] -- INPUT: MODE\\tINPUT\\tRESULT (!error: refused)\n",
        );
        for (m, i, r) in &rows {
            text.push_str(&format!("{m}\t{i}\t{r}\n"));
        }
        fs::write(data().join("escape.tsv"), text).unwrap();
    }
    assert_eq!(
        rows,
        recorded_escapes(),
        "systemd-escape's answers changed: re-record with FLEETKIT_RECORD=1"
    );
}

/// The letters and digits systemd 252 knows after `%` are exactly fleetkit's
/// name specifiers plus `HOST_SPECIFIERS` (the constant is the record).
#[test]
fn known_specifier_letters_are_systemds() {
    use fleetkit_core::specifier::{HOST_SPECIFIERS, NAME_SPECIFIERS};
    if skip_without("systemd-analyze", have_systemd_analyze(), "HOST_SPECIFIERS not re-checked") {
        return;
    }
    let tmp = TempDir::new("letters");
    let letters: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
    let exprs: Vec<String> = letters.iter().map(|c| format!("%{c}")).collect();
    let answers = ask_systemd(&tmp.0, "my-app@inst.service", &exprs);
    for (c, answer) in letters.iter().zip(answers) {
        let systemd_knows = answer != "!error";
        let fleetkit_knows = HOST_SPECIFIERS.contains(*c) || NAME_SPECIFIERS.contains(*c);
        assert_eq!(systemd_knows, fleetkit_knows, "%{c}: systemd says {answer:?}");
    }
}
