//! The committed bash completions work in a real bash: sourced as
//! bash-completion would source them, each registers a function for its
//! tool, and clusterctl's completes its verbs and their flags from what
//! clap defines. (`make completions-check` keeps the files fresh; this
//! keeps them working.)

use std::path::PathBuf;
use std::process::Command;

fn completion(tool: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../completions").join(format!("{tool}.bash"))
}

/// What bash offers for the command line `words` (the last one is being
/// typed), through the function the file registers with `complete -F`.
fn complete(tool: &str, words: &[&str]) -> Vec<String> {
    let script = r#"
        source "$1" || exit 3
        shift
        spec=$(complete -p "$1") || exit 4
        fn=${spec#*-F }; fn=${fn%% *}
        COMP_WORDS=("$@")
        COMP_CWORD=$(( $# - 1 ))
        COMP_LINE="$*"
        COMP_POINT=${#COMP_LINE}
        prev=""; (( COMP_CWORD > 0 )) && prev=${COMP_WORDS[COMP_CWORD-1]}
        "$fn" "$1" "${COMP_WORDS[COMP_CWORD]}" "$prev"
        printf '%s\n' "${COMPREPLY[@]}"
    "#;
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", script, "bash"])
        .arg(completion(tool))
        .args(words)
        .output()
        .expect("run bash");
    assert!(out.status.success(), "bash failed for {words:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().filter(|l| !l.is_empty()).map(str::to_string).collect()
}

#[test]
fn clusterctl_completes_every_verb() {
    let offered = complete("clusterctl", &["clusterctl", ""]);
    for verb in clusterctl::command().get_subcommands().map(clap::Command::get_name) {
        assert!(offered.iter().any(|o| o == verb), "{verb} not offered: {offered:?}");
    }
}

#[test]
fn clusterctl_completes_a_verb_prefix_and_its_flags() {
    assert_eq!(
        complete("clusterctl", &["clusterctl", "list-"]),
        ["list-unit-files", "list-units", "list-machines", "list-announcements"]
    );
    assert_eq!(complete("clusterctl", &["clusterctl", "start", "--no"]), ["--no-block"]);
    let flags = complete("clusterctl", &["clusterctl", "list-units", "--"]);
    for flag in ["--fields", "--no-legend", "--full", "--json"] {
        assert!(flags.iter().any(|f| f == flag), "{flag} not offered: {flags:?}");
    }
}

#[test]
fn every_tool_registers_its_completion() {
    for (tool, typed, wanted) in [
        ("unitgen", "--for", "--format"),
        ("place", "--mach", "--machines"),
        ("dockrun", "--health-int", "--health-interval"),
        ("announce", "--check-int", "--check-interval"),
    ] {
        let offered = complete(tool, &[tool, typed]);
        assert!(offered.iter().any(|o| o == wanted), "{tool} {typed}: {offered:?}");
    }
}
