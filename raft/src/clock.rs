//! Time as the catalog records it: Unix milliseconds, shown as RFC 3339. One definition for the
//! whole server, so that every record, sidecar and response agrees on the format.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Unix milliseconds as RFC 3339 with milliseconds, in UTC (`2026-12-02T01:22:04.123Z`).
///
/// ```
/// assert_eq!(artstore_raft::rfc3339(0), "1970-01-01T00:00:00.000Z");
/// assert_eq!(artstore_raft::rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
/// ```
pub fn rfc3339(ms: i64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.max(0) as u64)).to_string()
}
