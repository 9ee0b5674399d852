//! OWNER NOTE: to be implemented (notify).
