//! EC2 through the SDK: tagged instances, stop/start, tags.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use aws_sdk_ec2::operation::describe_instances::{DescribeInstances, DescribeInstancesOutput};
use aws_sdk_ec2::types::{Filter, SpotInstanceType, Tag};
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, Error as OperationError, Output,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
use aws_smithy_runtime_api::client::ser_de::{DeserializeResponse, SharedResponseDeserializer};
use aws_smithy_types::config_bag::{ConfigBag, FrozenLayer};

use super::{AwsScope, classify, ec2_xml};
use crate::cloud::{CloudError, ErrorKind, InstanceApi};
use crate::model::{Instance, Market};

/// Puts [`CompactResponse`] in place of the SDK's DescribeInstances decoder for one call.
#[derive(Debug)]
struct CompactDescribe(Arc<Mutex<Option<ec2_xml::Page>>>);

impl Intercept for CompactDescribe {
    fn name(&self) -> &'static str {
        "offhours.CompactDescribe"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // The SDK's own decoder, from the operation's own configuration (the one in `cfg`
        // cannot be cloned out).
        let sdk = DescribeInstances::new()
            .config()
            .ok_or("the SDK's DescribeInstances has no configuration")?;
        cfg.interceptor_state()
            .store_put(SharedResponseDeserializer::new(CompactResponse {
                sdk,
                page: self.0.clone(),
            }));
        Ok(())
    }
}

/// Reads a successful DescribeInstances body with [`ec2_xml::parse`] into the shared slot and
/// hands the SDK an output that holds only the next page's token. Service errors go to the
/// SDK's own decoder, so that they are modelled and classified (throttling retried) as ever.
/// A successful body that cannot be read is a response error (retried as such), never a
/// short page: the SDK's decoder, by contrast, returns the instances before a cut.
#[derive(Debug)]
struct CompactResponse {
    /// The SDK's configuration for DescribeInstances, which holds its decoder.
    sdk: FrozenLayer,
    page: Arc<Mutex<Option<ec2_xml::Page>>>,
}

impl DeserializeResponse for CompactResponse {
    fn deserialize_nonstreaming_with_config(
        &self,
        response: &HttpResponse,
        cfg: &ConfigBag,
    ) -> Result<Output, OrchestratorError<OperationError>> {
        if !response.status().is_success() {
            return match self.sdk.load::<SharedResponseDeserializer>() {
                Some(sdk) => sdk.deserialize_nonstreaming_with_config(response, cfg),
                None => Err(OrchestratorError::other(
                    "the SDK's DescribeInstances has no response decoder",
                )),
            };
        }
        let unreadable = |e: ec2_xml::XmlError| {
            OrchestratorError::response(format!("unreadable DescribeInstances answer: {e}").into())
        };
        let body = response
            .body()
            .bytes()
            .ok_or_else(|| unreadable(ec2_xml::XmlError::from("the body was not read".to_string())))?;
        let page = ec2_xml::parse(body).map_err(unreadable)?;
        let next = page.next_token.clone();
        *self
            .page
            .lock()
            .map_err(|_| OrchestratorError::other("the page slot is poisoned"))? = Some(page);
        Ok(Output::erase(
            DescribeInstancesOutput::builder().set_next_token(next).build(),
        ))
    }
}

impl InstanceApi for AwsScope {
    async fn list_instances(&self, tag_keys: &[String]) -> Result<Vec<Instance>, CloudError> {
        let mut filters = vec![
            Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .values("stopping")
                .values("stopped")
                .build(),
        ];
        if !tag_keys.is_empty() {
            filters.push(
                Filter::builder()
                    .name("tag-key")
                    .set_values(Some(tag_keys.to_vec()))
                    .build(),
            );
        }
        // Each page is read straight into offhours' compact view (see `ec2_xml`) and
        // dropped: peak memory is one page (at most 1,000 instances), not the whole region.
        let mut out: Vec<Instance> = Vec::new();
        let mut spot_requests: Vec<(usize, String)> = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let compact = Arc::new(Mutex::new(None));
            let sdk_page = self
                .ec2
                .describe_instances()
                .set_filters(Some(filters.clone()))
                .max_results(1000)
                .set_next_token(token.clone())
                .customize()
                .interceptor(CompactDescribe(compact.clone()))
                .send()
                .await
                .map_err(|e| classify("DescribeInstances", e))?;
            let page = compact
                .lock()
                .ok()
                .and_then(|mut p| p.take())
                .ok_or_else(|| CloudError {
                    operation: "DescribeInstances".to_string(),
                    kind: ErrorKind::Other,
                    message: format!("a page came back without being read ({sdk_page:?})"),
                    source: None,
                })?;
            for (instance, spot) in page.instances {
                if let Some(req) = spot {
                    spot_requests.push((out.len(), req));
                }
                out.push(instance);
            }
            match page.next_token.filter(|t| !t.is_empty()) {
                Some(next) if token.as_ref() == Some(&next) => {
                    return Err(CloudError {
                        operation: "DescribeInstances".to_string(),
                        kind: ErrorKind::Other,
                        message: format!("the same page token came back twice ({next}): the list would never end"),
                        source: None,
                    });
                }
                Some(next) => token = Some(next),
                None => break,
            }
        }
        // One call for the type (one-time or persistent) of every spot request seen.
        if !spot_requests.is_empty() {
            let mut persistent = std::collections::HashSet::new();
            let mut pages = self
                .ec2
                .describe_spot_instance_requests()
                .set_spot_instance_request_ids(Some(spot_requests.iter().map(|(_, r)| r.clone()).collect()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| classify("DescribeSpotInstanceRequests", e))?;
                for r in page.spot_instance_requests() {
                    if let (Some(id), Some(SpotInstanceType::Persistent)) = (r.spot_instance_request_id(), r.r#type()) {
                        persistent.insert(id.to_string());
                    }
                }
            }
            for (at, req) in &spot_requests {
                if persistent.contains(req) {
                    out[*at].market = Market::PersistentSpot;
                }
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out.dedup_by(|a, b| a.id == b.id);
        Ok(out)
    }

    async fn stop_instances(&self, ids: &[String], hibernate: bool) -> Result<(), CloudError> {
        let mut req = self.ec2.stop_instances().set_instance_ids(Some(ids.to_vec()));
        if hibernate {
            req = req.hibernate(true);
        }
        req.send().await.map_err(|e| classify("StopInstances", e))?;
        Ok(())
    }

    async fn start_instances(&self, ids: &[String]) -> Result<(), CloudError> {
        self.ec2
            .start_instances()
            .set_instance_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| classify("StartInstances", e))?;
        Ok(())
    }

    async fn tag_instances(&self, ids: &[String], tags: &BTreeMap<String, String>) -> Result<(), CloudError> {
        let tags: Vec<Tag> = tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.ec2
            .create_tags()
            .set_resources(Some(ids.to_vec()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("CreateTags", e))?;
        Ok(())
    }

    async fn untag_instances(&self, ids: &[String], keys: &[String]) -> Result<(), CloudError> {
        let tags: Vec<Tag> = keys.iter().map(|k| Tag::builder().key(k).build()).collect();
        self.ec2
            .delete_tags()
            .set_resources(Some(ids.to_vec()))
            .set_tags(Some(tags))
            .send()
            .await
            .map_err(|e| classify("DeleteTags", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ec2::types::{
        DeviceType, HibernationOptions, InstanceLifecycleType, InstanceState as Ec2State, InstanceStateName,
        SpotInstanceType,
    };
    use chrono::DateTime;
    use std::collections::HashMap;

    use crate::model::InstanceState;

    fn state(s: Option<&InstanceStateName>) -> InstanceState {
        match s {
            Some(InstanceStateName::Pending) => InstanceState::Pending,
            Some(InstanceStateName::Running) => InstanceState::Running,
            Some(InstanceStateName::Stopping) => InstanceState::Stopping,
            Some(InstanceStateName::Stopped) => InstanceState::Stopped,
            _ => InstanceState::Other,
        }
    }

    /// Maps one instance as the SDK decodes it to offhours' view; `spot` gives each spot
    /// request's type. Passes read pages with `ec2_xml`; this is its oracle in the tests.
    pub(super) fn to_instance(i: &aws_sdk_ec2::types::Instance, spot: &HashMap<String, SpotInstanceType>) -> Instance {
        let market = match (i.instance_lifecycle(), i.spot_instance_request_id()) {
            (Some(InstanceLifecycleType::Spot), Some(req)) => match spot.get(req) {
                Some(SpotInstanceType::Persistent) => Market::PersistentSpot,
                _ => Market::OneTimeSpot,
            },
            (Some(InstanceLifecycleType::Spot), None) => Market::OneTimeSpot,
            _ => Market::OnDemand,
        };
        Instance {
            id: i.instance_id().unwrap_or_default().to_string(),
            state: state(i.state().and_then(|s| s.name())),
            launched: i.launch_time().and_then(|t| DateTime::from_timestamp(t.secs(), 0)),
            tags: i
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_string(), t.value().unwrap_or_default().to_string())))
                .collect(),
            market,
            instance_store_root: i.root_device_type() == Some(&DeviceType::InstanceStore),
            hibernation: i.hibernation_options().and_then(|h| h.configured()).unwrap_or(false),
            instance_type: i.instance_type().map(|t| t.as_str().to_string()),
            state_reason: i.state_reason().map(|r| crate::model::StateReason {
                code: r.code().unwrap_or_default().to_string(),
                message: r.message().unwrap_or_default().to_string(),
            }),
        }
    }

    fn described() -> aws_sdk_ec2::types::builders::InstanceBuilder {
        aws_sdk_ec2::types::Instance::builder()
            .instance_id("i-1")
            .state(Ec2State::builder().name(InstanceStateName::Running).build())
            .tags(Tag::builder().key("Schedule").value("office-hours").build())
    }

    #[test]
    fn instance_store_roots_spot_requests_and_hibernation_are_read() {
        let spot = HashMap::from([
            ("sir-p".to_string(), SpotInstanceType::Persistent),
            ("sir-o".to_string(), SpotInstanceType::OneTime),
        ]);
        let store = to_instance(&described().root_device_type(DeviceType::InstanceStore).build(), &spot);
        assert!(store.instance_store_root);
        assert_eq!(store.market, Market::OnDemand);
        assert_eq!(store.tags["Schedule"], "office-hours");
        let ebs = to_instance(&described().root_device_type(DeviceType::Ebs).build(), &spot);
        assert!(!ebs.instance_store_root);
        let spot_of = |req: &str| {
            to_instance(
                &described()
                    .instance_lifecycle(InstanceLifecycleType::Spot)
                    .spot_instance_request_id(req)
                    .build(),
                &spot,
            )
            .market
        };
        assert_eq!(spot_of("sir-p"), Market::PersistentSpot);
        assert_eq!(spot_of("sir-o"), Market::OneTimeSpot);
        assert_eq!(
            spot_of("sir-unknown"),
            Market::OneTimeSpot,
            "unknown request type: assume it would be lost"
        );
        let hib = to_instance(
            &described()
                .hibernation_options(HibernationOptions::builder().configured(true).build())
                .build(),
            &spot,
        );
        assert!(hib.hibernation);
        assert_eq!(hib.state, InstanceState::Running);
    }
}

/// The compact DescribeInstances reader against the SDK's own decoder, on the same bytes,
/// through an SDK client whose HTTP client answers with a canned response.
#[cfg(test)]
mod compact_tests {
    use super::*;
    use crate::model::InstanceState;
    use aws_sdk_ec2::config::{BehaviorVersion, Credentials, Region};
    use aws_smithy_runtime_api::client::http::{
        HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
    };
    use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::display::DisplayErrorContext;
    use chrono::DateTime;
    use proptest::prelude::*;

    const MOTO: &str = include_str!("../../tests/data/describe-instances-moto.xml");
    const AWS: &str = include_str!("../../tests/data/describe-instances-aws.xml");

    /// Answers every request with one status and body.
    #[derive(Debug, Clone)]
    struct Canned(u16, String);

    impl HttpConnector for Canned {
        fn call(&self, _request: HttpRequest) -> HttpConnectorFuture {
            let status = self.0.try_into().expect("a valid status");
            HttpConnectorFuture::ready(Ok(HttpResponse::new(status, SdkBody::from(self.1.clone()))))
        }
    }

    impl HttpClient for Canned {
        fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
            SharedHttpConnector::new(self.clone())
        }
    }

    fn client(status: u16, body: &str) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::from_conf(
            aws_sdk_ec2::Config::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(Region::new("us-east-1"))
                .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
                .retry_config(aws_sdk_ec2::config::retry::RetryConfig::disabled())
                .http_client(Canned(status, body.to_string()))
                .build(),
        )
    }

    /// Maps a page the SDK decoded, as [`ec2_xml::parse`] would read it.
    fn page_from_sdk(out: &DescribeInstancesOutput) -> ec2_xml::Page {
        use aws_sdk_ec2::types::InstanceLifecycleType;
        let none = std::collections::HashMap::new();
        ec2_xml::Page {
            instances: out
                .reservations()
                .iter()
                .flat_map(|r| r.instances())
                .map(|i| {
                    let spot = (i.instance_lifecycle() == Some(&InstanceLifecycleType::Spot))
                        .then(|| i.spot_instance_request_id().map(str::to_string))
                        .flatten();
                    (super::tests::to_instance(i, &none), spot)
                })
                .collect(),
            next_token: out.next_token().map(str::to_string),
        }
    }

    /// The page as the SDK's decoder reads it.
    async fn by_sdk(body: &str) -> Result<ec2_xml::Page, String> {
        client(200, body)
            .describe_instances()
            .send()
            .await
            .map(|out| page_from_sdk(&out))
            .map_err(|e| DisplayErrorContext(e).to_string())
    }

    /// The page as a call through [`CompactDescribe`] reads it: (compact page, the SDK's output).
    async fn by_compact(
        status: u16,
        body: &str,
    ) -> Result<(Option<ec2_xml::Page>, DescribeInstancesOutput), CloudError> {
        let slot = Arc::new(Mutex::new(None));
        let out = client(status, body)
            .describe_instances()
            .customize()
            .interceptor(CompactDescribe(slot.clone()))
            .send()
            .await
            .map_err(|e| classify("DescribeInstances", e))?;
        let page = slot.lock().unwrap().take();
        Ok((page, out))
    }

    #[tokio::test]
    async fn compact_reader_agrees_with_the_sdk_on_moto_and_aws_pages() {
        for body in [MOTO, AWS] {
            let compact = ec2_xml::parse(body.as_bytes()).unwrap();
            assert_eq!(compact, by_sdk(body).await.unwrap());
            let (slot, out) = by_compact(200, body).await.unwrap();
            assert_eq!(slot.as_ref(), Some(&compact), "the call's page is the compact reader's");
            assert!(out.reservations().is_empty(), "the SDK did not build the instances");
            assert_eq!(out.next_token(), compact.next_token.as_deref());
        }
        let moto = ec2_xml::parse(MOTO.as_bytes()).unwrap();
        assert_eq!(moto.instances.len(), 2);
        assert_eq!(moto.next_token.as_deref(), Some("r-03ac4fdeb0029c37d"));
    }

    #[test]
    fn compact_reader_keeps_the_instance_s_own_fields_only() {
        let page = ec2_xml::parse(AWS.as_bytes()).unwrap();
        let ids: Vec<&str> = page.instances.iter().map(|(i, _)| i.id.as_str()).collect();
        assert_eq!(ids, ["i-1234567890abcdef0", "i-0spot", "i-0store", "i-0gone"]);
        let (first, spot) = &page.instances[0];
        assert_eq!(*spot, None);
        assert_eq!(first.state, InstanceState::Running);
        assert_eq!(
            first.tags["Schedule"], "office-hours",
            "not the network interface's tag"
        );
        assert_eq!(first.tags["Owner"], "R&D <platform> & & \"dev\" café");
        assert_eq!(first.tags["empty"], "");
        assert_eq!(first.tags["no-value"], "");
        assert_eq!(
            first.tags.len(),
            4,
            "a value without a key is dropped: {:?}",
            first.tags
        );
        assert_eq!(first.launched.unwrap().to_rfc3339(), "2026-11-02T08:21:37+00:00");
        assert_eq!(first.instance_type.as_deref(), Some("t2.micro"));
        assert!(!first.hibernation && !first.instance_store_root);
        assert_eq!(first.market, Market::OnDemand);
        let (spot, req) = &page.instances[1];
        assert_eq!(req.as_deref(), Some("sir-0persist"));
        assert_eq!(
            spot.market,
            Market::OneTimeSpot,
            "persistent only once the request is known"
        );
        assert_eq!(spot.state, InstanceState::Stopped);
        assert!(spot.hibernation);
        let (store, req) = &page.instances[2];
        assert_eq!(*req, None, "a capacity block is not spot");
        assert_eq!(store.market, Market::OnDemand);
        assert!(store.instance_store_root);
        assert_eq!(store.state, InstanceState::Stopping);
        assert_eq!(
            store.launched.unwrap().timestamp_subsec_nanos(),
            0,
            "seconds, as the SDK path keeps"
        );
        assert_eq!(page.instances[3].0.state, InstanceState::Other);
        assert_eq!(page.next_token.as_deref(), Some("eyJ2IjoiMiIsImMiOiJ0b2tlbiJ9"));
    }

    #[tokio::test]
    async fn service_errors_and_unreadable_bodies_go_to_the_sdk_decoder() {
        let throttled = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>\
            <Message>Request limit exceeded.</Message></Error></Errors><RequestID>r-1</RequestID></Response>";
        let e = by_compact(503, throttled).await.unwrap_err();
        assert_eq!(e.kind, ErrorKind::Throttled, "{e}");
        assert!(e.message.contains("Request limit exceeded"), "{e}");
        // A body cut short is an error, never an empty or short page.
        for cut in [AWS.len() / 2, AWS.len() - 30, 60] {
            let body = &AWS[..cut];
            assert!(ec2_xml::parse(body.as_bytes()).is_err());
            let e = by_compact(200, body).await.unwrap_err();
            assert_eq!(e.operation, "DescribeInstances");
        }
        // Not a DescribeInstances answer at all.
        let other = "<DescribeVolumesResponse><volumeSet/></DescribeVolumesResponse>";
        assert!(
            ec2_xml::parse(other.as_bytes())
                .unwrap_err()
                .to_string()
                .contains("DescribeVolumesResponse")
        );
        assert!(by_compact(200, other).await.is_err());
    }

    /// One generated instance: the fields offhours reads, each possibly absent.
    #[derive(Debug, Clone)]
    struct Gen {
        id: String,
        state: Option<&'static str>,
        launch: Option<(i64, u32)>,
        tags: Vec<(Option<String>, Option<String>)>,
        lifecycle: Option<&'static str>,
        spot_request: Option<String>,
        root: Option<&'static str>,
        hibernation: Option<bool>,
        instance_type: Option<String>,
        reason: Option<(Option<String>, Option<String>)>,
    }

    fn text() -> impl Strategy<Value = String> {
        // Characters XML 1.0 can carry: others (control characters, U+FFFE/U+FFFF) become
        // U+FFFD rather than being filtered out, so that long runs never run dry.
        let ch = any::<char>().prop_map(|c| {
            if matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}') {
                '\u{fffd}'
            } else {
                c
            }
        });
        prop_oneof![
            prop::collection::vec(ch, 0..12).prop_map(String::from_iter),
            "[a-z:&<>\"' -]{0,10}",
        ]
    }

    fn instance() -> impl Strategy<Value = Gen> {
        let state = prop::option::of(prop::sample::select(vec![
            "pending",
            "running",
            "stopping",
            "stopped",
            "shutting-down",
            "terminated",
            "Running",
        ]));
        let lifecycle = prop::option::of(prop::sample::select(vec!["spot", "scheduled", "capacity-block"]));
        let root = prop::option::of(prop::sample::select(vec!["ebs", "instance-store"]));
        let tags = prop::collection::vec((prop::option::of(text()), prop::option::of(text())), 0..5);
        (
            "i-[0-9a-f]{8,17}",
            state,
            prop::option::of((0i64..4_102_444_800, 0u32..1000)),
            tags,
            lifecycle,
            prop::option::of("sir-[0-9a-z]{8}"),
            root,
            prop::option::of(any::<bool>()),
            prop::option::of("[a-z0-9]{2,4}\\.[a-z0-9]{4,8}"),
            prop::option::of((prop::option::of("[A-Za-z.]{1,30}"), prop::option::of(text()))),
        )
            .prop_map(
                |(id, state, launch, tags, lifecycle, spot_request, root, hibernation, instance_type, reason)| Gen {
                    id,
                    state,
                    launch,
                    tags,
                    lifecycle,
                    spot_request,
                    root,
                    hibernation,
                    instance_type,
                    reason,
                },
            )
    }

    /// Writes text escaped in one of several legal ways, chosen by `style` and position.
    fn escaped(s: &str, style: u32) -> String {
        let mut out = String::new();
        for (n, c) in s.chars().enumerate() {
            let pick = (style.wrapping_mul(31).wrapping_add(n as u32 * 7)) % 4;
            match (c, pick) {
                ('&', 0) => out.push_str("&amp;"),
                ('&', 1) => out.push_str("&#38;"),
                ('&', _) => out.push_str("&#x26;"),
                ('<', 0 | 1) => out.push_str("&lt;"),
                ('<', _) => out.push_str("&#60;"),
                ('>', 0) => out.push_str("&gt;"),
                ('"', 1) => out.push_str("&quot;"),
                ('\'', 2) => out.push_str("&apos;"),
                (c, 3) => out.push_str(&format!("&#x{:x};", c as u32)),
                (c, _) => out.push(c),
            }
        }
        out
    }

    /// A DescribeInstances body for `reservations`, with look-alike elements in subtrees
    /// that are not the instance's own, compact or indented.
    fn body(reservations: &[Vec<Gen>], next: Option<&str>, style: u32) -> String {
        let nl = if style.is_multiple_of(2) { "" } else { "\n    " };
        let leaf = |name: &str, value: &str| {
            if value.is_empty() && style.is_multiple_of(3) {
                format!("<{name}/>{nl}")
            } else {
                format!("<{name}>{}</{name}>{nl}", escaped(value, style))
            }
        };
        let mut x = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<DescribeInstancesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">{nl}<requestId>req</requestId>{nl}"
        );
        if style.is_multiple_of(5)
            && let Some(t) = next
        {
            x += &leaf("nextToken", t);
        }
        x += &format!("<reservationSet>{nl}");
        for r in reservations {
            x += &format!("<item>{nl}<reservationId>r-1</reservationId>{nl}<groupSet/>{nl}<instancesSet>{nl}");
            for i in r {
                x += &format!("<item>{nl}<!-- an instance -->{nl}");
                x += &format!(
                    "<networkInterfaceSet><item><instanceId>i-decoy</instanceId><tagSet><item><key>Schedule</key><value>decoy</value></item></tagSet></item></networkInterfaceSet>{nl}"
                );
                x += &leaf("instanceId", &i.id);
                x += "<placement><availabilityZone>us-east-1a</availabilityZone><name>decoy</name></placement>";
                if let Some(s) = i.state {
                    x += &format!(
                        "<instanceState>{nl}<code>16</code>{nl}{}</instanceState>{nl}",
                        leaf("name", s)
                    );
                }
                if let Some((secs, ms)) = i.launch {
                    let t = DateTime::from_timestamp(secs, ms * 1_000_000).unwrap();
                    let t = if ms % 3 == 0 {
                        t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
                    } else {
                        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
                    };
                    x += &leaf("launchTime", &t);
                }
                if !i.tags.is_empty() || style.is_multiple_of(7) {
                    x += &format!("<tagSet>{nl}");
                    for (k, v) in &i.tags {
                        x += &format!("<item>{nl}");
                        if let Some(k) = k {
                            x += &leaf("key", k);
                        }
                        if let Some(v) = v {
                            x += &leaf("value", v);
                        }
                        x += &format!("</item>{nl}");
                    }
                    x += &format!("</tagSet>{nl}");
                }
                if let Some(l) = i.lifecycle {
                    x += &leaf("instanceLifecycle", l);
                }
                if let Some(s) = &i.spot_request {
                    x += &leaf("spotInstanceRequestId", s);
                }
                if let Some(r) = i.root {
                    x += &leaf("rootDeviceType", r);
                }
                if let Some(h) = i.hibernation {
                    x += &format!(
                        "<hibernationOptions>{}</hibernationOptions>{nl}",
                        leaf("configured", &h.to_string())
                    );
                }
                if let Some(t) = &i.instance_type {
                    x += &leaf("instanceType", t);
                }
                if let Some((code, message)) = &i.reason {
                    x += &format!("<stateReason>{nl}");
                    if let Some(c) = code {
                        x += &leaf("code", c);
                    }
                    if let Some(m) = message {
                        x += &leaf("message", m);
                    }
                    x += &format!("</stateReason>{nl}");
                }
                x += &format!("<metadataOptions><state>applied</state></metadataOptions>{nl}</item>{nl}");
            }
            x += &format!("</instancesSet>{nl}</item>{nl}");
        }
        x += &format!("</reservationSet>{nl}");
        if !style.is_multiple_of(5)
            && let Some(t) = next
        {
            x += &leaf("nextToken", t);
        }
        x + "</DescribeInstancesResponse>\n"
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(300)))]
        #[test]
        fn compact_reader_matches_the_sdk_on_generated_pages(
            reservations in prop::collection::vec(prop::collection::vec(instance(), 0..4), 0..4),
            next in prop::option::of("[A-Za-z0-9+/=]{1,40}"),
            style in any::<u32>(),
        ) {
            let body = body(&reservations, next.as_deref(), style);
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let sdk = runtime.block_on(by_sdk(&body));
            let compact = ec2_xml::parse(body.as_bytes()).map_err(|e| e.to_string());
            prop_assert_eq!(&compact, &sdk, "{}", body);
            let page = compact.unwrap();
            prop_assert_eq!(page.instances.len(), reservations.iter().map(Vec::len).sum::<usize>());
            prop_assert!(page.instances.iter().all(|(i, _)| i.tags.get("Schedule").map(String::as_str) != Some("decoy")));
        }

        #[test]
        fn compact_reader_never_panics_on_mangled_pages(cut in 0usize..AWS.len(), len in 0usize..40, insert in "[ -~]{0,8}") {
            let mut text = AWS.to_string();
            let (a, b) = (cut, (cut + len).min(AWS.len()));
            if text.is_char_boundary(a) && text.is_char_boundary(b) {
                text.replace_range(a..b, &insert);
                if let Err(e) = ec2_xml::parse(text.as_bytes()) {
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }
}
