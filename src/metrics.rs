//! Prometheus metrics (prometheus-client), with bounded label values only: operation
//! names, resource kinds, change kinds and error kinds, never resource ids.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::report::{ChangeStatus, PassReport};

/// Labels of API call counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CallLabels {
    /// `autoscaling`, `ec2`, `organizations`, `sts`, `sqs`.
    pub service: String,
    /// The SDK operation name.
    pub operation: String,
    /// `ok` or `error`.
    pub outcome: String,
}

/// A bounded single label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: String,
}

/// Labels of a calendar feed's refreshes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FeedLabels {
    /// `holidays.<name>` or `uptime.<name>`.
    pub calendar: String,
    /// `changed`, `same` or `failed`.
    pub result: String,
}

/// A calendar feed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CalendarLabel {
    /// `holidays.<name>` or `uptime.<name>`.
    pub calendar: String,
}

/// Labels of managed resources.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// `auto-scaling-group` or `instance`.
    pub kind: String,
    /// `running`, `stopped`, `pending`, `stopping` (managed), or `violation`.
    pub state: String,
}

/// Every metric offhours exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Passes run, by outcome.
    pub passes: Family<KindLabel, Counter>,
    /// Pass duration.
    pub pass_seconds: Histogram,
    /// SDK calls by service, operation and outcome.
    pub api_calls: Family<CallLabels, Counter>,
    /// Resources seen in the last pass, by kind and state.
    pub resources: Family<ResourceLabels, Gauge>,
    /// Changes applied, by kind.
    pub actions: Family<KindLabel, Counter>,
    /// Errors, by kind.
    pub errors: Family<KindLabel, Counter>,
    /// Policy violations found in the last pass.
    pub violations: Gauge,
    /// Policy drift repairs made.
    pub drift_repaired: Counter,
    /// Estimated instance-hours saved by stops (instances stopped × hours until the next start).
    pub instance_hours_saved: Counter<f64, AtomicU64>,
    /// Estimated cost saved by stops, in the currency of `instance_hour_prices`.
    pub cost_saved: Counter<f64, AtomicU64>,
    /// Unix time of the last pass that succeeded for at least one scope.
    pub last_success: Gauge,
    /// 1 while a pass runs (the daemon), else 0.
    pub pass_in_progress: Gauge,
    /// Config reloads on SIGHUP, by outcome (`applied`, `rejected`).
    pub config_reloads: Family<KindLabel, Counter>,
    /// Calendar feed refreshes, by calendar and result.
    pub feed_refreshes: Family<FeedLabels, Counter>,
    /// 1 when a calendar feed has a good copy in use, 0 when it has never loaded.
    pub feed_loaded: Family<CalendarLabel, Gauge>,
}

/// Estimated instance-hours and cost a pass's applied stops save: each stop is credited
/// with the hours until its schedule starts the instance again, priced by its type.
#[must_use]
pub fn savings(r: &PassReport, prices: &std::collections::BTreeMap<String, f64>) -> (f64, f64) {
    let mut hours = 0.0;
    let mut cost = 0.0;
    for c in r.changes.iter().filter(|c| c.status == ChangeStatus::Applied) {
        if let Some(h) = c.estimated_hours_off {
            hours += h;
            let price = c
                .instance_type
                .as_ref()
                .and_then(|t| prices.get(t))
                .or_else(|| prices.get("*"));
            cost += h * price.copied().unwrap_or(0.0);
        }
    }
    (hours, cost)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    #[must_use]
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("offhours");
        let m = Metrics {
            passes: Family::default(),
            pass_seconds: Histogram::new([0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0]),
            api_calls: Family::default(),
            resources: Family::default(),
            actions: Family::default(),
            errors: Family::default(),
            violations: Gauge::default(),
            drift_repaired: Counter::default(),
            instance_hours_saved: Counter::default(),
            cost_saved: Counter::default(),
            last_success: Gauge::default(),
            pass_in_progress: Gauge::default(),
            config_reloads: Family::default(),
            feed_refreshes: Family::default(),
            feed_loaded: Family::default(),
            registry: Registry::default(),
        };
        registry.register("passes", "Passes run, by outcome", m.passes.clone());
        registry.register("pass_duration_seconds", "Duration of a pass", m.pass_seconds.clone());
        registry.register(
            "api_calls",
            "AWS API calls by service, operation and outcome",
            m.api_calls.clone(),
        );
        registry.register(
            "resources",
            "Resources seen in the last pass, by kind and state",
            m.resources.clone(),
        );
        registry.register("actions", "Changes applied, by kind", m.actions.clone());
        registry.register("errors", "Errors, by kind", m.errors.clone());
        registry.register(
            "policy_violations",
            "Resources without a valid schedule tag in the last pass",
            m.violations.clone(),
        );
        registry.register(
            "policy_drift_repaired",
            "Policy drift repairs made",
            m.drift_repaired.clone(),
        );
        registry.register(
            "instance_hours_saved",
            "Estimated instance-hours saved by stopping instances",
            m.instance_hours_saved.clone(),
        );
        registry.register(
            "estimated_cost_saved",
            "Estimated cost saved by stopping instances, in the currency of instance_hour_prices",
            m.cost_saved.clone(),
        );
        registry.register(
            "last_success_timestamp_seconds",
            "When a pass last succeeded for at least one scope",
            m.last_success.clone(),
        );
        registry.register("pass_in_progress", "1 while a pass runs", m.pass_in_progress.clone());
        registry.register(
            "config_reloads",
            "Config reloads on SIGHUP, by outcome (applied, rejected)",
            m.config_reloads.clone(),
        );
        registry.register(
            "calendar_feed_refreshes",
            "Calendar feed refreshes, by calendar and result (changed, same, failed)",
            m.feed_refreshes.clone(),
        );
        registry.register(
            "calendar_feed_loaded",
            "1 when a calendar feed has a good copy in use, 0 when it has never loaded",
            m.feed_loaded.clone(),
        );
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Records one pass's report.
    pub fn record(&self, r: &PassReport, seconds: f64, (hours_saved, cost_saved): (f64, f64)) {
        let ok = r.summary.scopes > r.summary.scopes_failed;
        let outcome = if r.has_failures() { "partial" } else { "ok" };
        self.passes.get_or_create(&KindLabel { kind: outcome.into() }).inc();
        self.pass_seconds.observe(seconds);
        if ok {
            self.last_success.set(r.now.timestamp());
        }
        self.resources.clear();
        let mut managed: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
        for sc in &r.scopes {
            for (k, n) in &sc.managed {
                *managed.entry(k.as_str()).or_default() += *n as i64;
            }
        }
        for (k, n) in managed {
            let (kind, state) = k.split_once('/').unwrap_or((k, ""));
            self.resources
                .get_or_create(&ResourceLabels {
                    kind: kind.into(),
                    state: state.into(),
                })
                .set(n);
        }
        for kind in crate::kind::ResourceType::ALL {
            let violations = r.violations.iter().filter(|v| v.resource_type == kind).count();
            self.resources
                .get_or_create(&ResourceLabels {
                    kind: kind.as_str().into(),
                    state: "violation".into(),
                })
                .set(violations as i64);
        }
        for c in r.changes.iter().filter(|c| c.status == ChangeStatus::Applied) {
            self.actions
                .get_or_create(&KindLabel {
                    kind: c.change.kind().into(),
                })
                .inc();
        }
        let failed = r.changes.iter().filter(|c| c.status == ChangeStatus::Failed).count();
        for (kind, n) in [
            ("scope", r.summary.scopes_failed),
            ("change", failed),
            ("resource", r.summary.errors),
        ] {
            if n > 0 {
                self.errors
                    .get_or_create(&KindLabel { kind: kind.into() })
                    .inc_by(n as u64);
            }
        }
        self.violations.set(r.summary.violations as i64);
        let repaired = r
            .policy
            .as_ref()
            .map(|p| match p {
                crate::policy::sync::Repair::Done(r) => r
                    .changes
                    .iter()
                    .filter(|c| c.status == crate::policy::sync::PolicyChangeStatus::Applied)
                    .count(),
                crate::policy::sync::Repair::Failed { .. } => 0,
            })
            .unwrap_or(0);
        self.drift_repaired.inc_by(repaired as u64);
        if hours_saved > 0.0 {
            self.instance_hours_saved.inc_by(hours_saved);
        }
        if cost_saved > 0.0 {
            self.cost_saved.inc_by(cost_saved);
        }
    }

    /// Adds SDK call counts (a delta since the last record).
    pub fn record_calls(&self, calls: &crate::aws::CallCounts) {
        for ((service, operation, outcome), n) in calls {
            let service: String = service
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_lowercase();
            self.api_calls
                .get_or_create(&CallLabels {
                    service,
                    operation: operation.clone(),
                    outcome: (*outcome).into(),
                })
                .inc_by(*n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_names_every_series() {
        let m = Metrics::new();
        let mut r = PassReport::new(crate::report::Mode::Reconcile, "2026-11-25T00:00:00Z".parse().unwrap());
        r.finish();
        m.record(&r, 1.5, (2.0, 0.5));
        m.record_calls(
            &[(
                (
                    "Auto Scaling".to_string(),
                    "DescribeAutoScalingGroups".to_string(),
                    "ok",
                ),
                3,
            )]
            .into(),
        );
        let text = m.encode();
        for series in [
            "offhours_passes_total",
            "offhours_pass_duration_seconds_bucket",
            "offhours_api_calls_total{service=\"autoscaling\",operation=\"DescribeAutoScalingGroups\",outcome=\"ok\"} 3",
            "offhours_policy_violations",
            "offhours_instance_hours_saved_total 2.0",
            "offhours_estimated_cost_saved_total 0.5",
        ] {
            assert!(text.contains(series), "{series} missing from\n{text}");
        }
    }
}

#[cfg(test)]
mod savings_tests {
    use super::*;
    use crate::report::{Change, ChangeReport, InstanceChange};

    #[test]
    fn applied_stops_are_credited_with_their_hours_off_at_their_price() {
        let mut r = PassReport::new(crate::report::Mode::Reconcile, "2026-11-27T11:00:00Z".parse().unwrap());
        let stop = |ty: &str, hours: f64, status| ChangeReport {
            account: "1".into(),
            region: "r".into(),
            resource_type: crate::kind::ResourceType::Instance,
            resource_id: "i".into(),
            change: Change::Instance(InstanceChange::StopInstance),
            reason: String::new(),
            status,
            error: None,
            estimated_hours_off: Some(hours),
            instance_type: Some(ty.into()),
        };
        r.changes.push(stop("t3.micro", 60.0, ChangeStatus::Applied));
        r.changes.push(stop("m5.large", 12.0, ChangeStatus::Applied));
        r.changes.push(stop("m5.large", 12.0, ChangeStatus::Failed));
        let prices = [("t3.micro".to_string(), 0.01), ("*".to_string(), 0.1)].into();
        let (hours, cost) = savings(&r, &prices);
        assert_eq!(hours, 72.0);
        assert!((cost - (0.6 + 1.2)).abs() < 1e-9, "{cost}");
    }

    /// A database stopped at Wednesday 20:01 in Seoul is off until Thursday 08:00 (719
    /// minutes, counted by hand), credited at its DB instance class's price.
    #[tokio::test]
    async fn a_stopped_database_is_credited_at_its_class_price() {
        use crate::cloud::fake::FakeCloud;
        use crate::controller::{PassOptions, pass};
        use crate::model::{Database, DbKind, Scope};
        let cloud = FakeCloud::default();
        let scope = Scope {
            account: "111111111111".into(),
            region: "ap-northeast-2".into(),
        };
        let db = Database {
            id: "dev".into(),
            arn: "arn:aws:rds:ap-northeast-2:111111111111:db:dev".into(),
            status: "available".into(),
            engine: "postgres".into(),
            class: Some("db.t3.micro".into()),
            created: Some(crate::fixtures::at("2026-11-01T00:00:00Z")),
            tags: [("Schedule".to_string(), "office-hours".to_string())].into(),
            ..Default::default()
        };
        cloud.add_database(&scope, DbKind::Instance, db);
        let opts = PassOptions {
            now: crate::fixtures::at("2026-11-25T11:01:00Z"),
            apply: true,
        };
        let r = pass(&crate::fixtures::config(), &cloud, opts).await;
        let prices = [("db.t3.micro".to_string(), 0.018), ("t3.micro".to_string(), 1.0)].into();
        let (hours, cost) = savings(&r, &prices);
        assert!((hours - 719.0 / 60.0).abs() < 1e-9, "{hours}\n{}", r.to_text());
        assert!((cost - 719.0 / 60.0 * 0.018).abs() < 1e-9, "{cost}");
        assert_eq!(
            cloud.database(&scope, DbKind::Instance, "dev").unwrap().status,
            "stopped"
        );
    }
}
