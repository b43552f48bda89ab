//! The bench process's CPU time.

use std::time::Duration;

/// CPU time of this process so far (every thread), from `/proc/self/stat`.
pub fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat is readable");
    let fields: Vec<&str> = stat[stat.rfind(')').expect("a stat line") + 2..].split(' ').collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap_or(0) + fields[12].parse::<u64>().unwrap_or(0);
    // Linux reports in USER_HZ, 100 per second on every architecture it runs on.
    Duration::from_millis(ticks * 10)
}
