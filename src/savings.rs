//! Projected savings (`offhours report savings`): for each resource a schedule keeps, the
//! hours its schedule holds it off in the next 30 days (holidays included) times its
//! hourly price and how many of it run; per week is seven thirtieths of that. Also the
//! potential of resources that follow no schedule, if they adopted one (`--if-schedule`).
//! Pure: a pass's inventory, the config, the price table and `now` in; figures out.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::config::Config;
use crate::kind::Seen;
use crate::kind::tags::{self, Resolution};
use crate::schedule::{Schedule, State};

/// The window the projection walks.
pub const WINDOW_DAYS: i64 = 30;

/// The bundled on-demand price table: `region,type,usd_per_hour` lines, `#` comments.
const BUNDLED: &str = include_str!("savings/prices.csv");

/// The bundled table's date and source (its first comment lines).
#[must_use]
pub fn bundled_source() -> String {
    BUNDLED
        .lines()
        .take_while(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Hourly prices: the config's `instance_hour_prices` first (by type, in any region), then
/// the bundled table (by region and type), then the config's `*`.
#[derive(Debug, Clone, Default)]
pub struct Prices {
    config: BTreeMap<String, f64>,
    bundled: BTreeMap<(String, String), f64>,
}

/// Where a price came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PriceSource {
    /// `instance_hour_prices` names the type.
    Config,
    /// The bundled table has the type in the region.
    Bundled,
    /// `instance_hour_prices` `*`.
    ConfigDefault,
}

impl Prices {
    /// The config's prices over the bundled table.
    ///
    /// # Panics
    /// If the bundled table is malformed (a test reads every line).
    #[must_use]
    pub fn new(config: &BTreeMap<String, f64>) -> Self {
        let bundled = BUNDLED
            .lines()
            .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').map(str::trim).collect();
                let price: f64 = f[2].parse().expect("a price in the bundled table");
                ((f[0].to_string(), f[1].to_string()), price)
            })
            .collect();
        Prices {
            config: config.clone(),
            bundled,
        }
    }

    /// The hourly price of `priced_type` in `region`, and where it came from.
    #[must_use]
    pub fn of(&self, region: &str, priced_type: Option<&str>) -> Option<(f64, PriceSource)> {
        if let Some(t) = priced_type {
            if let Some(p) = self.config.get(t) {
                return Some((*p, PriceSource::Config));
            }
            if let Some(p) = self.bundled.get(&(region.to_string(), t.to_string())) {
                return Some((*p, PriceSource::Bundled));
            }
        }
        self.config.get("*").map(|p| (*p, PriceSource::ConfigDefault))
    }
}

/// Hours `s` holds a resource off between `from` and `from + days`: the stopped spans of
/// its windows, holidays and uptime events. A `start-only` schedule never stops anything,
/// so it saves nothing; a `stop-only` one is credited with its stopped spans (people start
/// their resources when they need them, so it saves at least that).
#[must_use]
pub fn hours_off(s: &Schedule, from: DateTime<Utc>, days: i64) -> f64 {
    if s.mode == crate::schedule::Mode::StartOnly {
        return 0.0;
    }
    let to = from + Duration::days(days);
    let (mut at, mut state) = (from, s.state_at(from));
    let mut off = Duration::zero();
    for t in s.transitions(from, to) {
        if state == State::Stopped {
            off += t.at - at;
        }
        (at, state) = (t.at, t.action.target());
    }
    if state == State::Stopped {
        off += to - at;
    }
    off.num_seconds() as f64 / 3600.0
}

/// One resource's projection.
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    /// Account id.
    pub account: String,
    /// Region.
    pub region: String,
    /// Kind.
    pub resource_type: crate::kind::ResourceType,
    /// Id.
    pub resource_id: String,
    /// The schedule (its own, or the one asked for with `--if-schedule`).
    pub schedule: String,
    /// Its team (`team_tag`), if any.
    pub team: Option<String>,
    /// Priced type.
    pub priced_type: Option<String>,
    /// How many run when it runs.
    pub units: u32,
    /// Hourly price of one, if known.
    pub hourly_price: Option<f64>,
    /// Where the price came from.
    pub price_source: Option<PriceSource>,
    /// Hours off per week (of one unit).
    pub hours_off_per_week: f64,
    /// Saved per week (units x hours x price); 0 when unpriced.
    pub per_week: f64,
    /// Saved per 30 days.
    pub per_month: f64,
}

/// Totals of a set of lines.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Total {
    /// Resources.
    pub resources: usize,
    /// Of which without a price.
    pub unpriced: usize,
    /// Instance-hours off per week (units x hours).
    pub instance_hours_per_week: f64,
    /// Saved per week.
    pub per_week: f64,
    /// Saved per 30 days.
    pub per_month: f64,
}

impl Total {
    fn add(&mut self, l: &Line) {
        self.resources += 1;
        self.unpriced += usize::from(l.hourly_price.is_none());
        self.instance_hours_per_week += l.hours_off_per_week * f64::from(l.units);
        self.per_week += l.per_week;
        self.per_month += l.per_month;
    }
}

/// How lines are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum By {
    /// By account id.
    Account,
    /// By `team_tag` (`(no team)` without one).
    Team,
    /// By schedule.
    Schedule,
}

impl By {
    fn key(self, l: &Line) -> String {
        match self {
            By::Account => l.account.clone(),
            By::Team => l.team.clone().unwrap_or_else(|| "(no team)".into()),
            By::Schedule => l.schedule.clone(),
        }
    }
}

/// A projection: the scheduled resources, and the potential of the others.
#[derive(Debug, Clone, Serialize)]
pub struct Projection {
    /// When it was made.
    pub now: DateTime<Utc>,
    /// The days walked (per month is this many days).
    pub window_days: i64,
    /// The currency of every figure.
    pub currency: &'static str,
    /// The bundled price table's date and source.
    pub price_table: String,
    /// How `groups` is keyed.
    pub by: By,
    /// Every scheduled resource.
    pub total: Total,
    /// By `by`.
    pub groups: BTreeMap<String, Total>,
    /// Each scheduled resource.
    pub resources: Vec<Line>,
    /// With `--if-schedule`: what untagged and always-on resources would save on it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub potential: Option<Potential>,
}

/// What resources that follow no schedule would save on one.
#[derive(Debug, Clone, Serialize)]
pub struct Potential {
    /// The schedule supposed.
    pub schedule: String,
    /// Their totals.
    pub total: Total,
    /// By `by`.
    pub groups: BTreeMap<String, Total>,
    /// Each.
    pub resources: Vec<Line>,
}

/// Hours off per schedule (by name), walked once for all the resources that follow it.
type Walked = BTreeMap<String, f64>;

fn line(cfg: &Config, prices: &Prices, r: &Seen, s: &Schedule, now: DateTime<Utc>, walked: &mut Walked) -> Line {
    let month = *walked
        .entry(s.name.clone())
        .or_insert_with(|| hours_off(s, now, WINDOW_DAYS));
    let week = month * 7.0 / WINDOW_DAYS as f64;
    let o = &r.observation;
    let price = prices.of(&r.region, o.priced_type.as_deref());
    let each = price.map_or(0.0, |(p, _)| p) * f64::from(o.units);
    Line {
        account: r.account.clone(),
        region: r.region.clone(),
        resource_type: r.resource_type,
        resource_id: r.id.clone(),
        schedule: s.name.clone(),
        team: r.team(cfg),
        priced_type: o.priced_type.clone(),
        units: o.units,
        hourly_price: price.map(|(p, _)| p),
        price_source: price.map(|(_, s)| s),
        hours_off_per_week: week,
        per_week: week * each,
        per_month: month * each,
    }
}

fn group(by: By, lines: &[Line]) -> (Total, BTreeMap<String, Total>) {
    let mut total = Total::default();
    let mut groups: BTreeMap<String, Total> = BTreeMap::new();
    for l in lines {
        total.add(l);
        groups.entry(by.key(l)).or_default().add(l);
    }
    (total, groups)
}

/// Projects the savings of `inventory` at `now`; with `if_schedule`, also the potential of
/// the resources that follow no schedule (untagged, `always-on`). Resources with an
/// invalid tag are in neither.
#[must_use]
pub fn project(
    cfg: &Config,
    inventory: &[Seen],
    prices: &Prices,
    now: DateTime<Utc>,
    by: By,
    if_schedule: Option<&Schedule>,
) -> Projection {
    let mut scheduled = Vec::new();
    let mut potential = Vec::new();
    let mut walked = Walked::new();
    for r in inventory {
        match tags::resolve(cfg, r.tag(&cfg.tag_key)) {
            Resolution::Scheduled(s) => scheduled.push(line(cfg, prices, r, &s, now, &mut walked)),
            Resolution::Unscheduled => {
                if let Some(s) = if_schedule {
                    potential.push(line(cfg, prices, r, s, now, &mut walked));
                }
            }
            Resolution::Invalid(_) => {}
        }
    }
    let (total, groups) = group(by, &scheduled);
    Projection {
        now,
        window_days: WINDOW_DAYS,
        currency: "USD",
        price_table: bundled_source(),
        by,
        total,
        groups,
        resources: scheduled,
        potential: if_schedule.map(|s| {
            let (total, groups) = group(by, &potential);
            Potential {
                schedule: s.name.clone(),
                total,
                groups,
                resources: potential,
            }
        }),
    }
}

impl Projection {
    /// For people: totals, the groups, and what is unpriced.
    #[must_use]
    pub fn to_text(&self) -> String {
        let mut t = format!(
            "Projected savings from {} (the next {} days, holidays included), in {}:\n",
            self.now.format("%Y-%m-%d %H:%M UTC"),
            self.window_days,
            self.currency
        );
        let row = |key: &str, x: &Total| {
            format!(
                "  {key:<32} {:>5} resources {:>10.1} instance-h/week {:>10.2}/week {:>11.2}/month{}\n",
                x.resources,
                x.instance_hours_per_week,
                x.per_week,
                x.per_month,
                if x.unpriced > 0 {
                    format!("  ({} unpriced)", x.unpriced)
                } else {
                    String::new()
                }
            )
        };
        let by = match self.by {
            By::Account => "account",
            By::Team => "team",
            By::Schedule => "schedule",
        };
        t.push_str(&format!("By {by}:\n"));
        for (k, x) in &self.groups {
            t.push_str(&row(k, x));
        }
        t.push_str(&row("total", &self.total));
        if let Some(p) = &self.potential {
            t.push_str(&format!(
                "If the resources without a schedule followed `{}`:\n",
                p.schedule
            ));
            for (k, x) in &p.groups {
                t.push_str(&row(k, x));
            }
            t.push_str(&row("total", &p.total));
        }
        let unpriced: Vec<String> = self
            .resources
            .iter()
            .chain(self.potential.iter().flat_map(|p| p.resources.iter()))
            .filter(|l| l.hourly_price.is_none())
            .map(|l| {
                format!(
                    "{} {} ({})",
                    l.resource_type,
                    l.resource_id,
                    l.priced_type.as_deref().unwrap_or("type unknown")
                )
            })
            .collect();
        if !unpriced.is_empty() {
            t.push_str(&format!(
                "Unpriced (add their types to instance_hour_prices): {}\n",
                unpriced.join(", ")
            ));
        }
        t.push_str(&format!("Prices: {}\n", self.price_table));
        t
    }

    /// One CSV row per resource (scheduled, then potential), with a header.
    #[must_use]
    pub fn to_csv(&self) -> String {
        let mut t = String::from(
            "kind,account,region,resource_type,resource_id,schedule,team,priced_type,units,hourly_price,hours_off_per_week,per_week,per_month\n",
        );
        let rows = self.resources.iter().map(|l| ("scheduled", l)).chain(
            self.potential
                .iter()
                .flat_map(|p| p.resources.iter().map(|l| ("potential", l))),
        );
        for (kind, l) in rows {
            let cells = [
                kind.to_string(),
                l.account.clone(),
                l.region.clone(),
                l.resource_type.to_string(),
                l.resource_id.clone(),
                l.schedule.clone(),
                l.team.clone().unwrap_or_default(),
                l.priced_type.clone().unwrap_or_default(),
                l.units.to_string(),
                l.hourly_price.map(|p| p.to_string()).unwrap_or_default(),
                format!("{:.2}", l.hours_off_per_week),
                format!("{:.2}", l.per_week),
                format!("{:.2}", l.per_month),
            ];
            t.push_str(&cells.iter().map(|c| csv_cell(c)).collect::<Vec<_>>().join(","));
            t.push('\n');
        }
        t
    }
}

/// A CSV cell (RFC 4180 quoting); a leading `=`, `+`, `-` or `@` from a tag is prefixed with
/// `'` so a spreadsheet does not run it as a formula.
fn csv_cell(c: &str) -> String {
    let c = if c.starts_with(['=', '+', '-', '@']) && c.parse::<f64>().is_err() {
        format!("'{c}")
    } else {
        c.to_string()
    };
    if c.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", c.replace('"', "\"\""))
    } else {
        c
    }
}

#[cfg(test)]
mod tests;
