//! `search-index`: indexing rate and search latency of one node's index, measured in-process with
//! the node's own schema, analyzer and query code (no HTTP, no cluster), at several index sizes.

use std::time::{Duration, Instant};

use artstore_actors::query::{AttrRange, AttrValue, BenchIndex, SearchRequest, SortBy};
use artstore_raft::{FileRecord, RetentionPolicy};

use crate::report::{Latencies, Row, Samples};

const EN: &[&str] = &[
    "annual",
    "report",
    "invoice",
    "contract",
    "agreement",
    "policy",
    "minutes",
    "meeting",
    "budget",
    "plan",
    "scan",
    "letter",
    "order",
    "delivery",
    "audit",
    "review",
    "summary",
    "draft",
    "final",
    "signed",
    "archive",
    "project",
    "design",
    "specification",
    "manual",
    "customer",
    "supplier",
    "payment",
    "receipt",
    "statement",
    "quarterly",
    "financial",
    "legal",
    "tax",
    "employee",
    "record",
    "certificate",
    "license",
    "insurance",
];
const RU: &[&str] = &[
    "годовой",
    "отчёт",
    "счёт",
    "договор",
    "соглашение",
    "протокол",
    "совещание",
    "бюджет",
    "план",
    "письмо",
    "заказ",
    "поставка",
    "проверка",
    "акт",
    "документы",
    "приказ",
    "справка",
    "сотрудник",
    "налоговый",
    "финансовый",
    "юридический",
    "проект",
    "спецификация",
    "руководство",
    "клиент",
    "поставщик",
    "оплата",
];
const TAGS: &[&str] = &["finance", "legal", "hr", "it", "sales", "archive", "scan", "invoice", "contract", "2024"];
const TYPES: &[&str] = &["application/pdf", "text/plain", "image/tiff", "application/msword"];

/// A small deterministic generator (xorshift), so every run indexes the same records.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Skewed towards the start of the list (common words are common).
    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        let a = self.next() as usize % list.len();
        let b = self.next() as usize % list.len();
        list[a.min(b)]
    }
}

fn record(i: u64, rng: &mut Rng) -> FileRecord {
    let words = |rng: &mut Rng, n: usize| {
        (0..n)
            .map(|_| if rng.next().is_multiple_of(3) { rng.pick(RU) } else { rng.pick(EN) })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let name = format!("{} {} {}.pdf", words(rng, 3), i % 9973, rng.next() % 1000);
    let description = words(rng, 12);
    let tags = (0..(rng.next() % 3)).map(|_| rng.pick(TAGS).to_string()).collect();
    let attrs = serde_json::json!({
        "year": 2000 + (rng.next() % 26),
        "department": rng.pick(TAGS),
        "customer": format!("C{:05}", rng.next() % 50_000),
    });
    FileRecord {
        id: uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | i as u128).to_string(),
        name,
        content_type: rng.pick(TYPES).into(),
        size: rng.next() % (64 << 20),
        sha256: String::new(),
        chunk_size: 0,
        chunks: Vec::new(),
        description,
        tags,
        attributes_json: attrs.to_string(),
        policy: RetentionPolicy::Permanent,
        expires_at: None,
        retention_until: None,
        created_at: 1_600_000_000_000 + (i as i64) * 1000,
        created_by: "bench".into(),
        updated_at: 0,
        version: 1,
        deleted_at: None,
    }
}

fn queries() -> Vec<(&'static str, SearchRequest)> {
    let text = |t: &str| SearchRequest { text: Some(t.into()), ..Default::default() };
    vec![
        ("one-word", text("invoice")),
        ("two-words", text("annual report")),
        ("russian", text("документ")),
        ("phrase", text("\"financial statement\"")),
        ("rare-word", text("C01234")),
        ("tag+sort", SearchRequest { tags: vec!["legal".into()], sort: SortBy::CreatedAt, ..Default::default() }),
        (
            "attr-range",
            SearchRequest {
                text: Some("contract".into()),
                attr_ranges: vec![AttrRange {
                    key: "year".into(),
                    lower: std::ops::Bound::Included(AttrValue::Number(2015.0)),
                    upper: std::ops::Bound::Excluded(AttrValue::Number(2018.0)),
                }],
                ..Default::default()
            },
        ),
        ("all-by-name", SearchRequest { sort: SortBy::Name, ..Default::default() }),
    ]
}

/// Indexes `records` synthetic files, then runs each query `rounds` times.
pub fn run(records: u64, rounds: usize) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let mut index = BenchIndex::create(dir.path())?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let started = Instant::now();
    for i in 0..records {
        index.add(&record(i, &mut rng))?;
        if i % 100_000 == 99_999 {
            index.commit()?;
            eprintln!("indexed {} records", i + 1);
        }
    }
    index.commit()?;
    let secs = started.elapsed().as_secs_f64();
    let index = index.wait_merges()?;
    eprintln!(
        "search-index: {records} records in {secs:.1} s = {:.0} records/s ({} segments after merging)",
        records as f64 / secs,
        index.segments()
    );
    let mut rows = vec![Row::rate(&format!("index-{records}"), records, records as f64 / secs)];
    let mut all = Vec::new();
    for (name, q) in queries() {
        let mut lat = Vec::with_capacity(rounds);
        let mut hits = 0;
        for _ in 0..rounds {
            let t = Instant::now();
            hits = index.search(&q)?.total;
            lat.push(t.elapsed());
        }
        all.extend(lat.iter().copied());
        let l = Latencies::new(lat);
        eprintln!("  {name:<12} {hits:>8} hits  p50 {:.2} ms  p99 {:.2} ms", l.percentile(50.0), l.percentile(99.0));
        rows.push(row(&format!("q-{name}"), l));
    }
    rows.push(row("q-mix", Latencies::new(all)));
    Ok(rows)
}

/// A query's row: its rate is one over the median latency (one query at a time, no think time).
fn row(name: &str, l: Latencies) -> Row {
    let total: Duration = Duration::from_secs_f64(l.percentile(50.0) / 1000.0 * l.count() as f64);
    let mut r = Row::summary(name, 1, &l, 0, l.count() as f64 / total.as_secs_f64().max(1e-9));
    r.samples = Some(Samples::latencies_only(l));
    r
}
