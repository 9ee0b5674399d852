//! OWNER NOTE: to be implemented (glob).
