//! Notifications: one Slack-compatible incoming-webhook message per pass, listing the
//! actions taken, errors and policy violations. The URL comes from an environment
//! variable or a file, never from plain config, and never appears in a log. A webhook
//! that fails is retried and reported; it never blocks a pass.
//!
//! Everything in a message that comes from a tag, a group's name or an AWS error is
//! escaped as Slack asks ("&", "<" and ">" as HTML entities), so that a group named
//! `<!channel>` cannot page a channel nor a tag value forge a link. The daemon posts a
//! standing error or violation once when it appears and once when it clears ([`Standing`]),
//! not on every pass.

use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};

use crate::config::Config;
use crate::report::{ChangeStatus, PassReport};

/// Attempts per message.
const ATTEMPTS: u32 = 3;
/// Lines listed per section before "and N more".
const MAX_LINES: usize = 15;

/// Why a webhook could not be delivered (never naming the URL).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// The URL source is misconfigured.
    #[error("webhook URL: {0}")]
    Url(String),
    /// Every attempt failed.
    #[error("webhook delivery failed after {ATTEMPTS} attempts: {0}")]
    Delivery(String),
}

/// The webhook URL, from the configured environment variable or file.
pub fn webhook_url(cfg: &Config) -> Result<Option<String>, NotifyError> {
    let n = &cfg.raw.notifications;
    if let Some(var) = &n.webhook_url_env
        && let Ok(v) = std::env::var(var)
        && !v.trim().is_empty()
    {
        return Ok(Some(v.trim().to_string()));
    }
    if let Some(file) = &n.webhook_url_file {
        let path = cfg.path.parent().unwrap_or(std::path::Path::new(".")).join(file);
        let v = std::fs::read_to_string(&path)
            .map_err(|e| NotifyError::Url(format!("cannot read {}: {e}", path.display())))?;
        return Ok(Some(v.trim().to_string()));
    }
    Ok(None)
}

/// Escapes text for a Slack message: "You shouldn't HTML entity-encode the entire text, as
/// only the following characters need to be encoded: & replaced with &amp;, < replaced with
/// &lt;, > replaced with &gt;" (Slack API, Formatting text for app surfaces, "Escaping
/// text"). Control characters other than none are dropped to a visible `\u{..}`.
#[must_use]
pub fn slack_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Errors and violations already posted, by what they concern, so that the daemon posts
/// each once when it appears and once when it clears.
#[derive(Debug, Default, Clone)]
pub struct Standing {
    posted: std::collections::BTreeMap<String, String>,
}

impl Standing {
    /// Splits this pass's lines (key -> text) into those not posted before, and those posted
    /// before that are gone now; remembers this pass's.
    fn update(&mut self, now: std::collections::BTreeMap<String, String>) -> (Vec<String>, Vec<String>) {
        let new = now
            .iter()
            .filter(|(k, _)| !self.posted.contains_key(*k))
            .map(|(_, v)| v.clone())
            .collect();
        let cleared = self
            .posted
            .iter()
            .filter(|(k, _)| !now.contains_key(*k))
            .map(|(_, v)| v.clone())
            .collect();
        self.posted = now;
        (new, cleared)
    }
}

fn section(title: &str, lines: Vec<String>) -> Option<String> {
    if lines.is_empty() {
        return None;
    }
    let n = lines.len();
    let mut s = format!("*{title}* ({n})\n");
    for l in lines.iter().take(MAX_LINES) {
        s.push_str(&format!("• {l}\n"));
    }
    if n > MAX_LINES {
        s.push_str(&format!("… and {} more\n", n - MAX_LINES));
    }
    Some(s)
}

/// The message for a pass, or `None` when there is nothing to tell. With `standing` (the
/// daemon's memory of what it posted), errors and violations already posted are left out,
/// and those gone since are listed as resolved.
#[must_use]
pub fn message(r: &PassReport, standing: Option<&mut Standing>) -> Option<Value> {
    let applied: Vec<String> = r
        .changes
        .iter()
        .filter(|c| c.status == ChangeStatus::Applied)
        .map(|c| {
            format!(
                "{}/{} {} {}: {}",
                c.account,
                c.region,
                c.resource_id,
                c.change.kind(),
                c.reason
            )
        })
        .collect();
    let mut standing_now: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    let mut errors: Vec<String> = Vec::new();
    let mut keyed = |key: String, line: String, into: &mut Vec<String>| {
        into.push(line.clone());
        standing_now.insert(key, line);
    };
    for c in r.changes.iter().filter(|c| c.status == ChangeStatus::Failed) {
        keyed(
            format!(
                "change {} {} {} {}",
                c.account,
                c.region,
                c.resource_id,
                c.change.kind()
            ),
            format!(
                "{}/{} {} {} failed: {}",
                c.account,
                c.region,
                c.resource_id,
                c.change.kind(),
                c.error.as_deref().unwrap_or("")
            ),
            &mut errors,
        );
    }
    for e in &r.errors {
        keyed(
            format!("error {} {} {} {}", e.account, e.region, e.resource_id, e.error),
            format!("{}/{} {}: {}", e.account, e.region, e.resource_id, e.error),
            &mut errors,
        );
    }
    for s in r.scopes.iter().filter(|s| s.status != crate::report::ScopeStatus::Ok) {
        keyed(
            format!("scope {} {}", s.account, s.region),
            format!(
                "{}/{} skipped: {}",
                s.account,
                s.region,
                s.error.as_deref().unwrap_or("")
            ),
            &mut errors,
        );
    }
    let mut violations = Vec::new();
    for v in &r.violations {
        keyed(
            format!("violation {} {} {} {}", v.account, v.region, v.resource_id, v.problem),
            format!(
                "{}/{} {} {}: {}",
                v.account, v.region, v.resource_type, v.resource_id, v.problem
            ),
            &mut violations,
        );
    }
    let mut resolved = Vec::new();
    if let Some(st) = standing {
        let (new, cleared) = st.update(standing_now);
        errors.retain(|l| new.contains(l));
        violations.retain(|l| new.contains(l));
        resolved = cleared;
    }
    let escaped = |lines: Vec<String>| lines.iter().map(|l| slack_escape(l)).collect::<Vec<_>>();
    let parts: Vec<String> = [
        section("Actions taken", escaped(applied)),
        section("Errors", escaped(errors)),
        section("Policy violations", escaped(violations)),
        section("Resolved", escaped(resolved)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        return None;
    }
    let head = format!(
        "offhours pass at {}",
        r.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    Some(json!({ "text": format!("{head}\n{}", parts.join("\n")) }))
}

/// Posts `payload` to the webhook, retrying with backoff.
pub async fn post(url: &str, payload: &Value) -> Result<(), NotifyError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(|e| NotifyError::Delivery(format!("no TLS roots: {e}")))?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let body = Bytes::from(payload.to_string());
    let mut last = String::new();
    for attempt in 0..ATTEMPTS {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(500 * 2u64.pow(attempt))).await;
        }
        let req = hyper::Request::post(url)
            .header(hyper::header::CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))
            .map_err(|_| NotifyError::Url("not a valid http(s) URL".into()))?;
        match tokio::time::timeout(Duration::from_secs(10), client.request(req)).await {
            Ok(Ok(resp)) if resp.status().is_success() => return Ok(()),
            Ok(Ok(resp)) => last = format!("HTTP {}", resp.status()),
            // The error's text can carry the URL; keep only its kind.
            Ok(Err(e)) => {
                last = if e.is_connect() {
                    "connection failed".into()
                } else {
                    "request failed".into()
                }
            }
            Err(_) => last = "timed out".into(),
        }
    }
    Err(NotifyError::Delivery(last))
}

/// Sends the pass's message in the background, if a webhook is configured; failures are
/// logged (without the URL), never returned. `standing` as in [`message`].
pub fn spawn(cfg: &Config, r: &PassReport, standing: Option<&mut Standing>) -> Option<tokio::task::JoinHandle<bool>> {
    let url = match webhook_url(cfg) {
        Ok(Some(u)) => u,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "notifications are configured but the webhook URL cannot be read");
            return None;
        }
    };
    let payload = message(r, standing)?;
    Some(tokio::spawn(async move {
        match post(&url, &payload).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %e, "webhook notification not delivered");
                false
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Change, ChangeReport, InstanceChange};

    #[test]
    fn a_quiet_pass_sends_nothing_and_a_busy_one_is_batched() {
        let mut r = PassReport::new(crate::report::Mode::Reconcile, "2026-11-25T11:00:00Z".parse().unwrap());
        assert!(message(&r, None).is_none());
        for i in 0..20 {
            r.changes.push(ChangeReport {
                account: "111122223333".into(),
                region: "ap-northeast-2".into(),
                resource_type: crate::kind::ResourceType::Instance,
                resource_id: format!("i-{i}"),
                change: Change::Instance(InstanceChange::StopInstance),
                reason: "office-hours: stop at 20:00".into(),
                status: ChangeStatus::Applied,
                error: None,
                estimated_hours_off: None,
                instance_type: None,
            });
        }
        let text = message(&r, None).unwrap()["text"].as_str().unwrap().to_string();
        assert!(text.contains("*Actions taken* (20)"), "{text}");
        assert!(text.contains("and 5 more"), "{text}");
        assert!(text.contains("i-0 stop-instance"), "{text}");
    }

    fn error(id: &str, msg: &str) -> crate::report::ResourceError {
        crate::report::ResourceError {
            account: "111122223333".into(),
            region: "ap-northeast-2".into(),
            resource_type: crate::kind::ResourceType::AutoScalingGroup,
            resource_id: id.into(),
            tag_value: Some("office-hour".into()),
            error: msg.into(),
        }
    }

    #[test]
    fn names_and_tag_values_cannot_mention_a_channel_or_forge_a_link() {
        let mut r = PassReport::new(crate::report::Mode::Reconcile, "2026-11-25T11:00:00Z".parse().unwrap());
        r.errors.push(error(
            "<!channel> web",
            "unknown schedule `<https://evil|click> & co`\nFAKE LINE",
        ));
        let text = message(&r, None).unwrap()["text"].as_str().unwrap().to_string();
        assert!(text.contains("&lt;!channel&gt; web"), "{text}");
        assert!(text.contains("&lt;https://evil|click&gt; &amp; co"), "{text}");
        assert!(!text.contains("<!") && !text.contains("<http"), "{text}");
        assert!(!text.contains("\nFAKE LINE"), "no line injected: {text}");
        assert_eq!(slack_escape("a<b>&c"), "a&lt;b&gt;&amp;c");
    }

    #[test]
    fn a_standing_error_is_posted_when_it_appears_and_when_it_clears_only() {
        let mut st = Standing::default();
        let mut r = PassReport::new(crate::report::Mode::Reconcile, "2026-11-25T11:00:00Z".parse().unwrap());
        r.errors.push(error("web", "unknown schedule"));
        let first = message(&r, Some(&mut st)).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            first.contains("*Errors* (1)") && first.contains("web: unknown schedule"),
            "{first}"
        );
        assert!(
            message(&r, Some(&mut st)).is_none(),
            "the same error again: nothing to say"
        );
        r.errors.clear();
        let cleared = message(&r, Some(&mut st)).unwrap()["text"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            cleared.contains("*Resolved* (1)") && cleared.contains("web: unknown schedule"),
            "{cleared}"
        );
        assert!(message(&r, Some(&mut st)).is_none());
    }
}
