//! fleetctl's tables, byte for byte (tabs included), and the JSON Lines
//! records pinned with `deny_unknown_fields`.

mod common;

use std::collections::BTreeMap;

use common::Env;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitFileJson {
    unit: String,
    hash: String,
    dstate: String,
    state: String,
    target: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UnitJson {
    unit: String,
    machine: String,
    active: Option<String>,
    sub: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MachineJson {
    machine: String,
    ip: String,
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnnouncementJson {
    key: String,
    value: String,
    ttl: Option<i64>,
}

fn lines<T: for<'de> Deserialize<'de>>(s: &str) -> Vec<T> {
    s.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}"))).collect()
}

/// The tutorial after one round, with machine 1 reporting node-etcd@1 running.
fn tutorial_cluster() -> (Env, Vec<common::Machine>) {
    let env = Env::new();
    env.submit_tutorial();
    let machines = vec![
        env.machine_with(1, 30, r#"{"region":"eu","disk":"ssd"}"#),
        env.machine(2, 30),
        env.machine(3, 30),
        env.machine(4, 30),
    ];
    env.ok(&["start", "--no-block", "node-etcd@1.service", "node-etcd@2.service", "node-etcd@3.service"]);
    env.ok(&["schedule"]);
    let m1 = &machines[0].id;
    env.put(
        &format!("{}/states/{m1}/node-etcd@1.service", env.prefix),
        r#"{"load":"loaded","active":"active","sub":"running","hash":"abc"}"#,
        None,
    );
    (env, machines)
}

#[test]
fn list_unit_files_golden() {
    let (env, machines) = tutorial_cluster();
    let json: Vec<UnitFileJson> = lines(&env.ok(&["list-unit-files", "--json"]));
    let h: BTreeMap<&str, &str> = json.iter().map(|u| (u.unit.as_str(), &u.hash[..7])).collect();
    let expected = format!(
        "UNIT\t\t\t\tHASH\tDSTATE\t\tSTATE\t\tTARGET\n\
         node-etcd-discovery@.service\t{}\tinactive\tinactive\t-\n\
         node-etcd-discovery@1.service\t{}\tlaunched\tloaded\t\t1c1eed63.../172.17.8.101\n\
         node-etcd-discovery@2.service\t{}\tlaunched\tloaded\t\t2c1eed63.../172.17.8.102\n\
         node-etcd-discovery@3.service\t{}\tlaunched\tloaded\t\t3c1eed63.../172.17.8.103\n\
         node-etcd@.service\t\t{}\tinactive\tinactive\t-\n\
         node-etcd@1.service\t\t{}\tlaunched\tlaunched\t1c1eed63.../172.17.8.101\n\
         node-etcd@2.service\t\t{}\tlaunched\tloaded\t\t2c1eed63.../172.17.8.102\n\
         node-etcd@3.service\t\t{}\tlaunched\tloaded\t\t3c1eed63.../172.17.8.103\n",
        h["node-etcd-discovery@.service"],
        h["node-etcd-discovery@1.service"],
        h["node-etcd-discovery@2.service"],
        h["node-etcd-discovery@3.service"],
        h["node-etcd@.service"],
        h["node-etcd@1.service"],
        h["node-etcd@2.service"],
        h["node-etcd@3.service"],
    );
    assert_eq!(env.ok(&["list-unit-files"]), expected);

    // --no-legend drops the header, --fields picks columns, --full the whole ID.
    let m1 = &machines[0].id;
    assert_eq!(
        env.ok(&["list-unit-files", "--no-legend", "--full", "--fields", "unit,target"])
            .lines()
            .find(|l| l.starts_with("node-etcd@1."))
            .unwrap(),
        format!("node-etcd@1.service\t\t{m1}/172.17.8.101")
    );
    let out = env.ctl(&["list-unit-files", "--fields", "unit,bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown column 'bogus'"));

    // JSON: full hash, null target for the unplaced templates.
    let n1 = json.iter().find(|u| u.unit == "node-etcd@1.service").unwrap();
    assert_eq!(
        (n1.dstate.as_str(), n1.state.as_str(), n1.target.as_deref()),
        ("launched", "launched", Some(m1.as_str()))
    );
    assert_eq!(n1.hash.len(), 64);
    let t = json.iter().find(|u| u.unit == "node-etcd@.service").unwrap();
    assert_eq!((t.dstate.as_str(), t.state.as_str(), t.target.as_deref()), ("inactive", "inactive", None));
    assert_eq!(json.len(), 8);
}

#[test]
fn list_units_and_list_machines_golden() {
    let (env, machines) = tutorial_cluster();
    assert_eq!(
        env.ok(&["list-units"]),
        "UNIT\t\t\t\tMACHINE\t\t\t\tACTIVE\tSUB\n\
         node-etcd-discovery@1.service\t1c1eed63.../172.17.8.101\t-\t-\n\
         node-etcd-discovery@2.service\t2c1eed63.../172.17.8.102\t-\t-\n\
         node-etcd-discovery@3.service\t3c1eed63.../172.17.8.103\t-\t-\n\
         node-etcd@1.service\t\t1c1eed63.../172.17.8.101\tactive\trunning\n\
         node-etcd@2.service\t\t2c1eed63.../172.17.8.102\t-\t-\n\
         node-etcd@3.service\t\t3c1eed63.../172.17.8.103\t-\t-\n"
    );
    assert_eq!(
        env.ok(&["list-machines"]),
        "MACHINE\t\tIP\t\tMETADATA\n\
         1c1eed63...\t172.17.8.101\tdisk=ssd,region=eu\n\
         2c1eed63...\t172.17.8.102\t-\n\
         3c1eed63...\t172.17.8.103\t-\n\
         4c1eed63...\t172.17.8.104\t-\n"
    );
    assert_eq!(
        env.ok(&["list-machines", "--no-legend", "--full", "--fields", "machine"]),
        machines.iter().map(|m| format!("{}\n", m.id)).collect::<String>()
    );

    let units: Vec<UnitJson> = lines(&env.ok(&["list-units", "--json"]));
    assert_eq!(units.len(), 6);
    let n1 = units.iter().find(|u| u.unit == "node-etcd@1.service").unwrap();
    assert_eq!(n1.machine, machines[0].id);
    assert_eq!((n1.active.as_deref(), n1.sub.as_deref()), (Some("active"), Some("running")));
    let n2 = units.iter().find(|u| u.unit == "node-etcd@2.service").unwrap();
    assert_eq!((n2.active.as_deref(), n2.sub.as_deref()), (None, None));

    let ms: Vec<MachineJson> = lines(&env.ok(&["list-machines", "--json"]));
    assert_eq!(ms.len(), 4);
    assert_eq!(ms[0].machine, machines[0].id);
    assert_eq!(ms[0].ip, "172.17.8.101");
    assert_eq!(ms[0].metadata.get("region").map(String::as_str), Some("eu"));
}

#[test]
fn list_announcements_shows_values_and_lease_ttls() {
    let env = Env::new();
    env.put("/announce/services/node-etcd1", "172.17.8.101:3000", Some(60));
    env.put("/announce/services/static", "10.0.0.1:80", None);
    env.put("/elsewhere/x", "y", None);
    assert_eq!(
        env.ok(&["list-announcements", "--fields", "key,value"]),
        "KEY\t\t\t\tVALUE\n\
         /announce/services/node-etcd1\t172.17.8.101:3000\n\
         /announce/services/static\t10.0.0.1:80\n"
    );
    let a: Vec<AnnouncementJson> = lines(&env.ok(&["list-announcements", "--json", "/announce/services/"]));
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].key, "/announce/services/node-etcd1");
    assert_eq!(a[0].value, "172.17.8.101:3000");
    assert!(a[0].ttl.is_some_and(|t| (1..=60).contains(&t)), "{:?}", a[0].ttl);
    assert_eq!(a[1].ttl, None);
    let table = env.ok(&["list-announcements", "--no-legend"]);
    assert!(table.lines().next().unwrap().ends_with('s'), "TTL column in seconds: {table}");
}

#[test]
fn help_version_and_bad_options() {
    let env = Env::new();
    let help = env.ok(&["--help"]);
    assert!(help.contains("EXAMPLES:") && help.contains("list-unit-files"), "{help}");
    let help = env.ok(&["list-unit-files", "--help"]);
    assert!(help.contains("JSON (--json)"), "{help}");
    assert!(env.ok(&["--version"]).starts_with("clusterctl "));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clusterctl"))
        .args(["--endpoints", "nohost", "list-units"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("clusterctl: endpoint 'nohost'"));
}
