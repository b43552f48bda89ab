//! The cluster: storage elements and their forward-only mode changes (with the consequences
//! spelled out before confirming), node drain and its progress, and membership.

use std::sync::Arc;

use artstore_client::wire::ElementModeChange;
use artstore_raft::Role;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::html;
use serde::Deserialize;

use super::i18n::{Lang, T};
use super::layout::{self, capacity, csrf_input, Page};
use super::{see_other, ConsoleSettings, Session};
use crate::http::json::JsonBody;
use crate::http::{cluster as api, elements as api_elements, AppState};

/// The modes an element may move to from `mode`: forward only, and `edit` stays `edit`.
fn next_modes(mode: &str) -> &'static [&'static str] {
    match mode {
        "rw" => &["ro", "ar"],
        "ro" => &["ar"],
        _ => &[],
    }
}

fn consequences(l: Lang, from: &str, to: &str) -> &'static str {
    match (from, to) {
        ("rw", "ro") => l.pick(
            "The element takes no new files and no metadata changes; its files stay readable. It can never be made writable again.",
            "Элемент больше не примет новых файлов и изменений метаданных; файлы останутся доступны для чтения. Вернуть запись будет нельзя.",
        ),
        (_, "ar") => l.pick(
            "The element becomes an archive: read only for good, its catalog and sidecars stay online, and its bodies may move to cold storage. It can never be made writable again.",
            "Элемент станет архивом: навсегда только чтение, каталог и сайдкары остаются в сети, содержимое может уйти в холодное хранилище. Вернуть запись будет нельзя.",
        ),
        _ => l.pick("This change cannot be undone.", "Это изменение нельзя отменить."),
    }
}

/// `GET /console/cluster`.
pub async fn page(
    State(s): State<AppState>,
    Extension(settings): Extension<Arc<ConsoleSettings>>,
    session: Session,
    RawQuery(raw): RawQuery,
) -> Response {
    let l = session.lang;
    let mut notice = layout::done_notice(l, raw.as_deref());
    // After a mode change: which element, in its mode as the catalog has it now.
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    if let Some((node, name)) = pairs.iter().find(|(k, _)| k == "element").and_then(|(_, v)| v.split_once('/')) {
        let found = s
            .storage
            .elements()
            .ok()
            .and_then(|es| es.into_iter().find(|e| e.node_id.to_string() == node && e.name == name));
        if let Some(e) = found {
            notice = Some(format!("{} ({} {}): {}", e.name, l.pick("node", "узел"), e.node_id, e.mode.as_str()));
        }
    }
    render(&s, &settings, &session, notice).await
}

async fn render(s: &AppState, settings: &ConsoleSettings, session: &Session, notice: Option<String>) -> Response {
    let l = session.lang;
    let status = s.admin.cluster_status();
    let elements = match s.storage.elements() {
        Ok(e) => e,
        Err(e) => return layout::api_error(session, e.into()),
    };
    let operator = session.can(Role::Operator);
    let mut drains = Vec::new();
    for m in &status.members {
        let d = api::get_drain(State(s.clone()), session.caller(), Ok(Path(m.node_id))).await.ok().map(|d| d.0);
        drains.push(d);
    }
    let body = html! {
        section aria-labelledby="members-title" {
            h2 #members-title { (l.pick("Members", "Участники")) }
            div .table-wrap { table #members {
                thead { tr { th { (T::Node.get(l)) } th { (T::Role.get(l)) } th { (T::Reachable.get(l)) } th { "HTTP" } th { "QUIC" } th { (l.pick("Drain", "Вывод")) } } }
                tbody {
                    @for (m, d) in status.members.iter().zip(&drains) {
                        @let role = if status.leader_id == Some(m.node_id) { "leader" } else if m.voter { "follower" } else { "learner" };
                        tr .member data-node-id=(m.node_id) data-role=(role) {
                            td { (m.node_id) }
                            td { (super::dashboard::role_name(l, role)) }
                            td { @if m.reachable { (T::Yes.get(l)) } @else { span .badge.down { (T::No.get(l)) } } }
                            td { code { (m.http_addr) } }
                            td { code { (m.quic_addr) } }
                            td {
                                @if let Some(d) = d {
                                    @if d.draining {
                                        span .drain-progress { (l.pick("draining:", "выводится:")) " " (d.replicas_remaining) " " (l.pick("replicas left", "реплик осталось")) }
                                    } @else { span .muted { (l.pick("not draining", "не выводится")) } }
                                }
                                @if operator && status.leader_id != Some(m.node_id) {
                                    " " a .remove-member href=(format!("/console/cluster/members/{}/remove", m.node_id)) { (l.pick("Remove…", "Удалить…")) }
                                }
                                @if operator {
                                    form .inline-form method="post" action=(format!("/console/cluster/members/{}/drain", m.node_id)) {
                                        (csrf_input(session))
                                        @if d.as_ref().is_some_and(|d| d.draining) {
                                            input type="hidden" name="action" value="stop";
                                            button type="submit" { (l.pick("Stop draining", "Остановить вывод")) }
                                        } @else {
                                            input type="hidden" name="action" value="start";
                                            button type="submit" { (l.pick("Drain", "Вывести")) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            } }
            p .hint { (l.pick("Draining moves every replica off a node so it can be removed; nodes join with `artstore cluster add-node` and `POST /api/v1/cluster/members` (see the runbook).",
                "Вывод переносит все реплики с узла, чтобы его можно было удалить; узлы добавляются через `artstore cluster add-node` и `POST /api/v1/cluster/members` (см. руководство).")) }
        }
        section aria-labelledby="elements-title" {
            h2 #elements-title { (T::StorageElements.get(l)) }
            div .table-wrap { table #elements {
                thead { tr { th { (T::Node.get(l)) } th { (T::Name.get(l)) } th { (T::Zone.get(l)) } th { (T::Priority.get(l)) } th { (T::Mode.get(l)) } th { (T::Capacity.get(l)) } } }
                tbody {
                    @for e in &elements {
                        tr .element data-node-id=(e.node_id) data-name=(e.name) data-mode=(e.mode.as_str()) {
                            td { (e.node_id) } td { (e.name) } td { (if e.zone.is_empty() { "—" } else { &e.zone }) } td { (e.priority) }
                            td {
                                span .badge { (e.mode.as_str()) }
                                @if operator && !next_modes(e.mode.as_str()).is_empty() {
                                    form .mode-change .inline-form method="get" action=(format!("/console/cluster/elements/{}/{}", e.node_id, e.name)) {
                                        select name="mode" aria-label=(format!("{} {}", l.pick("New mode of", "Новый режим"), e.name)) {
                                            @for m in next_modes(e.mode.as_str()) { option value=(m) { (m) } }
                                        }
                                        button .mode-change-submit type="submit" { (l.pick("Change…", "Сменить…")) }
                                    }
                                }
                            }
                            td { (capacity(e.used_bytes, e.capacity_bytes, settings.warning_fraction, settings.critical_fraction, &e.name)) }
                        }
                    }
                }
            } }
            p .hint { (l.pick("Modes move forward only: rw → ro → ar; edit stays edit.", "Режимы меняются только вперёд: rw → ro → ar; edit остаётся edit.")) }
        }
    };
    Page::new(l, T::Cluster.get(l)).notice(notice).body(body).render(Some(session))
}

#[derive(Deserialize)]
pub struct ModeQuery {
    mode: String,
}

/// `GET /console/cluster/elements/{node_id}/{name}?mode=…`: the consequences, then confirm.
pub async fn confirm_mode(
    State(s): State<AppState>,
    session: Session,
    Path((node_id, name)): Path<(u64, String)>,
    q: Result<Query<ModeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let l = session.lang;
    if let Err(e) = session.principal.require(Role::Operator) {
        return layout::api_error(&session, e.into());
    }
    let element = match s.storage.elements() {
        Ok(es) => es.into_iter().find(|e| e.node_id == node_id && e.name == name),
        Err(e) => return layout::api_error(&session, e.into()),
    };
    let Some(element) = element else {
        return layout::error_page(
            l,
            StatusCode::NOT_FOUND,
            "not_found",
            &format!("no element {name} on node {node_id}"),
        );
    };
    let from = element.mode.as_str();
    let Some(to) = q.ok().map(|q| q.0.mode).filter(|m| next_modes(from).contains(&m.as_str())) else {
        return layout::error_page(
            l,
            StatusCode::BAD_REQUEST,
            "invalid_mode",
            &format!("{name} is {from}; it can move to: {}", next_modes(from).join(", ")),
        );
    };
    layout::Confirm {
        title: l.pick("Change the mode", "Смена режима").into(),
        consequences: consequences(l, from, &to),
        details: html! {
            p { (l.pick("Element", "Элемент")) " " strong { (name) } " " (l.pick("of node", "узла")) " " (node_id) ": "
                code { (from) } " → " code { (to) } }
        },
        action: format!("/console/cluster/elements/{node_id}/{name}"),
        fields: html! { input type="hidden" name="mode" value=(to); },
        button: format!("{} {to}", l.pick("Change the mode to", "Сменить режим на")),
        cancel: "/console/cluster".into(),
    }
    .render(&session)
}

#[derive(Deserialize)]
pub struct ModeForm {
    csrf: Option<String>,
    mode: Option<String>,
}

/// `POST /console/cluster/elements/{node_id}/{name}`.
pub async fn set_mode(
    State(s): State<AppState>,
    session: Session,
    Path((node_id, name)): Path<(u64, String)>,
    body: axum::body::Bytes,
) -> Response {
    let form: ModeForm = super::session::form(&body).unwrap_or(ModeForm { csrf: None, mode: None });
    if let Some(r) = session.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    let req = ElementModeChange { mode: form.mode.unwrap_or_default() };
    match api_elements::set_mode(
        State(s.clone()),
        session.caller(),
        Ok(Path((node_id, name.clone()))),
        Ok(JsonBody(req)),
    )
    .await
    {
        Ok(_) => {
            let element = format!("{node_id}/{name}");
            see_other(&format!(
                "/console/cluster?{}",
                serde_urlencoded::to_string([("done", "mode"), ("element", &element)]).unwrap_or_default()
            ))
        }
        Err(e) => layout::api_error(&session, e),
    }
}

#[derive(Deserialize)]
pub struct DrainForm {
    csrf: Option<String>,
    action: Option<String>,
}

/// `POST /console/cluster/members/{node_id}/drain` with `action=start|stop`.
pub async fn drain(
    State(s): State<AppState>,
    session: Session,
    Path(node_id): Path<u64>,
    body: axum::body::Bytes,
) -> Response {
    let form: DrainForm = super::session::form(&body).unwrap_or(DrainForm { csrf: None, action: None });
    if let Some(r) = session.csrf_refusal(form.csrf.as_deref()) {
        return r;
    }
    let result = match form.action.as_deref() {
        Some("start") => api::start_drain(State(s), session.caller(), Ok(Path(node_id))).await,
        Some("stop") => api::stop_drain(State(s), session.caller(), Ok(Path(node_id))).await,
        _ => {
            return layout::error_page(
                session.lang,
                StatusCode::BAD_REQUEST,
                "invalid_action",
                "action must be start or stop",
            )
        }
    };
    match result {
        Ok(_) => see_other("/console/cluster"),
        Err(e) => layout::api_error(&session, e),
    }
}

/// `GET /console/cluster/members/{node_id}/remove`: what removing a node means, then confirm.
pub async fn confirm_remove(State(s): State<AppState>, session: Session, Path(node_id): Path<u64>) -> Response {
    let l = session.lang;
    if let Err(e) = session.principal.require(Role::Operator) {
        return layout::api_error(&session, e.into());
    }
    let status = s.admin.cluster_status();
    if !status.members.iter().any(|m| m.node_id == node_id) {
        return layout::error_page(l, StatusCode::NOT_FOUND, "not_found", &format!("node {node_id} is not a member"));
    }
    let draining = api::get_drain(State(s.clone()), session.caller(), Ok(Path(node_id))).await.ok().map(|d| d.0);
    layout::Confirm {
        title: format!("{} {node_id}", l.pick("Remove node", "Удаление узла")),
        consequences: l.pick(
            "The node leaves the Raft group and stops receiving replicas. Replicas only it holds are lost unless it was drained first: drain it and wait until no replicas remain.",
            "Узел выйдет из группы Raft и перестанет получать реплики. Реплики, которые есть только на нём, пропадут, если его не вывести заранее: выведите узел и дождитесь, пока реплик не останется.",
        ),
        details: html! {
            @if let Some(d) = &draining {
                p { (l.pick("Replicas still on the node:", "Реплик ещё на узле:")) " " strong #replicas-remaining { (d.replicas_remaining) } }
            }
        },
        action: format!("/console/cluster/members/{node_id}/remove"),
        fields: html! {},
        button: format!("{} {node_id}", l.pick("Remove node", "Удалить узел")),
        cancel: "/console/cluster".into(),
    }
    .render(&session)
}

/// `POST /console/cluster/members/{node_id}/remove`.
pub async fn remove(
    State(s): State<AppState>,
    session: Session,
    Path(node_id): Path<u64>,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = session.csrf_refusal(super::session::csrf_of(&body).as_deref()) {
        return r;
    }
    match api::remove(State(s), session.caller(), Ok(Path(node_id))).await {
        Ok(_) => see_other("/console/cluster"),
        Err(e) => layout::api_error(&session, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_only_move_forward() {
        assert_eq!(next_modes("rw"), &["ro", "ar"]);
        assert_eq!(next_modes("ro"), &["ar"]);
        assert!(next_modes("ar").is_empty());
        assert!(next_modes("edit").is_empty());
    }
}
