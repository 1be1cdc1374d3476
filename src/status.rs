//! The status page (`/`) and the resource pages (`/resources/<account>/<region>/<id>`) the
//! daemon serves beside `/metrics`: read-only HTML rendered on the server with maud, from
//! the last pass's report and the config. maud escapes every value it prints, and tags are
//! untrusted: nothing read from a resource reaches the page unescaped, and the page runs
//! no script.

use chrono::{DateTime, Duration, Utc};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use crate::config::Config;
use crate::kind::Seen;
use crate::kind::tags::{self, OverrideTag, Resolution};
use crate::model::{TAG_ERROR, TAG_LAST};
use crate::report::{PassReport, ScopeStatus};
use crate::savings::{By, Prices, project};
use crate::schedule::{Action, Schedule, State};

/// The last pass, as the pages show it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Its report (with the inventory).
    pub report: std::sync::Arc<PassReport>,
    /// When it finished.
    pub finished: DateTime<Utc>,
    /// How long it took.
    pub seconds: f64,
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1d232a}\
h1{margin:0 0 .3rem}h2{margin-top:2rem;border-bottom:1px solid #ccd;padding-bottom:.2rem}\
table{border-collapse:collapse;font-size:.9rem}td,th{padding:.25rem .6rem;border-bottom:1px solid #e4e6ea;text-align:left;vertical-align:top}\
th{background:#f3f5f8}.running{color:#11743a;font-weight:600}.stopped{color:#8a5a00;font-weight:600}\
.error{color:#b00020}.muted{color:#667}.ok{color:#11743a}code{background:#f3f5f8;padding:0 .2rem;white-space:nowrap}\
.cards{display:flex;gap:1rem;flex-wrap:wrap}.card{border:1px solid #dde;border-radius:6px;padding:.6rem 1rem;min-width:10rem}\
.card b{font-size:1.4rem;display:block}";

fn layout(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn local(t: DateTime<Utc>, s: &Schedule) -> String {
    t.with_timezone(&s.tz).format("%a %Y-%m-%d %H:%M %Z").to_string()
}

/// A resource's schedule, if it follows one.
fn schedule_of(cfg: &Config, r: &Seen) -> Resolution {
    tags::resolve(cfg, r.tag(&cfg.tag_key))
}

/// What comes next for a resource: its override's end, else its schedule's next transition.
fn next(cfg: &Config, r: &Seen, now: DateTime<Utc>) -> Option<String> {
    let Resolution::Scheduled(s) = schedule_of(cfg, r) else {
        return None;
    };
    if let OverrideTag::Holds { until, .. } = tags::read_override(cfg, &r.tags, &s.name, now) {
        return Some(format!("override ends {}", local(until, &s)));
    }
    s.next_transitions(now, 1)
        .first()
        .map(|t| format!("{} {}", t.action.as_str(), local(t.at, &s)))
}

fn override_cell(cfg: &Config, r: &Seen, now: DateTime<Utc>) -> Option<String> {
    let name = match schedule_of(cfg, r) {
        Resolution::Scheduled(s) => s.name.clone(),
        _ => String::new(),
    };
    match tags::read_override(cfg, &r.tags, &name, now) {
        OverrideTag::Absent => None,
        OverrideTag::Holds { state, until, .. } => Some(format!(
            "{} until {}",
            if state == State::Running { "running" } else { "stopped" },
            utc(until)
        )),
        OverrideTag::Expired { until, .. } => Some(format!("expired {}", utc(until))),
        OverrideTag::Invalid(e) => Some(format!("invalid: {e}")),
    }
}

fn error_of<'a>(report: &'a PassReport, r: &Seen) -> Option<&'a str> {
    report
        .errors
        .iter()
        .find(|e| e.account == r.account && e.region == r.region && e.resource_id == r.id)
        .map(|e| e.error.as_str())
}

/// The changes the last pass applied to a resource (its state in the inventory is from
/// before them).
fn applied<'a>(report: &'a PassReport, r: &Seen) -> Vec<&'a str> {
    report
        .changes
        .iter()
        .filter(|c| {
            c.account == r.account
                && c.region == r.region
                && c.resource_id == r.id
                && c.status == crate::kind::ChangeStatus::Applied
                && !c.change.kind().ends_with("tags")
        })
        .map(|c| c.change.kind())
        .collect()
}

fn href(r: &Seen) -> String {
    let enc = |s: &str| -> String {
        s.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    };
    format!("/resources/{}/{}/{}", enc(&r.account), enc(&r.region), enc(&r.id))
}

/// The savings chart: a bar per schedule, per week, as inline SVG.
fn chart(bars: &[(String, f64)]) -> Markup {
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    let height = 28 * bars.len() + 10;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width="560" height=(height) role="img" aria-label="Projected savings per week by schedule" {
            @for (i, (name, v)) in bars.iter().enumerate() {
                @let y = 28 * i + 5;
                @let w = (v / max * 300.0).round();
                text x="0" y=(y + 16) font-size="13" { (name) }
                rect x="180" y=(y) width=(w) height="20" fill="#2f7bbf" {}
                text x=(186.0 + w) y=(y + 15) font-size="12" { (format!("{v:.2}/week")) }
            }
        }
    }
}

/// The status page at `now`: the schedules, the resources, the violations, the savings and
/// the last pass.
#[must_use]
pub fn page(cfg: &Config, last: Option<&Snapshot>, now: DateTime<Utc>) -> Markup {
    let body = html! {
        h1 { "offhours" }
        p.muted { "Read-only status. Refreshed by each pass of the daemon." }
        (last_pass(last))
        h2 #schedules { "Schedules" }
        table {
            tr { th { "schedule" } th { "zone" } th { "next transitions (local / UTC)" } th { "holidays and uptime events ahead (60 days)" } }
            @for s in cfg.schedules() {
                tr {
                    td { code { (s.name) } }
                    td { (s.tz.name()) }
                    td {
                        @for t in s.next_transitions(now, 4) {
                            div { (t.action.as_str()) " " (local(t.at, s)) " / " (utc(t.at)) }
                        }
                    }
                    td { (ahead(s, now)) }
                }
            }
        }
        @if let Some(snap) = last {
            (resources(cfg, &snap.report, now))
            (violations(&snap.report))
            (savings(cfg, &snap.report, now))
        }
    };
    layout("offhours status", body)
}

fn last_pass(last: Option<&Snapshot>) -> Markup {
    let Some(snap) = last else {
        return html! { p.error #last-pass { "No pass has finished yet." } };
    };
    let r = &snap.report;
    let failed: Vec<_> = r.scopes.iter().filter(|s| s.status != ScopeStatus::Ok).collect();
    html! {
        div.cards #last-pass {
            div.card { "last pass" b { (utc(snap.finished)) } span.muted { (format!("{:.1} s", snap.seconds)) } }
            div.card { "resources" b { (r.summary.resources) } }
            div.card { "changes applied" b { (r.summary.applied) } }
            div.card { "failed" b.error[r.summary.failed > 0] { (r.summary.failed) } }
            div.card { "bad tags" b.error[r.summary.errors > 0] { (r.summary.errors) } }
            div.card { "scopes failed" b.error[!failed.is_empty()] { (failed.len()) " / " (r.scopes.len()) } }
        }
        @if !failed.is_empty() {
            ul.error {
                @for s in &failed {
                    li { (s.account) "/" (s.region) ": " (s.error.as_deref().unwrap_or("failed")) }
                }
            }
        }
        @let failures: Vec<_> = r.changes.iter().filter(|c| c.error.is_some()).collect();
        @if !failures.is_empty() {
            ul.error {
                @for c in failures {
                    li { (c.account) "/" (c.region) " " (c.resource_id) " " (c.change.kind()) ": " (c.error.as_deref().unwrap_or_default()) }
                }
            }
        }
    }
}

fn ahead(s: &Schedule, now: DateTime<Utc>) -> Markup {
    let today = now.with_timezone(&s.tz).date_naive();
    let until = today + Duration::days(60);
    let holidays: Vec<_> = s.holidays.range(today..until).collect();
    let events: Vec<_> = s
        .uptime
        .events
        .iter()
        .filter(|e| e.to > now && e.from < now + Duration::days(60))
        .collect();
    html! {
        @for d in &holidays { div { "holiday " (d.format("%a %Y-%m-%d")) } }
        @for e in &events { div { "uptime " (local(e.from, s)) ": " (e.summary.as_ref()) } }
        @if holidays.is_empty() && events.is_empty() { span.muted { "none" } }
    }
}

/// A resource on the status page: it, its team, its schedule's name (or tag value).
type Row<'a> = (&'a Seen, Option<String>, String);

fn resources(cfg: &Config, report: &PassReport, now: DateTime<Utc>) -> Markup {
    let mut rows: Vec<Row> = report
        .inventory
        .iter()
        .filter_map(|r| match schedule_of(cfg, r) {
            Resolution::Scheduled(s) => Some((r, r.team(cfg), s.name.clone())),
            Resolution::Invalid(_) => Some((r, r.team(cfg), r.tag(&cfg.tag_key).unwrap_or_default().to_string())),
            Resolution::Unscheduled => None,
        })
        .collect();
    rows.sort_by(|a, b| (&a.0.account, &a.1, &a.2, &a.0.id).cmp(&(&b.0.account, &b.1, &b.2, &b.0.id)));
    let count = |key: &dyn Fn(&Row) -> String| {
        let mut m: std::collections::BTreeMap<String, (usize, usize)> = std::collections::BTreeMap::new();
        for r in &rows {
            let e = m.entry(key(r)).or_default();
            e.0 += 1;
            e.1 += usize::from(r.0.observation.state == "running");
        }
        m
    };
    let by_team = count(&|r| r.1.clone().unwrap_or_else(|| "(no team)".into()));
    let by_schedule = count(&|r| r.2.clone());
    html! {
        h2 #resources { "Resources" }
        div.cards {
            div.card { "by team" @for (k, (n, up)) in &by_team { div { (k) ": " (n) " (" (up) " running)" } } }
            div.card { "by schedule" @for (k, (n, up)) in &by_schedule { div { (k) ": " (n) " (" (up) " running)" } } }
        }
        table #resource-table {
            tr { th { "account" } th { "region" } th { "team" } th { "schedule" } th { "kind" } th { "resource" } th { "state" } th { "next" } th { "override" } th { "error" } }
            @for (r, t, s) in &rows {
                tr {
                    td { (r.account) } td { (r.region) }
                    td { (t.as_deref().unwrap_or("")) }
                    td { code { (s) } }
                    td { (r.resource_type.as_str()) }
                    td { a href=(href(r)) { (r.id) } }
                    td {
                        span class=(r.observation.state) { (r.observation.state) }
                        @let done = applied(report, r);
                        @if !done.is_empty() { br; span.muted { "then " (done.join(", ")) } }
                    }
                    td { (next(cfg, r, now).unwrap_or_default()) }
                    td { (override_cell(cfg, r, now).unwrap_or_default()) }
                    td.error { (error_of(report, r).unwrap_or_default()) }
                }
            }
        }
    }
}

fn violations(report: &PassReport) -> Markup {
    html! {
        h2 #violations { "Violations" }
        @if report.violations.is_empty() {
            p.ok { "Every resource carries a valid schedule tag." }
        } @else {
            table {
                tr { th { "account" } th { "region" } th { "kind" } th { "resource" } th { "tag value" } th { "problem" } th { "not remediated because" } }
                @for v in &report.violations {
                    tr {
                        td { (v.account) } td { (v.region) } td { (v.resource_type.as_str()) } td { (v.resource_id) }
                        td { (v.tag_value.as_deref().unwrap_or("")) } td { (v.problem.as_str()) }
                        td.muted { (v.not_remediated.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

fn savings(cfg: &Config, report: &PassReport, now: DateTime<Utc>) -> Markup {
    let prices = Prices::new(&cfg.raw.instance_hour_prices);
    let p = project(cfg, &report.inventory, &prices, now, By::Schedule, None);
    let bars: Vec<(String, f64)> = p.groups.iter().map(|(k, t)| (k.clone(), t.per_week)).collect();
    html! {
        h2 #savings { "Savings" }
        div.cards {
            div.card { "per week" b { (format!("{:.2} {}", p.total.per_week, p.currency)) } }
            div.card { "per 30 days" b { (format!("{:.2} {}", p.total.per_month, p.currency)) } }
            div.card { "instance-hours off per week" b { (format!("{:.0}", p.total.instance_hours_per_week)) } }
            div.card { "unpriced" b { (p.total.unpriced) } }
        }
        (chart(&bars))
        p.muted { "Projected from the current inventory over the next " (p.window_days) " days; prices: " (p.price_table) }
    }
}

/// Why a resource is in its state and what happens next, sentence by sentence.
fn explain_resource(cfg: &Config, report: &PassReport, r: &Seen, now: DateTime<Utc>) -> Vec<String> {
    let mut out = Vec::new();
    let value = r.tag(&cfg.tag_key);
    match schedule_of(cfg, r) {
        Resolution::Unscheduled if value.is_none() => {
            out.push(format!("It has no `{}` tag, so offhours leaves it alone.", cfg.tag_key));
        }
        Resolution::Unscheduled => out.push(format!(
            "`{}` = `{}`: always on; offhours never stops it.",
            cfg.tag_key,
            value.unwrap_or_default()
        )),
        Resolution::Invalid(e) => out.push(format!(
            "Its `{}` tag is invalid, so offhours leaves it as it is: {e}",
            cfg.tag_key
        )),
        Resolution::Scheduled(s) => {
            let says = s.state_at(now);
            let since = s.last_transition(now, 35);
            out.push(format!(
                "It follows schedule `{}` ({}), which says {} now{}.",
                s.name,
                s.tz.name(),
                if says == State::Running { "running" } else { "stopped" },
                since
                    .map(|t| format!(" since {} {}", t.action.as_str(), local(t.at, &s)))
                    .unwrap_or_default()
            ));
            match tags::read_override(cfg, &r.tags, &s.name, now) {
                OverrideTag::Holds { state, until, .. } => out.push(format!(
                    "An override holds it {} until {} ({}); then the schedule applies again.",
                    if state == State::Running { "running" } else { "stopped" },
                    local(until, &s),
                    utc(until)
                )),
                OverrideTag::Expired { note, .. } => out.push(format!("{note}.")),
                OverrideTag::Invalid(e) => out.push(format!("Its override is invalid: {e}")),
                OverrideTag::Absent => {}
            }
            if let Some(t) = s.next_transitions(now, 1).first() {
                out.push(format!(
                    "Next: {} at {} ({}).",
                    if t.action == Action::Start { "start" } else { "stop" },
                    local(t.at, &s),
                    utc(t.at)
                ));
            }
            if !s.enforce {
                out.push(
                    "offhours acts at transitions only: a person's start or stop in between is kept until the next one."
                        .into(),
                );
            }
        }
    }
    let grace = match r.resource_type {
        crate::kind::ResourceType::Instance => Some(cfg.instances.grace),
        crate::kind::ResourceType::DbInstance | crate::kind::ResourceType::DbCluster => Some(cfg.databases.grace),
        crate::kind::ResourceType::AutoScalingGroup => None,
    };
    if let (Some(since), Some(grace)) = (r.observation.since, grace)
        && crate::kind::in_grace(since, now, grace)
    {
        out.push(format!(
            "Launched {}, inside its {} min grace period: offhours does not stop it before {}.",
            utc(since),
            grace.num_minutes(),
            utc(since + grace)
        ));
    }
    if let Some(t) = r.tag(TAG_LAST) {
        out.push(format!("Last transition offhours recorded: {t}."));
    }
    if let Some(e) = r.tag(TAG_ERROR).or(error_of(report, r)) {
        out.push(format!("Error: {e}"));
    }
    for n in report
        .notes
        .iter()
        .filter(|n| n.account == r.account && n.region == r.region && n.resource_id == r.id)
    {
        out.push(format!("Note from the last pass: {}", n.note));
    }
    out
}

/// The page of one resource, or `None` when the last pass did not see it.
#[must_use]
pub fn resource_page(
    cfg: &Config,
    last: Option<&Snapshot>,
    (account, region, id): (&str, &str, &str),
    now: DateTime<Utc>,
) -> Option<Markup> {
    let snap = last?;
    let r = snap
        .report
        .inventory
        .iter()
        .find(|r| r.account == account && r.region == region && r.id == id)?;
    let changes: Vec<_> = snap
        .report
        .changes
        .iter()
        .filter(|c| c.account == r.account && c.region == r.region && c.resource_id == r.id)
        .collect();
    let body = html! {
        p { a href="/" { "← status" } }
        h1 { (r.resource_type.as_str()) " " (r.id) }
        p.muted { "account " (r.account) ", region " (r.region) (r.team(cfg).map(|t| format!(", team {t}")).unwrap_or_default()) }
        p { "State when the last pass listed it: " span class=(r.observation.state) #state { (r.observation.state) }
            @let done = applied(&snap.report, r);
            @if !done.is_empty() { " · then applied: " (done.join(", ")) }
            @if let Some(t) = &r.observation.priced_type { " · " (t) }
            @if r.observation.units != 1 { " · " (r.observation.units) " when running" } }
        h2 { "Why, and what next" }
        ul #why { @for line in explain_resource(cfg, &snap.report, r, now) { li { (line) } } }
        h2 { "Tags offhours reads" }
        table { @for (k, v) in &r.tags { tr { td { code { (k) } } td { (v) } } } }
        @if !changes.is_empty() {
            h2 { "The last pass" }
            table {
                tr { th { "change" } th { "status" } th { "reason" } }
                @for c in &changes { tr { td { (c.change.kind()) } td { (format!("{:?}", c.status).to_lowercase()) } td { (c.reason) } } }
            }
        }
        p.muted { "As of the pass at " (utc(snap.finished)) "." }
    };
    Some(layout(&format!("{} {}", r.resource_type, r.id), body))
}

#[cfg(test)]
mod tests;
