//! fleetkit's key layout in etcd, under a prefix (default `/fleetkit`).
//!
//! Only clusterctl (its verbs, the scheduler and the machine agent) reads
//! and writes these keys; announce's keys are users' own. Each kind of key
//! lives in its own directory ([`Dir`]) so that one range read takes all
//! of a kind, and a machine's part (`assign/ID/`) is one prefix it can
//! watch alone.

/// The directories under the prefix, one per kind of key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    /// `units/NAME`: unit records.
    Units,
    /// `desired/NAME`: desired states.
    Desired,
    /// `machines/ID`: machine records, each on its machine's lease.
    Machines,
    /// `assign/ID/NAME`: placements.
    Assign,
    /// `states/ID/NAME`: what machines report.
    States,
}

impl Dir {
    /// The directory's name in the key.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Units => "units",
            Self::Desired => "desired",
            Self::Machines => "machines",
            Self::Assign => "assign",
            Self::States => "states",
        }
    }
}

/// fleetkit's key layout under one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Checks a `--prefix` (or `FLEETKIT_PREFIX`): absolute, not empty, no
    /// control bytes or spaces, so that fleetkit never writes at etcd's root
    /// or into a keyspace nobody meant.
    ///
    /// # Errors
    /// A message naming the value and what to give instead.
    pub fn parse_prefix(prefix: &str) -> Result<String, String> {
        let shown = crate::cluster::shown(prefix.as_bytes());
        if prefix.is_empty() {
            return Err("the prefix is empty, which puts fleetkit's keys at etcd's root: \
                        give an absolute one such as /fleetkit"
                .into());
        }
        if !prefix.starts_with('/') {
            return Err(format!("prefix \"{shown}\" is not absolute: give /{shown}"));
        }
        if prefix.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(format!(
                "prefix \"{shown}\" holds spaces or control bytes: give a path such as /fleetkit"
            ));
        }
        Ok(prefix.to_owned())
    }

    /// The layout under `prefix`; a trailing `/` is ignored.
    #[must_use]
    pub fn new(prefix: &str) -> Self {
        Self { prefix: prefix.trim_end_matches('/').to_string() }
    }

    /// `units/NAME`: the unit record JSON (templates too).
    #[must_use]
    pub fn unit(&self, name: &str) -> String {
        format!("{}/units/{name}", self.prefix)
    }
    /// `desired/NAME`: inactive, loaded or launched.
    #[must_use]
    pub fn desired(&self, name: &str) -> String {
        format!("{}/desired/{name}", self.prefix)
    }
    /// `machines/ID`: the machine record, on the machine's lease.
    #[must_use]
    pub fn machine(&self, id: &str) -> String {
        format!("{}/machines/{id}", self.prefix)
    }
    /// `assign/ID/NAME`: unit NAME placed on machine ID, with the state the
    /// machine should bring it to (`{"hash","state"}`).
    #[must_use]
    pub fn assign(&self, machine: &str, name: &str) -> String {
        format!("{}/assign/{machine}/{name}", self.prefix)
    }
    /// `states/ID/NAME`: what machine ID reports for unit NAME (per machine,
    /// so a machine's role in etcd can be confined to its own prefix).
    #[must_use]
    pub fn state(&self, machine: &str, name: &str) -> String {
        format!("{}/states/{machine}/{name}", self.prefix)
    }
    /// `assign/ID/`: everything placed on machine ID, the one prefix its
    /// agent watches.
    #[must_use]
    pub fn assign_dir(&self, machine: &str) -> String {
        format!("{}/assign/{machine}/", self.prefix)
    }
    /// `states/ID/`: everything machine ID reports.
    #[must_use]
    pub fn states_dir(&self, machine: &str) -> String {
        format!("{}/states/{machine}/", self.prefix)
    }
    /// `election/scheduler`: the scheduler's election name.
    #[must_use]
    pub fn election(&self) -> String {
        format!("{}/election/scheduler", self.prefix)
    }
    /// The directory of one kind of key, with a trailing `/`.
    #[must_use]
    pub fn dir(&self, dir: Dir) -> String {
        format!("{}/{}/", self.prefix, dir.name())
    }
    /// The prefix itself with a trailing `/`: a key fleetkit never writes,
    /// for a read that wants only etcd's current revision.
    #[must_use]
    pub fn probe(&self) -> String {
        format!("{}/", self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_layout() {
        let k = Keys::new("/fleetkit/");
        assert_eq!(k.unit("a.service"), "/fleetkit/units/a.service");
        assert_eq!(k.assign("m1", "a.service"), "/fleetkit/assign/m1/a.service");
        assert_eq!(k.state("m1", "a.service"), "/fleetkit/states/m1/a.service");
        assert_eq!(k.assign_dir("m1"), "/fleetkit/assign/m1/");
        assert_eq!(k.states_dir("m1"), "/fleetkit/states/m1/");
        assert_eq!(k.dir(Dir::Machines), "/fleetkit/machines/");
        assert_eq!(k.dir(Dir::States), "/fleetkit/states/");
        assert_eq!(k.probe(), "/fleetkit/");
    }
}
