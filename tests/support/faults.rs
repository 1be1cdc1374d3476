//! A fault-injecting HTTP proxy between offhours and moto.
//!
//! Each request is forwarded to the upstream (moto) unless a roll of the dice injects a
//! fault first:
//! - throttling, in the service's own wire format (Auto Scaling and STS: query XML
//!   `Throttling`, 400; EC2: `RequestLimitExceeded`, 503; Organizations: JSON 1.1
//!   `TooManyRequestsException`, 400; SQS: JSON 1.0 `RequestThrottled`, 400);
//! - a 500 in the service's format, half of them *after* the request reached moto (the
//!   change happened, the caller does not know);
//! - a dropped connection (RST, no response), half of them after the request reached moto;
//! - a random delay before forwarding.
//!
//! The service comes from the SigV4 credential scope of the `Authorization` header.
//! Counts of what was injected, by service and kind, are kept for the test to assert on.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// Fault rates, each a probability per request.
#[derive(Debug, Clone, Copy)]
pub struct Rates {
    /// Throttling errors.
    pub throttle: f64,
    /// HTTP 500s.
    pub error: f64,
    /// Dropped connections.
    pub reset: f64,
    /// Each request waits a uniform 0..=this many milliseconds first.
    pub max_delay_ms: u64,
    /// The first faults rolled cover every kind once (the fault rate is unchanged), so
    /// that even a short run sees each of them.
    pub cover_every_kind: bool,
}

impl Rates {
    /// The rates the issue asks to converge under: 20 % throttling, 5 % 500s, 2 % resets.
    pub const HOSTILE: Rates = Rates {
        throttle: 0.20,
        error: 0.05,
        reset: 0.02,
        max_delay_ms: 20,
        cover_every_kind: true,
    };
}

/// What was done to one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Fault {
    Throttle,
    ErrorBefore,
    ErrorAfter,
    ResetBefore,
    ResetAfter,
    Passed,
}

/// Every kind of fault.
pub const FAULTS: [Fault; 5] = [
    Fault::Throttle,
    Fault::ErrorBefore,
    Fault::ErrorAfter,
    Fault::ResetBefore,
    Fault::ResetAfter,
];

/// A small deterministic generator (SplitMix64), so a failing seed can be replayed.
#[derive(Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [0, n).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

struct State {
    upstream: String,
    rates: Mutex<Rates>,
    enabled: AtomicBool,
    rng: Mutex<Rng>,
    counts: Mutex<BTreeMap<(String, Fault), u64>>,
    client: Client<HttpConnector, Full<Bytes>>,
    /// Requests let through before the gate closes (None: open), and whether the
    /// request that meets the closed gate is held after reaching moto (else before).
    gate: Mutex<(Option<u64>, bool)>,
    /// Requests held at the closed gate.
    held: std::sync::atomic::AtomicU64,
    /// Requests seen.
    seen: std::sync::atomic::AtomicU64,
    /// True while the gate is closed.
    frozen: tokio::sync::watch::Sender<bool>,
    /// Requests signed for this region are never answered.
    silent_region: Mutex<Option<String>>,
    /// AWS's rules that moto lacks, when this proxy enforces them.
    strict: Option<Arc<super::strict::Strict>>,
    /// Operation -> how many more of its requests get a 500 (before reaching moto).
    fail_ops: Mutex<BTreeMap<String, u64>>,
}

/// The running proxy; stopped when dropped.
pub struct Proxy {
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    state: Arc<State>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Proxy {
    /// Starts a proxy to `upstream` on its own thread and runtime.
    pub fn start(upstream: &str, rates: Rates, seed: u64) -> Proxy {
        Self::start_with(upstream, rates, seed, None)
    }

    /// A proxy that injects no faults and enforces the strict layer's AWS rules.
    pub fn strict(upstream: &str) -> Proxy {
        let none = Rates {
            throttle: 0.0,
            error: 0.0,
            reset: 0.0,
            max_delay_ms: 0,
            cover_every_kind: false,
        };
        Self::start_with(upstream, none, 0, Some(Arc::default()))
    }

    /// The strict layer's state, if this proxy enforces it.
    pub fn rules(&self) -> Option<&super::strict::Strict> {
        self.state.strict.as_deref()
    }

    fn start_with(upstream: &str, rates: Rates, seed: u64, strict: Option<Arc<super::strict::Strict>>) -> Proxy {
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            rates: Mutex::new(rates),
            enabled: AtomicBool::new(true),
            rng: Mutex::new(Rng::new(seed)),
            counts: Mutex::new(BTreeMap::new()),
            client: Client::builder(TokioExecutor::new()).build_http(),
            gate: Mutex::new((None, false)),
            held: Default::default(),
            seen: Default::default(),
            frozen: tokio::sync::watch::Sender::new(false),
            silent_region: Mutex::new(None),
            strict,
            fail_ops: Mutex::new(BTreeMap::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (tx, mut rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    tokio::select! {
                        _ = &mut rx => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            // A close is then a reset, as a dropped connection looks on the wire.
                            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
                            let st = st.clone();
                            tokio::spawn(async move {
                                let service = hyper::service::service_fn(move |req| handle(req, st.clone()));
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        Proxy {
            endpoint: format!("http://{addr}"),
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// Turns injection on or off (requests are forwarded either way).
    pub fn set_enabled(&self, on: bool) {
        self.state.enabled.store(on, Ordering::SeqCst);
    }

    /// Changes the rates.
    pub fn set_rates(&self, rates: Rates) {
        *self.state.rates.lock().unwrap() = rates;
    }

    /// Lets `n` more requests through, then holds every later one (before it reaches
    /// moto, or after, with its response withheld) until [`Proxy::open`]: a caller killed
    /// meanwhile dies at exactly that point of its work.
    pub fn close_after(&self, n: u64, after_upstream: bool) {
        *self.state.gate.lock().unwrap() = (Some(n), after_upstream);
        self.state.held.store(0, Ordering::SeqCst);
        self.state.frozen.send_replace(true);
    }

    /// Opens the gate; held requests are then answered with a dropped connection.
    pub fn open(&self) {
        *self.state.gate.lock().unwrap() = (None, false);
        self.state.frozen.send_replace(false);
    }

    /// From now on, requests signed for `region` are held and never answered, as by a
    /// server that accepted the connection and hung (counted in [`Proxy::held`]).
    pub fn never_answer(&self, region: &str) {
        *self.state.silent_region.lock().unwrap() = Some(region.to_string());
    }

    /// The next `times` requests of `operation` (e.g. `DeleteMessage`) get a 500 in their
    /// service's format, before reaching moto.
    pub fn fail_next(&self, operation: &str, times: u64) {
        self.state.fail_ops.lock().unwrap().insert(operation.to_string(), times);
    }

    /// Requests held at the closed gate.
    pub fn held(&self) -> u64 {
        self.state.held.load(Ordering::SeqCst)
    }

    /// Requests seen so far.
    pub fn seen(&self) -> u64 {
        self.state.seen.load(Ordering::SeqCst)
    }

    /// Requests seen so far, by (service, what was done).
    pub fn counts(&self) -> BTreeMap<(String, Fault), u64> {
        self.state.counts.lock().unwrap().clone()
    }

    /// The same environment as moto's, pointed at the proxy.
    pub fn env(&self, moto: &super::moto::Moto) -> Vec<(&'static str, String)> {
        moto.env()
            .into_iter()
            .map(|(k, v)| {
                if k == "AWS_ENDPOINT_URL" {
                    (k, self.endpoint.clone())
                } else {
                    (k, v)
                }
            })
            .collect()
    }
}

/// The SigV4 signing name in the credential scope: `Credential=AKID/DATE/REGION/SERVICE/aws4_request`.
fn service_of<B>(req: &Request<B>) -> String {
    credential_scope(req, 3)
}

/// Part `n` of the SigV4 credential scope (2: region, 3: service).
fn credential_scope<B>(req: &Request<B>, n: usize) -> String {
    req.headers()
        .get(hyper::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split("Credential=").nth(1))
        .and_then(|c| c.split('/').nth(n))
        .unwrap_or("unknown")
        .to_string()
}

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
    r.headers_mut()
        .insert("x-amzn-requestid", HeaderValue::from_static("00000000-fault-injected"));
    r
}

/// An error response in the wire format of `service`.
fn error_response(service: &str, throttle: bool) -> Response<Full<Bytes>> {
    let query = |code: &str, kind: &str, message: &str, status: StatusCode| {
        reply(
            status,
            "text/xml",
            format!(
                "<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code><Message>{message}</Message></Error>\
                 <RequestId>00000000-fault-injected</RequestId></ErrorResponse>"
            ),
        )
    };
    let json = |version: &str, code: &str, message: &str, status: StatusCode| {
        let mut r = reply(
            status,
            &format!("application/x-amz-json-{version}"),
            serde_json::json!({ "__type": code, "message": message }).to_string(),
        );
        r.headers_mut()
            .insert("x-amzn-errortype", HeaderValue::from_str(code).unwrap());
        r
    };
    match (service, throttle) {
        ("ec2", t) => {
            let (code, status) = if t {
                ("RequestLimitExceeded", StatusCode::SERVICE_UNAVAILABLE)
            } else {
                ("InternalError", StatusCode::INTERNAL_SERVER_ERROR)
            };
            reply(
                status,
                "text/xml;charset=UTF-8",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
                     <Message>injected by the test proxy</Message></Error></Errors>\
                     <RequestID>00000000-fault-injected</RequestID></Response>"
                ),
            )
        }
        ("organizations", true) => json(
            "1.1",
            "TooManyRequestsException",
            "AWS Organizations can't complete your request because it is throttled",
            StatusCode::BAD_REQUEST,
        ),
        ("organizations", false) => json(
            "1.1",
            "ServiceException",
            "injected by the test proxy",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        ("sqs", true) => {
            let mut r = json(
                "1.0",
                "com.amazonaws.sqs#RequestThrottled",
                "Rate exceeded",
                StatusCode::BAD_REQUEST,
            );
            r.headers_mut().insert(
                "x-amzn-query-error",
                HeaderValue::from_static("RequestThrottled;Sender"),
            );
            r
        }
        ("sqs", false) => json(
            "1.0",
            "com.amazonaws.sqs#InternalError",
            "injected by the test proxy",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
        // Auto Scaling, STS and any other query-protocol service.
        (_, true) => query("Throttling", "Sender", "Rate exceeded", StatusCode::BAD_REQUEST),
        (_, false) => query(
            "InternalFailure",
            "Receiver",
            "injected by the test proxy",
            StatusCode::INTERNAL_SERVER_ERROR,
        ),
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "connection dropped by the test proxy")
}

/// Holds a request at the closed gate until it opens.
async fn hold(st: &State) -> io::Error {
    st.held.fetch_add(1, Ordering::SeqCst);
    let mut rx = st.frozen.subscribe();
    let _ = rx.wait_for(|frozen| !*frozen).await;
    reset()
}

async fn handle(req: Request<Incoming>, st: Arc<State>) -> Result<Response<Full<Bytes>>, io::Error> {
    st.seen.fetch_add(1, Ordering::SeqCst);
    let silent = st.silent_region.lock().unwrap().clone();
    if silent.is_some_and(|r| r == credential_scope(&req, 2)) {
        st.held.fetch_add(1, Ordering::SeqCst);
        return std::future::pending().await;
    }
    let gate = {
        let mut g = st.gate.lock().unwrap();
        match g.0 {
            Some(0) => Some(g.1),
            Some(ref mut n) => {
                *n -= 1;
                None
            }
            None => None,
        }
    };
    if gate == Some(false) {
        return Err(hold(&st).await);
    }
    let service = service_of(&req);
    let rates = *st.rates.lock().unwrap();
    let (roll, half, delay) = {
        let mut rng = st.rng.lock().unwrap();
        (rng.unit(), rng.unit() < 0.5, rng.below(rates.max_delay_ms + 1))
    };
    let fault = if !st.enabled.load(Ordering::SeqCst) {
        Fault::Passed
    } else if roll < rates.throttle {
        Fault::Throttle
    } else if roll < rates.throttle + rates.error {
        if half { Fault::ErrorBefore } else { Fault::ErrorAfter }
    } else if roll < rates.throttle + rates.error + rates.reset {
        if half { Fault::ResetBefore } else { Fault::ResetAfter }
    } else {
        Fault::Passed
    };
    let fault = {
        let mut counts = st.counts.lock().unwrap();
        let fault = if fault == Fault::Passed || !rates.cover_every_kind {
            fault
        } else {
            FAULTS
                .into_iter()
                .find(|f| !counts.keys().any(|(_, g)| g == f))
                .unwrap_or(fault)
        };
        *counts.entry((service.clone(), fault)).or_default() += 1;
        fault
    };
    if st.enabled.load(Ordering::SeqCst) && delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }

    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(io::Error::other)?.to_bytes();
    {
        let action = super::strict::Call::parse(&service, &parts.headers, &body).action;
        let mut ops = st.fail_ops.lock().unwrap();
        if let Some(n) = ops.get_mut(&action).filter(|n| **n > 0) {
            *n -= 1;
            return Ok(error_response(&service, false));
        }
    }
    match fault {
        Fault::Throttle => return Ok(error_response(&service, true)),
        Fault::ErrorBefore => return Ok(error_response(&service, false)),
        Fault::ResetBefore => return Err(reset()),
        _ => {}
    }
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    let mut body = body;
    let mut after = super::strict::After::Nothing;
    if let Some(strict) = &st.strict {
        let call = super::strict::Call::parse(&service, &parts.headers, &body);
        let headers = parts.headers.clone();
        let (client, url) = (st.client.clone(), st.upstream.clone());
        let upstream = move |target: Option<String>,
                             body: Bytes|
              -> futures::future::BoxFuture<'static, Option<(StatusCode, Bytes)>> {
            let (headers, client, url) = (headers.clone(), client.clone(), url.clone());
            Box::pin(async move {
                let mut b = Request::builder().method("POST").uri(format!("{url}/"));
                for (k, v) in &headers {
                    if k != hyper::header::HOST
                        && k != hyper::header::CONNECTION
                        && k != hyper::header::CONTENT_LENGTH
                        && k.as_str() != "x-amz-target"
                    {
                        b = b.header(k, v);
                    }
                }
                if let Some(t) = target {
                    b = b.header("x-amz-target", t);
                }
                let resp = client.request(b.body(Full::new(body)).ok()?).await.ok()?;
                let status = resp.status();
                let bytes = resp.into_body().collect().await.ok()?.to_bytes();
                Some((status, bytes))
            })
        };
        match strict.before(&call, &upstream).await {
            super::strict::Verdict::Respond(r) => return Ok(r),
            super::strict::Verdict::Forward(new_body, a) => {
                if let Some(b) = new_body {
                    body = b;
                }
                after = a;
            }
        }
    }
    let mut fwd = Request::builder()
        .method(parts.method.clone())
        .uri(format!("{}{path}", st.upstream));
    for (k, v) in &parts.headers {
        if k != hyper::header::HOST && k != hyper::header::CONNECTION && k != hyper::header::CONTENT_LENGTH {
            fwd = fwd.header(k, v);
        }
    }
    let fwd = fwd.body(Full::new(body)).map_err(io::Error::other)?;
    let resp = st.client.request(fwd).await.map_err(io::Error::other)?;
    let (mut parts, body) = resp.into_parts();
    let mut body = body.collect().await.map_err(io::Error::other)?.to_bytes();
    if let Some(strict) = &st.strict {
        body = strict.after(&after, parts.status, body);
    }
    if gate == Some(true) {
        return Err(hold(&st).await);
    }
    match fault {
        Fault::ErrorAfter => Ok(error_response(&service, false)),
        Fault::ResetAfter => Err(reset()),
        _ => {
            parts.headers.remove(hyper::header::TRANSFER_ENCODING);
            parts.headers.remove(hyper::header::CONTENT_LENGTH);
            parts.headers.remove(hyper::header::CONNECTION);
            Ok(Response::from_parts(parts, Full::new(body)))
        }
    }
}
