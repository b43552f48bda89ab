//! The machine's own limits, measured in about a second at the start of every run, so that each
//! result reads as a share of what the hardware allows: sequential write with fdatasync (and the
//! page-cache read of what was written), random 4 KiB writes each followed by fdatasync, SHA-256
//! on one core, and one loopback TCP stream.
//!
//! The disk figures come from the filesystem of the temporary folder, which is where `--spawn`
//! clusters keep their data; against `--url` they describe the load generator's machine, which
//! may not be the nodes'. A workload names the limit that bounds it ([`Bound`]); rows without one
//! (searches, tokens, fail-over) show none.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::files::pseudo_random;

const MIB: f64 = 1024.0 * 1024.0;
/// Size of each sequential write, and of the buffer hashed and sent over loopback.
const PIECE: usize = 4 << 20;
/// Written sequentially (then read back, then overwritten at random places).
const SEQUENTIAL: usize = 256 << 20;
const HASHED: usize = 128 << 20;
const LOOPBACK: usize = 256 << 20;
/// Random 4 KiB synced writes stop after this long or this many, whichever comes first.
const SYNCED_BUDGET: Duration = Duration::from_millis(300);
const SYNCED_MAX: u32 = 2000;

/// What this machine can do at most, on the paths a workload depends on.
#[derive(Debug, Clone, Serialize)]
pub struct Limits {
    /// Sequential write in 4 MiB pieces with one fdatasync at the end, MiB/s.
    pub seq_write_mib_s: f64,
    /// Sequential read of that file back from the page cache (as a freshly uploaded file's
    /// chunks are read), MiB/s.
    pub cached_read_mib_s: f64,
    /// 4 KiB writes at random places of that file, each followed by fdatasync, per second.
    pub synced_4k_writes_per_s: f64,
    /// SHA-256 on one core, MiB/s.
    pub sha256_mib_s: f64,
    /// One TCP stream over 127.0.0.1, MiB/s.
    pub loopback_tcp_mib_s: f64,
    /// How long measuring took, seconds.
    pub took_s: f64,
}

/// Which limit bounds a workload's rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Bound {
    /// Operations/s against 4 KiB writes each followed by fdatasync: every operation waits for at
    /// least one small durable write.
    SyncedWrites,
    /// MiB/s against sequential write with fdatasync divided by the replication factor: every
    /// byte is written that many times, here all on the one disk.
    SequentialWriteOver(u32),
    /// Bytes read per second (`bytes_per_op` × the row's rate) against the least of the cached
    /// read, SHA-256 and loopback TCP: every byte read is re-hashed and crosses loopback.
    VerifiedRead { bytes_per_op: f64 },
}

/// A row's rate as a share of the limit that bounds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Share {
    /// The limit, named with its value, e.g. `SHA-256 1114 MiB/s`.
    pub limit: String,
    /// The limit in the row's own unit (operations/s, or MiB/s for rate rows).
    pub limit_per_sec: f64,
    /// The row's rate ÷ `limit_per_sec`.
    pub fraction: f64,
}

impl Limits {
    /// `rate` (in the row's unit) as a share of the limit `bound` names.
    pub fn share(&self, bound: Bound, rate: f64) -> Share {
        let (limit, limit_per_sec) = match bound {
            Bound::SyncedWrites => {
                let l = self.synced_4k_writes_per_s;
                (format!("4 KiB write+fdatasync {l:.0}/s"), l)
            }
            Bound::SequentialWriteOver(r) => {
                let l = self.seq_write_mib_s / f64::from(r.max(1));
                (format!("write+fdatasync ÷ R={r} {l:.0} MiB/s"), l)
            }
            Bound::VerifiedRead { bytes_per_op } => {
                let (name, mib_s) = [
                    ("cached read", self.cached_read_mib_s),
                    ("SHA-256", self.sha256_mib_s),
                    ("loopback TCP", self.loopback_tcp_mib_s),
                ]
                .into_iter()
                .fold(("", f64::INFINITY), |least, l| if l.1 < least.1 { l } else { least });
                (format!("{name} {mib_s:.0} MiB/s"), mib_s * MIB / bytes_per_op.max(1.0))
            }
        };
        let fraction = if limit_per_sec > 0.0 { rate / limit_per_sec } else { 0.0 };
        Share { limit, limit_per_sec, fraction }
    }

    pub fn print(&self) {
        println!("machine limits (measured in {:.1} s, on the temporary folder's filesystem):", self.took_s);
        println!("  {:<36} {:>8.0} MiB/s", "sequential write + fdatasync", self.seq_write_mib_s);
        println!("  {:<36} {:>8.0} MiB/s", "sequential read, page cache", self.cached_read_mib_s);
        println!("  {:<36} {:>8.0} /s", "4 KiB random write + fdatasync", self.synced_4k_writes_per_s);
        println!("  {:<36} {:>8.0} MiB/s", "SHA-256, one core", self.sha256_mib_s);
        println!("  {:<36} {:>8.0} MiB/s", "loopback TCP, one stream", self.loopback_tcp_mib_s);
    }
}

/// Measures every limit, the disk ones in a scratch file in `dir` (removed afterwards). Blocks
/// for about a second: call it off the async reactor.
pub fn measure(dir: &Path) -> anyhow::Result<Limits> {
    let started = Instant::now();
    let data = pseudo_random(PIECE, 0x11);
    let mut scratch = tempfile::Builder::new().prefix(".artstore-bench-limits").tempfile_in(dir)?;
    let seq_write_mib_s = sequential_write(scratch.as_file_mut(), &data)?;
    let cached_read_mib_s = cached_read(scratch.path())?;
    let synced_4k_writes_per_s = synced_small_writes(scratch.as_file(), &data)?;
    drop(scratch);
    Ok(Limits {
        seq_write_mib_s,
        cached_read_mib_s,
        synced_4k_writes_per_s,
        sha256_mib_s: sha256(&data),
        loopback_tcp_mib_s: loopback_tcp(&data)?,
        took_s: started.elapsed().as_secs_f64(),
    })
}

fn mib_s(bytes: usize, took: Duration) -> f64 {
    bytes as f64 / MIB / took.as_secs_f64().max(1e-9)
}

fn sequential_write(f: &mut std::fs::File, piece: &[u8]) -> std::io::Result<f64> {
    let started = Instant::now();
    for _ in 0..SEQUENTIAL / piece.len() {
        f.write_all(piece)?;
    }
    f.sync_data()?;
    Ok(mib_s(SEQUENTIAL, started.elapsed()))
}

fn cached_read(path: &Path) -> std::io::Result<f64> {
    let mut f = std::fs::File::open(path)?;
    let mut buf = vec![0u8; PIECE];
    let (started, mut read) = (Instant::now(), 0);
    loop {
        match f.read(&mut buf)? {
            0 => break,
            n => read += n,
        }
    }
    Ok(mib_s(read, started.elapsed()))
}

/// 4 KiB-aligned overwrites at pseudo-random places of the (already allocated) file, each made
/// durable before the next, as a small upload's chunk must be before it is acknowledged.
fn synced_small_writes(f: &std::fs::File, data: &[u8]) -> std::io::Result<f64> {
    const PAGE: u64 = 4096;
    let pages = SEQUENTIAL as u64 / PAGE;
    let (started, mut n, mut x) = (Instant::now(), 0u32, 0x9E37_79B9_7F4A_7C15u64);
    while n < SYNCED_MAX && (n < 10 || started.elapsed() < SYNCED_BUDGET) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let from = (x % (data.len() as u64 / PAGE)) * PAGE;
        f.write_all_at(&data[from as usize..(from + PAGE) as usize], (x >> 20) % pages * PAGE)?;
        f.sync_data()?;
        n += 1;
    }
    Ok(f64::from(n) / started.elapsed().as_secs_f64().max(1e-9))
}

fn sha256(data: &[u8]) -> f64 {
    use sha2::Digest;
    let started = Instant::now();
    let mut h = sha2::Sha256::new();
    for _ in 0..HASHED / data.len() {
        h.update(data);
    }
    std::hint::black_box(h.finalize());
    mib_s(HASHED, started.elapsed())
}

fn loopback_tcp(data: &[u8]) -> std::io::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let receiver = std::thread::spawn(move || -> std::io::Result<usize> {
        let (mut s, _) = listener.accept()?;
        let (mut buf, mut got) = (vec![0u8; 1 << 20], 0);
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(got),
                n => got += n,
            }
        }
    });
    let started = Instant::now();
    let mut s = TcpStream::connect(addr)?;
    for _ in 0..LOOPBACK / data.len() {
        s.write_all(data)?;
    }
    s.shutdown(std::net::Shutdown::Write)?;
    let got = receiver.join().map_err(|_| std::io::Error::other("loopback receiver panicked"))??;
    let took = started.elapsed();
    if got != LOOPBACK {
        return Err(std::io::Error::other(format!("loopback: received {got} of {LOOPBACK} bytes")));
    }
    Ok(mib_s(got, took))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            seq_write_mib_s: 300.0,
            cached_read_mib_s: 8000.0,
            synced_4k_writes_per_s: 2000.0,
            sha256_mib_s: 1000.0,
            loopback_tcp_mib_s: 3000.0,
            took_s: 1.0,
        }
    }

    #[test]
    fn shares_use_the_limit_the_workload_names() {
        let l = limits();
        let s = l.share(Bound::SyncedWrites, 500.0);
        assert_eq!((s.limit_per_sec, s.fraction), (2000.0, 0.25));
        let s = l.share(Bound::SequentialWriteOver(3), 150.0);
        assert_eq!((s.limit_per_sec, s.fraction), (100.0, 1.5));
        assert!(s.limit.contains("R=3"), "{}", s.limit);
    }

    #[test]
    fn verified_reads_are_bound_by_the_least_of_read_hash_and_loopback() {
        let mut l = limits();
        // MiB/s rows: SHA-256 (1000) is the least.
        let s = l.share(Bound::VerifiedRead { bytes_per_op: MIB }, 800.0);
        assert!(s.limit.starts_with("SHA-256"), "{}", s.limit);
        assert_eq!((s.limit_per_sec, s.fraction), (1000.0, 0.8));
        // 64 KiB ranges: 16 per MiB, so the limit in operations/s is 16 × the MiB/s.
        l.loopback_tcp_mib_s = 500.0;
        let s = l.share(Bound::VerifiedRead { bytes_per_op: 65536.0 }, 4000.0);
        assert!(s.limit.starts_with("loopback TCP"), "{}", s.limit);
        assert_eq!((s.limit_per_sec, s.fraction), (8000.0, 0.5));
    }

    #[test]
    fn a_zero_limit_gives_no_fraction_rather_than_infinity() {
        let l = Limits { synced_4k_writes_per_s: 0.0, ..limits() };
        assert_eq!(l.share(Bound::SyncedWrites, 10.0).fraction, 0.0);
    }

    #[test]
    fn measuring_gives_positive_figures() {
        let dir = tempfile::tempdir().unwrap();
        let l = measure(dir.path()).unwrap();
        for v in
            [l.seq_write_mib_s, l.cached_read_mib_s, l.synced_4k_writes_per_s, l.sha256_mib_s, l.loopback_tcp_mib_s]
        {
            assert!(v > 0.0 && v.is_finite(), "{l:?}");
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the scratch file is removed");
    }
}
