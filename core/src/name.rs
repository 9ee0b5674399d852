//! OWNER NOTE: to be implemented (name).
