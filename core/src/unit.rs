//! Unit files, parsed and written exactly as systemd reads them
//! (systemd.syntax(7)).
//!
//! OWNER NOTE (remove when implemented): the data types below are the shared
//! contract; `UnitFile::parse` and `UnitFile::to_text` are to be implemented.

/// A parsed unit file: its sections in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UnitFile {
    pub sections: Vec<Section>,
}

/// One `[Name]` section with its entries in file order (repeated keys kept).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    /// 1-based line of the `[Name]` header.
    pub line: usize,
    pub entries: Vec<Entry>,
}

/// One `Key=Value` assignment, continuation lines already joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line where the assignment starts.
    pub line: usize,
}

impl UnitFile {
    /// The first section called `name`, if any.
    #[must_use]
    pub fn section(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }
}
