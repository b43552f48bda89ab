//! What a run cost the machine, per operation: CPU time and context switches of every process
//! (from `/proc/stat`, so the nodes, the load generator and anything else running), the spawned
//! nodes' own CPU time (from `/proc/PID/stat`), and the nodes' durability calls by kind (from
//! their `artstore_syncs_total` counters). These move apart from machine noise: a run on a slow
//! minute has the same CPU per upload, a change that removes work has less.

use std::collections::BTreeMap;

use serde::Serialize;

/// `/proc` reports CPU time in clock ticks of 1/100 s (USER_HZ) on Linux.
const TICKS_PER_SEC: f64 = 100.0;

/// One reading of the counters.
pub struct Reading {
    busy_ticks: u64,
    context_switches: u64,
    node_ticks: Option<u64>,
    syncs: BTreeMap<String, f64>,
}

/// Per operation, between two readings.
#[derive(Serialize, Clone, Debug)]
pub struct Usage {
    /// CPU time of the whole machine (user, system, interrupts; idle and I/O wait left out).
    pub cpu_ms: f64,
    /// CPU time of the spawned nodes alone (absent against `--url`).
    pub node_cpu_ms: Option<f64>,
    /// Context switches of the whole machine.
    pub context_switches: f64,
    /// Durability calls of all nodes together.
    pub syncs: f64,
    /// The same by kind (`raft_db`, `element_syncfs`, `file`, `search_commit`).
    pub syncs_by_kind: BTreeMap<String, f64>,
}

/// `(busy ticks, context switches)` of the machine.
fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut busy = 0;
    let mut ctxt = 0;
    for line in stat.lines() {
        let mut f = line.split_whitespace();
        match f.next() {
            // user nice system idle iowait irq softirq steal ...
            Some("cpu") => {
                let v: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
                busy = [0usize, 1, 2, 5, 6, 7].iter().filter_map(|&i| v.get(i)).sum();
            }
            Some("ctxt") => ctxt = f.next().and_then(|x| x.parse().ok()).unwrap_or(0),
            _ => {}
        }
    }
    (busy, ctxt)
}

/// utime + stime of a process, all its threads (fields 14 and 15 of `/proc/PID/stat`).
fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count from after it.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Sums `artstore_syncs_total{kind="…"}` by kind over the nodes' `/metrics`.
async fn syncs(http: &reqwest::Client, urls: &[String], token: &str) -> BTreeMap<String, f64> {
    let mut by_kind = BTreeMap::new();
    for url in urls {
        let Ok(r) = http.get(format!("{url}/metrics")).bearer_auth(token).send().await else { continue };
        let Ok(text) = r.text().await else { continue };
        for (kind, value) in parse_syncs(&text) {
            *by_kind.entry(kind).or_insert(0.0) += value;
        }
    }
    by_kind
}

fn parse_syncs(text: &str) -> Vec<(String, f64)> {
    samples(text, "artstore_syncs_total")
        .filter_map(|(labels, value)| {
            let kind = labels.split(',').find_map(|p| p.strip_prefix("kind=\""))?.trim_end_matches('"');
            Some((kind.to_string(), value))
        })
        .collect()
}

/// Every sample of metric `name` in a Prometheus text page: its labels (without braces, empty
/// when it has none) and its value.
pub fn samples<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
    text.lines().filter_map(move |l| {
        let rest = l.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        Some((labels, value.trim().parse().ok()?))
    })
}

pub async fn read(http: &reqwest::Client, urls: &[String], token: &str, pids: &[u32]) -> Reading {
    let syncs = syncs(http, urls, token).await;
    let (busy_ticks, context_switches) = machine();
    let node_ticks = (!pids.is_empty()).then(|| pids.iter().filter_map(|&p| process_ticks(p)).sum());
    Reading { busy_ticks, context_switches, node_ticks, syncs }
}

pub fn per_op(before: &Reading, after: &Reading, ops: u64) -> Option<Usage> {
    if ops == 0 {
        return None;
    }
    let n = ops as f64;
    let ms = |ticks: u64| ticks as f64 / TICKS_PER_SEC * 1000.0 / n;
    let syncs_by_kind: BTreeMap<String, f64> =
        after.syncs.iter().map(|(k, v)| (k.clone(), (v - before.syncs.get(k).copied().unwrap_or(0.0)) / n)).collect();
    Some(Usage {
        cpu_ms: ms(after.busy_ticks.saturating_sub(before.busy_ticks)),
        node_cpu_ms: after.node_ticks.zip(before.node_ticks).map(|(a, b)| ms(a.saturating_sub(b))),
        context_switches: after.context_switches.saturating_sub(before.context_switches) as f64 / n,
        syncs: syncs_by_kind.values().sum(),
        syncs_by_kind,
    })
}

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "per op: CPU {:.2} ms (all processes)", self.cpu_ms)?;
        if let Some(n) = self.node_cpu_ms {
            write!(f, ", {n:.2} ms in the nodes")?;
        }
        write!(f, "; {:.0} context switches; {:.2} syncs", self.context_switches, self.syncs)?;
        let kinds: Vec<String> = self.syncs_by_kind.iter().map(|(k, v)| format!("{k} {v:.2}")).collect();
        if !kinds.is_empty() {
            write!(f, " ({})", kinds.join(", "))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_counters_are_read_by_kind() {
        let text = "# TYPE artstore_syncs_total counter\nartstore_syncs_total{kind=\"raft_db\"} 12\n\
                    artstore_syncs_total{node=\"1\",kind=\"file\"} 4\nartstore_other{kind=\"x\"} 9\n";
        assert_eq!(parse_syncs(text), vec![("raft_db".to_string(), 12.0), ("file".to_string(), 4.0)]);
    }

    #[test]
    fn samples_are_read_with_and_without_labels_and_never_by_a_longer_name() {
        let text = "# HELP lag x\nlag{consumer=\"index\"} 3\nlag{consumer=\"sidecars\"} 0\nlag_total 9\nlag 4\n";
        let got: Vec<(&str, f64)> = samples(text, "lag").collect();
        assert_eq!(got, vec![("consumer=\"index\"", 3.0), ("consumer=\"sidecars\"", 0.0), ("", 4.0)]);
        assert_eq!(samples("lag{a=\"b\"} not-a-number\n", "lag").count(), 0);
    }

    #[test]
    fn this_process_and_the_machine_have_counters() {
        let (busy, ctxt) = machine();
        assert!(busy > 0 && ctxt > 0);
        assert!(process_ticks(std::process::id()).is_some());
    }
}
