//! The machine's presence: `machines/ID` on a lease that the agent renews.
//!
//! The lease is what the scheduler trusts: while it lives the machine's units
//! stay where they are; when it ends (the machine died, or was cut off for
//! longer than the TTL) they move. The lease ID is kept in a file under
//! `/run`, so an agent restarted within the TTL (an upgrade, a crash) resumes
//! the same lease and nothing moves; after a reboot `/run` is empty and the
//! machine starts afresh. Every state key the agent writes is on the same
//! lease, so a dead machine's reports vanish with it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use etcd_client::{Client, LeaseKeepAliveStream, LeaseKeeper, PutOptions};

/// How often to renew a lease of `ttl` seconds: a third of it, so two
/// renewals may fail before the lease ends.
#[must_use]
pub fn renew_period(ttl: i64) -> Duration {
    Duration::from_millis(u64::try_from(ttl).unwrap_or(1).max(1) * 1000 / 3)
}

/// How a renewal went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renewal {
    /// The lease lives; its remaining TTL.
    Alive,
    /// etcd says the lease is gone: the machine was away longer than its TTL.
    Expired,
}

/// The machine's lease and record.
pub struct Presence {
    lease: i64,
    ttl: i64,
    key: String,
    record: String,
    file: PathBuf,
    keeper: Option<(LeaseKeeper, LeaseKeepAliveStream)>,
}

impl std::fmt::Debug for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence").field("lease", &self.lease).field("key", &self.key).finish_non_exhaustive()
    }
}

impl Presence {
    /// Resumes the lease named in `file` if etcd still has it, or grants a
    /// new one; then puts `record` at `key` on it. Returns the presence and
    /// whether the lease was resumed.
    ///
    /// # Errors
    /// etcd's error (the caller retries).
    pub async fn establish(
        client: &Client,
        key: String,
        record: String,
        ttl: i64,
        file: &Path,
    ) -> Result<(Self, bool), etcd_client::Error> {
        let mut c = client.clone();
        let saved = std::fs::read_to_string(file).ok().and_then(|s| i64::from_str_radix(s.trim(), 16).ok());
        let mut resumed = None;
        if let Some(id) = saved {
            let live = c.lease_time_to_live(id, None).await?;
            if live.ttl() > 0 {
                resumed = Some(id);
            }
        }
        let mut presence =
            Self { lease: resumed.unwrap_or(0), ttl, key, record, file: file.to_path_buf(), keeper: None };
        if resumed.is_none() {
            presence.lease = c.lease_grant(ttl, None).await?.id();
            presence.save();
        }
        presence.put_record(client).await?;
        Ok((presence, resumed.is_some()))
    }

    /// The lease every key of this machine is attached to.
    #[must_use]
    pub fn lease(&self) -> i64 {
        self.lease
    }

    /// How long one renewal may take: a renewal period.
    #[must_use]
    pub fn every(&self) -> Duration {
        renew_period(self.ttl)
    }

    /// One keep-alive on the lease's stream (opened when needed).
    ///
    /// # Errors
    /// etcd's error or no answer within a renewal period; the stream is
    /// dropped and reopened on the next call.
    pub async fn renew(&mut self, client: &Client) -> Result<Renewal, String> {
        let every = self.every();
        let Some((keeper, stream)) = self.keeper.as_mut() else {
            // Opening the stream is itself a keep-alive (etcd-client sends one
            // and reads its answer), and says so when the lease is gone.
            return match tokio::time::timeout(every, client.clone().lease_keep_alive(self.lease)).await {
                Ok(Ok(pair)) => {
                    self.keeper = Some(pair);
                    Ok(Renewal::Alive)
                }
                Ok(Err(etcd_client::Error::LeaseKeepAliveError(m))) if m.contains("not found") => {
                    Ok(Renewal::Expired)
                }
                Ok(Err(e)) => Err(fleetkit_core::etcd::describe(&e)),
                Err(_) => Err(format!("no keep-alive answer within {every:?}")),
            };
        };
        let answer = tokio::time::timeout(every, async {
            keeper.keep_alive().await?;
            stream.message().await
        })
        .await;
        let result = match answer {
            Ok(Ok(Some(r))) if r.ttl() > 0 => return Ok(Renewal::Alive),
            Ok(Ok(Some(_))) => Ok(Renewal::Expired),
            Ok(Ok(None)) => Err("the keep-alive stream ended".to_owned()),
            Ok(Err(e)) => Err(fleetkit_core::etcd::describe(&e)),
            Err(_) => Err(format!("no keep-alive answer within {every:?}")),
        };
        self.keeper = None; // reopened on the next renewal
        result
    }

    /// A new lease after the old one expired, with the record put again.
    ///
    /// # Errors
    /// etcd's error.
    pub async fn regrant(&mut self, client: &Client) -> Result<(), etcd_client::Error> {
        self.keeper = None;
        self.lease = client.clone().lease_grant(self.ttl, None).await?.id();
        self.save();
        self.put_record(client).await
    }

    /// Ends the lease at once (the machine is shutting down: its units should
    /// move now, not after the TTL).
    pub async fn revoke(self, client: &Client) {
        let _ = client.clone().lease_revoke(self.lease).await;
        let _ = std::fs::remove_file(&self.file);
    }

    async fn put_record(&self, client: &Client) -> Result<(), etcd_client::Error> {
        let opts = PutOptions::new().with_lease(self.lease);
        client.clone().put(self.key.as_str(), self.record.as_str(), Some(opts)).await.map(drop)
    }

    fn save(&self) {
        if let Some(dir) = self.file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(&self.file, format!("{:x}\n", self.lease));
    }
}
