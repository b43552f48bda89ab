//! `artstore search QUERY [filters]`: the SDK's [`Search`] from the command line.

use artstore_client::wire::SearchResults;
use artstore_client::{Search, SortBy};
use clap::ValueEnum;
use futures::TryStreamExt;

use super::{emit, parse_attrs, Connection, Output};

#[derive(Clone, Copy, ValueEnum)]
pub enum SortArg {
    Relevance,
    #[value(name = "created_at")]
    CreatedAt,
    Size,
    Name,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OrderArg {
    Asc,
    Desc,
}

#[derive(clap::Args)]
pub struct SearchArgs {
    #[command(flatten)]
    conn: Connection,
    /// Words (English and Russian forms match), "phrases", name:word, tags:word, OR, -word.
    /// Without it, every file matching the filters.
    query: Option<String>,
    /// Must carry this tag (repeatable: all must be present).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Custom attribute equals value, `key=value` (repeatable).
    #[arg(long = "attr")]
    attrs: Vec<String>,
    /// Exact content type, e.g. application/pdf.
    #[arg(long)]
    content_type: Option<String>,
    #[arg(long, value_enum)]
    sort: Option<SortArg>,
    /// Sort direction [default: desc for relevance, asc otherwise].
    #[arg(long, value_enum)]
    order: Option<OrderArg>,
    /// Hits per page (1–500).
    #[arg(long, default_value_t = 50)]
    limit: usize,
    /// Every page, not just the first.
    #[arg(long)]
    all: bool,
    /// Wait until the answering node's index has every change committed before the search.
    #[arg(long)]
    consistent: bool,
    /// `json`: `{hits, total, next_cursor}`.
    #[arg(long, value_enum, default_value = "text")]
    output: Output,
}

impl SearchArgs {
    fn search(&self) -> anyhow::Result<Search> {
        let mut s = match &self.query {
            Some(q) if !q.trim().is_empty() => Search::text(q.clone()),
            _ => Search::all(),
        };
        for t in &self.tags {
            s = s.tag(t.clone());
        }
        for (k, v) in parse_attrs("--attr", &self.attrs)? {
            s = s.attr(&k, v.as_str().unwrap_or_default());
        }
        if let Some(ct) = &self.content_type {
            s = s.content_type(ct.clone());
        }
        if self.sort.is_some() || self.order.is_some() {
            let by = match self.sort.unwrap_or(SortArg::Relevance) {
                SortArg::Relevance => SortBy::Relevance,
                SortArg::CreatedAt => SortBy::CreatedAt,
                SortArg::Size => SortBy::Size,
                SortArg::Name => SortBy::Name,
            };
            let descending = match self.order {
                Some(o) => o == OrderArg::Desc,
                None => by == SortBy::Relevance,
            };
            s = s.sort(by, descending);
        }
        s = s.limit(self.limit);
        if self.consistent {
            s = s.consistent();
        }
        Ok(s)
    }
}

pub async fn run(a: SearchArgs) -> anyhow::Result<()> {
    let search = a.search()?;
    let client = a.conn.client()?;
    let results = if a.all {
        let hits: Vec<_> = client.search_all(search).try_collect().await?;
        SearchResults { total: hits.len() as u64, hits, next_cursor: None }
    } else {
        client.search(&search).await?
    };
    emit(a.output, &results, |r| {
        for h in &r.hits {
            println!("{}  {}  {} bytes  {}  score {:.3}", h.id, h.name, h.size, h.created_at, h.score);
        }
        eprintln!("{} of {} matching file(s)", r.hits.len(), r.total);
        if r.next_cursor.is_some() {
            eprintln!("more pages: add --all, or raise --limit");
        }
    })
}
