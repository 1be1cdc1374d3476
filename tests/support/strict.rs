//! The strict layer: documented AWS rules that moto does not enforce, applied by the test
//! proxy ([`super::faults::Proxy`]) to the requests it forwards to moto. Every moto suite
//! runs through it ([`super::moto::Moto::start`] puts a proxy with it in front of moto), so
//! a test fails where AWS would refuse or misbehave, not only where moto does.
//!
//! Each rule cites its source and counts its firings ([`Strict::fired`]); `tests/strict_moto.rs`
//! shows each one firing through the official SDK.
//!
//! Time: rules that depend on the time (a `StartTime` in the past, an action's next firing)
//! use [`Strict::set_now`] when set (tests run offhours with `--now`; the harness sets the
//! same moment here), else the wall clock.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::Full;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::{Response, StatusCode};

/// One parsed request, as the proxy saw it.
pub struct Call<'a> {
    /// SigV4 signing name: `autoscaling`, `ec2`, `organizations`, `sqs`, ...
    pub service: &'a str,
    /// The operation, e.g. `BatchPutScheduledUpdateGroupAction`.
    pub action: String,
    /// Query-protocol parameters (empty for JSON protocols).
    pub params: Vec<(String, String)>,
    /// JSON-protocol body (Null for query protocols).
    pub json: serde_json::Value,
}

impl Call<'_> {
    /// Reads a request's operation and parameters.
    pub fn parse<'a>(service: &'a str, headers: &HeaderMap, body: &[u8]) -> Call<'a> {
        if let Some(target) = headers.get("x-amz-target").and_then(|v| v.to_str().ok()) {
            return Call {
                service,
                action: target.rsplit('.').next().unwrap_or_default().to_string(),
                params: Vec::new(),
                json: serde_json::from_slice(body).unwrap_or(serde_json::Value::Null),
            };
        }
        let params: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
        let action = params
            .iter()
            .find(|(k, _)| k == "Action")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        Call {
            service,
            action,
            params,
            json: serde_json::Value::Null,
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    /// Values of `Prefix.1`, `Prefix.2`, ... (EC2 lists).
    fn list(&self, prefix: &str) -> Vec<String> {
        let mut v: Vec<(u32, String)> = self
            .params
            .iter()
            .filter_map(|(k, v)| {
                let n = k.strip_prefix(prefix)?.strip_prefix('.')?.parse().ok()?;
                Some((n, v.clone()))
            })
            .collect();
        v.sort();
        v.into_iter().map(|x| x.1).collect()
    }

    /// Members of a query list: `Prefix.member.N.Field` -> N -> Field -> value.
    fn members(&self, prefix: &str) -> BTreeMap<u32, BTreeMap<String, String>> {
        let mut out: BTreeMap<u32, BTreeMap<String, String>> = BTreeMap::new();
        for (k, v) in &self.params {
            let Some(rest) = k.strip_prefix(prefix).and_then(|r| r.strip_prefix(".member.")) else {
                continue;
            };
            let Some((n, field)) = rest.split_once('.') else {
                continue;
            };
            if let Ok(n) = n.parse() {
                out.entry(n).or_default().insert(field.to_string(), v.clone());
            }
        }
        out
    }
}

/// What the strict layer does with a request.
pub enum Verdict {
    /// Forward it (with this body instead, if given); `after` may rewrite the answer.
    Forward(Option<Bytes>, After),
    /// Answer it without reaching moto.
    Respond(Response<Full<Bytes>>),
}

/// What to do to moto's answer.
#[derive(Default)]
pub enum After {
    #[default]
    Nothing,
    /// DescribeScheduledActions: return `max` members from `offset`.
    Page { offset: usize, max: usize },
    /// BatchPutScheduledUpdateGroupAction: add these failures (name, code, message).
    AddFailures(Vec<(String, String, String)>),
    /// StartInstances: these ids were "started" without reaching moto (pending).
    AddStarted(Vec<String>),
    /// DescribeInstances: show the KMS fallback's state reason.
    StateReasons,
    /// ListRoots: show pending policy types.
    PendingTypes,
    /// EnablePolicyType: once moto has enabled this type, it is pending for a while.
    Enabled(String),
}

/// Sends a request to moto with the caller's credentials (moto does not check signatures):
/// (`X-Amz-Target` for JSON protocols, body) -> (status, body).
pub type Upstream<'a> =
    &'a (dyn Fn(Option<String>, Bytes) -> futures::future::BoxFuture<'static, Option<(StatusCode, Bytes)>> + Sync);

/// The rules' state.
#[derive(Default)]
pub struct Strict {
    now: Mutex<Option<DateTime<Utc>>>,
    kms_denied: Mutex<BTreeSet<String>>,
    kms_attempted: Mutex<BTreeSet<String>>,
    /// Instances whose failed start DescribeInstances still shows as pending (once).
    kms_pending: Mutex<BTreeSet<String>>,
    unauthorized: Mutex<BTreeSet<String>>,
    no_hibernate: Mutex<BTreeSet<String>>,
    pending: Mutex<BTreeMap<String, Instant>>,
    pending_for: Mutex<Option<Duration>>,
    fired: Mutex<BTreeMap<&'static str, u64>>,
}

/// How long EnablePolicyType leaves a type PENDING_ENABLE unless set otherwise.
const PENDING_FOR: Duration = Duration::from_millis(1500);

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
    r.headers_mut()
        .insert("x-amzn-requestid", HeaderValue::from_static("00000000-strict-layer"));
    r
}

fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

/// An Auto Scaling (query protocol) error.
fn asg_error(code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(
        StatusCode::BAD_REQUEST,
        "text/xml",
        format!(
            "<ErrorResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\"><Error><Type>Sender</Type>\
             <Code>{code}</Code><Message>{}</Message></Error><RequestId>00000000-strict-layer</RequestId></ErrorResponse>",
            escape(message)
        ),
    )
}

/// An EC2 error.
fn ec2_error(status: StatusCode, code: &str, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        "text/xml;charset=UTF-8",
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
             <Message>{}</Message></Error></Errors><RequestID>00000000-strict-layer</RequestID></Response>",
            escape(message)
        ),
    )
}

/// An Organizations (JSON 1.1) error.
fn org_error(code: &str, message: &str) -> Response<Full<Bytes>> {
    let mut r = reply(
        StatusCode::BAD_REQUEST,
        "application/x-amz-json-1.1",
        serde_json::json!({ "__type": code, "Message": message }).to_string(),
    );
    r.headers_mut()
        .insert("x-amzn-errortype", HeaderValue::from_str(code).unwrap());
    r
}

/// The raw XML of each `<tag>...</tag>` element (not nested in one another).
pub fn elements<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let Some(j) = rest[i..].find(&close) else { break };
        out.push(&rest[i..i + j + close.len()]);
        rest = &rest[i + j + close.len()..];
    }
    out
}

/// The unescaped text of the first `<tag>` in `xml`.
pub fn field(xml: &str, tag: &str) -> Option<String> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let i = xml.find(&open)? + open.len();
    let j = xml[i..].find(&close)?;
    quick_xml::escape::unescape(&xml[i..i + j]).ok().map(|s| s.into_owned())
}

fn instant(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.with_timezone(&Utc))
}

/// The first firing of a 5-field Unix cron in `zone` strictly after `after` (both day
/// fields restricted: either matches, as in Unix cron). The `cron` crate does the matching.
pub fn next_firing(recurrence: &str, zone: Option<&str>, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    const DAYS: [&str; 8] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"];
    let tz: chrono_tz::Tz = zone.unwrap_or("UTC").parse().ok()?;
    let f: Vec<&str> = recurrence.split_whitespace().collect();
    if f.len() != 5 {
        return None;
    }
    let dow = |field: &str| -> String {
        let mut out = String::new();
        let mut num = String::new();
        for c in field.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            if !num.is_empty() {
                let n: usize = num.parse().unwrap_or(99);
                out.push_str(DAYS.get(n).copied().unwrap_or("BAD"));
                num.clear();
            }
            if c != '\0' {
                out.push(c);
            }
        }
        out
    };
    let first = |dom: &str, dw: &str| {
        cron::Schedule::from_str(&format!("0 {} {} {} {} {}", f[0], f[1], dom, f[3], dow(dw)))
            .ok()?
            .after(&after.with_timezone(&tz))
            .next()
            .map(|t| t.with_timezone(&Utc))
    };
    if f[2] != "*" && f[4] != "*" {
        return first(f[2], "*").into_iter().chain(first("*", f[4])).min();
    }
    first(f[2], f[4])
}

/// The next firing of a `M H * * DOW` recurrence (numbers, lists and ranges), found by
/// walking the minutes of the next eight days in the zone: an evaluator independent of
/// the `cron` crate and of offhours' own. `None` for other forms.
fn brute_firing(recurrence: &str, zone: Option<&str>, after: DateTime<Utc>) -> Option<Option<DateTime<Utc>>> {
    use chrono::{Datelike, Timelike};
    let f: Vec<&str> = recurrence.split_whitespace().collect();
    let [m, h, "*", "*", dow] = f.as_slice() else {
        return None;
    };
    let (minute, hour): (u32, u32) = (m.parse().ok()?, h.parse().ok()?);
    let mut days = [false; 7];
    for part in dow.split(',') {
        match part.split_once('-') {
            _ if part == "*" => days = [true; 7],
            Some((x, y)) => (x.parse::<usize>().ok()?..=y.parse::<usize>().ok()?).for_each(|d| days[d % 7] = true),
            None => days[part.parse::<usize>().ok()? % 7] = true,
        }
    }
    let tz: chrono_tz::Tz = zone.unwrap_or("UTC").parse().ok()?;
    let mut t = after.with_second(0)?.with_nanosecond(0)?;
    for _ in 0..(8 * 24 * 60) {
        t += chrono::Duration::minutes(1);
        let l = t.with_timezone(&tz);
        if l.minute() == minute && l.hour() == hour && days[l.weekday().num_days_from_sunday() as usize] {
            return Some(Some(t));
        }
    }
    Some(None)
}

/// An action's time value: its `StartTime` if ahead, else its recurrence's next firing
/// (none at or past its `EndTime`: "If a recurrence time exactly matches the end time,
/// Amazon EC2 Auto Scaling will not perform the scheduled action at the end time", User
/// Guide, Scheduled scaling, Recurring schedules).
pub fn time_value(
    start: Option<DateTime<Utc>>,
    recurrence: Option<&str>,
    zone: Option<&str>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if let Some(s) = start.filter(|s| *s > now) {
        return Some(s);
    }
    let r = recurrence?;
    let t = match brute_firing(r, zone, now) {
        Some(t) => t?,
        None => next_firing(r, zone, now)?,
    };
    end.is_none_or(|e| t < e).then_some(t)
}

/// Old alias names of zones that are links, not canonical zones, in the system's tzdata
/// (Debian's `tzdata` package: `L target link` lines of /usr/share/zoneinfo/tzdata.zi):
/// the links without a region (`UTC`, `ROK`, `GB`) or under the pre-1993 regions (`US/`,
/// `Canada/`, `Mexico/`, `Brazil/`, `Chile/`, `Etc/`). An oracle independent of offhours'
/// own table. (Names renamed or merged in recent tzdata are left alone: AWS's zone data
/// may predate the new names; see scripts/gen-tzlinks.py.)
pub fn zone_aliases() -> &'static BTreeSet<String> {
    static ALIASES: std::sync::OnceLock<BTreeSet<String>> = std::sync::OnceLock::new();
    ALIASES.get_or_init(read_zone_aliases)
}

fn read_zone_aliases() -> BTreeSet<String> {
    let text = std::fs::read_to_string("/usr/share/zoneinfo/tzdata.zi")
        .expect("/usr/share/zoneinfo/tzdata.zi (Debian's tzdata package) is needed by the strict layer");
    let legacy = |n: &str| {
        !n.contains('/')
            || ["US/", "Canada/", "Mexico/", "Brazil/", "Chile/", "Etc/"]
                .iter()
                .any(|p| n.starts_with(p))
    };
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"L") && f.len() >= 3 && legacy(f[2])).then(|| f[2].to_string())
        })
        .collect()
}

impl Strict {
    /// The moment the time-dependent rules use (the wall clock unless set).
    pub fn now(&self) -> DateTime<Utc> {
        self.now.lock().unwrap().unwrap_or_else(Utc::now)
    }

    /// Sets (or, with `None`, unsets) the moment the rules use.
    pub fn set_now(&self, now: Option<DateTime<Utc>>) {
        *self.now.lock().unwrap() = now;
    }

    /// Marks an instance whose EBS volume uses a customer-managed KMS key the caller cannot
    /// use: a start answers success, then the instance falls back to stopped.
    pub fn deny_kms(&self, instance: &str) {
        self.kms_denied.lock().unwrap().insert(instance.into());
    }

    /// Marks an instance the caller may not act on (StopInstances, StartInstances,
    /// CreateTags and DeleteTags naming it fail whole).
    pub fn unauthorized(&self, instance: &str) {
        self.unauthorized.lock().unwrap().insert(instance.into());
    }

    /// Marks an instance that cannot hibernate now.
    pub fn no_hibernate(&self, instance: &str) {
        self.no_hibernate.lock().unwrap().insert(instance.into());
    }

    /// How long EnablePolicyType leaves a type PENDING_ENABLE (default 1.5 s).
    pub fn pending_for(&self, d: Duration) {
        *self.pending_for.lock().unwrap() = Some(d);
    }

    /// How often each rule fired, by name.
    pub fn fired(&self) -> BTreeMap<&'static str, u64> {
        self.fired.lock().unwrap().clone()
    }

    fn fire(&self, rule: &'static str) {
        *self.fired.lock().unwrap().entry(rule).or_default() += 1;
    }

    /// Decides a request before it reaches moto.
    pub async fn before(&self, call: &Call<'_>, upstream: Upstream<'_>) -> Verdict {
        let forward = Verdict::Forward(None, After::Nothing);
        match (call.service, call.action.as_str()) {
            ("autoscaling", "PutScheduledUpdateGroupAction") => {
                let item: BTreeMap<String, String> = call.params.iter().cloned().collect();
                let group = call.get("AutoScalingGroupName").unwrap_or_default();
                match self.check_action(group, &item, &[], upstream).await {
                    Some((code, message)) => Verdict::Respond(asg_error(&code, &message)),
                    None => forward,
                }
            }
            ("autoscaling", "BatchPutScheduledUpdateGroupAction") => self.batch_put(call, upstream).await,
            ("autoscaling", "DescribeScheduledActions") => self.page_actions(call),
            ("autoscaling", "CreateOrUpdateTags") => self.asg_tag_limit(call, upstream).await,
            ("ec2", "StartInstances" | "StopInstances" | "CreateTags" | "DeleteTags") => {
                self.ec2_write(call, upstream).await
            }
            ("ec2", "DescribeInstances") => Verdict::Forward(None, After::StateReasons),
            ("organizations", "EnablePolicyType") => self.enable_policy_type(call),
            ("organizations", "ListRoots") => Verdict::Forward(None, After::PendingTypes),
            ("organizations", "AttachPolicy") => self.attach_policy(call, upstream).await,
            ("sqs", "ReceiveMessage") => {
                // "Short polling occurs when the WaitTimeSeconds parameter of a ReceiveMessage
                // request is set to 0 ... Amazon SQS samples a subset of its servers ... you might
                // not receive any messages" (Amazon SQS Developer Guide, "Amazon SQS short and
                // long polling"). The strict layer takes the worst case: a short poll is empty.
                let wait = call
                    .json
                    .get("WaitTimeSeconds")
                    .and_then(serde_json::Value::as_i64)
                    .unwrap_or(0);
                if wait == 0 {
                    self.fire("sqs.short-poll-empty");
                    return Verdict::Respond(reply(StatusCode::OK, "application/x-amz-json-1.0", "{}".into()));
                }
                forward
            }
            _ => forward,
        }
    }

    /// Checks one scheduled action against the group's others (and `earlier` ones of the same
    /// batch): `Some((code, message))` if AWS would refuse it.
    async fn check_action(
        &self,
        group: &str,
        item: &BTreeMap<String, String>,
        earlier: &[(String, Option<DateTime<Utc>>)],
        upstream: Upstream<'_>,
    ) -> Option<(String, String)> {
        let now = self.now();
        let name = item.get("ScheduledActionName").cloned().unwrap_or_default();
        let start = item.get("StartTime").and_then(|s| instant(s));
        let end = item.get("EndTime").and_then(|s| instant(s));
        let recurrence = item.get("Recurrence").map(String::as_str);
        let zone = item.get("TimeZone").map(String::as_str);
        // "If you try to schedule your action in the past, Amazon EC2 Auto Scaling returns an
        // error message" (API Reference, PutScheduledUpdateGroupAction, StartTime).
        if start.is_some_and(|s| s <= now) {
            self.fire("autoscaling.start-time-in-past");
            return Some((
                "ValidationError".into(),
                format!("Given start time is in the past: {} (now {now})", item["StartTime"]),
            ));
        }
        // "TimeZone: Specifies the time zone for a cron expression ... Valid values are the
        // canonical names of the IANA time zones, derived from the IANA Time Zone Database
        // (such as Etc/GMT+9 or Pacific/Tahiti)" (API Reference, PutScheduledUpdateGroupAction).
        if let Some(z) = zone
            && (z.parse::<chrono_tz::Tz>().is_err() || zone_aliases().contains(z))
        {
            self.fire("autoscaling.time-zone-not-canonical");
            return Some((
                "ValidationError".into(),
                format!("Time zone `{z}` is not a canonical IANA time zone name"),
            ));
        }
        let mut others: Vec<(String, Option<DateTime<Utc>>)> = earlier.to_vec();
        for (n, o) in self.group_actions(group, upstream).await {
            if !earlier.iter().any(|(e, _)| *e == n) {
                others.push((n, o));
            }
        }
        // "Scheduled actions per Auto Scaling group: 125" (Amazon EC2 Auto Scaling User
        // Guide, Quotas); over it, LimitExceeded (LimitExceededFault in the service model).
        if !others.iter().any(|(n, _)| *n == name) && others.len() >= 125 {
            self.fire("autoscaling.actions-quota");
            return Some((
                "LimitExceeded".into(),
                format!("Scheduled action `{name}` would be the 126th of group {group} (quota 125)"),
            ));
        }
        // A put at the time of another action of the group is refused: "...returns an error
        // indicating that a scheduled action with this scheduled start time already exists"
        // (Amazon EC2 Auto Scaling User Guide, Scheduled scaling, Limitations), AlreadyExists
        // (AlreadyExistsFault in the service model for both puts). The time of a recurring
        // action without StartTime is its next firing (the guide's describe-scheduled-actions
        // example shows it as StartTime). The guide also allows identical crons in an
        // undefined order; the stricter reading is modelled, which offhours must meet anyway.
        let t = time_value(start, recurrence, zone, end, now)?;
        if let Some((other, _)) = others.iter().find(|(n, o)| *n != name && *o == Some(t)) {
            self.fire("autoscaling.unique-time");
            return Some((
                "AlreadyExists".into(),
                format!(
                    "Scheduled action with this scheduled start time already exists (`{name}` at {t}: `{other}` in group {group})"
                ),
            ));
        }
        None
    }

    /// The group's actions and their time values, read from moto.
    async fn group_actions(&self, group: &str, upstream: Upstream<'_>) -> Vec<(String, Option<DateTime<Utc>>)> {
        let now = self.now();
        let body = format!(
            "Action=DescribeScheduledActions&Version=2011-01-01&AutoScalingGroupName={}",
            form_urlencoded::byte_serialize(group.as_bytes()).collect::<String>()
        );
        let Some((_, xml)) = upstream(None, Bytes::from(body)).await else {
            return Vec::new();
        };
        let xml = String::from_utf8_lossy(&xml).into_owned();
        elements(&xml, "member")
            .into_iter()
            .map(|m| {
                let t = time_value(
                    field(m, "StartTime").and_then(|s| instant(&s)),
                    field(m, "Recurrence").as_deref(),
                    field(m, "TimeZone").as_deref(),
                    field(m, "EndTime").and_then(|s| instant(&s)),
                    now,
                );
                (field(m, "ScheduledActionName").unwrap_or_default(), t)
            })
            .collect()
    }

    async fn batch_put(&self, call: &Call<'_>, upstream: Upstream<'_>) -> Verdict {
        let group = call.get("AutoScalingGroupName").unwrap_or_default().to_string();
        let items = call.members("ScheduledUpdateGroupActions");
        let now = self.now();
        let mut accepted: Vec<BTreeMap<String, String>> = Vec::new();
        let mut earlier: Vec<(String, Option<DateTime<Utc>>)> = Vec::new();
        let mut failed = Vec::new();
        for item in items.values() {
            let name = item.get("ScheduledActionName").cloned().unwrap_or_default();
            match self.check_action(&group, item, &earlier, upstream).await {
                // A batch reports each refused action in FailedScheduledUpdateGroupActions
                // (API Reference, BatchPutScheduledUpdateGroupAction, Response Elements).
                Some((code, message)) => failed.push((name, code, message)),
                None => {
                    let t = time_value(
                        item.get("StartTime").and_then(|s| instant(s)),
                        item.get("Recurrence").map(String::as_str),
                        item.get("TimeZone").map(String::as_str),
                        item.get("EndTime").and_then(|s| instant(s)),
                        now,
                    );
                    earlier.retain(|(n, _)| *n != name);
                    earlier.push((name, t));
                    accepted.push(item.clone());
                }
            }
        }
        if failed.is_empty() {
            return Verdict::Forward(None, After::Nothing);
        }
        if accepted.is_empty() {
            let members = failure_members(&failed);
            return Verdict::Respond(reply(
                StatusCode::OK,
                "text/xml",
                format!(
                    "<BatchPutScheduledUpdateGroupActionResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
                     <BatchPutScheduledUpdateGroupActionResult><FailedScheduledUpdateGroupActions>{members}</FailedScheduledUpdateGroupActions>\
                     </BatchPutScheduledUpdateGroupActionResult><ResponseMetadata><RequestId>00000000-strict-layer</RequestId></ResponseMetadata>\
                     </BatchPutScheduledUpdateGroupActionResponse>"
                ),
            ));
        }
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &call.params {
            if !k.starts_with("ScheduledUpdateGroupActions.") {
                body.append_pair(k, v);
            }
        }
        for (i, item) in accepted.iter().enumerate() {
            for (f, v) in item {
                body.append_pair(&format!("ScheduledUpdateGroupActions.member.{}.{f}", i + 1), v);
            }
        }
        Verdict::Forward(Some(Bytes::from(body.finish())), After::AddFailures(failed))
    }

    /// DescribeScheduledActions: "The maximum number of items to return with this call. The
    /// default value is 50 and the maximum value is 100" (API Reference,
    /// DescribeScheduledActions, MaxRecords). moto returns every action in one page.
    fn page_actions(&self, call: &Call<'_>) -> Verdict {
        let max = call
            .get("MaxRecords")
            .and_then(|m| m.parse::<usize>().ok())
            .unwrap_or(50);
        if !(1..=100).contains(&max) {
            self.fire("autoscaling.max-records");
            return Verdict::Respond(asg_error(
                "ValidationError",
                &format!("MaxRecords {max} is out of range: 1 to 100"),
            ));
        }
        let offset = call
            .get("NextToken")
            .and_then(|t| t.strip_prefix("strict-"))
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        let mut body = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &call.params {
            if k != "MaxRecords" && k != "NextToken" {
                body.append_pair(k, v);
            }
        }
        Verdict::Forward(Some(Bytes::from(body.finish())), After::Page { offset, max })
    }

    async fn asg_tag_limit(&self, call: &Call<'_>, upstream: Upstream<'_>) -> Verdict {
        // "The maximum number of tags per Auto Scaling group is 50" (Amazon EC2 Auto Scaling
        // User Guide, Tag Auto Scaling groups and instances, Tag restrictions).
        let mut by_group: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for m in call.members("Tags").values() {
            if let (Some(g), Some(k)) = (m.get("ResourceId"), m.get("Key")) {
                by_group.entry(g.clone()).or_default().insert(k.clone());
            }
        }
        for (group, keys) in by_group {
            let body = format!(
                "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1={}",
                form_urlencoded::byte_serialize(group.as_bytes()).collect::<String>()
            );
            let Some((_, xml)) = upstream(None, Bytes::from(body)).await else {
                continue;
            };
            let xml = String::from_utf8_lossy(&xml).into_owned();
            // A call naming a group that does not exist is refused whole, nothing written.
            // AWS documents no partial success for CreateOrUpdateTags (API Reference: its
            // response has no elements, only errors) and no error code for an unknown group;
            // the layer takes the stricter reading, whole refusal with a ValidationError (as
            // Auto Scaling answers other calls naming an unknown group), which is what
            // offhours must survive without holding back the other groups of the call.
            // moto writes the tags before the unknown group and then fails with a 500.
            if !xml.contains("<AutoScalingGroupName>") {
                self.fire("autoscaling.tag-unknown-group");
                return Verdict::Respond(asg_error(
                    "ValidationError",
                    &format!("AutoScalingGroup name not found - {group}"),
                ));
            }
            let tags = xml
                .find("<Tags>")
                .map(|i| &xml[i..xml[i..].find("</Tags>").map_or(xml.len(), |j| i + j)])
                .unwrap_or("");
            let mut all: BTreeSet<String> = elements(tags, "member")
                .into_iter()
                .filter_map(|m| field(m, "Key"))
                .collect();
            all.extend(keys);
            let user = all.iter().filter(|k| !k.starts_with("aws:")).count();
            if user > 50 {
                self.fire("autoscaling.tag-limit");
                return Verdict::Respond(asg_error(
                    "LimitExceeded",
                    &format!("The group {group} would have {user} tags; the limit is 50"),
                ));
            }
        }
        Verdict::Forward(None, After::Nothing)
    }

    async fn ec2_write(&self, call: &Call<'_>, upstream: Upstream<'_>) -> Verdict {
        let ids = if call.action == "CreateTags" || call.action == "DeleteTags" {
            call.list("ResourceId")
        } else {
            call.list("InstanceId")
        };
        // EC2 authorizes every resource a call names; one the caller may not act on fails
        // the whole call: "UnauthorizedOperation: You are not authorized to perform this
        // operation" (Amazon EC2 Developer Guide, Error codes for the Amazon EC2 API, Common client error codes).
        if let Some(id) = ids.iter().find(|i| self.unauthorized.lock().unwrap().contains(*i)) {
            self.fire("ec2.unauthorized-all-or-nothing");
            return Verdict::Respond(ec2_error(
                StatusCode::FORBIDDEN,
                "UnauthorizedOperation",
                &format!("You are not authorized to perform this operation. (resource {id})"),
            ));
        }
        match call.action.as_str() {
            "StopInstances" if call.get("Hibernate") == Some("true") => {
                // "UnsupportedHibernationConfiguration: The instance could not be hibernated"
                // for an instance that is not enabled or not ready for hibernation (Amazon EC2 Developer
                // Guide, Error codes for the Amazon EC2 API, client error codes for specific actions).
                let refused: Vec<&String> = ids
                    .iter()
                    .filter(|i| self.no_hibernate.lock().unwrap().contains(*i))
                    .collect();
                if let Some(id) = refused.first() {
                    self.fire("ec2.hibernation-refused");
                    return Verdict::Respond(ec2_error(
                        StatusCode::BAD_REQUEST,
                        "UnsupportedHibernationConfiguration",
                        &format!("The instance {id} cannot be hibernated now"),
                    ));
                }
                Verdict::Forward(None, After::Nothing)
            }
            "StartInstances" => {
                // An instance whose EBS volume is encrypted with a customer managed key the
                // caller may not use (no kms:CreateGrant): StartInstances succeeds, then the
                // instance goes from pending back to stopped with the state reason
                // "Client.InternalError: Client error on launch" (Amazon EC2 User Guide,
                // Troubleshoot instance launch issues / Amazon EBS encryption, "Permissions
                // for IAM users": the user starting the instance needs kms:CreateGrant).
                let denied: Vec<String> = ids
                    .iter()
                    .filter(|i| self.kms_denied.lock().unwrap().contains(*i))
                    .cloned()
                    .collect();
                if denied.is_empty() {
                    return Verdict::Forward(None, After::Nothing);
                }
                self.fire("ec2.kms-start-falls-back");
                self.kms_attempted.lock().unwrap().extend(denied.iter().cloned());
                self.kms_pending.lock().unwrap().extend(denied.iter().cloned());
                let rest: Vec<&String> = ids.iter().filter(|i| !denied.contains(i)).collect();
                if rest.is_empty() {
                    return Verdict::Respond(reply(StatusCode::OK, "text/xml;charset=UTF-8", started(&denied)));
                }
                let mut body = form_urlencoded::Serializer::new(String::new());
                for (k, v) in &call.params {
                    if !k.starts_with("InstanceId.") {
                        body.append_pair(k, v);
                    }
                }
                for (i, id) in rest.iter().enumerate() {
                    body.append_pair(&format!("InstanceId.{}", i + 1), id);
                }
                Verdict::Forward(Some(Bytes::from(body.finish())), After::AddStarted(denied))
            }
            "CreateTags" => {
                // "Maximum number of tags per resource: 50"; tags with the aws: prefix do
                // not count (Amazon EC2 User Guide, Tag your Amazon EC2 resources, Tag
                // restrictions). Over it: TagLimitExceeded (EC2 Developer Guide, Error codes for the Amazon EC2 API).
                let new: BTreeSet<String> = (1..)
                    .map_while(|n| call.get(&format!("Tag.{n}.Key")).map(String::from))
                    .collect();
                for id in &ids {
                    let body = format!(
                        "Action=DescribeTags&Version=2016-11-15&Filter.1.Name=resource-id&Filter.1.Value.1={id}&MaxResults=1000"
                    );
                    let Some((_, xml)) = upstream(None, Bytes::from(body)).await else {
                        continue;
                    };
                    let xml = String::from_utf8_lossy(&xml).into_owned();
                    let mut keys: BTreeSet<String> = elements(&xml, "item")
                        .into_iter()
                        .filter_map(|i| field(i, "key"))
                        .collect();
                    keys.extend(new.iter().cloned());
                    let user = keys.iter().filter(|k| !k.starts_with("aws:")).count();
                    if user > 50 {
                        self.fire("ec2.tag-limit");
                        return Verdict::Respond(ec2_error(
                            StatusCode::BAD_REQUEST,
                            "TagLimitExceeded",
                            &format!("The resource {id} would have {user} tags; the limit is 50"),
                        ));
                    }
                }
                Verdict::Forward(None, After::Nothing)
            }
            _ => Verdict::Forward(None, After::Nothing),
        }
    }

    fn pending_types(&self) -> BTreeSet<String> {
        let mut p = self.pending.lock().unwrap();
        p.retain(|_, until| *until > Instant::now());
        p.keys().cloned().collect()
    }

    fn enable_policy_type(&self, call: &Call<'_>) -> Verdict {
        // "EnablePolicyType ... This is an asynchronous request that AWS performs in the
        // background" and the type shows PENDING_ENABLE until done (AWS Organizations API
        // Reference, EnablePolicyType; PolicyTypeSummary.Status: ENABLED | PENDING_ENABLE |
        // PENDING_DISABLE).
        let kind = call.json.get("PolicyType").and_then(|v| v.as_str()).unwrap_or_default();
        if self.pending_types().contains(kind) {
            self.fire("organizations.enable-while-pending");
            return Verdict::Respond(org_error(
                "PolicyTypeAlreadyEnabledException",
                "The specified policy type is already being enabled in the specified root.",
            ));
        }
        Verdict::Forward(None, After::Enabled(kind.to_string()))
    }

    async fn attach_policy(&self, call: &Call<'_>, upstream: Upstream<'_>) -> Verdict {
        let pending = self.pending_types();
        if pending.is_empty() {
            return Verdict::Forward(None, After::Nothing);
        }
        let id = call.json.get("PolicyId").and_then(|v| v.as_str()).unwrap_or_default();
        let body = serde_json::json!({ "PolicyId": id }).to_string();
        let kind = upstream(
            Some("AWSOrganizationsV20161128.DescribePolicy".into()),
            Bytes::from(body),
        )
        .await
        .and_then(|(_, b)| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|v| {
            v.pointer("/Policy/PolicySummary/Type")
                .and_then(|t| t.as_str())
                .map(String::from)
        })
        .unwrap_or_default();
        if pending.contains(&kind) {
            // "PolicyTypeNotEnabledException: The specified policy type isn't currently
            // enabled in this root" (AWS Organizations API Reference, AttachPolicy, Errors).
            self.fire("organizations.attach-while-pending");
            return Verdict::Respond(org_error(
                "PolicyTypeNotEnabledException",
                "This operation can be performed only for enabled policy types.",
            ));
        }
        Verdict::Forward(None, After::Nothing)
    }

    /// Rewrites moto's answer.
    pub fn after(&self, after: &After, status: StatusCode, body: Bytes) -> Bytes {
        if !status.is_success() {
            return body;
        }
        if let After::Enabled(kind) = after {
            let d = self.pending_for.lock().unwrap().unwrap_or(PENDING_FOR);
            self.pending.lock().unwrap().insert(kind.clone(), Instant::now() + d);
            self.fire("organizations.pending-enable");
            return self.after(&After::PendingTypes, status, body);
        }
        let text = || String::from_utf8_lossy(&body).into_owned();
        match after {
            After::Nothing | After::Enabled(_) => body,
            After::Page { offset, max } => {
                let xml = text();
                let members = elements(&xml, "member");
                let page: String = members.iter().skip(*offset).take(*max).copied().collect();
                let next = if offset + max < members.len() {
                    format!("<NextToken>strict-{}</NextToken>", offset + max)
                } else {
                    String::new()
                };
                Bytes::from(format!(
                    "<DescribeScheduledActionsResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">\
                     <DescribeScheduledActionsResult><ScheduledUpdateGroupActions>{page}</ScheduledUpdateGroupActions>{next}\
                     </DescribeScheduledActionsResult><ResponseMetadata><RequestId>00000000-strict-layer</RequestId>\
                     </ResponseMetadata></DescribeScheduledActionsResponse>"
                ))
            }
            After::AddFailures(failed) => {
                let members = failure_members(failed);
                let xml = text()
                    .replace(
                        "<FailedScheduledUpdateGroupActions/>",
                        "<FailedScheduledUpdateGroupActions></FailedScheduledUpdateGroupActions>",
                    )
                    .replace(
                        "<FailedScheduledUpdateGroupActions>",
                        &format!("<FailedScheduledUpdateGroupActions>{members}"),
                    );
                Bytes::from(xml)
            }
            After::AddStarted(ids) => {
                let xml = text();
                Bytes::from(xml.replacen("<instancesSet>", &format!("<instancesSet>{}", started_items(ids)), 1))
            }
            After::StateReasons => {
                let attempted = self.kms_attempted.lock().unwrap().clone();
                if attempted.is_empty() {
                    return body;
                }
                // The first look at it after the start shows it pending; later ones, stopped.
                let pending = self.kms_pending.lock().unwrap().clone();
                let (xml, shown) = rewrite_state_reasons(&text(), &attempted, &pending);
                self.kms_pending.lock().unwrap().retain(|id| !shown.contains(id));
                Bytes::from(xml)
            }
            After::PendingTypes => {
                let pending = self.pending_types();
                if pending.is_empty() {
                    return body;
                }
                let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&body) else {
                    return body;
                };
                let fix = |types: &mut serde_json::Value| {
                    for t in types.as_array_mut().into_iter().flatten() {
                        if t.get("Type")
                            .and_then(|x| x.as_str())
                            .is_some_and(|x| pending.contains(x))
                        {
                            t["Status"] = "PENDING_ENABLE".into();
                        }
                    }
                };
                if let Some(roots) = v.get_mut("Roots").and_then(|r| r.as_array_mut()) {
                    for r in roots {
                        if let Some(t) = r.get_mut("PolicyTypes") {
                            fix(t);
                        }
                    }
                }
                if let Some(t) = v.pointer_mut("/Root/PolicyTypes") {
                    fix(t);
                }
                Bytes::from(v.to_string())
            }
        }
    }
}

/// The members of `FailedScheduledUpdateGroupActions`: (name, code, message).
fn failure_members(failed: &[(String, String, String)]) -> String {
    failed
        .iter()
        .map(|(n, c, m)| {
            format!(
                "<member><ScheduledActionName>{}</ScheduledActionName><ErrorCode>{}</ErrorCode><ErrorMessage>{}</ErrorMessage></member>",
                escape(n),
                escape(c),
                escape(m)
            )
        })
        .collect()
}

fn started_items(ids: &[String]) -> String {
    ids.iter()
        .map(|id| {
            format!(
                "<item><instanceId>{id}</instanceId><currentState><code>0</code><name>pending</name></currentState>\
                 <previousState><code>80</code><name>stopped</name></previousState></item>"
            )
        })
        .collect()
}

fn started(ids: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<StartInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">\
         <requestId>00000000-strict-layer</requestId><instancesSet>{}</instancesSet></StartInstancesResponse>",
        started_items(ids)
    )
}

/// In a DescribeInstances answer, shows each stopped instance of `pending` as pending (the
/// first look after its start), and gives each other stopped instance of `ids` the state
/// reason of a start that fell back for want of the KMS key.
fn rewrite_state_reasons(xml: &str, ids: &BTreeSet<String>, pending: &BTreeSet<String>) -> (String, BTreeSet<String>) {
    let mut shown = BTreeSet::new();
    let reason = "<stateReason><code>Client.InternalError</code><message>Client.InternalError: Client error on launch</message></stateReason>";
    let mut out = String::with_capacity(xml.len() + 256);
    let mut rest = xml;
    // Each instance sits in <instancesSet><item>...</item></instancesSet>; offhours' instances
    // carry no nested <instancesSet>, so the set's own items are found by depth.
    while let Some(i) = rest.find("<instancesSet>") {
        let start = i + "<instancesSet>".len();
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find("</instancesSet>").map(|j| start + j) else {
            rest = &rest[start..];
            break;
        };
        let set = &rest[start..end];
        for item in top_items(set) {
            let id = direct_child(item, "instanceId");
            let stopped = direct_child(item, "instanceState").is_some_and(|s| s.contains("<name>stopped</name>"));
            if let Some(id) = id.as_ref().filter(|id| pending.contains(*id) && stopped) {
                shown.insert(id.clone());
                out.push_str(&item.replacen(
                    "<instanceState><code>80</code><name>stopped</name></instanceState>",
                    "<instanceState><code>0</code><name>pending</name></instanceState>",
                    1,
                ));
            } else if id.is_some_and(|id| ids.contains(&id)) && stopped {
                let cleaned = match (item.find("<stateReason>"), item.find("</stateReason>")) {
                    (Some(a), Some(b)) => format!("{}{}", &item[..a], &item[b + "</stateReason>".len()..]),
                    _ => item.to_string(),
                };
                let at = cleaned.len() - "</item>".len();
                out.push_str(&cleaned[..at]);
                out.push_str(reason);
                out.push_str("</item>");
            } else {
                out.push_str(item);
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    (out, shown)
}

/// The top-level `<item>...</item>` elements of a set's content, nesting respected.
fn top_items(set: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut begin = 0;
    let mut i = 0;
    while i < set.len() {
        if set[i..].starts_with("<item>") {
            if depth == 0 {
                begin = i;
            }
            depth += 1;
            i += "<item>".len();
        } else if set[i..].starts_with("</item>") {
            depth -= 1;
            i += "</item>".len();
            if depth == 0 {
                out.push(&set[begin..i]);
            }
        } else {
            i += set[i..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out
}

/// The text of a child element of `item` that is not inside a nested set.
fn direct_child(item: &str, tag: &str) -> Option<String> {
    let inner = &item["<item>".len()..item.len() - "</item>".len()];
    let mut depth = 0i32;
    let mut i = 0;
    let open = format!("<{tag}>");
    while i < inner.len() {
        let s = &inner[i..];
        if depth == 0 && s.starts_with(&open) {
            return field(s, tag);
        }
        if s.starts_with("<item>") {
            depth += 1;
        } else if s.starts_with("</item>") {
            depth -= 1;
        }
        i += s.chars().next().map_or(1, char::len_utf8);
    }
    None
}
