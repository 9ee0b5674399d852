//! `grant-machine`, `revoke-machine`, `grant-scheduler`: etcd roles that
//! confine each machine's agent, and each scheduler, to its own keys.
//!
//! Whoever can write `units/` or `assign/` runs code as root on the
//! machines. With these roles a stolen machine credential changes nothing
//! but that machine's presence (`machines/ID`) and reports (`states/ID/`),
//! and reads only the unit records and its own assignments. A scheduler
//! reads the cluster and writes `assign/` and its election, nothing else.
//! Every key a holder attaches to its lease is one it may write, so it may
//! also revoke that lease (etcd requires write on every key of a lease).

use std::io::Write;

use etcd_client::{Client, Permission, PermissionType, UserAddOptions};
use fleetkit_core::etcd::EtcdError;
use fleetkit_core::{Exit, ToolError};

use crate::error::Error;
use crate::keys::{Dir, Keys};

/// One grant of a role: what it may do on a key or prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub kind: PermissionType,
    pub key: String,
    pub prefix: bool,
}

impl Grant {
    fn new(kind: PermissionType, key: String, prefix: bool) -> Self {
        Self { kind, key, prefix }
    }

    /// Readwrite on an announcement prefix, for `announce` sidekicks.
    #[must_use]
    pub fn announce(prefix: String) -> Self {
        Self::new(PermissionType::Readwrite, prefix, true)
    }

    /// The end of the key range, as etcd stores it: empty for one key,
    /// the key with its last byte raised for a prefix.
    fn range_end(&self) -> Vec<u8> {
        if !self.prefix {
            return Vec::new();
        }
        let mut end = self.key.clone().into_bytes();
        while let Some(last) = end.pop() {
            if last < 0xff {
                end.push(last + 1);
                break;
            }
        }
        end
    }

    fn permission(&self) -> Permission {
        Permission::new(self.kind, self.key.as_str()).with_range_end(self.range_end())
    }
}

/// What machine `id`'s agent needs, and nothing more: the unit records,
/// its own assignments (read, watched), its record and its reports.
#[must_use]
pub fn machine_grants(keys: &Keys, id: &str) -> Vec<Grant> {
    use PermissionType::{Read, Readwrite};
    vec![
        Grant::new(Read, keys.dir(Dir::Units), true),
        Grant::new(Read, keys.assign_dir(id), true),
        Grant::new(Readwrite, keys.machine(id), false),
        Grant::new(Readwrite, keys.states_dir(id), true),
    ]
}

/// What `schedule` and `schedule --watch` need: read the cluster (the
/// revision probe, units, desired states, machines), write assignments,
/// and campaign in the election.
#[must_use]
pub fn scheduler_grants(keys: &Keys) -> Vec<Grant> {
    use PermissionType::{Read, Readwrite};
    vec![
        Grant::new(Read, keys.probe(), false),
        Grant::new(Read, keys.dir(Dir::Units), true),
        Grant::new(Read, keys.dir(Dir::Desired), true),
        Grant::new(Read, keys.dir(Dir::Machines), true),
        Grant::new(Readwrite, keys.dir(Dir::Assign), true),
        Grant::new(Readwrite, format!("{}/", keys.election()), true),
    ]
}

/// A machine ID or scheduler name as part of a role name and a key:
/// letters, digits, `-`, `_`, `.`.
///
/// # Errors
/// The value, escaped, and the rule (exit 2).
pub fn check_name(what: &str, value: &str) -> Result<(), ToolError> {
    let ok = !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if ok {
        return Ok(());
    }
    let shown = crate::cluster::shown(value.as_bytes());
    Err(ToolError::usage(format!("{what} \"{shown}\": use letters, digits, '-', '_' and '.' only")))
}

/// The role (and default user) name of machine `id`.
#[must_use]
pub fn machine_role(id: &str) -> String {
    format!("fleetkit-machine-{id}")
}

/// The role (and default user) name of scheduler `name`.
#[must_use]
pub fn scheduler_role(name: &str) -> String {
    format!("fleetkit-scheduler-{name}")
}

/// How the user of a grant logs in.
#[derive(Debug, Clone)]
pub enum Login {
    /// With this password (read from stdin).
    Password(String),
    /// By TLS client certificate only: the certificate's CN is the user.
    Certificate,
}

/// Reads the password from stdin's first line (as `etcdctl --interactive=false`).
///
/// # Errors
/// An empty or unreadable stdin (exit 2).
pub fn password_from_stdin() -> Result<String, ToolError> {
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).map_err(|e| ToolError::usage(format!("stdin: {e}")))?;
    let password = line.trim_end_matches(['\n', '\r']).to_owned();
    if password.is_empty() {
        return Err(ToolError::usage(
            "--password-stdin: stdin holds no password (give it on the first line, or use --no-password \
             for client-certificate login)",
        ));
    }
    Ok(password)
}

/// Creates (or brings up to date) `role` with exactly `grants` and a user
/// `user` holding it, and prints what was granted as `etcdctl role get`
/// shows it.
///
/// # Errors
/// etcd's error (auth not enabled, not root: exit 2; unreachable: 75).
pub async fn grant(
    client: &Client,
    role: &str,
    user: &str,
    login: &Login,
    grants: &[Grant],
    out: &mut impl Write,
) -> Result<Exit, ToolError> {
    let mut auth = client.auth_client();
    match auth.role_add(role).await {
        Ok(_) => writeln!(out, "Role {role} created")?,
        Err(e) if already(&e) => writeln!(out, "Role {role} exists")?,
        Err(e) => return Err(Error::from(EtcdError::new(format!("adding role {role}"), e)).into()),
    }
    // Exactly these grants: anything else the role holds is taken away.
    let held = auth.role_get(role).await.map_err(EtcdError::doing("reading the role"))?.permissions();
    for p in held {
        let wanted = grants.iter().any(|g| {
            g.key.as_bytes() == p.key() && g.range_end() == p.range_end() && g.kind as i32 == p.get_type()
        });
        if !wanted {
            let opts = etcd_client::RoleRevokePermissionOptions::new().with_range_end(p.range_end().to_vec());
            auth.role_revoke_permission(role, p.key().to_vec(), Some(opts))
                .await
                .map_err(EtcdError::doing("revoking a permission"))?;
        }
    }
    for g in grants {
        auth.role_grant_permission(role, g.permission())
            .await
            .map_err(|e| EtcdError::new(format!("granting {} on {}", kind(g.kind), g.key), e))?;
    }
    let opts = match login {
        Login::Password(_) => None,
        Login::Certificate => Some(UserAddOptions::new().with_no_pwd()),
    };
    let password = match login {
        Login::Password(p) => p.as_str(),
        Login::Certificate => "",
    };
    match auth.user_add(user, password, opts).await {
        Ok(_) => writeln!(out, "User {user} created")?,
        Err(e) if already(&e) => {
            if let Login::Password(p) = login {
                auth.user_change_password(user, p.as_str())
                    .await
                    .map_err(EtcdError::doing("changing the password"))?;
                writeln!(out, "User {user} exists: password changed")?;
            } else {
                writeln!(out, "User {user} exists")?;
            }
        }
        Err(e) => return Err(EtcdError::new(format!("adding user {user}"), e).into()),
    }
    auth.user_grant_role(user, role).await.map_err(EtcdError::doing("granting the role"))?;
    writeln!(out, "Role {role} is granted to user {user}")?;
    show(client, role, out).await?;
    Ok(Exit::SUCCESS)
}

/// Removes `user` and `role`; either may already be gone.
///
/// # Errors
/// etcd's error.
pub async fn revoke(
    client: &Client,
    role: &str,
    user: &str,
    out: &mut impl Write,
) -> Result<Exit, ToolError> {
    let mut auth = client.auth_client();
    match auth.user_delete(user).await {
        Ok(_) => writeln!(out, "User {user} deleted")?,
        Err(e) if not_found(&e) => writeln!(out, "User {user} was not there")?,
        Err(e) => return Err(EtcdError::new(format!("deleting user {user}"), e).into()),
    }
    match auth.role_delete(role).await {
        Ok(_) => writeln!(out, "Role {role} deleted")?,
        Err(e) if not_found(&e) => writeln!(out, "Role {role} was not there")?,
        Err(e) => return Err(EtcdError::new(format!("deleting role {role}"), e).into()),
    }
    Ok(Exit::SUCCESS)
}

/// `etcdctl role get`'s layout.
async fn show(client: &Client, role: &str, out: &mut impl Write) -> Result<(), ToolError> {
    let perms = client
        .auth_client()
        .role_get(role)
        .await
        .map_err(EtcdError::doing("reading the role"))?
        .permissions();
    writeln!(out, "Role {role}")?;
    for (title, want) in [("KV Read:", PermissionType::Read), ("KV Write:", PermissionType::Write)] {
        writeln!(out, "{title}")?;
        for p in &perms {
            let t = p.get_type();
            if t == want as i32 || t == PermissionType::Readwrite as i32 {
                let key = String::from_utf8_lossy(p.key());
                if p.range_end().is_empty() {
                    writeln!(out, "\t{key}")?;
                } else {
                    let end = String::from_utf8_lossy(p.range_end());
                    writeln!(out, "\t[{key}, {end}) (prefix {key})")?;
                }
            }
        }
    }
    Ok(())
}

fn kind(k: PermissionType) -> &'static str {
    match k {
        PermissionType::Read => "read",
        PermissionType::Write => "write",
        PermissionType::Readwrite => "readwrite",
    }
}

fn message(e: &etcd_client::Error) -> String {
    match e {
        etcd_client::Error::GRpcStatus(s) => s.message().to_owned(),
        other => other.to_string(),
    }
}

fn already(e: &etcd_client::Error) -> bool {
    message(e).contains("already exists")
}

fn not_found(e: &etcd_client::Error) -> bool {
    message(e).contains("not found")
}
