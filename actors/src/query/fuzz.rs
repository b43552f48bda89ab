//! Fuzzing the search path the way a hostile reader drives it: any `q` and any `cursor` go
//! through the bounds, tantivy's parser, and a search over a real index, on a thread with the
//! stack of a tokio worker. The property: a 400-class refusal or an answer; never a panic, a
//! stack overflow, or an error that would become a 500.

use std::path::Path;

use proptest::prelude::*;
use tantivy::{Index, IndexWriter};

use super::search::{run, SearchRequest};
use super::{query_parser, schema};
use crate::QueryError;
use artstore_cluster_config::Limits;
use artstore_raft::FileRecord;

/// The stack a tokio worker thread gets by default.
const WORKER_STACK: usize = 2 * 1024 * 1024;

fn corpus(name: &str) -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus").join(name);
    let mut out: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| std::fs::read(e.path()).unwrap())
        .collect();
    out.sort();
    out
}

struct Target {
    index: Index,
    fields: schema::Fields,
    parser: tantivy::query::QueryParser,
}

fn target() -> &'static Target {
    static T: std::sync::OnceLock<Target> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        let (s, fields) = schema::schema();
        let index = Index::create_in_ram(s);
        schema::register_analyzer(&index);
        let mut w: IndexWriter = index.writer_with_num_threads(1, 20_000_000).unwrap();
        for (i, name) in ["годовой отчёт.pdf", "annual report.docx", "scan 2026.tiff"].iter().enumerate() {
            let f = FileRecord {
                id: format!("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5{i}"),
                name: name.to_string(),
                description: "documents документы".into(),
                tags: vec!["finance".into()],
                attributes_json: r#"{"year":2026,"dept":"HR"}"#.into(),
                content_type: "application/pdf".into(),
                size: 10 + i as u64,
                created_at: 1_700_000_000_000,
                ..FileRecord::default()
            };
            w.add_document(schema::document(&fields, &f)).unwrap();
        }
        w.commit().unwrap();
        let parser = query_parser(&index, &fields);
        Target { index, fields, parser }
    })
}

/// Runs one search of `text` (and `cursor`) on a worker-sized stack; `Err` names a broken promise.
fn search_survives(text: String, cursor: Option<String>) -> Result<(), String> {
    let handle = std::thread::Builder::new()
        .stack_size(WORKER_STACK)
        .spawn(move || {
            let limits = Limits::default();
            if super::check_text(&text, &limits).is_err() {
                return Ok(());
            }
            let t = target();
            let req = SearchRequest { text: Some(text.clone()), cursor, ..Default::default() };
            let searcher = t.index.reader().map_err(|e| e.to_string())?.searcher();
            match run(&searcher, &t.parser, &t.fields, &req) {
                Ok(_) | Err(QueryError::BadRequest(_)) | Err(QueryError::Limit { .. }) => Ok(()),
                Err(e) => Err(format!("q={text:?}: {e} (would be a 5xx)")),
            }
        })
        .map_err(|e| e.to_string())?;
    handle.join().map_err(|_| "the search panicked or overflowed its stack".to_string())?
}

#[test]
fn the_corpus_of_hostile_queries_is_refused_or_answered() {
    for input in corpus("search_query") {
        let text = String::from_utf8_lossy(&input).into_owned();
        search_survives(text.clone(), None).unwrap_or_else(|e| panic!("{:?}…: {e}", &text[..text.len().min(40)]));
    }
}

/// Pieces of the query language, so that random inputs reach deep into the grammar.
fn token() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just("-".to_string()),
        Just("+".to_string()),
        Just(" OR ".to_string()),
        Just(" AND ".to_string()),
        Just(" NOT ".to_string()),
        Just(" TO ".to_string()),
        Just(" IN ".to_string()),
        Just("*".to_string()),
        Just("^2".to_string()),
        Just("~1".to_string()),
        Just("name:".to_string()),
        Just("id:".to_string()),
        Just("size:".to_string()),
        Just("attributes.year:".to_string()),
        Just("tags:".to_string()),
        Just(" ".to_string()),
        "[a-zа-я0-9]{1,8}",
        any::<char>().prop_map(String::from),
    ]
}

proptest! {
    #[test]
    fn any_structured_query_is_refused_or_answered(parts in proptest::collection::vec(token(), 0..120)) {
        let text: String = parts.concat();
        prop_assert_eq!(search_survives(text, None), Ok(()));
    }

    #[test]
    fn any_text_is_refused_or_answered(text in ".{0,3000}") {
        prop_assert_eq!(search_survives(text, None), Ok(()));
    }

    #[test]
    fn any_cursor_is_refused_or_answered(cursor in "[A-Za-z0-9_=-]{0,200}|.{0,50}") {
        prop_assert_eq!(search_survives("report".into(), Some(cursor)), Ok(()));
    }
}
