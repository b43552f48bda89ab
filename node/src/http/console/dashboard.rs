//! The dashboard: nodes and their roles, storage elements with capacity bars, repair and scrub
//! progress, recent audit events, and live charts fed by this node's own metrics.

use std::collections::BTreeMap;
use std::sync::Arc;

use artstore_raft::Role;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use maud::{html, Markup};
use serde::Serialize;

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
                    thead { tr { th { (T::Node.get(l)) } th { (T::Role.get(l)) } th { (T::Reachable.get(l)) } th { (T::Zone.get(l)) } th { "HTTP" } } }
                    tbody {
                        @for m in &status.members {
                            @let role = if status.leader_id == Some(m.node_id) { "leader" } else if m.voter { "follower" } else { "learner" };
                            tr .node data-node-id=(m.node_id) data-role=(role) data-reachable=(m.reachable) {
                                td { (m.node_id) @if m.node_id == status.node_id { " " span .badge { (l.pick("this node", "этот узел")) } } }
                                td { span .badge.leader[role == "leader"] { (role_name(l, role)) } }
                                td { @if m.reachable { span .badge.ok { (T::Yes.get(l)) } } @else { span .badge.down { (T::No.get(l)) } } }
                                td { (zones.get(&m.node_id).map(String::as_str).unwrap_or("—")) }
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
                h2 #chart-capacity-title { (l.pick("Capacity used, whole cluster", "Занятая ёмкость, весь кластер")) }
                svg #chart-capacity .chart viewBox="0 0 100 100" preserveAspectRatio="none" role="img"
                    aria-label=(l.pick("Share of capacity used over time", "Доля занятой ёмкости во времени")) {}
                p .legend { span .s0 { (l.pick("used / capacity (0–100 %)", "занято / ёмкость (0–100 %)")) } }
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

/// What the charts plot: this node's counters and the cluster's capacity, at one instant.
#[derive(Serialize)]
pub struct Live {
    at_ms: u64,
    uploads: f64,
    downloads: f64,
    errors: f64,
    used_bytes: u64,
    capacity_bytes: u64,
}

/// `GET /console/live.json`: any signed-in account (the dashboard is for everyone).
pub async fn live(State(s): State<AppState>, _session: Session) -> Response {
    let text = s.metrics.render();
    let uploads = sum_metric(&text, "artstore_ingest_files_total", |_| true);
    let downloads = sum_metric(&text, "artstore_http_requests_total", |labels| {
        label(labels, "route").is_some_and(|r| r.ends_with("/content"))
            && label(labels, "status").is_some_and(|s| s == "200" || s == "206")
    });
    let errors = sum_metric(&text, "artstore_http_requests_total", |labels| {
        label(labels, "status").and_then(|s| s.parse::<u16>().ok()).is_some_and(|s| s >= 400)
    });
    let (used_bytes, capacity_bytes) = s
        .storage
        .elements()
        .map(|es| es.iter().fold((0, 0), |(u, c), e| (u + e.used_bytes, c + e.capacity_bytes)))
        .unwrap_or((0, 0));
    let at_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
    Json(Live { at_ms, uploads, downloads, errors, used_bytes, capacity_bytes }).into_response()
}

/// The sum of every series of counter `name` in Prometheus text whose labels pass `keep`.
fn sum_metric(text: &str, name: &str, keep: impl Fn(&str) -> bool) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let rest = line.strip_prefix(name)?;
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            keep(labels).then(|| value.trim().parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// The value of label `key` in `a="x",key="y"`.
fn label<'a>(labels: &'a str, key: &str) -> Option<&'a str> {
    labels.split("\",").find_map(|pair| {
        let (k, v) = pair.split_once("=\"")?;
        (k.trim_start_matches(',') == key).then(|| v.trim_end_matches('"'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_by_label() {
        let text = "# TYPE artstore_http_requests_total counter\n\
            artstore_http_requests_total{method=\"GET\",route=\"/api/v1/files/{id}/content\",status=\"200\"} 3\n\
            artstore_http_requests_total{method=\"GET\",route=\"/api/v1/files/{id}/content\",status=\"206\"} 2\n\
            artstore_http_requests_total{method=\"GET\",route=\"/api/v1/search\",status=\"400\"} 5\n\
            artstore_http_requests_total_other 9\n\
            artstore_ingest_files_total 7\n";
        let downloads = sum_metric(text, "artstore_http_requests_total", |l| {
            label(l, "route").is_some_and(|r| r.ends_with("/content"))
        });
        assert_eq!(downloads, 5.0);
        let errors = sum_metric(text, "artstore_http_requests_total", |l| label(l, "status") == Some("400"));
        assert_eq!(errors, 5.0);
        assert_eq!(sum_metric(text, "artstore_ingest_files_total", |_| true), 7.0);
    }
}
