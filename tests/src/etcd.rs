//! OWNER NOTE: to be implemented (etcd).
