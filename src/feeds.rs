//! Calendar feeds (`ics_url`): fetched over HTTPS (plain HTTP only on loopback), checked
//! with the same iCalendar reader as files, and kept on disk as the last good copy, which
//! the config reads. A failed fetch keeps the copy. The URL is never logged or reported: it
//! may carry a token.

use std::time::Duration;

use chrono_tz::Tz;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::config::Feed;
use crate::schedule::events;

/// Longest a fetch may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(20);
/// Largest feed offhours reads.
pub const MAX_BYTES: usize = 5 * 1024 * 1024;

/// What one refresh of a feed did.
#[derive(Debug)]
pub enum Outcome {
    /// Fetched and read; the kept copy changed.
    Changed,
    /// Fetched and read; the same as the kept copy.
    Same,
    /// Not fetched or not readable: why (no URL in it). The kept copy, if any, stays.
    Failed(FeedError),
}

impl Outcome {
    /// `changed`, `same` or `failed` (the metric's label).
    #[must_use]
    pub fn result(&self) -> &'static str {
        match self {
            Outcome::Changed => "changed",
            Outcome::Same => "same",
            Outcome::Failed(_) => "failed",
        }
    }
}

/// Fetches a feed and, if it reads, keeps it as the last good copy. Logs what happened, by
/// the calendar's label (never the URL).
pub async fn refresh(feed: &Feed, zone: Tz) -> Outcome {
    let outcome = fetch_and_keep(feed, zone).await;
    match &outcome {
        Outcome::Failed(e) => {
            tracing::warn!(calendar = %feed.label(), error = %crate::failure::chain(e), "calendar feed refresh failed; keeping the last good copy");
        }
        o => tracing::info!(calendar = %feed.label(), result = o.result(), "calendar feed refreshed"),
    }
    outcome
}

async fn fetch_and_keep(feed: &Feed, zone: Tz) -> Outcome {
    let text = match fetch(&feed.url).await {
        Ok(t) => t,
        Err(e) => return Outcome::Failed(e.into()),
    };
    if let Err(errs) = events::parse_events(&text, zone) {
        return Outcome::Failed(FeedError::NotICalendar(errs));
    }
    if std::fs::read_to_string(&feed.cache).ok().as_deref() == Some(text.as_str()) {
        return Outcome::Same;
    }
    match keep(feed, &text) {
        Ok(()) => Outcome::Changed,
        Err(source) => Outcome::Failed(FeedError::Keep {
            path: feed.cache.clone(),
            source,
        }),
    }
}

/// Writes the copy next to its place and renames it there, so a reader never sees half.
fn keep(feed: &Feed, text: &str) -> std::io::Result<()> {
    if let Some(dir) = feed.cache.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = feed.cache.with_extension("ics.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &feed.cache)
}

/// Why a feed's refresh failed. No message carries the URL.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// It could not be fetched.
    #[error(transparent)]
    Fetch(#[from] FetchError),
    /// It does not read as iCalendar (the reader's errors).
    #[error("the feed does not read as iCalendar: {}", .0.join("; "))]
    NotICalendar(Vec<String>),
    /// The copy could not be written.
    #[error("cannot keep a copy in {}", .path.display())]
    Keep {
        /// The copy's place.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Why a feed could not be fetched. Its messages never carry the URL (it may hold a token).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The system's TLS roots could not be loaded.
    #[error("no TLS roots")]
    NoTlsRoots(#[source] std::io::Error),
    /// The URL could not make a request.
    #[error("not a valid URL")]
    BadUrl,
    /// No connection.
    #[error("connection failed")]
    Connect,
    /// The request failed after connecting.
    #[error("request failed")]
    Request,
    /// The server answered with an error status.
    #[error("HTTP {0}")]
    Status(hyper::StatusCode),
    /// The body failed or was too large.
    #[error("the body failed or is over {MAX_BYTES} bytes")]
    Body,
    /// The body is not UTF-8.
    #[error("the body is not UTF-8")]
    NotUtf8(#[source] std::string::FromUtf8Error),
    /// No answer in time.
    #[error("timed out after {} s", FETCH_TIMEOUT.as_secs())]
    Timeout,
}

async fn fetch(url: &str) -> Result<String, FetchError> {
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_native_roots()
        .map_err(FetchError::NoTlsRoots)?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build(https);
    let req = hyper::Request::get(url)
        .header(hyper::header::ACCEPT, "text/calendar")
        .body(Empty::new())
        .map_err(|_| FetchError::BadUrl)?;
    let work = async {
        // The client's error can carry the URL in its text: only its kind is kept.
        let resp = client.request(req).await.map_err(|e| {
            if e.is_connect() {
                FetchError::Connect
            } else {
                FetchError::Request
            }
        })?;
        if !resp.status().is_success() {
            return Err(FetchError::Status(resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_BYTES)
            .collect()
            .await
            .map_err(|_| FetchError::Body)?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(FetchError::NotUtf8)
    };
    tokio::time::timeout(FETCH_TIMEOUT, work)
        .await
        .map_err(|_| FetchError::Timeout)?
}

/// Refreshes every feed of `cfg` once (a one-shot command's start): logs what failed
/// (without the URL) and returns whether a kept copy changed, so the caller reloads.
pub async fn refresh_all(cfg: &crate::config::Config) -> bool {
    let mut changed = false;
    for f in &cfg.feeds {
        changed |= matches!(refresh(f, cfg.timezone).await, Outcome::Changed);
    }
    changed
}

/// Logs each feed that has never loaded: the schedules using it act without it.
pub fn warn_unloaded(cfg: &crate::config::Config) {
    for f in cfg.feeds.iter().filter(|f| !f.loaded) {
        tracing::warn!(
            calendar = %f.label(),
            schedules = %f.schedules.join(", "),
            "calendar feed has never loaded: these schedules are degraded (they act without it)"
        );
    }
}
