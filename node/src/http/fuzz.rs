//! Fuzzing the HTTP layer's parsers of client input: `Range` and `If-None-Match`, the multipart
//! `metadata` part and every check behind it, token requests (HTTP Basic, form, JSON) and search
//! query strings. Each harness replays its seed corpus (`fuzz/corpus/`) and then random and
//! structured inputs. The property: a clean refusal (a 4xx) or a valid value; never a panic and
//! never a 5xx.

use std::path::Path;

use artstore_cluster_config::Limits;
use axum::http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

use super::files::{self, Wanted};
use super::{auth, search};

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

/// A range the handler may serve lies inside the file.
fn range_is_sound(header: &str, size: u64) -> Result<(), String> {
    match files::wanted(Some(header), size) {
        Wanted::Range(start, end) if start > end || end >= size => Err(format!("{header:?} on {size}: {start}-{end}")),
        _ => Ok(()),
    }
}

fn metadata_is_refused_or_valid(bytes: &[u8]) -> Result<(), String> {
    let limits = Limits::default();
    let Ok(part) = serde_json::from_slice::<files::MetadataPart>(bytes) else { return Ok(()) };
    match files::meta_from_part(&limits, 64 * 1024, "fuzz", part, Some("f.bin".into()), None) {
        Ok(meta) => {
            if meta.name.chars().count() > limits.max_name_chars || meta.tags.len() > limits.max_tags {
                return Err(format!("accepted out-of-bounds metadata: {meta:?}"));
            }
            Ok(())
        }
        Err(e) if e.status.is_client_error() => Ok(()),
        Err(e) => Err(format!("{} {}: {}", e.status, e.code, e.message)),
    }
}

fn token_request_is_refused_or_valid(bytes: &[u8]) {
    let _ = serde_urlencoded::from_bytes::<auth::TokenRequest>(bytes);
    let _ = serde_json::from_slice::<auth::TokenRequest>(bytes);
    if let Ok(v) = HeaderValue::from_bytes(bytes) {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::AUTHORIZATION, v);
        let _ = auth::basic_credentials(&h);
    }
}

fn search_query_is_refused_or_valid(query: &str) -> Result<(), String> {
    match search::parse(query, &Limits::default()) {
        Ok(_) => Ok(()),
        Err(e) if e.status.is_client_error() => Ok(()),
        Err(e) => Err(format!("{query:?}: {} {}", e.status, e.code)),
    }
}

#[test]
fn the_seed_corpus_is_refused_or_parsed() {
    for input in corpus("range") {
        let h = String::from_utf8_lossy(&input).into_owned();
        for size in [0, 1, 100, u64::MAX] {
            range_is_sound(&h, size).unwrap();
        }
        let _ = files::not_modified(Some(&h), "\"abc\"");
    }
    for input in corpus("metadata") {
        metadata_is_refused_or_valid(&input).unwrap();
    }
    for input in corpus("token") {
        token_request_is_refused_or_valid(&input);
    }
    for input in corpus("search_query") {
        let q = serde_urlencoded::to_string([("q", String::from_utf8_lossy(&input))]).unwrap();
        search_query_is_refused_or_valid(&q).unwrap();
    }
}

/// JSON-shaped text from pieces of the metadata schema, so random inputs pass the parser often.
fn metadata_json() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("name"),
        Just("content_type"),
        Just("description"),
        Just("tags"),
        Just("custom_attributes"),
        Just("retention_policy"),
        Just("ttl_days"),
        Just("ttl_seconds"),
        Just("retention_until"),
        Just("sha256"),
        Just("idempotency_key"),
        Just("compression"),
    ];
    let value = prop_oneof![
        ".{0,40}".prop_map(serde_json::Value::String),
        any::<i64>().prop_map(serde_json::Value::from),
        proptest::collection::vec(".{0,10}", 0..80).prop_map(serde_json::Value::from),
        proptest::collection::btree_map("[a-z]{1,5}", ".{0,10}", 0..5)
            .prop_map(|m| serde_json::Value::Object(m.into_iter().map(|(k, v)| (k, v.into())).collect())),
    ];
    proptest::collection::btree_map(key, value, 0..8)
        .prop_map(|m| serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect()).to_string())
}

proptest! {
    #[test]
    fn any_range_header_is_sound(spec in "(bytes|items)?=?[ 0-9,-]{0,30}", size in any::<u64>()) {
        prop_assert_eq!(range_is_sound(&spec, size), Ok(()));
        let _ = files::not_modified(Some(&spec), "\"x\"");
    }

    #[test]
    fn any_metadata_bytes_are_refused_or_valid(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        prop_assert_eq!(metadata_is_refused_or_valid(&bytes), Ok(()));
    }

    #[test]
    fn any_structured_metadata_is_refused_or_valid(json in metadata_json()) {
        prop_assert_eq!(metadata_is_refused_or_valid(json.as_bytes()), Ok(()));
    }

    #[test]
    fn any_token_request_is_refused_or_parsed(bytes in proptest::collection::vec(any::<u8>(), 0..256), basic in "Basic [A-Za-z0-9+/=%:]{0,64}") {
        token_request_is_refused_or_valid(&bytes);
        token_request_is_refused_or_valid(basic.as_bytes());
    }

    #[test]
    fn any_search_query_string_is_refused_or_parsed(
        pairs in proptest::collection::vec(("(q|tag|sort|order|limit|cursor|consistent|size_min|created_after|attr\\.[a-z.]{0,12}|[a-z]{1,6})", ".{0,40}"), 0..80)
    ) {
        let q = serde_urlencoded::to_string(&pairs).unwrap();
        prop_assert_eq!(search_query_is_refused_or_valid(&q), Ok(()));
    }
}
