//! The dashboard: nodes and their roles, storage elements with capacity bars, repair and scrub
//! progress, recent audit events, and live charts fed by this node's own metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use artstore_raft::Role;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::{html, Markup};

use super::history::{Samples, SAMPLE_EVERY};
use super::i18n::{Lang, T};
use super::layout::{self, capacity, Page};
use super::{ConsoleSettings, Session};
use crate::http::AppState;

/// `GET /console/`.
pub async fn page(
    State(s): State<AppState>,
    Extension(settings): Extension<Arc<ConsoleSettings>>,
    session: Session,
) -> Response {
    let l = session.lang;
    let status = s.admin.cluster_status();
    let elements = match s.storage.elements() {
        Ok(e) => e,
        Err(e) => return layout::api_error(&session, e.into()),
    };
    let zones: BTreeMap<u64, String> =
        elements.iter().filter(|e| !e.zone.is_empty()).map(|e| (e.node_id, e.zone.clone())).collect();
    let repair = if session.can(Role::Operator) {
        crate::http::repair::status(State(s.clone()), session.caller()).await.ok().map(|j| j.0)
    } else {
        None
    };
    let audit = if session.can(Role::Operator) { s.admin.recent_audit(&session.principal, 8).ok() } else { None };
    let body = html! {
        p .muted {
            (l.pick("Answered by node", "Ответил узел")) " " strong { (status.node_id) } " · "
            (l.pick("term", "срок")) " " (status.term) " · "
            (l.pick("applied index", "применённый индекс")) " " (status.applied_index) " · "
            (l.pick("commit index", "индекс фиксации")) " " (status.commit_index)
        }
        div .grid {
            section aria-labelledby="nodes-title" {
                h2 #nodes-title { (T::Nodes.get(l)) }
                div .table-wrap { table #nodes {
                    thead { tr { th { (T::Node.get(l)) } th { (T::Role.get(l)) } th { (T::Reachable.get(l)) } th { (T::Zone.get(l)) } th .num { (l.pick("Log index", "Индекс журнала")) } th { "HTTP" } } }
                    tbody {
                        @for m in &status.members {
                            @let role = if status.leader_id == Some(m.node_id) { "leader" } else if m.voter { "follower" } else { "learner" };
                            tr .node data-node-id=(m.node_id) data-role=(role) data-reachable=(m.reachable) {
                                td { (m.node_id) @if m.node_id == status.node_id { " " span .badge { (l.pick("this node", "этот узел")) } } }
                                td { span .badge.leader[role == "leader"] { (role_name(l, role)) } }
                                td { @if m.reachable { span .badge.ok { (T::Yes.get(l)) } } @else { span .badge.down { (T::No.get(l)) } } }
                                td { (zones.get(&m.node_id).map(String::as_str).unwrap_or("—")) }
                                td .num .matched { @match m.matched_index { Some(i) => (i), None => span .muted title=(l.pick("known on the leader", "известно лидеру")) { "—" } } }
                                td { code { (m.http_addr) } }
                            }
                        }
                    }
                } }
            }
            section aria-labelledby="elements-title" {
                h2 #elements-title { (T::StorageElements.get(l)) }
                div .table-wrap { table #elements-summary {
                    thead { tr { th { (T::Node.get(l)) } th { (T::Name.get(l)) } th { (T::Mode.get(l)) } th { (T::Capacity.get(l)) } } }
                    tbody {
                        @for e in &elements {
                            tr .element data-node-id=(e.node_id) data-name=(e.name) data-mode=(e.mode.as_str()) {
                                td { (e.node_id) }
                                td { (e.name) }
                                td { span .badge { (e.mode.as_str()) } @if e.full { " " span .badge.bad { (l.pick("full", "заполнен")) } } }
                                td { (capacity(e.used_bytes, e.capacity_bytes, settings.warning_fraction, settings.critical_fraction,
                                    &format!("{} {}", T::Capacity.get(l), e.name))) }
                            }
                        }
                    }
                } }
            }
        }
        div .grid {
            section aria-labelledby="chart-requests-title" {
                h2 #chart-requests-title { (l.pick("Requests on this node", "Запросы к этому узлу")) " " span #chart-requests-now .muted {} }
                svg #chart-requests .chart viewBox="0 0 100 100" preserveAspectRatio="none" role="img"
                    aria-label=(l.pick("Uploads, downloads and errors per second", "Загрузки, скачивания и ошибки в секунду")) {}
                p .legend {
                    span .s0 { (l.pick("uploads/s", "загрузки/с")) }
                    span .s1 { (l.pick("downloads/s", "скачивания/с")) }
                    span .s2 { (l.pick("errors/s (4xx, 5xx)", "ошибки/с (4xx, 5xx)")) }
                }
            }
            section aria-labelledby="chart-capacity-title" {
                h2 #chart-capacity-title { (l.pick("Capacity used, whole cluster", "Занятая ёмкость, весь кластер")) " " span #chart-capacity-now .muted {} }
                svg #chart-capacity .chart viewBox="0 0 100 100" preserveAspectRatio="none" role="img"
                    aria-label=(l.pick("Share of capacity used over time", "Доля занятой ёмкости во времени")) {}
                p .legend { span .s0 { (l.pick("used / capacity, scaled to the highest share", "занято / ёмкость, по наибольшей доле")) } }
            }
        }
        @if let Some(r) = &repair { (repair_section(l, r)) }
        @if let Some(records) = &audit { (audit_section(l, records)) }
    };
    Page::new(l, T::Dashboard.get(l)).body(body).render(Some(&session))
}

pub fn role_name(l: Lang, role: &str) -> &'static str {
    match role {
        "leader" => l.pick("leader", "лидер"),
        "follower" => l.pick("follower", "последователь"),
        _ => l.pick("learner", "ученик"),
    }
}

fn repair_section(l: Lang, r: &artstore_client::wire::RepairStatus) -> Markup {
    html! {
        section #repair aria-labelledby="repair-title" {
            h2 #repair-title { (l.pick("Repair and scrub", "Восстановление и проверка")) }
            dl .meta {
                dt { (l.pick("Files waiting for repair", "Файлов в очереди восстановления")) } dd { (r.queued_files) }
                dt { (l.pick("Missing replicas", "Недостающих реплик")) } dd { (r.missing_replicas) }
                dt { (l.pick("Chunks repaired", "Восстановлено блоков")) } dd { (r.chunks_repaired) " (" (layout::bytes(r.bytes_repaired)) ")" }
                dt { (l.pick("Unrecoverable chunks", "Невосстановимых блоков")) } dd { (r.unrecoverable_chunks) }
                dt { (l.pick("Scrub on this node", "Проверка на этом узле")) }
                dd {
                    @if r.scrub.enabled {
                        (r.scrub.passes) " " (l.pick("passes", "проходов")) ", "
                        (r.scrub.chunks_checked) " " (l.pick("chunks checked", "блоков проверено")) ", "
                        (r.scrub.damaged_found) " " (l.pick("damaged found", "повреждений найдено"))
                        @if r.scrub.running { " · " (l.pick("running", "идёт")) }
                    } @else { (l.pick("off", "выключена")) }
                }
                dt { (l.pick("Changes set aside", "Отложенных изменений")) } dd { (r.set_aside.len()) }
            }
        }
    }
}

fn audit_section(l: Lang, records: &[artstore_raft::AuditRecord]) -> Markup {
    html! {
        section #recent-audit aria-labelledby="recent-audit-title" {
            h2 #recent-audit-title { (l.pick("Recent audit events", "Последние события аудита")) }
            div .table-wrap { table {
                thead { tr { th { "#" } th { (T::Time.get(l)) } th { (T::Actor.get(l)) } th { (T::Action.get(l)) } th { (T::Target.get(l)) } th { (T::Outcome.get(l)) } } }
                tbody {
                    @for r in records {
                        tr {
                            td .num { (r.seq) }
                            td { (layout::when(&crate::http::admin::rfc3339(r.event.at))) }
                            td { (r.event.actor) } td { code { (r.event.action) } } td { (r.event.target) } td { (r.event.outcome) }
                        }
                    }
                }
            } }
            p { a href="/console/audit" { (l.pick("Whole audit log", "Весь журнал аудита")) } }
        }
    }
}

/// `GET /console/live.json`: the last minutes of samples, for the charts (any
/// signed-in account: the dashboard is for everyone).
pub async fn live(Extension(settings): Extension<Arc<ConsoleSettings>>, _session: Session) -> Response {
    // The sampler's ring only: however many dashboards poll, the metrics are rendered once per
    // interval, by the worker.
    let samples = settings.history.samples();
    Json(Samples { interval_ms: SAMPLE_EVERY.as_millis() as u64, samples }).into_response()
}
