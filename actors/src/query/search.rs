//! A search request, the tantivy query it becomes, and keyset pagination over any sort order.
//!
//! Every hit gets a sort key `(primary, tie)`: `primary` is the score, a field value or the
//! lower-cased name, oriented so that larger comes first; `tie` orders equal keys by file id. A
//! cursor carries the last hit's key, and the next page admits only keys strictly below it, so
//! paging through an unchanging index returns every hit exactly once whatever the sort.

use std::cmp::Reverse;
use std::ops::Bound;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

use tantivy::collector::sort_key::NaturalComparator;
use tantivy::collector::{Count, SegmentSortKeyComputer, SortKeyComputer, TopDocs};
use tantivy::columnar::{ColumnValues, StrColumn};
use tantivy::query::{AllQuery, BooleanQuery, ConstScoreQuery, Occur, Query, QueryParser, RangeQuery, TermQuery};
use tantivy::schema::{IndexRecordOption, Value};
use tantivy::{DocId, Score, Searcher, SegmentReader, TantivyDocument, Term};

use super::schema::Fields;
use crate::QueryError;

/// Largest page a search returns.
pub const MAX_PAGE: usize = 500;
/// Page size when the request names none.
pub const DEFAULT_PAGE: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SortBy {
    #[default]
    Relevance,
    CreatedAt,
    Size,
    Name,
}

impl SortBy {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "relevance" | "score" => Self::Relevance,
            "created_at" | "created" => Self::CreatedAt,
            "size" => Self::Size,
            "name" => Self::Name,
            _ => return None,
        })
    }

    /// Names sort A→Z by default; everything else largest (best, newest) first.
    pub fn default_descending(self) -> bool {
        self != Self::Name
    }
}

/// A bound of an attribute range: numbers compare numerically, anything else as text (so ISO 8601
/// dates compare chronologically).
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    Number(f64),
    Text(String),
}

impl AttrValue {
    pub fn parse(s: &str) -> Self {
        match s.parse::<f64>() {
            Ok(n) if n.is_finite() => Self::Number(n),
            _ => Self::Text(s.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttrRange {
    pub key: String,
    pub lower: Bound<AttrValue>,
    pub upper: Bound<AttrValue>,
}

/// What a client asks for; every part is optional.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    /// Free text in the query language: words, `"phrases"`, `field:word` (name, description, tags,
    /// attributes), `AND`/`OR`/`-word`. All words must match unless `OR` says otherwise.
    pub text: Option<String>,
    pub content_type: Option<String>,
    pub size_min: Option<u64>,
    pub size_max: Option<u64>,
    /// Unix ms, inclusive.
    pub created_after: Option<i64>,
    pub created_before: Option<i64>,
    /// Every tag must be present.
    pub tags: Vec<String>,
    /// Custom attribute equality.
    pub attr_equals: Vec<(String, String)>,
    pub attr_ranges: Vec<AttrRange>,
    pub sort: SortBy,
    /// `None`: the sort's natural direction.
    pub descending: Option<bool>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub id: String,
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    /// How many files match (regardless of paging).
    pub total: usize,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
enum Primary {
    Number(f64),
    Text(String),
    ReverseText(Reverse<String>),
}

#[derive(Debug, Clone, PartialEq, PartialOrd)]
struct Key {
    /// False for hits at or before the cursor: they sort last and are dropped.
    after_cursor: bool,
    primary: Primary,
    tie: Reverse<u128>,
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    sort: SortBy,
    descending: bool,
    primary: Primary,
    tie: u128,
}

fn bad(msg: impl Into<String>) -> QueryError {
    QueryError::BadRequest(msg.into())
}

fn filter(q: impl Query) -> (Occur, Box<dyn Query>) {
    (Occur::Must, Box::new(ConstScoreQuery::new(Box::new(q), 0.0)))
}

fn attr_term(f: &Fields, key: &str, value: &AttrValue) -> Term {
    let mut term = Term::from_field_json_path(f.attr, key, false);
    match value {
        AttrValue::Number(n) => term.append_type_and_fast_value(*n),
        AttrValue::Text(s) => term.append_type_and_str(s),
    }
    term
}

fn build_query(parser: &QueryParser, f: &Fields, req: &SearchRequest) -> Result<Box<dyn Query>, QueryError> {
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
    if let Some(text) = req.text.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        let q = parser.parse_query(text).map_err(|e| bad(format!("q: {e}")))?;
        clauses.push((Occur::Must, q));
    }
    if let Some(ct) = &req.content_type {
        let term = Term::from_field_text(f.content_type, &ct.to_lowercase());
        clauses.push(filter(TermQuery::new(term, IndexRecordOption::Basic)));
    }
    if req.size_min.is_some() || req.size_max.is_some() {
        let lo = req.size_min.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_u64(f.size, v)));
        let hi = req.size_max.map_or(Bound::Unbounded, |v| Bound::Included(Term::from_field_u64(f.size, v)));
        clauses.push(filter(RangeQuery::new(lo, hi)));
    }
    if req.created_after.is_some() || req.created_before.is_some() {
        let t = |v| Bound::Included(Term::from_field_i64(f.created_at, v));
        let lo = req.created_after.map_or(Bound::Unbounded, t);
        let hi = req.created_before.map_or(Bound::Unbounded, t);
        clauses.push(filter(RangeQuery::new(lo, hi)));
    }
    for tag in &req.tags {
        clauses.push(filter(TermQuery::new(Term::from_field_text(f.tag, tag), IndexRecordOption::Basic)));
    }
    for (key, value) in &req.attr_equals {
        // A value that reads as a number matches the attribute stored as a number or as text.
        let mut alternatives: Vec<Box<dyn Query>> = vec![Box::new(TermQuery::new(
            attr_term(f, key, &AttrValue::Text(value.clone())),
            IndexRecordOption::Basic,
        ))];
        if let AttrValue::Number(n) = AttrValue::parse(value) {
            let t = attr_term(f, key, &AttrValue::Number(n));
            alternatives.push(Box::new(RangeQuery::new(Bound::Included(t.clone()), Bound::Included(t))));
        }
        if value == "true" || value == "false" {
            let mut t = Term::from_field_json_path(f.attr, key, false);
            t.append_type_and_fast_value(value == "true");
            alternatives.push(Box::new(TermQuery::new(t, IndexRecordOption::Basic)));
        }
        clauses.push(filter(BooleanQuery::union(alternatives)));
    }
    for r in &req.attr_ranges {
        let kind = |b: &Bound<AttrValue>| match b {
            Bound::Included(AttrValue::Number(_)) | Bound::Excluded(AttrValue::Number(_)) => Some(true),
            Bound::Included(AttrValue::Text(_)) | Bound::Excluded(AttrValue::Text(_)) => Some(false),
            Bound::Unbounded => None,
        };
        if let (Some(a), Some(b)) = (kind(&r.lower), kind(&r.upper)) {
            if a != b {
                return Err(bad(format!("attribute {:?}: a range needs two numbers or two texts", r.key)));
            }
        }
        if kind(&r.lower).is_none() && kind(&r.upper).is_none() {
            continue;
        }
        let term = |b: &Bound<AttrValue>| match b {
            Bound::Included(v) => Bound::Included(attr_term(f, &r.key, v)),
            Bound::Excluded(v) => Bound::Excluded(attr_term(f, &r.key, v)),
            Bound::Unbounded => Bound::Unbounded,
        };
        clauses.push(filter(RangeQuery::new(term(&r.lower), term(&r.upper))));
    }
    if clauses.is_empty() {
        return Ok(Box::new(AllQuery));
    }
    Ok(Box::new(BooleanQuery::new(clauses)))
}

/// Sort keys with the cursor applied, computed per segment on cheap values (the score, a fast
/// field, or a name's term ordinal in the segment's dictionary) and turned into comparable global
/// keys only for each segment's top hits.
struct KeysetSort {
    sort: SortBy,
    descending: bool,
    cursor: Option<(Primary, u128)>,
}

/// A key inside one segment: `primary` is the oriented score/value, or for names twice the term
/// ordinal (the cursor's name, when absent from the segment, falls between two ordinals).
#[derive(Debug, Clone, PartialEq, PartialOrd)]
struct SegmentKey {
    after_cursor: bool,
    primary: f64,
    tie: Reverse<u128>,
}

struct SegmentKeys {
    sort: SortBy,
    sign: f64,
    cursor: Option<(f64, u128)>,
    hi: Arc<dyn ColumnValues<u64>>,
    lo: Arc<dyn ColumnValues<u64>>,
    size: Arc<dyn ColumnValues<u64>>,
    created: Arc<dyn ColumnValues<i64>>,
    names: Option<StrColumn>,
}

impl SortKeyComputer for KeysetSort {
    type SortKey = Key;
    type Child = SegmentKeys;
    type Comparator = NaturalComparator;

    fn requires_scoring(&self) -> bool {
        self.sort == SortBy::Relevance
    }

    fn segment_sort_key_computer(&self, seg: &SegmentReader) -> tantivy::Result<SegmentKeys> {
        let ff = seg.fast_fields();
        let names = if self.sort == SortBy::Name { ff.str("name_sort")? } else { None };
        let sign = if self.descending { 1.0 } else { -1.0 };
        let cursor = match &self.cursor {
            None => None,
            Some((Primary::Number(p), tie)) => Some((*p, *tie)),
            Some((Primary::Text(name) | Primary::ReverseText(Reverse(name)), tie)) => {
                let position = match &names {
                    None => -1.0,
                    Some(col) => {
                        let dict = col.dictionary();
                        match dict.term_ord(name.as_bytes())? {
                            Some(ord) => 2.0 * ord as f64,
                            None => {
                                match dict.term_bounds_to_ord(Bound::Included(name.as_bytes()), Bound::Unbounded)?.0 {
                                    Bound::Included(next) | Bound::Excluded(next) => 2.0 * next as f64 - 1.0,
                                    Bound::Unbounded => -1.0,
                                }
                            }
                        }
                    }
                };
                Some((sign * position, *tie))
            }
        };
        Ok(SegmentKeys {
            sort: self.sort,
            sign,
            cursor,
            hi: ff.u64("id_hi")?.first_or_default_col(0),
            lo: ff.u64("id_lo")?.first_or_default_col(0),
            size: ff.u64("size")?.first_or_default_col(0),
            created: ff.i64("created_at")?.first_or_default_col(0),
            names,
        })
    }
}

impl SegmentSortKeyComputer for SegmentKeys {
    type SortKey = Key;
    type SegmentSortKey = SegmentKey;
    type SegmentComparator = NaturalComparator;

    fn segment_sort_key(&mut self, doc: DocId, score: Score) -> SegmentKey {
        let id = ((self.hi.get_val(doc) as u128) << 64) | self.lo.get_val(doc) as u128;
        let value = match self.sort {
            SortBy::Relevance => score as f64,
            SortBy::CreatedAt => self.created.get_val(doc) as f64,
            SortBy::Size => self.size.get_val(doc) as f64,
            SortBy::Name => match self.names.as_ref().and_then(|c| c.ords().first(doc)) {
                Some(ord) => 2.0 * ord as f64,
                None => -1.0,
            },
        };
        let primary = self.sign * value;
        let tie = Reverse(id);
        let after_cursor = match &self.cursor {
            None => true,
            Some((p, t)) => (primary, &tie).partial_cmp(&(*p, &Reverse(*t))) == Some(std::cmp::Ordering::Less),
        };
        SegmentKey { after_cursor, primary, tie }
    }

    fn convert_segment_sort_key(&self, key: SegmentKey) -> Key {
        let primary = match self.sort {
            SortBy::Name => {
                let mut name = String::new();
                let position = self.sign * key.primary;
                if let (Some(col), true) = (&self.names, position >= 0.0) {
                    let _ = col.ord_to_str((position / 2.0) as u64, &mut name);
                }
                if self.sign > 0.0 {
                    Primary::Text(name)
                } else {
                    Primary::ReverseText(Reverse(name))
                }
            }
            _ => Primary::Number(key.primary),
        };
        Key { after_cursor: key.after_cursor, primary, tie: key.tie }
    }
}

pub fn run(
    searcher: &Searcher,
    parser: &QueryParser,
    f: &Fields,
    req: &SearchRequest,
) -> Result<SearchPage, QueryError> {
    let limit = req.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(bad(format!("limit: must be between 1 and {MAX_PAGE}")));
    }
    let descending = req.descending.unwrap_or_else(|| req.sort.default_descending());
    let cursor = match &req.cursor {
        None => None,
        Some(c) => {
            let c: Cursor = URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .ok_or_else(|| bad("cursor: not a cursor this server issued"))?;
            if c.sort != req.sort || c.descending != descending {
                return Err(bad("cursor: it belongs to a search with another sort order"));
            }
            Some((c.primary, c.tie))
        }
    };
    let query = build_query(parser, f, req)?;
    let sort = req.sort;
    let collector = TopDocs::with_limit(limit).order_by(KeysetSort { sort, descending, cursor });
    let (top, total) = searcher.search(&query, &(collector, Count)).map_err(|e| match e {
        // A query the schema cannot answer (`name:*` asks for a fast field that `name` is not)
        // is the client's mistake, not the index's.
        tantivy::TantivyError::SchemaError(m) | tantivy::TantivyError::InvalidArgument(m) => {
            bad(format!("q: the query cannot be answered: {m}"))
        }
        tantivy::TantivyError::FieldNotFound(m) => bad(format!("q: no field {m}")),
        other => QueryError::Index(other.to_string()),
    })?;
    let mut hits = Vec::with_capacity(top.len());
    let mut last = None;
    for (key, addr) in top {
        if !key.after_cursor {
            continue;
        }
        let doc: TantivyDocument = searcher.doc(addr).map_err(|e| QueryError::Index(e.to_string()))?;
        let id = doc.get_first(f.id).and_then(|v| v.as_str()).unwrap_or_default().to_string();
        let score = match (&key.primary, sort) {
            (Primary::Number(n), SortBy::Relevance) => (*n * if descending { 1.0 } else { -1.0 }) as f32,
            _ => 0.0,
        };
        hits.push(Hit { id, score });
        last = Some(key);
    }
    let next_cursor = match last {
        Some(k) if hits.len() == limit => {
            let c = Cursor { sort, descending, primary: k.primary, tie: k.tie.0 };
            Some(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap_or_default()))
        }
        _ => None,
    };
    Ok(SearchPage { hits, total, next_cursor })
}

#[cfg(test)]
mod tests {
    use artstore_raft::{FileRecord, RetentionPolicy};
    use tantivy::{Index, IndexWriter};

    use super::super::schema;
    use super::*;

    fn file(n: u128, name: &str, description: &str, size: u64, tags: &[&str], attrs: serde_json::Value) -> FileRecord {
        FileRecord {
            id: uuid::Uuid::from_u128(0x018f_0000_0000_7000_8000_0000_0000_0000 + n).to_string(),
            name: name.into(),
            content_type: if name.ends_with(".pdf") { "application/pdf" } else { "text/plain" }.into(),
            size,
            sha256: String::new(),
            chunk_size: 0,
            chunks: Vec::new(),
            description: description.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            attributes_json: attrs.to_string(),
            policy: RetentionPolicy::Permanent,
            expires_at: None,
            retention_until: None,
            created_at: 1_700_000_000_000 + (n as i64 % 7) * 1000,
            created_by: "test".into(),
            updated_at: 0,
            version: 1,
            deleted_at: None,
        }
    }

    struct Fixture {
        index: Index,
        fields: Fields,
        parser: QueryParser,
    }

    impl Fixture {
        fn new(files: &[FileRecord]) -> Self {
            let (s, fields) = schema::schema();
            let index = Index::create_in_ram(s);
            schema::register_analyzer(&index);
            let mut w: IndexWriter = index.writer_with_num_threads(1, 20_000_000).unwrap();
            for (i, f) in files.iter().enumerate() {
                w.add_document(schema::document(&fields, f)).unwrap();
                if i % 7 == 3 {
                    w.commit().unwrap(); // several segments
                }
            }
            w.commit().unwrap();
            let mut parser =
                QueryParser::for_index(&index, vec![fields.name, fields.description, fields.tags, fields.attributes]);
            parser.set_conjunction_by_default();
            Self { index, fields, parser }
        }

        fn search(&self, req: &SearchRequest) -> Result<SearchPage, QueryError> {
            run(&self.index.reader().unwrap().searcher(), &self.parser, &self.fields, req)
        }

        fn names(&self, req: &SearchRequest, files: &[FileRecord]) -> Vec<String> {
            let page = self.search(req).unwrap();
            page.hits.iter().map(|h| files.iter().find(|f| f.id == h.id).unwrap().name.clone()).collect()
        }
    }

    fn corpus() -> Vec<FileRecord> {
        vec![
            file(
                1,
                "Годовой отчёт.pdf",
                "финансовые документы за год",
                300,
                &["finance"],
                serde_json::json!({"year": 2021, "dept": "HR"}),
            ),
            file(
                2,
                "annual reports.pdf",
                "archived financial reports",
                100,
                &["finance", "archive"],
                serde_json::json!({"year": 2019, "signed": "2019-05-01"}),
            ),
            file(
                3,
                "notes.txt",
                "meeting notes about the archive",
                200,
                &["archive"],
                serde_json::json!({"year": "2020", "dept": "IT"}),
            ),
            file(4, "договор.txt", "документ о поставке", 50, &[], serde_json::json!({"amount": 12.5})),
        ]
    }

    fn req(text: &str) -> SearchRequest {
        SearchRequest { text: Some(text.into()), ..Default::default() }
    }

    #[test]
    fn free_text_stems_both_languages_and_honours_fields_and_phrases() {
        let files = corpus();
        let fx = Fixture::new(&files);
        let mut hits = fx.names(&req("документы"), &files);
        hits.sort();
        assert_eq!(hits, vec!["Годовой отчёт.pdf", "договор.txt"]);
        assert_eq!(fx.names(&req("отчет"), &files), vec!["Годовой отчёт.pdf"]);
        let mut hits = fx.names(&req("report"), &files);
        hits.sort();
        assert_eq!(hits, vec!["annual reports.pdf"]);
        assert_eq!(fx.names(&req("name:notes"), &files), vec!["notes.txt"]);
        assert!(fx.names(&req("description:annual"), &files).is_empty());
        assert_eq!(fx.names(&req("\"meeting notes\""), &files), vec!["notes.txt"]);
        assert!(fx.names(&req("\"notes meeting\""), &files).is_empty());
        // All words must match by default; OR widens.
        assert!(fx.names(&req("notes finance"), &files).is_empty());
        assert_eq!(fx.names(&req("notes OR finance"), &files).len(), 3);
        // Attribute values are free text too.
        assert_eq!(fx.names(&req("HR"), &files), vec!["Годовой отчёт.pdf"]);
        let e = fx.search(&req("name:(")).unwrap_err();
        assert!(matches!(e, QueryError::BadRequest(m) if m.starts_with("q:")));
    }

    #[test]
    fn filters_narrow_the_results() {
        let files = corpus();
        let fx = Fixture::new(&files);
        let all = |r: SearchRequest| {
            let mut n = fx.names(&r, &files);
            n.sort();
            n
        };
        assert_eq!(all(SearchRequest { content_type: Some("APPLICATION/PDF".into()), ..Default::default() }).len(), 2);
        assert_eq!(
            all(SearchRequest { size_min: Some(100), size_max: Some(200), ..Default::default() }),
            vec!["annual reports.pdf", "notes.txt"]
        );
        assert_eq!(
            all(SearchRequest { tags: vec!["finance".into(), "archive".into()], ..Default::default() }),
            vec!["annual reports.pdf"]
        );
        assert_eq!(
            all(SearchRequest { attr_equals: vec![("dept".into(), "IT".into())], ..Default::default() }),
            vec!["notes.txt"]
        );
        // A number matches numbers and numeric text alike.
        assert_eq!(
            all(SearchRequest { attr_equals: vec![("year".into(), "2020".into())], ..Default::default() }),
            vec!["notes.txt"]
        );
        assert_eq!(
            all(SearchRequest { attr_equals: vec![("year".into(), "2021".into())], ..Default::default() }),
            vec!["Годовой отчёт.pdf"]
        );
        let range = |key: &str, lower, upper| SearchRequest {
            attr_ranges: vec![AttrRange { key: key.into(), lower, upper }],
            ..Default::default()
        };
        assert_eq!(
            all(range("year", Bound::Included(AttrValue::Number(2019.0)), Bound::Excluded(AttrValue::Number(2021.0)))),
            vec!["annual reports.pdf"]
        );
        assert_eq!(
            all(range("amount", Bound::Excluded(AttrValue::Number(12.0)), Bound::Unbounded)),
            vec!["договор.txt"]
        );
        assert_eq!(
            all(range(
                "signed",
                Bound::Included(AttrValue::parse("2019-01-01")),
                Bound::Included(AttrValue::parse("2019-12-31"))
            )),
            vec!["annual reports.pdf"]
        );
        assert_eq!(
            all(SearchRequest {
                text: Some("archive".into()),
                created_after: Some(1_700_000_003_000),
                ..Default::default()
            }),
            vec!["notes.txt"]
        );
        let e =
            fx.search(&range("year", Bound::Included(AttrValue::Number(1.0)), Bound::Included(AttrValue::parse("x"))));
        assert!(matches!(e, Err(QueryError::BadRequest(_))));
    }

    #[test]
    fn sorts_and_pages_every_hit_exactly_once() {
        let mut files = Vec::new();
        for i in 0..97u128 {
            let name = format!("file {:03} report", (i * 37) % 97);
            files.push(file(i, &name, "quarterly report", (i as u64 % 10) * 10, &[], serde_json::json!({})));
        }
        let fx = Fixture::new(&files);
        for sort in [SortBy::Relevance, SortBy::CreatedAt, SortBy::Size, SortBy::Name] {
            for descending in [None, Some(true), Some(false)] {
                let mut seen = Vec::new();
                let mut cursor = None;
                loop {
                    let page = fx
                        .search(&SearchRequest {
                            text: Some("report".into()),
                            sort,
                            descending,
                            limit: Some(10),
                            cursor: cursor.clone(),
                            ..Default::default()
                        })
                        .unwrap();
                    assert_eq!(page.total, 97);
                    seen.extend(page.hits.iter().map(|h| h.id.clone()));
                    cursor = page.next_cursor;
                    if cursor.is_none() {
                        break;
                    }
                }
                let by_id = |id: &String| files.iter().find(|f| &f.id == id).unwrap();
                let mut unique = seen.clone();
                unique.sort();
                unique.dedup();
                assert_eq!(unique.len(), 97, "{sort:?} {descending:?}: every hit once");
                assert_eq!(seen.len(), 97, "{sort:?} {descending:?}: no hit twice");
                let desc = descending.unwrap_or(sort.default_descending());
                for w in seen.windows(2) {
                    let (a, b) = (by_id(&w[0]), by_id(&w[1]));
                    let ord = match sort {
                        SortBy::Relevance => std::cmp::Ordering::Equal,
                        SortBy::CreatedAt => a.created_at.cmp(&b.created_at),
                        SortBy::Size => a.size.cmp(&b.size),
                        SortBy::Name => a.name.cmp(&b.name),
                    };
                    let ord = if desc { ord.reverse() } else { ord };
                    assert_ne!(ord, std::cmp::Ordering::Greater, "{sort:?} desc={desc}: {} before {}", a.name, b.name);
                }
            }
        }
        let page = fx.search(&SearchRequest { limit: Some(5), sort: SortBy::Size, ..Default::default() }).unwrap();
        let e = fx.search(&SearchRequest { cursor: page.next_cursor, sort: SortBy::Name, ..Default::default() });
        assert!(matches!(e, Err(QueryError::BadRequest(m)) if m.contains("sort")));
        assert!(fx.search(&SearchRequest { cursor: Some("garbage".into()), ..Default::default() }).is_err());
        assert!(fx.search(&SearchRequest { limit: Some(MAX_PAGE + 1), ..Default::default() }).is_err());
    }
}
