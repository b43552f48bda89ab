//! `GET /api/v1/search` (reader): free text, filters, sort and cursor paging over this node's index.

use std::ops::Bound;

use artstore_actors::query::{AttrRange, AttrValue, FoundFile, SearchRequest, SortBy};
use artstore_client::wire::{ErrorResponse, SearchHit, SearchResults};
use artstore_cluster_config::Limits;
use artstore_raft::Role;
use axum::extract::{RawQuery, State};
use axum::Json;

use super::admin::rfc3339;
use super::auth::Caller;
use super::files::parse_time;
use super::{ApiError, AppState};

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_search", message)
}

fn number<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ApiError> {
    value.parse().map_err(|_| bad(format!("{name}: {value:?} is not a non-negative integer")))
}

/// RFC 3339 or unix milliseconds.
pub(super) fn time(name: &str, value: &str) -> Result<i64, ApiError> {
    match value.parse::<i64>() {
        Ok(ms) => Ok(ms),
        Err(_) => parse_time(name, value),
    }
}

/// The request from the query string. Repeatable: `tag`, `attr.KEY`, `attr.KEY.gte|gt|lte|lt`.
pub(super) fn parse(query: &str, limits: &Limits) -> Result<(SearchRequest, bool), ApiError> {
    let params = query.split('&').filter(|p| !p.is_empty()).count();
    if params > limits.max_query_params {
        return Err(ApiError::bad_request(
            "too_many_parameters",
            format!("{params} query parameters; the limit is {} (limits.max_query_params)", limits.max_query_params),
        ));
    }
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query).map_err(|e| bad(format!("query string: {e}")))?;
    let mut req = SearchRequest::default();
    let mut consistent = false;
    for (k, v) in pairs {
        match k.as_str() {
            "q" => {
                // Bounded before tantivy's recursive parser ever sees it.
                artstore_actors::query::check_text(&v, limits)?;
                req.text = Some(v)
            }
            "content_type" => req.content_type = Some(v),
            "size_min" => req.size_min = Some(number(&k, &v)?),
            "size_max" => req.size_max = Some(number(&k, &v)?),
            "created_after" => req.created_after = Some(time(&k, &v)?),
            "created_before" => req.created_before = Some(time(&k, &v)?),
            "tag" => req.tags.push(v),
            "sort" => {
                req.sort = SortBy::parse(&v)
                    .ok_or_else(|| bad(format!("sort: {v:?} is not one of relevance, created_at, size, name")))?
            }
            "order" => {
                req.descending = Some(match v.as_str() {
                    "asc" => false,
                    "desc" => true,
                    _ => return Err(bad(format!("order: {v:?} is not asc or desc"))),
                })
            }
            "limit" => req.limit = Some(number(&k, &v)?),
            "cursor" => req.cursor = Some(v),
            "consistent" => {
                consistent = match v.as_str() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => return Err(bad(format!("consistent: {v:?} is not true or false"))),
                }
            }
            _ => {
                let Some(attr) = k.strip_prefix("attr.").filter(|a| !a.is_empty()) else {
                    return Err(bad(format!("unknown search parameter {k:?}")));
                };
                let range = |key: &str, lower: Bound<AttrValue>, upper: Bound<AttrValue>| AttrRange {
                    key: key.to_string(),
                    lower,
                    upper,
                };
                let value = AttrValue::parse(&v);
                match attr.rsplit_once('.') {
                    Some((key, "gte")) => req.attr_ranges.push(range(key, Bound::Included(value), Bound::Unbounded)),
                    Some((key, "gt")) => req.attr_ranges.push(range(key, Bound::Excluded(value), Bound::Unbounded)),
                    Some((key, "lte")) => req.attr_ranges.push(range(key, Bound::Unbounded, Bound::Included(value))),
                    Some((key, "lt")) => req.attr_ranges.push(range(key, Bound::Unbounded, Bound::Excluded(value))),
                    _ => req.attr_equals.push((attr.to_string(), v)),
                }
            }
        }
    }
    Ok((req, consistent))
}

/// `GET /api/v1/search?q=…&tag=…&attr.KEY=…&sort=…&order=…&limit=…&cursor=…&consistent=true`.
#[utoipa::path(
    get,
    path = "/api/v1/search",
    operation_id = "search_files",
    tag = "search",
    summary = "Search files",
    description = "Full text over name, description, tags and custom attributes (English and Russian \
        stemming), with filters, sort and keyset cursors. Custom attributes filter with \
        `attr.KEY=VALUE` (equal) and `attr.KEY.gte|gt|lte|lt=VALUE` (ranges; numbers compare as numbers), \
        each repeatable. Any other parameter is refused.",
    params(
        ("q" = Option<String>, Query, description = "Query text (tantivy syntax: words, \"phrases\", AND/OR/NOT, groups)."),
        ("content_type" = Option<String>, Query, description = "Only files of this media type."),
        ("size_min" = Option<u64>, Query, description = "Smallest size in bytes."),
        ("size_max" = Option<u64>, Query, description = "Largest size in bytes."),
        ("created_after" = Option<String>, Query, description = "RFC 3339 time or unix milliseconds."),
        ("created_before" = Option<String>, Query, description = "RFC 3339 time or unix milliseconds."),
        ("tag" = Option<Vec<String>>, Query, explode, description = "Files with this tag; repeat for several (all must match)."),
        ("sort" = Option<String>, Query, pattern = "^(relevance|created_at|size|name)$",
            description = "`relevance` (default with `q`), `created_at`, `size` or `name`."),
        ("order" = Option<String>, Query, pattern = "^(asc|desc)$", description = "`asc` or `desc`."),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 500, description = "Hits per page (default 50)."),
        ("cursor" = Option<String>, Query, description = "`next_cursor` of the previous page (same query and sort)."),
        ("consistent" = Option<bool>, Query, description = "Wait until the index covers every write acknowledged before the search."),
    ),
    responses(
        (status = 200, description = "A page of hits.", body = SearchResults),
        (status = 400, description = "A parameter is unknown or not of its type, or `q` is over its limits \
            (`limits.max_query_*`).", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["invalid_search", "too_many_parameters", "query_too_long", "query_too_deep", "query_too_complex"])))),
        (status = 503, description = "`consistent=true` and the index did not catch up in time.", body = ErrorResponse,
            extensions(("x-error-codes" = json!(["index_behind"])))),
    ),
    extensions(("x-required-role" = json!("reader"))),
)]
pub async fn search(
    State(s): State<AppState>,
    caller: Caller,
    RawQuery(query): RawQuery,
) -> Result<Json<SearchResults>, ApiError> {
    caller.principal.require(Role::Reader)?;
    let (req, consistent) = parse(query.as_deref().unwrap_or(""), &s.limits)?;
    let found = s.query.search(req, consistent).await?;
    let mut hits = Vec::with_capacity(found.files.len());
    for FoundFile { record: f, score } in found.files {
        let custom_attributes = match serde_json::from_str(&f.attributes_json) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => Default::default(),
        };
        hits.push(SearchHit {
            id: f.id,
            name: f.name,
            size: f.size,
            sha256: f.sha256,
            content_type: f.content_type,
            created_at: rfc3339(f.created_at),
            description: f.description,
            tags: f.tags,
            custom_attributes,
            score,
        });
    }
    Ok(Json(SearchResults { hits, total: found.total as u64, next_cursor: found.next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    static L: std::sync::LazyLock<Limits> = std::sync::LazyLock::new(Limits::default);

    #[test]
    fn parses_filters_and_names_bad_parameters() {
        let (r, consistent) =
            parse("q=report&tag=a&tag=b&attr.year.gte=2000&attr.dept=HR&sort=size&order=asc&consistent=true", &L)
                .unwrap();
        assert!(consistent);
        assert_eq!(r.tags, vec!["a", "b"]);
        assert_eq!(r.attr_equals, vec![("dept".to_string(), "HR".to_string())]);
        assert_eq!(r.attr_ranges[0].key, "year");
        assert_eq!(r.attr_ranges[0].lower, Bound::Included(AttrValue::Number(2000.0)));
        assert_eq!(r.sort, SortBy::Size);
        assert_eq!(r.descending, Some(false));
        let e = parse("colour=red", &L).unwrap_err();
        assert!(e.message.contains("colour"), "{}", e.message);
        let e = parse("size_min=-3", &L).unwrap_err();
        assert!(e.message.contains("size_min"), "{}", e.message);
        let e = parse("created_after=yesterday", &L).unwrap_err();
        assert!(e.message.contains("created_after"), "{}", e.message);
    }
}
