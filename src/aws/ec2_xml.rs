//! DescribeInstances pages read straight into offhours' view of an instance.
//!
//! The SDK's decoder builds all of an instance's fields (about sixty, with its network
//! interfaces, block devices and placement), matching each element's name against each
//! field's name in turn: at 1,000 instances a page that was most of a pass's CPU. This
//! reader keeps the eleven fields offhours uses and skips every other subtree unread. The
//! tests check it against the SDK's own decoder on the same bytes. A body it cannot read
//! (cut short, not well-formed, not a DescribeInstances answer) is an error, never a short
//! page; `ec2.rs` reports it as a response error, which the SDK retries.

use std::collections::BTreeMap;

use chrono::DateTime;
use quick_xml::Reader;
use quick_xml::events::Event;
use quick_xml::name::QName;

use crate::model::{Instance, InstanceState, Market};

/// One DescribeInstances page.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Page {
    /// Each instance, in the order described, with its spot request's id when it is a
    /// spot instance (one-time until the request is known to be persistent).
    pub instances: Vec<(Instance, Option<String>)>,
    /// The token of the next page.
    pub next_token: Option<String>,
}

/// Where the reader is: the elements on the way to the fields it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum At {
    Response,
    Reservations,
    Reservation,
    Instances,
    Instance,
    State,
    Tags,
    Tag,
    Hibernation,
    Reason,
}

/// The leaf elements whose text is kept.
#[derive(Debug, Clone, Copy)]
enum Leaf {
    NextToken,
    InstanceId,
    StateName,
    LaunchTime,
    TagKey,
    TagValue,
    Lifecycle,
    SpotRequest,
    RootDeviceType,
    HibernationConfigured,
    InstanceType,
    ReasonCode,
    ReasonMessage,
}

enum Step {
    Enter(At),
    Read(Leaf),
    Skip,
}

fn step(at: At, name: &str) -> Step {
    use Step::{Enter, Read, Skip};
    match (at, name) {
        (At::Response, "reservationSet") => Enter(At::Reservations),
        (At::Response, "nextToken") => Read(Leaf::NextToken),
        (At::Reservations, "item") => Enter(At::Reservation),
        (At::Reservation, "instancesSet") => Enter(At::Instances),
        (At::Instances, "item") => Enter(At::Instance),
        (At::Instance, "instanceId") => Read(Leaf::InstanceId),
        (At::Instance, "instanceState") => Enter(At::State),
        (At::Instance, "launchTime") => Read(Leaf::LaunchTime),
        (At::Instance, "tagSet") => Enter(At::Tags),
        (At::Instance, "instanceLifecycle") => Read(Leaf::Lifecycle),
        (At::Instance, "spotInstanceRequestId") => Read(Leaf::SpotRequest),
        (At::Instance, "rootDeviceType") => Read(Leaf::RootDeviceType),
        (At::Instance, "hibernationOptions") => Enter(At::Hibernation),
        (At::Instance, "instanceType") => Read(Leaf::InstanceType),
        (At::Instance, "stateReason") => Enter(At::Reason),
        (At::Reason, "code") => Read(Leaf::ReasonCode),
        (At::Reason, "message") => Read(Leaf::ReasonMessage),
        (At::State, "name") => Read(Leaf::StateName),
        (At::Tags, "item") => Enter(At::Tag),
        (At::Tag, "key") => Read(Leaf::TagKey),
        (At::Tag, "value") => Read(Leaf::TagValue),
        (At::Hibernation, "configured") => Read(Leaf::HibernationConfigured),
        _ => Skip,
    }
}

/// The fields of the instance being read, as the SDK would hold them.
#[derive(Default)]
struct Fields {
    id: Option<String>,
    state: Option<String>,
    launch_time: Option<String>,
    tags: BTreeMap<String, String>,
    tag: (Option<String>, Option<String>),
    lifecycle: Option<String>,
    spot_request: Option<String>,
    root_device_type: Option<String>,
    hibernation: Option<bool>,
    instance_type: Option<String>,
    /// (code, message) once a `stateReason` element is seen.
    reason: Option<(Option<String>, Option<String>)>,
}

impl Fields {
    fn finish(self) -> Result<(Instance, Option<String>), XmlError> {
        let launched = match self.launch_time {
            None => None,
            Some(t) => {
                let t = DateTime::parse_from_rfc3339(&t).map_err(|e| format!("launchTime {t:?}: {e}"))?;
                DateTime::from_timestamp(t.timestamp(), 0)
            }
        };
        let spot = self.lifecycle.as_deref() == Some("spot");
        let instance = Instance {
            id: self.id.unwrap_or_default(),
            state: match self.state.as_deref() {
                Some("pending") => InstanceState::Pending,
                Some("running") => InstanceState::Running,
                Some("stopping") => InstanceState::Stopping,
                Some("stopped") => InstanceState::Stopped,
                _ => InstanceState::Other,
            },
            launched,
            tags: self.tags,
            market: if spot { Market::OneTimeSpot } else { Market::OnDemand },
            instance_store_root: self.root_device_type.as_deref() == Some("instance-store"),
            hibernation: self.hibernation.unwrap_or(false),
            instance_type: self.instance_type,
            state_reason: self.reason.map(|(code, message)| crate::model::StateReason {
                code: code.unwrap_or_default(),
                message: message.unwrap_or_default(),
            }),
        };
        Ok((instance, self.spot_request.filter(|_| spot)))
    }
}

/// What could not be read in a DescribeInstances body (and where, when the XML is not
/// well-formed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct XmlError(String);

impl From<String> for XmlError {
    fn from(s: String) -> Self {
        XmlError(s)
    }
}

/// Reads one DescribeInstances response body. An error says what it could not read (and,
/// for XML that is not well-formed, at which byte).
pub(crate) fn parse(body: &[u8]) -> Result<Page, XmlError> {
    let body = std::str::from_utf8(body).map_err(|e| format!("not UTF-8: {e}"))?;
    let mut reader = Reader::from_str(body);
    reader.config_mut().expand_empty_elements = true;
    let mut page = Page::default();
    let mut stack: Vec<At> = Vec::with_capacity(8);
    let mut fields = Fields::default();
    let mut text = String::new();
    let mut closed = false;
    let at_err =
        |reader: &Reader<&[u8]>, e: &dyn std::fmt::Display| format!("at byte {}: {e}", reader.buffer_position());
    loop {
        match reader.read_event().map_err(|e| at_err(&reader, &e))? {
            Event::Start(e) => {
                let name = e.local_name();
                let Some(&at) = stack.last() else {
                    if closed {
                        return Err(XmlError(at_err(&reader, &"an element after the root element")));
                    }
                    if name.as_ref() != "DescribeInstancesResponse" {
                        return Err(XmlError(format!(
                            "root element is {:?}, not DescribeInstancesResponse",
                            name.as_ref()
                        )));
                    }
                    stack.push(At::Response);
                    continue;
                };
                match step(at, name.as_ref()) {
                    Step::Enter(next) => {
                        match next {
                            At::Instance => fields = Fields::default(),
                            At::Tag => fields.tag = (None, None),
                            At::Reason => fields.reason = Some((None, None)),
                            _ => {}
                        }
                        stack.push(next);
                    }
                    Step::Skip => {
                        reader.read_to_end(e.name()).map_err(|err| at_err(&reader, &err))?;
                    }
                    Step::Read(leaf) => {
                        read_text(&mut reader, e.name(), &mut text)?;
                        let value = std::mem::take(&mut text);
                        match leaf {
                            Leaf::NextToken => page.next_token = Some(value),
                            Leaf::InstanceId => fields.id = Some(value),
                            Leaf::StateName => fields.state = Some(value),
                            Leaf::LaunchTime => fields.launch_time = Some(value),
                            Leaf::TagKey => fields.tag.0 = Some(value),
                            Leaf::TagValue => fields.tag.1 = Some(value),
                            Leaf::Lifecycle => fields.lifecycle = Some(value),
                            Leaf::SpotRequest => fields.spot_request = Some(value),
                            Leaf::RootDeviceType => fields.root_device_type = Some(value),
                            Leaf::InstanceType => fields.instance_type = Some(value),
                            Leaf::ReasonCode => {
                                fields.reason.get_or_insert_default().0 = Some(value);
                            }
                            Leaf::ReasonMessage => {
                                fields.reason.get_or_insert_default().1 = Some(value);
                            }
                            Leaf::HibernationConfigured => {
                                fields.hibernation = Some(match value.as_str() {
                                    "true" => true,
                                    "false" => false,
                                    other => {
                                        return Err(XmlError(format!("hibernationOptions.configured is {other:?}")));
                                    }
                                });
                            }
                        }
                    }
                }
            }
            Event::End(_) => match stack.pop() {
                Some(At::Instance) => page.instances.push(std::mem::take(&mut fields).finish()?),
                Some(At::Tag) => {
                    if let (Some(key), value) = std::mem::take(&mut fields.tag) {
                        fields.tags.insert(key, value.unwrap_or_default());
                    }
                }
                Some(At::Response) => closed = true,
                Some(_) => {}
                None => {
                    return Err(XmlError(format!(
                        "at byte {}: unexpected end tag",
                        reader.buffer_position()
                    )));
                }
            },
            Event::Eof => {
                return if closed {
                    Ok(page)
                } else {
                    Err(XmlError("the document ends early".to_string()))
                };
            }
            // Text between elements (indentation), the declaration, comments.
            _ => {}
        }
    }
}

/// Reads a leaf element's text, entities resolved, up to its end tag.
fn read_text(reader: &mut Reader<&[u8]>, end: QName<'_>, text: &mut String) -> Result<(), XmlError> {
    text.clear();
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("at byte {}: {e}", reader.buffer_position()))?
        {
            // As written (no end-of-line normalisation), as the SDK's decoder reads it.
            Event::Text(t) => text.push_str(&t),
            Event::CData(t) => text.push_str(&t),
            Event::GeneralRef(r) => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| format!("&{};: {e}", r.as_ref()))? {
                    text.push(c);
                } else if let Some(s) = quick_xml::escape::resolve_predefined_entity(r.as_ref()) {
                    text.push_str(s);
                } else {
                    return Err(XmlError(format!("unknown entity &{};", r.as_ref())));
                }
            }
            Event::End(e) if e.name() == end => return Ok(()),
            Event::Start(e) => {
                return Err(XmlError(format!(
                    "element {:?} inside a text field",
                    e.local_name().as_ref()
                )));
            }
            Event::Eof => return Err(XmlError("the document ends inside a text field".to_string())),
            _ => {}
        }
    }
}
