//! fleetkit-tests: the real parts every fleetkit test runs against.
//!
//! No mocks: `etcd` starts etcd members from Debian's `etcd-server` on free
//! loopback ports (one node or a three-node cluster) and can stop, kill and
//! restart them; `docker` builds a busybox image locally and runs a registry
//! on loopback; `lab` starts real machines (systemd, sshd and a Docker engine
//! each, at their own IPs) and a three-member etcd on a network of their own;
//! `notify` is an sd_notify socket a test can read. Everything a
//! test starts is owned by a guard value and torn down on drop, so a failing
//! test leaves nothing behind.

pub mod bin;
pub mod docker;
pub mod etcd;
pub mod lab;
pub mod notify;
pub mod port;
pub mod tls;
pub mod wait;
