//! Building searches: [`Search`] collects the query, filters, sort and page size, and
//! [`Client::search`](crate::Client::search) / [`Client::search_all`](crate::Client::search_all)
//! run it.

/// What to sort hits by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// Best match first (the default).
    Relevance,
    /// Oldest first (newest with `descending`).
    CreatedAt,
    /// Smallest first.
    Size,
    /// By name, A to Z.
    Name,
}

impl SortBy {
    fn as_str(self) -> &'static str {
        match self {
            Self::Relevance => "relevance",
            Self::CreatedAt => "created_at",
            Self::Size => "size",
            Self::Name => "name",
        }
    }
}

/// A search: free text plus filters, a sort order and a page size.
///
/// ```
/// use artstore_client::{Search, SortBy};
///
/// let search = Search::text("annual report")
///     .tag("finance")
///     .attr("department", "HR")
///     .attr_gte("year", 2020)
///     .content_type("application/pdf")
///     .sort(SortBy::CreatedAt, true)
///     .limit(20)
///     .consistent();
/// assert!(search.to_query(None).contains("attr.year.gte=2020"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Search {
    params: Vec<(String, String)>,
}

impl Search {
    /// Every file (filters can still narrow it).
    pub fn all() -> Self {
        Self::default()
    }

    /// Files matching `query`: words (English and Russian forms match their stems), `"phrases"`,
    /// `name:word`, `description:word`, `tags:word`, `attributes:word`, `OR`, `-word`. All words
    /// must match unless `OR` says otherwise.
    pub fn text(query: impl Into<String>) -> Self {
        Self::default().param("q", query.into())
    }

    fn param(mut self, key: impl Into<String>, value: impl ToString) -> Self {
        self.params.push((key.into(), value.to_string()));
        self
    }

    /// Exact content type, e.g. `application/pdf`.
    pub fn content_type(self, content_type: impl Into<String>) -> Self {
        self.param("content_type", content_type.into())
    }

    /// Size at least `bytes`.
    pub fn size_min(self, bytes: u64) -> Self {
        self.param("size_min", bytes)
    }

    /// Size at most `bytes`.
    pub fn size_max(self, bytes: u64) -> Self {
        self.param("size_max", bytes)
    }

    /// Created at or after `time` (RFC 3339, or unix milliseconds).
    pub fn created_after(self, time: impl Into<String>) -> Self {
        self.param("created_after", time.into())
    }

    /// Created at or before `time` (RFC 3339, or unix milliseconds).
    pub fn created_before(self, time: impl Into<String>) -> Self {
        self.param("created_before", time.into())
    }

    /// Has this tag (repeat for several: all must be present).
    pub fn tag(self, tag: impl Into<String>) -> Self {
        self.param("tag", tag.into())
    }

    /// Custom attribute `key` equals `value` (a number matches both numbers and numeric text).
    pub fn attr(self, key: &str, value: impl ToString) -> Self {
        self.param(format!("attr.{key}"), value)
    }

    /// Custom attribute `key` ≥ `value` (numbers numerically, text such as ISO dates as text).
    pub fn attr_gte(self, key: &str, value: impl ToString) -> Self {
        self.param(format!("attr.{key}.gte"), value)
    }

    /// Custom attribute `key` > `value`.
    pub fn attr_gt(self, key: &str, value: impl ToString) -> Self {
        self.param(format!("attr.{key}.gt"), value)
    }

    /// Custom attribute `key` ≤ `value`.
    pub fn attr_lte(self, key: &str, value: impl ToString) -> Self {
        self.param(format!("attr.{key}.lte"), value)
    }

    /// Custom attribute `key` < `value`.
    pub fn attr_lt(self, key: &str, value: impl ToString) -> Self {
        self.param(format!("attr.{key}.lt"), value)
    }

    /// Sort order; `descending` puts the largest (best, newest, Z) first.
    pub fn sort(self, by: SortBy, descending: bool) -> Self {
        self.param("sort", by.as_str()).param("order", if descending { "desc" } else { "asc" })
    }

    /// Hits per page (the server caps it at 500; default 50).
    pub fn limit(self, hits: usize) -> Self {
        self.param("limit", hits)
    }

    /// Reflect every change committed before the search, on whichever node answers (it waits
    /// for that node's index to catch up, or fails with `Unavailable`).
    pub fn consistent(self) -> Self {
        self.param("consistent", "true")
    }

    /// The query string for one page.
    pub fn to_query(&self, cursor: Option<&str>) -> String {
        let mut params = self.params.clone();
        if let Some(c) = cursor {
            params.push(("cursor".into(), c.into()));
        }
        serde_urlencoded::to_string(&params).unwrap_or_default()
    }
}
