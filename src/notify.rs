//! Notifications: one Slack-compatible incoming-webhook message per pass, listing the
//! actions taken, errors and policy violations. The URL comes from an environment
//! variable or a file, never from plain config, and never appears in a log. A webhook
//! that fails is retried and reported; it never blocks a pass.

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

/// The message for a pass, or `None` when there is nothing to tell.
#[must_use]
pub fn message(r: &PassReport) -> Option<Value> {
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
    let mut errors: Vec<String> = r
        .changes
        .iter()
        .filter(|c| c.status == ChangeStatus::Failed)
        .map(|c| {
            format!(
                "{}/{} {} {} failed: {}",
                c.account,
                c.region,
                c.resource_id,
                c.change.kind(),
                c.error.as_deref().unwrap_or("")
            )
        })
        .collect();
    errors.extend(
        r.errors
            .iter()
            .map(|e| format!("{}/{} {}: {}", e.account, e.region, e.resource_id, e.error)),
    );
    errors.extend(r.scopes.iter().filter(|s| s.status != "ok").map(|s| {
        format!(
            "{}/{} skipped: {}",
            s.account,
            s.region,
            s.error.as_deref().unwrap_or("")
        )
    }));
    let violations: Vec<String> = r
        .violations
        .iter()
        .map(|v| {
            format!(
                "{}/{} {} {}: {}",
                v.account, v.region, v.resource_type, v.resource_id, v.problem
            )
        })
        .collect();
    let parts: Vec<String> = [
        section("Actions taken", applied),
        section("Errors", errors),
        section("Policy violations", violations),
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
/// logged (without the URL), never returned.
pub fn spawn(cfg: &Config, r: &PassReport) -> Option<tokio::task::JoinHandle<bool>> {
    let url = match webhook_url(cfg) {
        Ok(Some(u)) => u,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e, "notifications are configured but the webhook URL cannot be read");
            return None;
        }
    };
    let payload = message(r)?;
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
        let mut r = PassReport::new("reconcile", "2026-11-25T11:00:00Z".parse().unwrap());
        assert!(message(&r).is_none());
        for i in 0..20 {
            r.changes.push(ChangeReport {
                account: "111122223333".into(),
                region: "ap-northeast-2".into(),
                resource_type: crate::report::INSTANCE,
                resource_id: format!("i-{i}"),
                change: Change::Instance(InstanceChange::StopInstance),
                reason: "office-hours: stop at 20:00".into(),
                status: ChangeStatus::Applied,
                error: None,
                estimated_hours_off: None,
                instance_type: None,
            });
        }
        let text = message(&r).unwrap()["text"].as_str().unwrap().to_string();
        assert!(text.contains("*Actions taken* (20)"), "{text}");
        assert!(text.contains("and 5 more"), "{text}");
        assert!(text.contains("i-0 stop-instance"), "{text}");
    }
}
