//! The only code that names AWS SDK types: clients, credentials, error classification
//! and call counting. Endpoints and credentials come from the standard chain and the
//! standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` variables.

pub mod accounts;
pub mod autoscaling;
pub mod ec2;
mod ec2_xml;
pub mod launch_templates;
pub mod organizations;
pub mod rds;
pub mod sqs;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::stalled_stream_protection::StalledStreamProtectionConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_types::region::Region;

use crate::cloud::{Cloud, CloudError, ErrorKind, ScopeHandle};
use crate::config::Config;
use crate::model::Scope;

/// How long a connection may take to open (the SDK's default).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(3100);

/// (service, operation, "ok" | "error") -> calls.
pub type CallCounts = BTreeMap<(String, String, &'static str), u64>;

/// Counts SDK calls by service, operation and outcome, through an interceptor.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<CallCounts>>,
}

impl CallCounter {
    /// Calls so far: (service, operation, "ok" | "error") -> count.
    #[must_use]
    pub fn snapshot(&self) -> CallCounts {
        self.counts.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// Calls so far as `service.Operation` -> count (all outcomes), e.g.
    /// `autoscaling.DescribeAutoScalingGroups`.
    #[must_use]
    pub fn by_operation(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        for ((svc, op, _), n) in self.snapshot() {
            let svc: String = svc
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_lowercase();
            *out.entry(format!("{svc}.{op}")).or_default() += n;
        }
        out
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "offhours-call-counter"
    }

    fn read_after_execution(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let outcome = match context.output_or_error() {
                Some(Ok(_)) => "ok",
                _ => "error",
            };
            if let Ok(mut counts) = self.counts.lock() {
                *counts
                    .entry((m.service().to_string(), m.name().to_string(), outcome))
                    .or_default() += 1;
            }
        }
        Ok(())
    }
}

pub use crate::failure::is_mutating;

/// Classifies an SDK error. A service's answer becomes the message (`Code: message`); any
/// other failure (dispatch, timeout, an unreadable response) keeps the SDK's error as the
/// cause, whose chain says what happened ([`crate::failure::chain`]).
pub(crate) fn classify<E, R>(operation: &str, err: aws_smithy_runtime_api::client::result::SdkError<E, R>) -> CloudError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    let code = match &err {
        SdkError::ServiceError(e) => e.err().code().map(String::from),
        _ => None,
    };
    let kind = match code.as_deref() {
        Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException") => {
            ErrorKind::Throttled
        }
        Some(
            "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AWSOrganizationsNotInUseException",
        ) => ErrorKind::AccessDenied,
        Some(c) if c.contains("NotFound") => ErrorKind::NotFound,
        Some(
            "ValidationError"
            | "InvalidParameterValue"
            | "InvalidParameterCombination"
            | "IncorrectInstanceState"
            | "InvalidInstanceID.Malformed",
        ) => ErrorKind::Invalid,
        Some("OperationNotPermitted" | "UnsupportedOperation") => ErrorKind::NotPermitted,
        Some("UnsupportedHibernationConfiguration") => ErrorKind::HibernationRefused,
        _ => ErrorKind::Other,
    };
    match &err {
        SdkError::ServiceError(e) => CloudError {
            operation: operation.to_string(),
            kind,
            message: format!(
                "{}: {}",
                e.err().code().unwrap_or("unknown error"),
                e.err().message().unwrap_or("(no message)")
            ),
            source: None,
        },
        _ => CloudError {
            operation: operation.to_string(),
            kind,
            message: err.to_string(),
            source: Some(std::sync::Arc::new(err)),
        },
    }
}

/// The SDK clients for one account and region.
#[derive(Debug, Clone)]
pub struct AwsScope {
    pub(crate) asg: aws_sdk_autoscaling::Client,
    pub(crate) ec2: aws_sdk_ec2::Client,
    pub(crate) rds: aws_sdk_rds::Client,
    /// The ARNs of the databases last listed, by kind and identifier (RDS tags by ARN).
    pub(crate) rds_arns:
        std::sync::Arc<std::sync::Mutex<std::collections::HashMap<(crate::model::DbKind, String), String>>>,
}

impl AwsScope {
    /// Clients for one scope's regional, credentialed config, reporting to `counter`.
    /// Their retry budget is the scope's own, as AWS's throttling limits are.
    #[must_use]
    pub fn new(sdk: &SdkConfig, counter: &CallCounter, scope: &Scope) -> Self {
        let partition = |service: &str| {
            aws_sdk_ec2::config::retry::RetryPartition::new(format!(
                "offhours-{service}-{}-{}",
                scope.account, scope.region
            ))
        };
        AwsScope {
            asg: aws_sdk_autoscaling::Client::from_conf(
                aws_sdk_autoscaling::config::Builder::from(sdk)
                    .interceptor(counter.clone())
                    .retry_partition(partition("autoscaling"))
                    .build(),
            ),
            ec2: aws_sdk_ec2::Client::from_conf(
                aws_sdk_ec2::config::Builder::from(sdk)
                    .interceptor(counter.clone())
                    .retry_partition(partition("ec2"))
                    .build(),
            ),
            rds: aws_sdk_rds::Client::from_conf(
                aws_sdk_rds::config::Builder::from(sdk)
                    .interceptor(counter.clone())
                    .retry_partition(aws_sdk_rds::config::retry::RetryPartition::new(format!(
                        "offhours-rds-{}-{}",
                        scope.account, scope.region
                    )))
                    .build(),
            ),
            rds_arns: Default::default(),
        }
    }
}

pub use crate::shard::Shard;

/// The AWS implementation of [`Cloud`].
#[derive(Debug, Clone)]
pub struct AwsCloud {
    base: SdkConfig,
    counter: CallCounter,
    shard: Option<Shard>,
}

impl AwsCloud {
    /// Loads the standard AWS configuration (credentials chain, region, endpoint
    /// variables) with standard retries (5 attempts, jittered exponential backoff) on
    /// throttling, 5xx and dropped connections.
    ///
    /// Not the SDK's adaptive mode: its client-side rate limiter is shared by every
    /// client of a service in a region, so one account's throttling would slow every
    /// account down to half a call per second (seen under the fault-injection test).
    /// AWS throttles per account and region, and so does offhours: each scope's clients
    /// get their own retry partition (see [`AwsScope::new`]).
    ///
    /// The standard `AWS_MAX_ATTEMPTS` / `AWS_RETRY_MODE` variables win over this default
    /// when set (and only then do the profile's retry settings apply).
    ///
    /// Each attempt of a call may take `call_timeout` (the config's `call_timeout_seconds`),
    /// so a connection that never answers fails (and is retried) in its own scope instead of
    /// holding the whole pass to its deadline.
    /// Stalled-stream protection stays on for response bodies; for request bodies (a few
    /// KiB of form data, sent at once) it is off: it only woke the process ten times a
    /// second for as long as a call waited (two thirds of a slow transition pass's CPU).
    pub async fn load(counter: CallCounter, call_timeout: Duration) -> Self {
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_attempt_timeout(call_timeout)
                    .build(),
            )
            .stalled_stream_protection(StalledStreamProtectionConfig::enabled().upload_enabled(false).build());
        if std::env::var_os("AWS_MAX_ATTEMPTS").is_none() && std::env::var_os("AWS_RETRY_MODE").is_none() {
            loader = loader.retry_config(RetryConfig::standard().with_max_attempts(5));
        }
        let base = loader.load().await;
        AwsCloud {
            base,
            counter,
            shard: None,
        }
    }

    /// Works only the accounts of this shard.
    #[must_use]
    pub fn with_shard(mut self, shard: Option<Shard>) -> Self {
        self.shard = shard;
        self
    }

    /// An Organizations client for the caller's (management or delegated) account.
    #[must_use]
    pub fn organizations(&self) -> organizations::OrgClient {
        organizations::OrgClient::new(&self.base, &self.counter)
    }

    /// The SQS queue at `url`.
    #[must_use]
    pub fn queue(&self, url: &str) -> sqs::Queue {
        sqs::Queue::new(&self.base, &self.counter, url)
    }

    /// The call counter every client reports to.
    #[must_use]
    pub fn counter(&self) -> &CallCounter {
        &self.counter
    }

    fn regional(&self, creds: Option<&SharedCredentialsProvider>, region: &str) -> SdkConfig {
        let mut b = self.base.to_builder().region(Region::new(region.to_string()));
        if let Some(c) = creds {
            b = b.credentials_provider(c.clone());
        }
        b.build()
    }

    fn default_region(&self) -> Option<String> {
        self.base.region().map(|r| r.to_string())
    }
}

impl Cloud for AwsCloud {
    type Scope = AwsScope;

    async fn remediation(&self, cfg: &Config) -> Result<crate::cloud::RemediationScope, CloudError> {
        accounts::remediation(&self.base, &self.counter, cfg).await
    }

    async fn scopes(&self, cfg: &Config) -> Result<Vec<ScopeHandle<Self::Scope>>, CloudError> {
        let regions = if cfg.regions.is_empty() {
            vec![self.default_region().ok_or_else(|| CloudError {
                operation: "LoadConfig".into(),
                kind: ErrorKind::Invalid,
                message: "no region: set `regions` in the config, or AWS_REGION".into(),
                source: None,
            })?]
        } else {
            cfg.regions.clone()
        };
        let mut accounts = accounts::discover(&self.base, &self.counter, cfg).await?;
        if let Some(shard) = self.shard {
            accounts.retain(|a| shard.owns(&a.id));
        }
        let mut out = Vec::new();
        for acct in accounts {
            for region in &regions {
                let scope = Scope {
                    account: acct.id.clone(),
                    region: region.clone(),
                };
                let sdk = self.regional(acct.credentials.as_ref(), region);
                let clients = AwsScope::new(&sdk, &self.counter, &scope);
                out.push((scope, Ok(clients)));
            }
        }
        Ok(out)
    }
}
