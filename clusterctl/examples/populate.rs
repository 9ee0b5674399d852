//! Fills an etcd with a large cluster for `bench/clusterctl.sh` and
//! `bench/react.sh`: MACHINES machine records and UNITS launched units
//! (instances of two templates, as `clusterctl start` would store them),
//! written in transactions of 128 operations, several in flight; with BIG,
//! also two machines with `pool=big` (numbers MACHINES and MACHINES + 1)
//! and BIG units that run only there, so each holds BIG / 2. Machine N's ID
//! is N in 8 hex digits, then N * 7919 in 24. Not a tool: a benchmark
//! fixture.
//!
//! Usage: populate ENDPOINT PREFIX UNITS MACHINES [BIG]

use std::collections::BTreeMap;

use clusterctl::cluster::Cluster;
use clusterctl::keys::Keys;
use clusterctl::units;
use etcd_client::{Client, TxnOp};
use fleetkit_core::records::MachineRecord;

const WEB: &str = "[Unit]\nDescription=web %i\n\n[Service]\nExecStart=/usr/bin/dockrun --name web%i -p 8080 example/web\n\n[X-Fleet]\nMachineMetadata=role=web\n";
const BIG: &str = "[Unit]\nDescription=big %i\n\n[Service]\nExecStart=/usr/bin/dockrun --name big%i example/big\n\n[X-Fleet]\nMachineMetadata=pool=big\n";
const WORKER: &str =
    "[Unit]\nDescription=worker %i\n\n[Service]\nExecStart=/usr/bin/dockrun --name worker%i example/worker\n";

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (endpoint, prefix, units, machines, big) = match args.as_slice() {
        [_, e, p, u, m] => (e, p, u, m, "0"),
        [_, e, p, u, m, b] => (e, p, u, m, b.as_str()),
        _ => return Err("usage: populate ENDPOINT PREFIX UNITS MACHINES [BIG]".into()),
    };
    let big: usize = big.parse().map_err(|e| format!("BIG: {e}"))?;
    let units: usize = units.parse().map_err(|e| format!("UNITS: {e}"))?;
    let machines: usize = machines.parse().map_err(|e| format!("MACHINES: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let client = Client::connect([endpoint.as_str()], None).await.map_err(|e| e.to_string())?;
        let cluster = Cluster { client, keys: Keys::new(prefix) };
        // Machines are records under a lease (a record without one is not a
        // machine); an hour outlasts any bench run.
        let lease = cluster.client.clone().lease_grant(3600, None).await.map_err(|e| e.to_string())?.id();
        let mut ops = Vec::with_capacity(machines + 2 * units);
        let pool = if big > 0 { 2 } else { 0 };
        for m in 0..machines + pool {
            let id = format!("{m:08x}{:024x}", m * 7919);
            let mut metadata = BTreeMap::new();
            if m >= machines {
                metadata.insert("pool".to_string(), "big".to_string());
            } else {
                metadata.insert("role".to_string(), if m % 2 == 0 { "web" } else { "worker" }.to_string());
            }
            let rec = MachineRecord {
                id: id.clone(),
                ip: format!("10.{}.{}.{}", m >> 16, (m >> 8) & 255, m & 255),
                metadata,
                agent: None,
            };
            ops.push(TxnOp::put(
                cluster.keys.machine(&id),
                serde_json::to_string(&rec).map_err(|e| e.to_string())?,
                Some(etcd_client::PutOptions::new().with_lease(lease)),
            ));
        }
        for i in 0..units + big {
            let (template, text) = if i >= units {
                ("big@.service", BIG)
            } else if i % 2 == 0 {
                ("web@.service", WEB)
            } else {
                ("worker@.service", WORKER)
            };
            let rec = units::expand(template, text, Some(&i.to_string()))?;
            ops.push(TxnOp::put(cluster.keys.desired(&rec.name), "launched", None));
            ops.push(TxnOp::put(
                cluster.keys.unit(&rec.name),
                serde_json::to_string(&rec).map_err(|e| e.to_string())?,
                None,
            ));
        }
        cluster.write(ops, &[]).await.map_err(|e| e.to_string())?;
        Ok(())
    })
}
