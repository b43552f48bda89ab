//! Service accounts (admin), signing keys and the audit log (operator). A new or rotated secret
//! is shown once, in the answer to the POST that made it, and never stored by the console.

use artstore_client::wire::{
    CreateServiceAccount, RotateSecret, ServiceAccount, ServiceAccountWithSecret, UpdateServiceAccount,
};
use artstore_raft::Role;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use super::i18n::{Lang, T};
use super::layout::{self, csrf_input, Page};
use super::session::csrf_of;
use super::{see_other, Session};
use crate::http::admin::{self as api, AuditQuery, ListQuery};
use crate::http::json::JsonBody;
use crate::http::AppState;

const ROLES: [&str; 4] = ["reader", "writer", "operator", "admin"];
/// The most form fields an account form may carry (roles included).
const MAX_FORM_FIELDS: usize = 32;

/// Form pairs, bounded in number; repeated keys (roles) are kept in order.
fn pairs(body: &[u8]) -> Result<Vec<(String, String)>, String> {
    let pairs: Vec<(String, String)> = super::session::form(body)?;
    if pairs.len() > MAX_FORM_FIELDS {
        return Err(format!("the form has {} fields; at most {MAX_FORM_FIELDS}", pairs.len()));
    }
    Ok(pairs)
}

fn field<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn checked_roles(pairs: &[(String, String)]) -> Vec<String> {
    pairs.iter().filter(|(k, _)| k == "roles").map(|(_, v)| v.clone()).collect()
}

/// The form's fields once it is well formed and carries this session's CSRF token; the page that
/// refuses it otherwise.
fn checked(session: &Session, body: &[u8]) -> Result<Vec<(String, String)>, Box<Response>> {
    let p = pairs(body)
        .map_err(|m| Box::new(layout::error_page(session.lang, StatusCode::BAD_REQUEST, "invalid_form", &m)))?;
    match session.csrf_refusal(field(&p, "csrf")) {
        Some(refused) => Err(Box::new(refused)),
        None => Ok(p),
    }
}

/// `GET /console/accounts`.
pub async fn list(State(s): State<AppState>, session: Session) -> Response {
    list_page(&s, &session, None, StatusCode::OK).await
}

async fn list_page(
    s: &AppState,
    session: &Session,
    created: Option<ServiceAccountWithSecret>,
    status: StatusCode,
) -> Response {
    let l = session.lang;
    let accounts =
        match api::list(State(s.clone()), session.caller(), Ok(Query(ListQuery { include_deleted: false }))).await {
            Ok(a) => a.0.accounts,
            Err(e) => return layout::api_error(session, e),
        };
    let body = html! {
        @if let Some(c) = &created { (secret_once(l, &c.account.client_id, &c.client_secret)) }
        section aria-labelledby="accounts-title" {
            h2 #accounts-title { (T::Accounts.get(l)) " " span .muted { "(" (accounts.len()) ")" } }
            div .table-wrap { table #accounts {
                thead { tr { th { (T::ClientId.get(l)) } th { (T::Name.get(l)) } th { (T::Roles.get(l)) } th { (T::Enabled.get(l)) }
                    th { (l.pick("Secret expires", "Секрет истекает")) } } }
                tbody {
                    @for a in &accounts {
                        tr .account data-client-id=(a.client_id) data-enabled=(a.enabled) {
                            td { a href=(format!("/console/accounts/{}", a.client_id)) { code { (a.client_id) } }
                                @if a.builtin { " " span .badge { (l.pick("bootstrap", "начальный")) } } }
                            td { (a.name) }
                            td { @for r in &a.roles { span .badge { (r) } " " } }
                            td { @if a.enabled { span .badge.ok { (T::Yes.get(l)) } } @else { span .badge.bad { (T::No.get(l)) } } }
                            td { @if let Some(e) = &a.secret_expires_at { (layout::when(e)) } }
                        }
                    }
                }
            } }
        }
        (create_form(session))
    };
    let mut resp = Page::new(l, T::Accounts.get(l)).body(body).render(Some(session));
    *resp.status_mut() = status;
    resp
}

/// The secret, once: copyable, with the warning that it will not be shown again.
fn secret_once(l: Lang, client_id: &str, secret: &str) -> Markup {
    html! {
        section #new-credentials .notice role="status" {
            h2 { (l.pick("Credentials", "Учётные данные")) }
            p { (l.pick("Copy the secret now: it is shown only this once and cannot be read back later.",
                "Скопируйте секрет сейчас: он показан один раз и позже его не прочитать.")) }
            dl .meta {
                dt { (T::ClientId.get(l)) } dd { code #new-client-id .secret { (client_id) } }
                dt { (T::ClientSecret.get(l)) }
                dd { code #new-secret .secret { (secret) } " "
                    button .copy type="button" data-copy-target="new-secret" data-copied=(l.pick("Copied", "Скопировано")) hidden { (l.pick("Copy", "Копировать")) } }
            }
        }
    }
}

fn role_boxes(l: Lang, checked: &[String]) -> Markup {
    html! {
        fieldset {
            legend { (T::Roles.get(l)) }
            @for r in ROLES {
                label .inline for=(format!("role-{r}")) {
                    input id=(format!("role-{r}")) type="checkbox" name="roles" value=(r) checked[checked.iter().any(|c| c == r)];
                    (r)
                }
            }
        }
    }
}

fn create_form(s: &Session) -> Markup {
    let l = s.lang;
    html! {
        section aria-labelledby="create-title" {
            h2 #create-title { (l.pick("New service account", "Новый сервисный аккаунт")) }
            form #create-account method="post" action="/console/accounts" {
                (csrf_input(s))
                // Names the account when no id is given, so a reload of the answer (which posts
                // the form again) is refused as a duplicate instead of making a second account.
                input type="hidden" name="nonce" value=(hex::encode(rand::random::<[u8; 6]>()));
                label for="account-name" { (T::Name.get(l)) }
                input #account-name type="text" name="name" required maxlength="255";
                label for="account-client-id" { (T::ClientId.get(l)) " " span .muted { (l.pick("(optional; generated when empty)", "(необязательно; иначе создаётся)")) } }
                input #account-client-id type="text" name="client_id" maxlength="128" pattern="[A-Za-z0-9._-]+";
                label for="account-description" { (T::Description.get(l)) }
                input #account-description type="text" name="description" maxlength="1024";
                (role_boxes(l, &["reader".to_string()]))
                button #create-account-submit type="submit" { (l.pick("Create", "Создать")) }
            }
        }
    }
}

/// `POST /console/accounts`: creates the account and shows its secret once.
pub async fn create(State(s): State<AppState>, session: Session, body: axum::body::Bytes) -> Response {
    let p = match checked(&session, &body) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let req = CreateServiceAccount {
        client_id: field(&p, "client_id").map(str::trim).filter(|c| !c.is_empty()).map(String::from).or_else(|| {
            field(&p, "nonce")
                .filter(|n| n.len() == 12 && n.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(|n| format!("sa-{n}"))
        }),
        name: field(&p, "name").unwrap_or_default().trim().to_string(),
        description: field(&p, "description").unwrap_or_default().to_string(),
        roles: checked_roles(&p),
        client_secret: None,
        require_client_cert: false,
    };
    match api::create(State(s.clone()), session.caller(), Ok(JsonBody(req))).await {
        Ok((_, created)) => list_page(&s, &session, Some(created.0), StatusCode::CREATED).await,
        Err(e) => layout::api_error(&session, e),
    }
}

/// `GET /console/accounts/{client_id}`.
pub async fn detail(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let notice = layout::done_notice(session.lang, raw.as_deref());
    account_page(&s, &session, &id, notice, None).await
}

async fn account_page(
    s: &AppState,
    session: &Session,
    id: &str,
    notice: Option<String>,
    rotated: Option<ServiceAccountWithSecret>,
) -> Response {
    let l = session.lang;
    let a = match api::get(State(s.clone()), session.caller(), Ok(Path(id.to_string()))).await {
        Ok(a) => a.0,
        Err(e) => return layout::api_error(session, e),
    };
    let body = html! {
        @if let Some(r) = &rotated { (secret_once(l, &r.account.client_id, &r.client_secret)) }
        div .grid {
            section { h2 { (l.pick("Account", "Аккаунт")) } (account_meta(l, &a)) }
            (edit_form(session, &a))
        }
        @if !a.builtin { div .grid {
            section aria-labelledby="rotate-title" {
                h2 #rotate-title { (l.pick("Rotate the secret", "Сменить секрет")) }
                form #rotate-secret method="post" action=(format!("/console/accounts/{}/rotate", a.client_id)) {
                    (csrf_input(session))
                    label for="grace" { (l.pick("The old secret keeps working for (seconds, at most 604800)", "Старый секрет действует ещё (секунд, не больше 604800)")) }
                    input #grace type="number" name="grace_period_secs" min="0" max="604800" value="3600";
                    button #rotate-submit type="submit" { (l.pick("Rotate", "Сменить")) }
                }
            }
            section aria-labelledby="danger-title" {
                h2 #danger-title { (T::Delete.get(l)) }
                p { a #delete-account href=(format!("/console/accounts/{}/delete", a.client_id)) { (l.pick("Delete this account…", "Удалить этот аккаунт…")) } }
            }
        } }
    };
    Page::new(l, a.name.clone()).notice(notice).body(body).render(Some(session))
}

fn account_meta(l: Lang, a: &ServiceAccount) -> Markup {
    html! {
        dl #account-meta .meta {
            dt { (T::ClientId.get(l)) } dd { code { (a.client_id) } }
            dt { (T::Description.get(l)) } dd { (a.description) }
            dt { (T::Roles.get(l)) } dd { @for r in &a.roles { span .badge { (r) } " " } }
            dt { (T::Enabled.get(l)) } dd { @if a.enabled { (T::Yes.get(l)) } @else { (T::No.get(l)) } }
            dt { (T::Created.get(l)) } dd { (layout::when(&a.created_at)) }
            dt { (l.pick("Updated", "Изменён")) } dd { (layout::when(&a.updated_at)) }
            dt { (l.pick("Secret expires", "Секрет истекает")) } dd { @if let Some(e) = &a.secret_expires_at { (layout::when(e)) } }
            dt { (l.pick("Client certificate required", "Нужен клиентский сертификат")) } dd { @if a.require_client_cert { (T::Yes.get(l)) } @else { (T::No.get(l)) } }
        }
    }
}

fn edit_form(s: &Session, a: &ServiceAccount) -> Markup {
    let l = s.lang;
    html! {
        section aria-labelledby="edit-account-title" {
            h2 #edit-account-title { (l.pick("Change", "Изменить")) }
            @if a.builtin {
                p .hint { (l.pick("The bootstrap admin cannot be changed, disabled or deleted.", "Начального администратора нельзя изменить, отключить или удалить.")) }
            } @else {
                form #edit-account method="post" action=(format!("/console/accounts/{}", a.client_id)) {
                    (csrf_input(s))
                    label for="edit-account-name" { (T::Name.get(l)) }
                    input #edit-account-name type="text" name="name" value=(a.name) required maxlength="255";
                    label for="edit-account-description" { (T::Description.get(l)) }
                    input #edit-account-description type="text" name="description" value=(a.description) maxlength="1024";
                    // Checkboxes send nothing when cleared: these say the form had them.
                    input type="hidden" name="roles_shown" value="1";
                    (role_boxes(l, &a.roles))
                    input type="hidden" name="enabled" value="false";
                    label .inline for="edit-account-enabled" {
                        input #edit-account-enabled type="checkbox" name="enabled" value="true" checked[a.enabled];
                        (T::Enabled.get(l))
                    }
                    button #edit-account-submit type="submit" { (T::Save.get(l)) }
                }
            }
        }
    }
}

/// `POST /console/accounts/{client_id}`: name, description, roles, enabled.
pub async fn update(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let p = match checked(&session, &body) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let req = UpdateServiceAccount {
        name: field(&p, "name").map(|n| n.trim().to_string()),
        description: field(&p, "description").map(String::from),
        // A field the form did not carry stays as it is (a careless client posting only a name
        // must not disable the account or take its roles).
        roles: field(&p, "roles_shown").map(|_| checked_roles(&p)),
        enabled: p.iter().rev().find(|(k, _)| k == "enabled").map(|(_, v)| v == "true"),
        require_client_cert: None,
    };
    match api::update(State(s.clone()), session.caller(), Ok(Path(id.clone())), Ok(JsonBody(req))).await {
        Ok(_) => see_other(&format!("/console/accounts/{id}?done=saved")),
        Err(e) => layout::api_error(&session, e),
    }
}

/// `POST /console/accounts/{client_id}/rotate`: a new generated secret, shown once.
pub async fn rotate(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let l = session.lang;
    let p = match checked(&session, &body) {
        Ok(p) => p,
        Err(refused) => return *refused,
    };
    let grace = match field(&p, "grace_period_secs").map(str::trim).filter(|g| !g.is_empty()) {
        None => None,
        Some(g) => match g.parse::<u64>() {
            Ok(g) => Some(g),
            Err(_) => {
                return layout::error_page(
                    l,
                    StatusCode::BAD_REQUEST,
                    "invalid_grace",
                    "grace_period_secs: not a number",
                )
            }
        },
    };
    let req = RotateSecret { grace_period_secs: grace, client_secret: None };
    match api::rotate_secret(State(s.clone()), session.caller(), Ok(Path(id.clone())), Ok(Some(JsonBody(Some(req)))))
        .await
    {
        Ok(r) => account_page(&s, &session, &id, None, Some(r.0)).await,
        Err(e) => layout::api_error(&session, e),
    }
}

/// `GET /console/accounts/{client_id}/delete`.
pub async fn confirm_delete(State(s): State<AppState>, session: Session, Path(id): Path<String>) -> Response {
    let l = session.lang;
    let a = match api::get(State(s), session.caller(), Ok(Path(id))).await {
        Ok(a) => a.0,
        Err(e) => return layout::api_error(&session, e),
    };
    layout::Confirm {
        title: format!("{}: {}", T::Delete.get(l), a.name),
        consequences: l.pick(
            "The account can no longer get tokens, and tokens it holds stop working. Its audit records stay. This cannot be undone.",
            "Аккаунт больше не получит токены, а выданные перестанут действовать. Записи аудита останутся. Отменить нельзя.",
        ),
        details: account_meta(l, &a),
        action: format!("/console/accounts/{}/delete", a.client_id),
        fields: html! {},
        button: format!("{} {}", T::Delete.get(l), a.client_id),
        cancel: format!("/console/accounts/{}", a.client_id),
    }
    .render(&session)
}

/// `POST /console/accounts/{client_id}/delete`.
pub async fn delete(
    State(s): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let given = csrf_of(&body);
    if let Some(r) = session.csrf_refusal(given.as_deref()) {
        return r;
    }
    match api::delete(State(s), session.caller(), Ok(Path(id))).await {
        Ok(_) => see_other("/console/accounts"),
        Err(e) => layout::api_error(&session, e),
    }
}

/// `GET /console/keys` (operator): the signing keys and rotation.
pub async fn keys(State(s): State<AppState>, session: Session, RawQuery(raw): RawQuery) -> Response {
    let notice = layout::done_notice(session.lang, raw.as_deref());
    keys_page(&s, &session, notice)
}

fn keys_page(s: &AppState, session: &Session, notice: Option<String>) -> Response {
    let l = session.lang;
    let keys = match s.admin.key_summaries(&session.principal) {
        Ok(k) => k,
        Err(e) => return layout::api_error(session, e.into()),
    };
    let t = |ms: i64| layout::when(&api::rfc3339(ms));
    let body = html! {
        section {
            p .hint { (l.pick("The newest key that is not retired signs new tokens; retired keys keep validating the tokens they signed until those expire.",
                "Новые токены подписывает самый новый действующий ключ; выведенные ключи проверяют подписанные ими токены, пока те не истекут.")) }
            div .table-wrap { table #keys {
                thead { tr { th { "kid" } th { (l.pick("Algorithm", "Алгоритм")) } th { (T::Created.get(l)) } th { (l.pick("State", "Состояние")) } } }
                tbody {
                    @for k in &keys {
                        tr .key data-kid=(k.kid) data-current=(k.retired_at.is_none()) {
                            td { code { (k.kid) } }
                            td { (k.algorithm) }
                            td { (t(k.created_at)) }
                            td { @match (k.retired_at, k.valid_until) {
                                (None, _) => span .badge.leader { (l.pick("signing", "подписывает")) },
                                (Some(r), Some(v)) => { (l.pick("retired", "выведен")) " " (t(r)) ", " (l.pick("validates until", "проверяет до")) " " (t(v)) },
                                (Some(r), None) => { (l.pick("retired", "выведен")) " " (t(r)) },
                            } }
                        }
                    }
                }
            } }
            form #rotate-keys method="post" action="/console/keys" {
                (csrf_input(session))
                button #rotate-keys-submit type="submit" { (l.pick("Rotate now", "Сменить сейчас")) }
            }
        }
    };
    Page::new(l, T::Keys.get(l)).notice(notice).body(body).render(Some(session))
}

/// `POST /console/keys`: rotate the signing key now.
pub async fn rotate_keys(State(s): State<AppState>, session: Session, body: axum::body::Bytes) -> Response {
    let given = csrf_of(&body);
    if let Some(r) = session.csrf_refusal(given.as_deref()) {
        return r;
    }
    match api::rotate_keys(State(s), session.caller()).await {
        Ok(_) => see_other("/console/keys?done=rotated"),
        Err(e) => layout::api_error(&session, e),
    }
}

#[derive(Deserialize, Default)]
struct AuditForm {
    action: Option<String>,
    actor: Option<String>,
    from: Option<String>,
    since: Option<String>,
    until: Option<String>,
}

/// `GET /console/audit?action=…&actor=…&from=…` (operator).
pub async fn audit(State(s): State<AppState>, session: Session, RawQuery(raw): RawQuery) -> Response {
    audit_page(&s, &session, raw.as_deref().unwrap_or(""), None).await
}

async fn audit_page(
    s: &AppState,
    session: &Session,
    raw: &str,
    verified: Option<artstore_client::wire::AuditVerification>,
) -> Response {
    let l = session.lang;
    let form: AuditForm = match serde_urlencoded::from_str(raw) {
        Ok(f) => f,
        Err(e) => return layout::error_page(l, StatusCode::BAD_REQUEST, "invalid_query", &e.to_string()),
    };
    let nonempty = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(String::from);
    let from = match nonempty(&form.from).map(|f| f.parse::<u64>()) {
        None => None,
        Some(Ok(f)) => Some(f),
        Some(Err(_)) => return layout::error_page(l, StatusCode::BAD_REQUEST, "invalid_query", "from: not a number"),
    };
    // A date or a `datetime-local` value is read as UTC.
    let as_time = |v: Option<String>| {
        v.map(|t| match t.len() {
            10 => format!("{t}T00:00:00Z"),
            16 => format!("{t}:00Z"),
            _ => t,
        })
    };
    let q = AuditQuery {
        from,
        limit: Some(100),
        action: nonempty(&form.action),
        actor: nonempty(&form.actor),
        since: as_time(nonempty(&form.since)),
        until: as_time(nonempty(&form.until)),
    };
    let page = match api::audit(State(s.clone()), session.caller(), Ok(Query(q))).await {
        Ok(p) => p.0,
        Err(e) => return layout::api_error(session, e),
    };
    let next = page.next_from.map(|n| {
        let kept: Vec<(&str, String)> = [
            ("action", nonempty(&form.action)),
            ("actor", nonempty(&form.actor)),
            ("since", nonempty(&form.since)),
            ("until", nonempty(&form.until)),
            ("from", Some(n.to_string())),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect();
        format!("/console/audit?{}", serde_urlencoded::to_string(kept).unwrap_or_default())
    });
    let body = html! {
        @if let Some(v) = &verified {
            @if v.ok {
                p #verify-result .notice role="status" data-ok="true" {
                    (l.pick("The hash chain verifies:", "Цепочка хешей сходится:")) " " (v.entries) " " (l.pick("records.", "записей."))
                }
            } @else {
                p #verify-result .error role="alert" data-ok="false" {
                    (l.pick("The chain breaks at record", "Цепочка нарушена на записи")) " " (v.first_broken_seq.unwrap_or(0)) ": " (v.reason.clone().unwrap_or_default())
                }
            }
        }
        form #audit-filter .card method="get" action="/console/audit" {
            div .filters {
                div { label for="audit-action" { (T::Action.get(l)) } input #audit-action type="text" name="action" value=(form.action.clone().unwrap_or_default()) placeholder="token.issue" maxlength="128"; }
                div { label for="audit-actor" { (T::Actor.get(l)) } input #audit-actor type="text" name="actor" value=(form.actor.clone().unwrap_or_default()) maxlength="128"; }
                div { label for="audit-since" { (l.pick("From (UTC)", "С (UTC)")) } input #audit-since type="datetime-local" name="since" value=(form.since.clone().unwrap_or_default()); }
                div { label for="audit-until" { (l.pick("Before (UTC)", "До (UTC)")) } input #audit-until type="datetime-local" name="until" value=(form.until.clone().unwrap_or_default()); }
                div { label for="audit-from" { (l.pick("From record #", "С записи №")) } input #audit-from type="number" min="1" name="from" value=(form.from.clone().unwrap_or_default()); }
            }
            button type="submit" { (l.pick("Filter", "Отобрать")) }
        }
        form #verify-audit method="post" action="/console/audit/verify" {
            (csrf_input(session))
            button #verify-audit-submit type="submit" { (l.pick("Verify the chain", "Проверить цепочку")) }
        }
        div .table-wrap { table #audit {
            thead { tr { th { "#" } th { (T::Time.get(l)) } th { (T::Actor.get(l)) } th { (T::Action.get(l)) } th { (T::Target.get(l)) } th { (T::Outcome.get(l)) } th { (l.pick("Source", "Источник")) } } }
            tbody {
                @for r in &page.records {
                    tr .audit-record { td .num { (r.seq) } td { (layout::when(&r.at)) } td { (r.actor) } td { code { (r.action) } } td { (r.target) } td { (r.outcome) } td { (r.source) } }
                }
            }
        } }
        @if page.records.is_empty() { p .muted { (l.pick("No records match.", "Подходящих записей нет.")) } }
        div .pager { @if let Some(n) = &next { a #next-page href=(n) { (T::NextPage.get(l)) } } }
    };
    Page::new(l, T::Audit.get(l)).body(body).render(Some(session))
}

/// `POST /console/audit/verify`: recomputes the chain (a POST: it reads the whole log).
pub async fn verify_audit(State(s): State<AppState>, session: Session, body: axum::body::Bytes) -> Response {
    let given = csrf_of(&body);
    if let Some(r) = session.csrf_refusal(given.as_deref()) {
        return r;
    }
    if let Err(e) = session.principal.require(Role::Operator) {
        return layout::api_error(&session, e.into());
    }
    match api::verify_audit(State(s.clone()), session.caller()).await {
        Ok(v) => audit_page(&s, &session, "", Some(v.0)).await,
        Err(e) => layout::api_error(&session, e),
    }
}
