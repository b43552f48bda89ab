//! Hot paths in process: chunk hashing (SHA-256 of a default 4 MiB chunk and of a 4 KiB small
//! file), storage-protocol framing (chunk put and get headers, written as a frame and read back),
//! sidecars (a file record of 1 or 64 chunks as the sidecar JSON), placement (rendezvous over 3, 12
//! and 48 nodes, with zones), and the search index (indexing a record; one-word and
//! filtered+sorted queries over 50 000 records).
//!
//! `cargo bench -p artstore-actors --bench hot_paths` (one group: append its name, e.g. `-- storage_frame`)

use artstore_actors::query::{BenchIndex, SearchRequest, SortBy};
use artstore_actors::storage::protocol::{read_frame, write_frame, Request};
use artstore_actors::storage::sidecar::Sidecar;
use artstore_actors::storage::{place, place_zoned};
use artstore_raft::{ChunkRef, FileRecord, Replica, RetentionPolicy};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::{Digest, Sha256};

fn record(i: u64) -> FileRecord {
    let words = ["annual", "report", "invoice", "contract", "договор", "отчёт", "scan", "letter"];
    let w = |k: u64| words[((i * 7 + k * 13) % words.len() as u64) as usize];
    FileRecord {
        id: format!("0190{i:04x}-0000-7000-8000-{i:012x}"),
        name: format!("{} {} {i}.pdf", w(1), w(2)),
        content_type: "application/pdf".into(),
        size: i * 37 % 100_000,
        sha256: String::new(),
        chunk_size: 0,
        chunks: Vec::new(),
        description: format!("{} {} {}", w(3), w(4), w(5)),
        tags: vec![if i.is_multiple_of(3) { "finance" } else { "legal" }.into()],
        attributes_json: format!("{{\"year\": {}}}", 2000 + i % 25),
        policy: RetentionPolicy::Permanent,
        expires_at: None,
        retention_until: None,
        created_at: 1_700_000_000_000 + i as i64,
        created_by: "bench".into(),
        updated_at: 0,
        version: 1,
        deleted_at: None,
    }
}

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("chunk_sha256");
    for size in [4 * 1024usize, 4 * 1024 * 1024] {
        let data = vec![0x5au8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::from_parameter(size), &data, |b, d| {
            b.iter(|| hex::encode(Sha256::digest(std::hint::black_box(d))))
        });
    }
    g.finish();
}

/// Writes `request` as a frame and reads it back, as the two ends of a storage stream do.
fn frame_round_trip(request: &Request) -> Request {
    futures::executor::block_on(async {
        let mut wire = Vec::new();
        write_frame(&mut wire, request).await.unwrap();
        read_frame(&mut wire.as_slice()).await.unwrap()
    })
}

fn framing(c: &mut Criterion) {
    let mut g = c.benchmark_group("storage_frame");
    let sha = hex::encode(Sha256::digest(b"chunk"));
    let header = Request::PutChunk { policy: RetentionPolicy::Permanent, sha256: sha.clone(), size: 4 << 20 };
    g.bench_function("put_chunk_header", |b| b.iter(|| frame_round_trip(std::hint::black_box(&header))));
    let get = Request::GetChunk { element: "default".into(), sha256: sha.clone() };
    g.bench_function("get_chunk_header", |b| b.iter(|| frame_round_trip(std::hint::black_box(&get))));
    g.finish();
    let mut g = c.benchmark_group("sidecar_json");
    for chunks in [1usize, 64] {
        let mut file = record(7);
        file.chunks = (0..chunks)
            .map(|i| ChunkRef {
                sha256: hex::encode(Sha256::digest(i.to_le_bytes())),
                size: 4 << 20,
                compressed: false,
                replicas: (1..=3).map(|node_id| Replica { node_id, element: "default".into() }).collect(),
                missing: Vec::new(),
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("chunks", chunks), &file, |b, f| {
            b.iter(|| serde_json::to_vec_pretty(&Sidecar::from_record(f)).unwrap())
        });
    }
    g.finish();
}

fn placement(c: &mut Criterion) {
    let mut g = c.benchmark_group("placement");
    for nodes in [3u64, 12, 48] {
        let ids: Vec<u64> = (1..=nodes).collect();
        let zoned: Vec<(u64, String)> = ids.iter().map(|n| (*n, format!("zone-{}", n % 3))).collect();
        let sha = hex::encode(Sha256::digest(b"chunk"));
        g.bench_with_input(BenchmarkId::new("rendezvous", nodes), &ids, |b, ids| b.iter(|| place(&sha, ids, 3)));
        g.bench_with_input(BenchmarkId::new("zoned", nodes), &zoned, |b, z| b.iter(|| place_zoned(&sha, z, 3)));
    }
    g.finish();
}

fn search(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let mut index = BenchIndex::create(dir.path()).unwrap();
    for i in 0..50_000 {
        index.add(&record(i)).unwrap();
    }
    index.commit().unwrap();
    let mut g = c.benchmark_group("search_50k");
    let one_word = SearchRequest { text: Some("invoice".into()), ..Default::default() };
    g.bench_function("one_word", |b| b.iter(|| index.search(&one_word).unwrap().total));
    let filtered = SearchRequest {
        text: Some("report".into()),
        tags: vec!["finance".into()],
        sort: SortBy::CreatedAt,
        ..Default::default()
    };
    g.bench_function("word_tag_sorted_by_date", |b| b.iter(|| index.search(&filtered).unwrap().total));
    g.finish();

    let dir = tempfile::tempdir().unwrap();
    let mut fresh = BenchIndex::create(dir.path()).unwrap();
    let mut i = 1_000_000u64;
    c.bench_function("index_one_record", |b| {
        b.iter(|| {
            i += 1;
            fresh.add(&record(i)).unwrap()
        })
    });
}

criterion_group!(benches, hashing, framing, placement, search);
criterion_main!(benches);
