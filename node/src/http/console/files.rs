//! Files: search with the query language and filters, sortable results with paging, a file's
//! metadata and replicas, download, upload with progress, metadata editing, finalize and delete.
//! Each action is the API's own handler, called as the signed-in account.

use artstore_client::wire::{FileInfo, SearchResults, UpdateFile};
use artstore_raft::Role;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n::{Lang, T};
use super::layout::{self, csrf_input, Page};
use super::session::csrf_of;
use super::{see_other, Session};
use crate::http::files::{self as api, UploadQuery};
use crate::http::json::JsonBody;
use crate::http::{search as api_search, ApiError, AppState};

/// The longest query string the search page takes.
const MAX_SEARCH_QUERY_BYTES: usize = 8192;
/// The most attribute conditions one search may carry.
const MAX_ATTR_CONDITIONS: usize = 16;

/// The search form as the visitor filled it (kept to fill it again).
#[derive(Default, Debug, PartialEq)]
struct SearchForm {
    q: String,
    tag: String,
    content_type: String,
    size_min: String,
    size_max: String,
    created_after: String,
    created_before: String,
    attrs: String,
    sort: String,
    order: String,
    cursor: String,
    /// "1": the results include every upload acknowledged before the search (`consistent`).
    fresh: String,
}

impl SearchForm {
    fn parse(raw: &str) -> Result<Self, String> {
        if raw.len() > MAX_SEARCH_QUERY_BYTES {
            return Err(format!("the search is over {MAX_SEARCH_QUERY_BYTES} bytes"));
        }
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw).map_err(|e| format!("query string: {e}"))?;
        let mut f = SearchForm::default();
        for (k, v) in pairs {
            let slot = match k.as_str() {
                "q" => &mut f.q,
                "tag" => &mut f.tag,
                "content_type" => &mut f.content_type,
                "size_min" => &mut f.size_min,
                "size_max" => &mut f.size_max,
                "created_after" => &mut f.created_after,
                "created_before" => &mut f.created_before,
                "attrs" => &mut f.attrs,
                "sort" => &mut f.sort,
                "order" => &mut f.order,
                "cursor" => &mut f.cursor,
                "fresh" => &mut f.fresh,
                // The notice after a delete.
                "done" => continue,
                _ => return Err(format!("unknown search field {k:?}")),
            };
            *slot = v.trim().to_string();
        }
        Ok(f)
    }

    /// The API's query string for this form: empty fields left out, tags split at commas, dates
    /// as the start of their day (UTC), and attribute conditions (`year>=2000; dept=HR`) as
    /// `attr.KEY[.gte|.gt|.lte|.lt]`.
    fn api_query(&self, cursor: bool) -> Result<String, String> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut put = |k: &str, v: &str| {
            if !v.is_empty() {
                out.push((k.to_string(), v.to_string()))
            }
        };
        put("q", &self.q);
        for t in self.tag.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            put("tag", t);
        }
        put("content_type", &self.content_type);
        put("size_min", &self.size_min);
        put("size_max", &self.size_max);
        put("created_after", &day_start(&self.created_after));
        put("created_before", &day_start(&self.created_before));
        put("sort", &self.sort);
        put("order", &self.order);
        if self.fresh == "1" {
            put("consistent", "true");
        }
        if cursor {
            put("cursor", &self.cursor);
        }
        let conditions: Vec<&str> = self.attrs.split([';', '\n']).map(str::trim).filter(|c| !c.is_empty()).collect();
        if conditions.len() > MAX_ATTR_CONDITIONS {
            return Err(format!("at most {MAX_ATTR_CONDITIONS} attribute conditions"));
        }
        for c in conditions {
            let (key, suffix, value) = [(">=", ".gte"), ("<=", ".lte"), (">", ".gt"), ("<", ".lt"), ("=", "")]
                .iter()
                .find_map(|(op, suffix)| c.split_once(op).map(|(k, v)| (k.trim(), *suffix, v.trim())))
                .ok_or_else(|| format!("attribute condition {c:?} is not KEY=VALUE, KEY>=VALUE, KEY<VALUE …"))?;
            if key.is_empty() {
                return Err(format!("attribute condition {c:?} has no key"));
            }
            out.push((format!("attr.{key}{suffix}"), value.to_string()));
        }
        serde_urlencoded::to_string(&out).map_err(|e| e.to_string())
    }

    /// This form's page link with `sort`/`order`/`cursor` replaced.
    fn link(&self, sort: &str, order: &str, cursor: Option<&str>) -> String {
        let pairs = [
            ("q", self.q.as_str()),
            ("tag", &self.tag),
            ("content_type", &self.content_type),
            ("size_min", &self.size_min),
            ("size_max", &self.size_max),
            ("created_after", &self.created_after),
            ("created_before", &self.created_before),
            ("attrs", &self.attrs),
            ("sort", sort),
            ("order", order),
            ("cursor", cursor.unwrap_or("")),
            ("fresh", &self.fresh),
        ];
        let kept: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        format!("/console/files?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
    }
}

/// `2026-01-31` → `2026-01-31T00:00:00Z`; anything else as given (the API names what is wrong).
fn day_start(d: &str) -> String {
    let is_date = d.len() == 10 && d.as_bytes()[4] == b'-' && d.as_bytes()[7] == b'-';
    if is_date {
        format!("{d}T00:00:00Z")
    } else {
        d.to_string()
    }
}

/// `GET /console/files?…`: the search form, the results and the upload form.
pub async fn search(State(s): State<AppState>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let l = session.lang;
    let form = match SearchForm::parse(raw.as_deref().unwrap_or("")) {
        // The first visit lists the newest files, the ones just uploaded included.
        Ok(f) if raw.as_deref().unwrap_or("").is_empty() => SearchForm { fresh: "1".into(), ..f },
        Ok(f) => f,
        Err(m) => return layout::error_page(l, StatusCode::BAD_REQUEST, "invalid_search", &m),
    };
    let results = match form.api_query(true) {
        Ok(q) => api_search::search(State(s.clone()), session.caller(), RawQuery(Some(q))).await.map(|j| j.0),
        Err(m) => Err(ApiError::bad_request("invalid_search", m)),
    };
    let (results, error) = match results {
        Ok(r) => (Some(r), None),
        Err(e) => (None, Some(e)),
    };
    let status = error.as_ref().map(|e| e.status).unwrap_or(StatusCode::OK);
    let body = html! {
        (search_form(l, &form))
        @if let Some(e) = &error { p #error .error role="alert" data-code=(e.code) { (e.message) } }
        @if let Some(r) = &results { (results_table(l, &form, r)) }
        @if session.can(Role::Writer) { (upload_form(&session)) }
    };
    let notice = layout::done_notice(l, raw.as_deref());
    let mut resp = Page::new(l, T::Files.get(l)).notice(notice).body(body).render(Some(&session));
    *resp.status_mut() = status;
    resp
}

fn search_form(l: Lang, f: &SearchForm) -> Markup {
    let sorts = [
        ("", l.pick("Best match, then newest", "По релевантности")),
        ("created_at", l.pick("Created", "По дате")),
        ("name", l.pick("Name", "По имени")),
        ("size", l.pick("Size", "По размеру")),
    ];
    html! {
        form #search .card method="get" action="/console/files" role="search" {
            label for="q" { (l.pick("Words, \"phrases\", AND / OR / NOT", "Слова, \"фразы\", AND / OR / NOT")) }
            input #q type="search" name="q" value=(f.q) maxlength="1024";
            details open[!f.tag.is_empty() || !f.attrs.is_empty() || !f.content_type.is_empty() || !f.size_min.is_empty()
                || !f.size_max.is_empty() || !f.created_after.is_empty() || !f.created_before.is_empty()] {
                summary { (l.pick("Filters", "Фильтры")) }
                div .filters {
                    div { label for="tag" { (T::Tags.get(l)) " " span .muted { (l.pick("(comma separated, all must match)", "(через запятую, все должны совпасть)")) } }
                        input #tag type="text" name="tag" value=(f.tag) maxlength="1024"; }
                    div { label for="content_type" { (T::Type.get(l)) } input #content_type type="text" name="content_type" value=(f.content_type) placeholder="application/pdf" maxlength="255"; }
                    div { label for="size_min" { (l.pick("Size from (bytes)", "Размер от (байт)")) } input #size_min type="number" min="0" name="size_min" value=(f.size_min); }
                    div { label for="size_max" { (l.pick("Size up to (bytes)", "Размер до (байт)")) } input #size_max type="number" min="0" name="size_max" value=(f.size_max); }
                    div { label for="created_after" { (l.pick("Created from", "Создан с")) } input #created_after type="date" name="created_after" value=(f.created_after); }
                    div { label for="created_before" { (l.pick("Created before", "Создан до")) } input #created_before type="date" name="created_before" value=(f.created_before); }
                }
                label for="attrs" { (l.pick("Attributes", "Атрибуты")) " " span .muted { "year>=2000; dept=HR" } }
                input #attrs type="text" name="attrs" value=(f.attrs) maxlength="2048";
            }
            div .inline-form {
                label .inline for="sort" { (l.pick("Sort", "Сортировка")) }
                select #sort name="sort" {
                    @for (v, text) in sorts { option value=(v) selected[f.sort == v] { (text) } }
                }
                select #order name="order" aria-label=(l.pick("Order", "Порядок")) {
                    option value="" selected[f.order.is_empty()] { (l.pick("default order", "обычный порядок")) }
                    option value="asc" selected[f.order == "asc"] { (l.pick("ascending", "по возрастанию")) }
                    option value="desc" selected[f.order == "desc"] { (l.pick("descending", "по убыванию")) }
                }
                label .inline for="fresh" {
                    input #fresh type="checkbox" name="fresh" value="1" checked[f.fresh == "1"];
                    (l.pick("include uploads of the last seconds (waits for the index)", "с загрузками последних секунд (ждёт индекс)"))
                }
                button #search-submit type="submit" { (T::Search.get(l)) }
            }
        }
    }
}

fn results_table(l: Lang, f: &SearchForm, r: &SearchResults) -> Markup {
    let header = |key: &str, text: &str, num: bool| {
        let current = f.sort == key;
        let next_order = if current && f.order != "desc" { "desc" } else { "asc" };
        let sorted = match (current, f.order.as_str()) {
            (true, "desc") => "descending",
            (true, _) => "ascending",
            _ => "none",
        };
        html! { th .num[num] aria-sort=(sorted) { a href=(f.link(key, next_order, None)) { (text) } } }
    };
    html! {
        section aria-labelledby="results-title" {
            h2 #results-title { (l.pick("Results", "Результаты")) " " span .muted { "(" (r.total) ")" } }
            @if r.hits.is_empty() {
                p #no-results { (l.pick("Nothing matches.", "Ничего не найдено.")) }
            } @else {
                div .table-wrap { table #results {
                    thead { tr {
                        (header("name", T::Name.get(l), false))
                        (header("size", T::Size.get(l), true))
                        th { (T::Type.get(l)) }
                        (header("created_at", T::Created.get(l), false))
                        th { (T::Tags.get(l)) }
                    } }
                    tbody {
                        @for h in &r.hits {
                            tr .file data-id=(h.id) {
                                td { a .file-link href=(format!("/console/files/{}", h.id)) { (h.name) }
                                    @if !h.description.is_empty() { br; span .muted { (truncate(&h.description, 120)) } } }
                                td .num { (layout::bytes(h.size)) }
                                td { code { (h.content_type) } }
                                td { (layout::when(&h.created_at)) }
                                td { @for t in &h.tags { span .badge { (t) } " " } }
                            }
                        }
                    }
                } }
            }
            div .pager {
                @if !f.cursor.is_empty() { a href=(f.link(&f.sort, &f.order, None)) { (T::FirstPage.get(l)) } }
                @if let Some(c) = &r.next_cursor { a #next-page href=(f.link(&f.sort, &f.order, Some(c))) { (T::NextPage.get(l)) } }
            }
        }
    }
}

fn truncate(s: &str, chars: usize) -> String {
    match s.char_indices().nth(chars) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

fn upload_form(s: &Session) -> Markup {
    let l = s.lang;
    html! {
        section aria-labelledby="upload-title" {
            h2 #upload-title { (T::Upload.get(l)) }
            form #upload method="post" action="/console/files/upload" enctype="application/octet-stream" {
                (csrf_input(s))
                label for="upload-files" { (l.pick("Files", "Файлы")) }
                input #upload-files type="file" name="files" multiple required;
                label for="upload-tags" { (T::Tags.get(l)) " " span .muted { (l.pick("(comma separated)", "(через запятую)")) } }
                input #upload-tags type="text" name="tags" maxlength="1024";
                label for="upload-description" { (T::Description.get(l)) }
                input #upload-description type="text" name="description" maxlength="4096";
                label for="upload-policy" { (l.pick("Keep", "Хранение")) }
                select #upload-policy name="retention_policy" {
                    option value="permanent" { (l.pick("permanent", "постоянно")) }
                    option value="temporary" { (l.pick("temporary (expires, can be finalized)", "временно (истекает, можно закрепить)")) }
                }
                button #upload-submit type="submit" { (T::Upload.get(l)) }
                noscript { p .warning { (l.pick("Uploading from the console needs JavaScript.", "Для загрузки из консоли нужен JavaScript.")) } }
            }
            ul #upload-progress .uploads aria-live="polite" {}
        }
    }
}

/// `POST /console/files/upload?name=…&tags=…`: the raw body streams into the API's upload.
pub async fn upload(
    State(s): State<AppState>,
    session: Session,
    headers: HeaderMap,
    q: Result<Query<UploadQuery>, QueryRejection>,
    req: Request,
) -> Response {
    let csrf = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if !session.csrf_ok(csrf) {
        // The script reads JSON; a refusal says why in the API's shape.
        let code = if csrf.is_some() { "csrf_invalid" } else { "csrf_missing" };
        return ApiError::new(StatusCode::FORBIDDEN, code, "the request carried no valid CSRF token").into_response();
    }
    match api::upload(State(s), session.caller(), q, req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

/// `GET /console/files/{id}`.
pub async fn detail(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let notice = layout::done_notice(session.lang, raw.as_deref());
    show(&s, &session, &id, notice).await
}

async fn show(s: &AppState, session: &Session, id: &str, notice: Option<String>) -> Response {
    let l = session.lang;
    let file = match api::get(State(s.clone()), session.caller(), Ok(Path(id.to_string()))).await {
        Ok(f) => f.0,
        Err(e) => return layout::api_error(session, e),
    };
    let now = crate::http::admin::rfc3339(artstore_raft::now_ms());
    let locked = file.retention_until.as_deref().is_some_and(|u| u > now.as_str());
    let writer = session.can(Role::Writer);
    let body = html! {
        div .grid {
            section aria-labelledby="meta-title" {
                h2 #meta-title { (l.pick("Metadata", "Метаданные")) }
                (meta_list(l, &file))
                p { a #download .button href=(format!("/console/files/{}/content", file.id)) download { (T::Download.get(l)) } }
            }
            @if writer { (edit_form(session, &file, locked)) }
        }
    };
    Page::new(l, file.name.clone()).notice(notice).body(body).render(Some(session))
}

fn meta_list(l: Lang, f: &FileInfo) -> Markup {
    let attributes = serde_json::to_string_pretty(&f.custom_attributes).unwrap_or_default();
    html! {
        dl #file-meta .meta {
            dt { "Id" } dd { code { (f.id) } }
            dt { (T::Size.get(l)) } dd { (layout::bytes(f.size)) " (" (f.size) " B)" }
            dt { (T::Type.get(l)) } dd { code { (f.content_type) } }
            dt { (l.pick("Version", "Версия")) } dd { (f.version) }
            dt { (T::Created.get(l)) } dd { (layout::when(&f.created_at)) " · " (f.created_by) }
            dt { (l.pick("Updated", "Изменён")) } dd { (layout::when(&f.updated_at)) }
            dt { (T::Description.get(l)) } dd { (f.description) }
            dt { (T::Tags.get(l)) } dd { @for t in &f.tags { span .badge { (t) } " " } }
            dt { (l.pick("Attributes", "Атрибуты")) } dd { @if f.custom_attributes.is_empty() { "—" } @else { pre { (attributes) } } }
            dt { (l.pick("Retention", "Хранение")) }
            dd {
                (f.retention_policy)
                @if let Some(e) = &f.expires_at { " · " (l.pick("expires", "истекает")) " " (layout::when(e)) }
                @if let Some(u) = &f.retention_until { " · " (l.pick("locked until", "защищён до")) " " (layout::when(u)) }
            }
            dt { (l.pick("Replicas", "Реплики")) }
            dd #replicas {
                @for n in &f.replicas { span .badge { (T::Node.get(l)) " " (n) } " " }
                @if f.missing_replicas == 0 {
                    span .badge.ok { (l.pick("all present", "все на месте")) }
                } @else {
                    span .badge.bad { (f.missing_replicas) " " (l.pick("missing, repair queued", "не хватает, восстановление в очереди")) }
                }
                " · " (f.chunks) " " (l.pick("chunks", "блоков"))
            }
        }
    }
}

fn edit_form(s: &Session, f: &FileInfo, locked: bool) -> Markup {
    let l = s.lang;
    let attributes = serde_json::to_string_pretty(&f.custom_attributes).unwrap_or_default();
    html! {
        section aria-labelledby="edit-title" {
            h2 #edit-title { (l.pick("Change", "Изменить")) }
            @if locked {
                p .warning { (l.pick("Retention holds this file: it cannot be changed or deleted before its date.",
                    "Файл под защитой хранения: до указанной даты его нельзя изменить или удалить.")) }
            } @else {
                form #edit-file method="post" action=(format!("/console/files/{}", f.id)) {
                    (csrf_input(s))
                    label for="edit-name" { (T::Name.get(l)) }
                    input #edit-name type="text" name="name" value=(f.name) required maxlength="1024";
                    label for="edit-description" { (T::Description.get(l)) }
                    textarea #edit-description name="description" maxlength="65536" { "\n" (f.description) }
                    label for="edit-tags" { (T::Tags.get(l)) }
                    input #edit-tags type="text" name="tags" value=(f.tags.join(", ")) maxlength="4096";
                    label for="edit-attributes" { (l.pick("Attributes (JSON object)", "Атрибуты (объект JSON)")) }
                    textarea #edit-attributes name="custom_attributes" maxlength="65536" { "\n" (attributes) }
                    label for="edit-retention" { (l.pick("Locked until (RFC 3339, optional; cannot be undone)", "Защищён до (RFC 3339, необязательно; не отменить)")) }
                    input #edit-retention type="text" name="retention_until" value=(f.retention_until.clone().unwrap_or_default()) placeholder="2030-01-01T00:00:00Z" maxlength="64";
                    button type="submit" { (T::Save.get(l)) }
                }
                @if f.retention_policy == "temporary" {
                    form #finalize method="post" action=(format!("/console/files/{}/finalize", f.id)) {
                        (csrf_input(s))
                        p .hint { (l.pick("Finalizing copies the file to permanent storage under the same id; it no longer expires.",
                            "Закрепление копирует файл в постоянное хранилище под тем же id; он больше не истекает.")) }
                        button #finalize-submit type="submit" { (l.pick("Finalize", "Закрепить")) }
                    }
                }
                p { a #delete-file href=(format!("/console/files/{}/delete", f.id)) { (T::Delete.get(l)) "…" } }
            }
        }
    }
}

#[derive(Deserialize)]
pub struct EditForm {
    csrf: Option<String>,
    name: Option<String>,
    description: Option<String>,
    tags: Option<String>,
    custom_attributes: Option<String>,
    retention_until: Option<String>,
}

/// `POST /console/files/{id}`: only what changed is sent to the API.
pub async fn edit(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let l = session.lang;
    let form: EditForm = match super::session::form(&body) {
        Ok(f) => f,
        Err(e) => return layout::error_page(l, StatusCode::BAD_REQUEST, "invalid_form", &e.to_string()),
    };
    if let Some(r) = session.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    let current = match api::get(State(s.clone()), session.caller(), Ok(Path(id.clone()))).await {
        Ok(f) => f.0,
        Err(e) => return layout::api_error(&session, e),
    };
    let mut change = UpdateFile::default();
    if let Some(n) = form.name.filter(|n| *n != current.name) {
        change.name = Some(n);
    }
    if let Some(d) = form.description.map(|d| d.replace("\r\n", "\n")).filter(|d| *d != current.description) {
        change.description = Some(d);
    }
    // The tags as the form showed them: a tag holding a comma must not be split by a save that
    // changed nothing.
    if let Some(t) = form.tags.filter(|t| t.trim() != current.tags.join(", ")) {
        let tags: Vec<String> = t.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect();
        if tags != current.tags {
            change.tags = Some(tags);
        }
    }
    if let Some(a) = form.custom_attributes.filter(|a| !a.trim().is_empty()) {
        match serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&a) {
            Ok(m) if m != current.custom_attributes => change.custom_attributes = Some(m),
            Ok(_) => {}
            Err(e) => {
                return layout::error_page(
                    l,
                    StatusCode::BAD_REQUEST,
                    "invalid_attributes",
                    &format!("attributes: {e}"),
                )
            }
        }
    }
    if let Some(r) = form.retention_until.map(|r| r.trim().to_string()).filter(|r| !r.is_empty()) {
        if current.retention_until.as_deref() != Some(r.as_str()) {
            change.retention_until = Some(r);
        }
    }
    if change == UpdateFile::default() {
        return see_other(&format!("/console/files/{id}?done=unchanged"));
    }
    match api::update(State(s.clone()), session.caller(), Ok(Path(id.clone())), Ok(JsonBody(change))).await {
        Ok(_) => see_other(&format!("/console/files/{id}?done=saved")),
        Err(e) => layout::api_error(&session, e),
    }
}

/// `GET /console/files/{id}/content`: the API's download, with `Range` and `ETag`.
///
/// Files are whatever their uploaders sent, served from the console's own origin: a file must
/// never become a script or stylesheet of a console page (which `script-src 'self'` would let
/// through), so only a navigation or a script's `fetch` gets it, and it comes sandboxed.
pub async fn download(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let dest = headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()).unwrap_or("document");
    if !matches!(dest, "document" | "empty") {
        return layout::error_page(
            session.lang,
            StatusCode::FORBIDDEN,
            "not_a_resource",
            session
                .lang
                .pick("A file cannot be loaded into a console page.", "Файл нельзя загрузить в страницу консоли."),
        );
    }
    let mut resp = match api::content(State(s), session.caller(), Ok(Path(id)), headers).await {
        Ok(r) => r,
        Err(e) => return layout::api_error(&session, e),
    };
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_SECURITY_POLICY,
        axum::http::HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(
        axum::http::HeaderName::from_static("cross-origin-resource-policy"),
        axum::http::HeaderValue::from_static("same-origin"),
    );
    resp
}
/// `POST /console/files/{id}/finalize`.
pub async fn finalize(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = session.csrf_refusal(csrf_of(&body).as_deref()) {
        return r;
    }
    match api::finalize(State(s.clone()), session.caller(), Ok(Path(id.clone()))).await {
        Ok(_) => see_other(&format!("/console/files/{id}?done=finalized")),
        Err(e) => layout::api_error(&session, e),
    }
}

/// `GET /console/files/{id}/delete`: what deleting means, before it happens.
pub async fn confirm_delete(State(s): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let l = session.lang;
    if let Err(e) = session.principal.require(Role::Writer) {
        return layout::api_error(&session, e.into());
    }
    let file = match api::get(State(s), session.caller(), Ok(Path(id))).await {
        Ok(f) => f.0,
        Err(e) => return layout::api_error(&session, e),
    };
    layout::Confirm {
        title: format!("{}: {}", T::Delete.get(l), file.name),
        consequences: l.pick(
            "The file disappears from every listing and search at once, and its chunks are removed from every node later. This cannot be undone.",
            "Файл сразу пропадёт из списков и поиска, а его блоки позже удалятся со всех узлов. Отменить нельзя.",
        ),
        details: meta_list(l, &file),
        action: format!("/console/files/{}/delete", file.id),
        fields: html! {},
        button: format!("{} {}", T::Delete.get(l), file.name),
        cancel: format!("/console/files/{}", file.id),
    }
    .render(&session)
}

/// `POST /console/files/{id}/delete`.
pub async fn delete(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = session.csrf_refusal(csrf_of(&body).as_deref()) {
        return r;
    }
    match api::delete(State(s), session.caller(), Ok(Path(id))).await {
        Ok(_) => see_other("/console/files?done=deleted"),
        Err(e) => layout::api_error(&session, e),
    }
}

/// The search form's parsers, for the console's fuzz tests.
#[cfg(test)]
pub(super) fn fuzz_parse(raw: &str) -> Result<String, String> {
    SearchForm::parse(raw)?.api_query(true)
}

#[cfg(test)]
pub(super) fn fuzz_attrs(attrs: &str) -> Result<String, String> {
    SearchForm { attrs: attrs.to_string(), ..Default::default() }.api_query(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_api_query() {
        let f = SearchForm::parse("q=%D0%BE%D1%82%D1%87%D1%91%D1%82&tag=a%2C+b&created_after=2026-01-31&attrs=year%3E%3D2000%3B+dept%3DHR&sort=&cursor=c1")
            .unwrap();
        assert_eq!(f.q, "отчёт");
        let q = f.api_query(true).unwrap();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&q).unwrap();
        let want: Vec<(String, String)> = [
            ("q", "отчёт"),
            ("tag", "a"),
            ("tag", "b"),
            ("created_after", "2026-01-31T00:00:00Z"),
            ("cursor", "c1"),
            ("attr.year.gte", "2000"),
            ("attr.dept", "HR"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(pairs, want);
    }

    #[test]
    fn bad_forms_are_named() {
        assert!(SearchForm::parse("nope=1").unwrap_err().contains("nope"));
        assert!(SearchForm::parse(&"q=a&".repeat(3000)).is_err());
        let f = SearchForm::parse("attrs=%3D1").unwrap();
        assert!(f.api_query(false).unwrap_err().contains("no key"));
        let many = SearchForm { attrs: "a=1;".repeat(MAX_ATTR_CONDITIONS + 1), ..Default::default() };
        assert!(many.api_query(false).is_err());
    }

    #[test]
    fn a_fresh_search_waits_for_the_index() {
        let f = SearchForm::parse("q=a&fresh=1").unwrap();
        assert_eq!(f.api_query(true).unwrap(), "q=a&consistent=true");
        assert_eq!(SearchForm::parse("q=a").unwrap().api_query(true).unwrap(), "q=a");
        assert_eq!(f.link("", "", None), "/console/files?q=a&fresh=1");
    }

    #[test]
    fn links_keep_the_search_and_change_the_sort() {
        let f = SearchForm { q: "x y".into(), sort: "name".into(), ..Default::default() };
        assert_eq!(f.link("size", "asc", None), "/console/files?q=x+y&sort=size&order=asc");
    }
}
