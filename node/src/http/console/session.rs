//! Signing in and out, and the [`Session`] every console page takes: the cookie holding the
//! account's access token, validated on each request like a bearer token, and the CSRF token
//! derived from it.

use std::net::SocketAddr;
use std::sync::Arc;

use artstore_actors::admin::{ClientCertificate, Principal};
use artstore_actors::AdminError;
use artstore_raft::Role;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Extension;
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::i18n::{Lang, T};
use super::layout::{self, Page};
use super::ConsoleSettings;
use crate::http::auth::Caller;
use crate::http::AppState;

pub const SESSION_COOKIE: &str = "artstore_session";
pub const LANG_COOKIE: &str = "artstore_lang";
/// The longest cookie header a console request may carry (a token is about 1 KiB).
const MAX_COOKIE_BYTES: usize = 32 * 1024;
/// The longest client id and secret the sign-in form takes (the API's own limits are lower).
const MAX_CREDENTIAL_CHARS: usize = 512;

/// A signed-in visitor.
pub struct Session {
    pub principal: Principal,
    pub source: Option<std::net::IpAddr>,
    /// The token for forms and the upload script: SHA-256 of a label and the session token, so it
    /// cannot be computed without the cookie, which scripts of other sites never see.
    pub csrf: String,
    pub lang: Lang,
}

impl Session {
    /// The caller as the API's handlers take it.
    pub fn caller(&self) -> Caller {
        Caller { principal: self.principal.clone(), source: self.source }
    }

    pub fn can(&self, role: Role) -> bool {
        self.principal.require(role).is_ok()
    }

    /// Whether `given` is this session's CSRF token.
    pub fn csrf_ok(&self, given: Option<&str>) -> bool {
        given.is_some_and(|g| constant_time_eq(g.as_bytes(), self.csrf.as_bytes()))
    }

    /// `None` when `given` is this session's CSRF token; the 403 page otherwise.
    pub fn csrf_refusal(&self, given: Option<&str>) -> Option<Response> {
        match given {
            _ if self.csrf_ok(given) => None,
            Some(_) => Some(layout::error_page(
                self.lang,
                StatusCode::FORBIDDEN,
                "csrf_invalid",
                T::CsrfInvalid.get(self.lang),
            )),
            None => Some(layout::error_page(
                self.lang,
                StatusCode::FORBIDDEN,
                "csrf_missing",
                T::CsrfMissing.get(self.lang),
            )),
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn csrf_for(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"artstore-console-csrf\0");
    h.update(token.as_bytes());
    hex::encode(h.finalize())
}

/// The value of cookie `name`, if the request carries it (bounded before it is parsed). Read as
/// bytes: another application on the same host may set cookies that are not UTF-8, and they must
/// not hide ours.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let mut total = 0;
    for value in headers.get_all(header::COOKIE) {
        total += value.len();
        if total > MAX_COOKIE_BYTES {
            return None;
        }
        for pair in value.as_bytes().split(|b| *b == b';') {
            let pair = pair.trim_ascii();
            let Some(eq) = pair.iter().position(|b| *b == b'=') else { continue };
            if &pair[..eq] == name.as_bytes() {
                return std::str::from_utf8(&pair[eq + 1..]).ok();
            }
        }
    }
    None
}

/// English or Russian: the visitor's choice, else the browser's first preference.
pub fn lang_of(headers: &HeaderMap) -> Lang {
    match cookie(headers, LANG_COOKIE) {
        Some("ru") => return Lang::Ru,
        Some("en") => return Lang::En,
        _ => {}
    }
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    match accept.split(',').next().map(|l| l.trim().to_ascii_lowercase()) {
        Some(l) if l.starts_with("ru") => Lang::Ru,
        _ => Lang::En,
    }
}

/// Where a visitor without a valid session is sent: the sign-in page, remembering the page.
fn to_sign_in(parts: &Parts) -> Response {
    let path = parts.uri.path();
    if scripted(path) {
        let e =
            crate::http::ApiError::unauthorized("session_expired", "the console session ended; sign in again", None);
        let mut resp = e.into_response();
        resp.headers_mut().insert(header::SET_COOKIE, clear_cookie());
        return resp;
    }
    // Only GETs of console pages are worth coming back to; a form is not replayed.
    let back = parts.method == axum::http::Method::GET
        && (path == "/console" || path.starts_with("/console/"))
        && path.len() < 256;
    let mut resp = if back {
        let next = serde_urlencoded::to_string([("next", path)]).unwrap_or_default();
        Redirect::to(&format!("/console/sign-in?{next}")).into_response()
    } else {
        Redirect::to("/console/sign-in").into_response()
    };
    // A stale or revoked token is dropped at once.
    if cookie(&parts.headers, SESSION_COOKIE).is_some() {
        resp.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    }
    resp
}

impl FromRequestParts<AppState> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let lang = lang_of(&parts.headers);
        let Some(token) = cookie(&parts.headers, SESSION_COOKIE).filter(|t| !t.is_empty()) else {
            return Err(to_sign_in(parts));
        };
        let certificate = parts.extensions.get::<ClientCertificate>();
        match state.admin.validate(token, certificate).await {
            Ok(principal) => Ok(Session {
                principal,
                source: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
                csrf: csrf_for(token),
                lang,
            }),
            Err(AdminError::InvalidToken(_)) => Err(to_sign_in(parts)),
            Err(e) => {
                let e = crate::http::ApiError::from(e);
                Err(layout::error_page(lang, e.status, e.code, &e.message))
            }
        }
    }
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("artstore_session=; Path=/console; Max-Age=0; HttpOnly; SameSite=Strict")
}

#[derive(Deserialize, Default)]
pub struct SignInQuery {
    next: Option<String>,
}

/// Only a console page of this origin: no scheme, no host, no `//`, nothing long.
/// The console's endpoints that scripts call: they answer in JSON, never with a page.
pub fn scripted(path: &str) -> bool {
    path == "/console/files/upload" || path == "/console/live.json"
}

fn safe_next(next: Option<&str>) -> &str {
    let visible = |n: &str| n.bytes().all(|b| b.is_ascii_graphic() && b != b'\\' && b != b'%');
    let no_dots = |n: &str| !n.split('/').any(|seg| seg == "." || seg == "..");
    match next {
        Some(n)
            if (n == "/console" || n.starts_with("/console/"))
                && !n.contains("//")
                && visible(n)
                && no_dots(n)
                && n.len() < 256 =>
        {
            n
        }
        _ => "/console",
    }
}

/// The console is off: plain HTTP on a non-loopback address.
fn needs_tls(lang: Lang) -> Response {
    layout::error_page(lang, StatusCode::FORBIDDEN, "console_needs_tls", T::NeedsTls.get(lang))
}

/// `GET /console/sign-in`.
pub async fn sign_in_page(
    Extension(settings): Extension<Arc<ConsoleSettings>>,
    headers: HeaderMap,
    q: Result<axum::extract::Query<SignInQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let lang = lang_of(&headers);
    if !settings.enabled {
        return needs_tls(lang);
    }
    let next = q.ok().and_then(|q| q.0.next);
    sign_in_form(lang, StatusCode::OK, None, safe_next(next.as_deref()))
}

fn sign_in_form(lang: Lang, status: StatusCode, error: Option<&str>, next: &str) -> Response {
    let body = html! {
        @if let Some(e) = error {
            p #error .error role="alert" data-code="sign_in_failed" { (e) }
        }
        form #sign-in .card method="post" action="/console/sign-in" {
            input type="hidden" name="next" value=(next);
            label for="client_id" { (T::ClientId.get(lang)) }
            input #client_id name="client_id" type="text" required autocomplete="username"
                maxlength=(MAX_CREDENTIAL_CHARS) autofocus;
            label for="client_secret" { (T::ClientSecret.get(lang)) }
            input #client_secret name="client_secret" type="password" required autocomplete="current-password"
                maxlength=(MAX_CREDENTIAL_CHARS);
            button #sign-in-submit type="submit" { (T::SignIn.get(lang)) }
        }
        p .hint { (T::SignInHint.get(lang)) }
    };
    let mut resp = Page::new(lang, T::SignIn.get(lang)).body(body).render(None);
    *resp.status_mut() = status;
    resp
}

#[derive(Deserialize)]
pub struct SignInForm {
    client_id: String,
    client_secret: String,
    next: Option<String>,
}

/// `POST /console/sign-in`: OAuth client credentials underneath, then the token as the cookie.
///
/// Sign-in carries no CSRF token (there is no session yet to derive it from); `SameSite=Strict`
/// and the form-only body keep other sites from signing a visitor in as someone else silently.
pub async fn sign_in(
    State(s): State<AppState>,
    Extension(settings): Extension<Arc<ConsoleSettings>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    certificate: Option<Extension<ClientCertificate>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let lang = lang_of(&headers);
    if !settings.enabled {
        return needs_tls(lang);
    }
    let form: SignInForm = match form(&body) {
        Ok(f) => f,
        Err(_) => return sign_in_form(lang, StatusCode::BAD_REQUEST, Some(T::SignInIncomplete.get(lang)), "/console"),
    };
    let next = safe_next(form.next.as_deref()).to_string();
    if form.client_id.chars().count() > MAX_CREDENTIAL_CHARS
        || form.client_secret.chars().count() > MAX_CREDENTIAL_CHARS
    {
        return sign_in_form(lang, StatusCode::BAD_REQUEST, Some(T::SignInFailed.get(lang)), &next);
    }
    let certificate = certificate.as_ref().map(|c| &c.0);
    match s.admin.issue_token(form.client_id.trim(), &form.client_secret, Some(addr.ip()), certificate).await {
        Ok(t) => {
            let secure = if settings.tls { "; Secure" } else { "" };
            let cookie = format!(
                "{SESSION_COOKIE}={}; Path=/console; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
                t.access_token, t.expires_in
            );
            let mut resp = Redirect::to(&next).into_response();
            match HeaderValue::from_str(&cookie) {
                Ok(v) => {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                    resp
                }
                Err(_) => layout::error_page(lang, StatusCode::INTERNAL_SERVER_ERROR, "internal", "token"),
            }
        }
        Err(AdminError::InvalidClient) => {
            sign_in_form(lang, StatusCode::UNAUTHORIZED, Some(T::SignInFailed.get(lang)), &next)
        }
        Err(AdminError::ClientCertificate(m) | AdminError::SecretExpired(m)) => {
            sign_in_form(lang, StatusCode::UNAUTHORIZED, Some(&m), &next)
        }
        Err(AdminError::RateLimited(secs)) => sign_in_form(
            lang,
            StatusCode::TOO_MANY_REQUESTS,
            Some(&format!("{} ({secs} s)", T::TooManyAttempts.get(lang))),
            &next,
        ),
        Err(e) => {
            let e = crate::http::ApiError::from(e);
            sign_in_form(lang, e.status, Some(&e.message), &next)
        }
    }
}

/// A form body, refused when any name or value is not UTF-8 once decoded (serde_urlencoded
/// would replace such bytes and store the replacement characters).
pub fn form<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    for part in body.split(|b| *b == b'&' || *b == b'=') {
        let mut bytes = Vec::with_capacity(part.len());
        let mut i = 0;
        while i < part.len() {
            match part[i] {
                b'+' => bytes.push(b' '),
                b'%' if i + 2 < part.len() => {
                    let hex =
                        std::str::from_utf8(&part[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                    match hex {
                        Some(b) => {
                            bytes.push(b);
                            i += 2;
                        }
                        None => bytes.push(b'%'),
                    }
                }
                b => bytes.push(b),
            }
            i += 1;
        }
        if std::str::from_utf8(&bytes).is_err() {
            return Err("the form holds text that is not UTF-8".into());
        }
    }
    serde_urlencoded::from_bytes(body).map_err(|e| format!("form: {e}"))
}

#[derive(Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// The CSRF token of a form that carries nothing else the handler reads.
pub fn csrf_of(body: &[u8]) -> Option<String> {
    form::<CsrfForm>(body).ok().and_then(|f| f.csrf)
}

/// `POST /console/sign-out`: the session's token is revoked and the cookie cleared.
pub async fn sign_out(State(state): State<AppState>, session: Session, body: axum::body::Bytes) -> Response {
    if let Some(resp) = session.csrf_refusal(csrf_of(&body).as_deref()) {
        return resp;
    }
    // The token dies with the session, on every node: a copied cookie is worth nothing after.
    if let Err(e) = state.admin.revoke_own_token(&session.principal, session.source).await {
        tracing::warn!(error = %e, client_id = %session.principal.client_id, "sign-out could not revoke the session's token");
    }
    let mut resp = Redirect::to("/console/sign-in").into_response();
    resp.headers_mut().insert(header::SET_COOKIE, clear_cookie());
    resp
}

/// `GET /console/lang/{en|ru}`: remembers the choice for a year.
pub async fn set_lang(Path(lang): Path<String>) -> Response {
    let value = match lang.as_str() {
        "ru" => "ru",
        "en" => "en",
        _ => return layout::error_page(Lang::En, StatusCode::NOT_FOUND, "not_found", "unknown language"),
    };
    let mut resp = Redirect::to("/console").into_response();
    let cookie = format!("{LANG_COOKIE}={value}; Path=/console; Max-Age=31536000; SameSite=Strict");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

#[cfg(test)]
pub(super) fn fuzz_safe_next(next: &str) -> &str {
    safe_next(Some(next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_the_console() {
        assert_eq!(safe_next(Some("/console/files")), "/console/files");
        for bad in ["//evil.example/", "https://evil.example/", "/console//evil", "/api/v1/files", "/console\\x"] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_next(Some("/consolex")), "/console");
        for bad in [
            "/console/\x01",
            "/console/\r\nX:1",
            "/console/../api/v1/files",
            "/console/./x",
            "/console/%2e%2e/x",
            "/console/é",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad:?}");
        }
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_bytes(b"pref=caf\xc3\xa9; artstore_session=tok").unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"), "a non-UTF-8 cookie beside ours hides nothing");
        assert_eq!(safe_next(None), "/console");
    }

    #[test]
    fn cookies_are_found_and_bounded() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; artstore_session=tok; artstore_lang=ru"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("tok"));
        assert_eq!(lang_of(&h), Lang::Ru);
        let mut big = HeaderMap::new();
        big.insert(header::COOKIE, HeaderValue::from_str(&format!("x={}", "a".repeat(40_000))).unwrap());
        assert_eq!(cookie(&big, SESSION_COOKIE), None);
    }

    #[test]
    fn csrf_tokens_differ_per_session_and_compare_exactly() {
        assert_ne!(csrf_for("a"), csrf_for("b"));
        assert!(constant_time_eq(csrf_for("a").as_bytes(), csrf_for("a").as_bytes()));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
