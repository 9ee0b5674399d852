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
use etcd_client::{Client, EventType, GetOptions, WatchOptions, WatchResponse, WatchStream};

/// How long either measure waits before it gives up.
const LIMIT: Duration = Duration::from_secs(120);

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().collect();
    let usage = || "usage: react ENDPOINT PREFIX MACHINE_ID [--deleted] | --desired UNIT STATE".to_owned();
    let [_, endpoint, prefix, rest @ ..] = args.as_slice() else { return Err(usage()) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let keys = Keys::new(prefix);
        let client = Client::connect([endpoint.as_str()], None).await.map_err(|e| e.to_string())?;
        match rest {
            [flag, unit, state] if flag == "--desired" => desired(client, &keys, unit, state).await,
            [id] => lost(client, &keys, id, false).await,
            [id, flag] if flag == "--deleted" => lost(client, &keys, id, true).await,
            _ => Err(usage()),
        }
    })
}

/// The next watch response, or why there is none before `deadline`.
async fn next(
    stream: &mut WatchStream,
    deadline: tokio::time::Instant,
    late: impl FnOnce() -> String,
) -> Result<WatchResponse, String> {
    tokio::time::timeout_at(deadline, stream.message())
        .await
        .map_err(|_| late())?
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "the watch ended".to_owned())
}

/// Machine `id` lost: prints `UNITS MILLISECONDS`.
async fn lost(mut client: Client, keys: &Keys, id: &str, deleted: bool) -> Result<(), String> {
    let dir = keys.dir(Dir::Assign);
    let mine = format!("{dir}{id}/");
    let held = client
        .kv_client()
        .max_decoding_message_size(1 << 30)
        .get(mine.as_str(), Some(GetOptions::new().with_prefix().with_keys_only()))
        .await
        .map_err(|e| e.to_string())?;
    let revision = held.header().map_or(0, etcd_client::ResponseHeader::revision);
    let mut pending: BTreeSet<String> =
        held.kvs().iter().map(|kv| String::from_utf8_lossy(&kv.key()[mine.len()..]).into_owned()).collect();
    if pending.is_empty() {
        return Err(format!("machine {id} holds no units"));
    }
    let units = pending.len();
    let opts = WatchOptions::new().with_prefix().with_start_revision(revision + 1);
    let mut stream = client.watch(dir.as_str(), Some(opts)).await.map_err(|e| e.to_string())?;
    let start = Instant::now();
    if deleted {
        println!("ready");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
    } else {
        client.delete(keys.machine(id), None).await.map_err(|e| e.to_string())?;
    }
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !pending.is_empty() {
        let left = pending.len();
        let msg = next(&mut stream, deadline, || {
            format!("{left} of {units} units still not placed after {LIMIT:?}")
        })
        .await?;
        for ev in msg.events().iter().filter(|ev| ev.event_type() == EventType::Put) {
            let Some(kv) = ev.kv() else { continue };
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
}

/// `--desired UNIT STATE`: prints `1 MILLISECONDS`.
async fn desired(mut client: Client, keys: &Keys, unit: &str, state: &str) -> Result<(), String> {
    let dir = keys.dir(Dir::Assign);
    let mut stream = client
        .watch(dir.as_str(), Some(WatchOptions::new().with_prefix()))
        .await
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    client.put(keys.desired(unit), state, None).await.map_err(|e| e.to_string())?;
    let want = format!("\"state\":\"{state}\"");
    let suffix = format!("/{unit}");
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let msg =
            next(&mut stream, deadline, || format!("{unit}'s assignment not rewritten after {LIMIT:?}"))
                .await?;
        let done = msg.events().iter().any(|ev| {
            let Some(kv) = ev.kv() else { return false };
            kv.key().ends_with(suffix.as_bytes())
                && match ev.event_type() {
                    EventType::Delete => state == "inactive",
                    EventType::Put => String::from_utf8_lossy(kv.value()).contains(&want),
                }
        });
        if done {
            println!("1 {}", start.elapsed().as_millis());
            return Ok(());
        }
    }
}
