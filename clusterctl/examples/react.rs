//! Times a scheduler's answer to a lost machine for `bench/react.sh`, from
//! outside it, as an operator would see it: from the machine's presence key
//! being deleted to the last of its units' new assignments arriving through
//! a watch on `assign/`. Not a tool: a benchmark fixture.
//!
//! Usage: react ENDPOINT PREFIX MACHINE_ID [--deleted]
//!        react ENDPOINT PREFIX --desired UNIT STATE
//!
//! With `--deleted` the key is gone already (no scheduler ran since): it
//! prints `ready` once its watch is in place, and the time runs from then,
//! for a scheduler started after that line. Prints `UNITS MILLISECONDS`.
//! With `--desired` it times another kind of change: from `desired/UNIT`
//! set to STATE to the unit's assignment rewritten with that state (deleted
//! for `inactive`).

use std::collections::BTreeSet;
use std::io::Write;
use std::time::{Duration, Instant};

use clusterctl::keys::{Dir, Keys};
use etcd_client::{Client, EventType, GetOptions, WatchOptions};

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let (endpoint, prefix, id, deleted) = match args.as_slice() {
        [_, e, p, flag, unit, state] if flag == "--desired" => return desired(e, p, unit, state),
        [_, e, p, m] => (e, p, m, false),
        [_, e, p, m, flag] if flag == "--deleted" => (e, p, m, true),
        _ => return Err("usage: react ENDPOINT PREFIX MACHINE_ID [--deleted] | --desired UNIT STATE".into()),
    };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let keys = Keys::new(prefix);
        let mut client = Client::connect([endpoint.as_str()], None).await.map_err(|e| e.to_string())?;
        let dir = keys.dir(Dir::Assign);
        let mine = format!("{dir}{id}/");
        let held = client
            .kv_client()
            .max_decoding_message_size(1 << 30)
            .get(mine.as_str(), Some(GetOptions::new().with_prefix().with_keys_only()))
            .await
            .map_err(|e| e.to_string())?;
        let revision = held.header().map_or(0, etcd_client::ResponseHeader::revision);
        let mut pending: BTreeSet<String> = held
            .kvs()
            .iter()
            .map(|kv| String::from_utf8_lossy(&kv.key()[mine.len()..]).into_owned())
            .collect();
        if pending.is_empty() {
            return Err(format!("machine {id} holds no units"));
        }
        let units = pending.len();
        let opts = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
        let mut stream = client.watch(dir.as_str(), Some(opts)).await.map_err(|e| e.to_string())?;
        let start = if deleted {
            println!("ready");
            std::io::stdout().flush().map_err(|e| e.to_string())?;
            Instant::now()
        } else {
            let start = Instant::now();
            client.delete(keys.machine(id), None).await.map_err(|e| e.to_string())?;
            start
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while !pending.is_empty() {
            let msg = tokio::time::timeout_at(deadline, stream.message())
                .await
                .map_err(|_| format!("{} of {units} units still not placed after 120 s", pending.len()))?
                .map_err(|e| e.to_string())?
                .ok_or("the watch ended")?;
            for ev in msg.events() {
                let Some(kv) = ev.kv() else { continue };
                if ev.event_type() != EventType::Put {
                    continue;
                }
                let key = String::from_utf8_lossy(&kv.key()[dir.len()..]).into_owned();
                if let Some((m, u)) = key.split_once('/') {
                    if m != id {
                        pending.remove(u);
                    }
                }
            }
        }
        println!("{units} {}", start.elapsed().as_millis());
        Ok(())
    })
}

/// `--desired UNIT STATE`: prints `1 MILLISECONDS`.
fn desired(endpoint: &str, prefix: &str, unit: &str, state: &str) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let keys = Keys::new(prefix);
        let mut client = Client::connect([endpoint], None).await.map_err(|e| e.to_string())?;
        let dir = keys.dir(Dir::Assign);
        let mut stream = client
            .watch(dir.as_str(), Some(WatchOptions::new().with_prefix()))
            .await
            .map_err(|e| e.to_string())?;
        let start = Instant::now();
        client.put(keys.desired(unit), state, None).await.map_err(|e| e.to_string())?;
        let want = format!("\"state\":\"{state}\"");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let msg = tokio::time::timeout_at(deadline, stream.message())
                .await
                .map_err(|_| format!("{unit}'s assignment not rewritten after 120 s"))?
                .map_err(|e| e.to_string())?
                .ok_or("the watch ended")?;
            let done = msg.events().iter().any(|ev| {
                let Some(kv) = ev.kv() else { return false };
                let mine = kv.key().ends_with(format!("/{unit}").as_bytes());
                match ev.event_type() {
                    EventType::Delete => mine && state == "inactive",
                    EventType::Put => mine && String::from_utf8_lossy(kv.value()).contains(&want),
                }
            });
            if done {
                println!("1 {}", start.elapsed().as_millis());
                return Ok(());
            }
        }
    })
}
