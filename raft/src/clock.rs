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
///
/// Times before 1970 show as the epoch and times after 9999 as the last millisecond of 9999
/// (RFC 3339 has four-digit years): formatting never fails, whatever a record holds.
///
/// ```
/// assert_eq!(artstore_raft::rfc3339(i64::MAX), "9999-12-31T23:59:59.999Z");
/// assert_eq!(artstore_raft::rfc3339(-5), "1970-01-01T00:00:00.000Z");
/// ```
pub fn rfc3339(ms: i64) -> String {
    let ms = ms.clamp(0, LAST_RFC3339_MS) as u64;
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// The last millisecond RFC 3339 can write: 9999-12-31T23:59:59.999Z.
pub const LAST_RFC3339_MS: i64 = 253_402_300_799_999;
