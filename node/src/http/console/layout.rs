//! The page shell every console page shares (header, navigation by role, language switch,
//! sign-out) and the small pieces pages are built from. maud escapes every interpolated value.

use artstore_raft::Role;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use super::i18n::{Lang, T};
use super::session::{lang_of, Session};
use crate::http::ApiError;

/// A page: its title, an optional notice, and its body.
pub struct Page {
    lang: Lang,
    title: String,
    notice: Option<String>,
    body: Markup,
}

impl Page {
    pub fn new(lang: Lang, title: impl Into<String>) -> Self {
        Self { lang, title: title.into(), notice: None, body: html! {} }
    }

    pub fn notice(mut self, notice: Option<String>) -> Self {
        self.notice = notice;
        self
    }

    pub fn body(mut self, body: Markup) -> Self {
        self.body = body;
        self
    }

    /// The whole document; `session` decides the navigation (none before sign-in).
    pub fn render(self, session: Option<&Session>) -> Response {
        let lang = self.lang;
        let doc = html! {
            (DOCTYPE)
            html lang=(lang.code()) {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    meta name="color-scheme" content="light dark";
                    title { (self.title) " · " (T::Console.get(lang)) }
                    link rel="stylesheet" href="/console/assets/console.css";
                    link rel="icon" href="/console/assets/icon.svg" type="image/svg+xml";
                    script src="/console/assets/console.js" defer {}
                }
                body {
                    a .skip href="#main" { (T::Skip.get(lang)) }
                    header .top {
                        a .brand href="/console" { span .logo aria-hidden="true" {} "ArtStore" }
                        @if let Some(s) = session { (nav(s)) }
                        div .who {
                            @if let Some(s) = session {
                                span .account title=(roles_text(s)) { (s.principal.client_id) }
                                form #sign-out method="post" action="/console/sign-out" {
                                    (csrf_input(s))
                                    button #sign-out-submit .link type="submit" { (T::SignOut.get(lang)) }
                                }
                            }
                            span .langs role="group" aria-label=(T::Language.get(lang)) {
                                a #lang-en href="/console/lang/en" hreflang="en" aria-current=[(lang == Lang::En).then_some("true")] { "EN" }
                                a #lang-ru href="/console/lang/ru" hreflang="ru" aria-current=[(lang == Lang::Ru).then_some("true")] { "RU" }
                            }
                        }
                    }
                    main #main tabindex="-1" {
                        h1 #page-title { (self.title) }
                        @if let Some(n) = &self.notice { p #notice .notice role="status" { (n) } }
                        (self.body)
                    }
                }
            }
        };
        (StatusCode::OK, [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")], doc.into_string())
            .into_response()
    }
}

fn roles_text(s: &Session) -> String {
    s.principal.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", ")
}

fn nav(s: &Session) -> Markup {
    let l = s.lang;
    html! {
        nav #nav aria-label=(l.pick("Main", "Главное меню")) {
            a #nav-dashboard href="/console" { (T::Dashboard.get(l)) }
            a #nav-files href="/console/files" { (T::Files.get(l)) }
            @if s.can(Role::Admin) { a #nav-accounts href="/console/accounts" { (T::Accounts.get(l)) } }
            @if s.can(Role::Operator) {
                a #nav-keys href="/console/keys" { (T::Keys.get(l)) }
                a #nav-audit href="/console/audit" { (T::Audit.get(l)) }
            }
            a #nav-cluster href="/console/cluster" { (T::Cluster.get(l)) }
        }
    }
}

/// A confirmation page for what cannot be undone: the consequences first, then what it acts on,
/// then one form that does it and a way back.
pub struct Confirm<'a> {
    pub title: String,
    pub consequences: &'a str,
    /// What the action is about (metadata, numbers), shown between the two.
    pub details: Markup,
    /// The form's target, and any fields it carries besides the CSRF token.
    pub action: String,
    pub fields: Markup,
    pub button: String,
    pub cancel: String,
}

impl Confirm<'_> {
    pub fn render(self, s: &Session) -> Response {
        let body = html! {
            p #consequences .warning { (self.consequences) }
            (self.details)
            form #confirm method="post" action=(self.action) {
                (csrf_input(s))
                (self.fields)
                button #confirm-submit .danger type="submit" { (self.button) }
                " " a #cancel href=(self.cancel) { (T::Cancel.get(s.lang)) }
            }
        };
        Page::new(s.lang, self.title).body(body).render(Some(s))
    }
}

/// The hidden CSRF field every POST form carries.
pub fn csrf_input(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// An error page with the status of the failure and its code in `data-code`.
pub fn error_page(lang: Lang, status: StatusCode, code: &str, message: &str) -> Response {
    error_page_for(None, lang, status, code, message)
}

/// An API failure as a page, with the API's own status, code and message. It keeps the visitor's
/// navigation and sign-out, so a refused page (a reader opening the accounts) is no dead end.
pub fn api_error(s: &Session, e: ApiError) -> Response {
    error_page_for(Some(s), s.lang, e.status, e.code, &e.message)
}

fn error_page_for(session: Option<&Session>, lang: Lang, status: StatusCode, code: &str, message: &str) -> Response {
    let body = html! {
        p #error .error role="alert" data-code=(code) { (message) }
        p { a href="/console" { (T::Back.get(lang)) } }
    };
    let mut resp = Page::new(lang, T::Error.get(lang)).body(body).render(session);
    *resp.status_mut() = status;
    resp
}

pub async fn method_not_allowed(headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    error_page(
        lang,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        lang.pick("This page does not take that method.", "Эта страница не принимает такой метод."),
    )
}

pub async fn not_found(headers: HeaderMap) -> Response {
    let lang = lang_of(&headers);
    error_page(lang, StatusCode::NOT_FOUND, "not_found", T::NotFound.get(lang))
}

/// The notice for `?done=KEY`, the 303 answer of a form that worked (so that a reload never posts
/// the form again). Only known keys have text: the query cannot put words on the page.
pub fn done_notice(lang: Lang, raw_query: Option<&str>) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw_query.unwrap_or("")).ok()?;
    let key = pairs.into_iter().find(|(k, _)| k == "done")?.1;
    let text = match key.as_str() {
        "saved" => T::Done.get(lang),
        "unchanged" => lang.pick("Nothing changed.", "Ничего не изменилось."),
        "finalized" => lang.pick("Finalized: the file is permanent.", "Закреплён: файл постоянный."),
        "deleted" => lang.pick("Deleted.", "Удалено."),
        "mode" => lang.pick("The element's mode changed.", "Режим элемента изменён."),
        "rotated" => lang.pick("A new signing key signs from now on.", "Теперь подписывает новый ключ."),
        _ => return None,
    };
    Some(text.to_string())
}

/// A byte count for people: 1536 → "1.5 KiB".
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A capacity bar: a `<meter>` whose colour the browser picks from the thresholds.
pub fn capacity(used: u64, total: u64, warning: f64, critical: f64, label: &str) -> Markup {
    let fraction = if total == 0 { 0.0 } else { (used as f64 / total as f64).clamp(0.0, 1.0) };
    html! {
        meter .capacity min="0" max="1" low=(warning) high=(critical) optimum="0" value=(format!("{fraction:.4}"))
            aria-label=(label) title=(format!("{:.1} %", fraction * 100.0)) {
            (format!("{:.1} %", fraction * 100.0))
        }
        span .capacity-text { (bytes(used)) " / " (bytes(total)) }
    }
}

/// A time as the API gives it (RFC 3339), shortened to the minute for tables.
pub fn when(t: &str) -> Markup {
    let short = t.get(..16).map(|s| s.replace('T', " ")).unwrap_or_else(|| t.to_string());
    html! { time datetime=(t) title=(t) { (short) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_like_people_write_them() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(5 << 30), "5.0 GiB");
    }

    #[test]
    fn only_known_notices_have_words() {
        assert_eq!(done_notice(Lang::En, Some("done=saved")).as_deref(), Some("Done."));
        assert_eq!(done_notice(Lang::En, Some("done=%3Cscript%3E")), None);
        assert_eq!(done_notice(Lang::En, None), None);
    }

    #[test]
    fn interpolated_text_is_escaped() {
        let m = html! { p { ("<script>alert(1)</script>") } };
        assert!(!m.into_string().contains("<script>"));
    }
}
