//! ArtStore's harness for driving real nodes from the outside, the way operators and applications
//! do, and its chaos tests (in the manner of Jepsen).
//!
//! - [`LocalCluster`]: `artstore cluster init`, every node a child process on its own loopback
//!   address; process faults (SIGKILL, SIGTERM, SIGSTOP/SIGCONT, restart, wiped data folder).
//!   Integration tests, benchmarks and the chaos scenarios all start clusters through it.
//! - [`proxy`]: a UDP fault proxy per ordered pair of nodes that the cluster transport passes
//!   through (`quic.dial`): partitions (also one-way), loss, delay with jitter, duplication,
//!   reordering.
//! - [`workload`] and [`history`]: concurrent clients whose every operation is recorded with its
//!   outcome (ok, failed, indeterminate).
//! - [`checker`]: after healing, every acknowledged upload is readable with its SHA-256 on every
//!   node, nothing appears that no client wrote or that was refused, one leader per term, identical
//!   catalogs (digests at one log position), plus the stale reads seen online.
//! - [`netns`]: as root, every node in its own network namespace on a bridge, partitioned by
//!   taking links down.
//! - [`scenario`] and [`report`]: the scenarios, the table, JSON and PNG timeline.
//! - [`chart`]: the text-free timeline drawing the report and the benchmarks share.

#![forbid(unsafe_code)]

pub mod chart;
pub mod checker;
mod cluster;
pub mod history;
pub mod netns;
pub mod proxy;
pub mod report;
pub mod scenario;
pub mod workload;

pub use cluster::{free_loopback, HarnessError, LocalCluster};
