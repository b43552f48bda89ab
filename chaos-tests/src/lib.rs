//! ArtStore's harness for driving real nodes from the outside, the way operators and applications
//! do: it creates cluster files with `artstore cluster init`, starts every node as a child process
//! on its own loopback address, and injects process faults (SIGKILL, SIGTERM, restart).
//!
//! Integration tests, benchmarks and the chaos scenarios all start clusters through
//! [`LocalCluster`], so there is one way to do it.

#![forbid(unsafe_code)]

mod cluster;

pub use cluster::{free_loopback, HarnessError, LocalCluster};
