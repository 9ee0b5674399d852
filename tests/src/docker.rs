//! OWNER NOTE: to be implemented (docker).
