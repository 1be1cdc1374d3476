//! Evaluates IAM-language policies (SCPs) against a request, as AWS documents the rules. Pure: no I/O.
//!
//! [`Policy::parse`] reads a policy document; [`evaluate`] decides one set of policies and
//! [`evaluate_scp_levels`] / [`evaluate_scp_targets`] decide the SCP hierarchy (account, each OU,
//! root). The `iam-rs` crate (0.8) was considered and not used: it matches `ArnLike` over the whole
//! string rather than per ARN component, and treats a plain operator on a multivalued key as
//! `ForAnyValue`; both contradict the pages below.
//!
//! What is implemented, and the AWS documentation page that says so:
//!
//! - **Statements.** `Effect` `Allow`/`Deny`; `Action` or `NotAction`; `Resource` or `NotResource`;
//!   `Condition`. A statement applies when its action element, its resource element and every
//!   condition match. *IAM JSON policy elements: Action*, *…: NotAction*, *…: Resource*,
//!   *…: NotResource*.
//! - **Action names** are matched case-insensitively, with `*` and `?` wildcards (*SCP syntax*:
//!   actions are case-insensitive). **Resources** are matched case-sensitively, `*` and `?`
//!   working within each colon-separated ARN segment, the last segment (the resource part) taking
//!   the rest of the ARN; `"*"` matches every resource (*IAM JSON policy elements: Resource*).
//! - **Condition logic.** Several operators are AND-ed, several keys under one operator are
//!   AND-ed, several values for one key are OR-ed, and for a negated operator (`StringNotEquals`,
//!   `StringNotEqualsIgnoreCase`, `StringNotLike`, `ArnNotEquals`, `ArnNotLike`) they are NOR-ed:
//!   true when the request value matches none of them (*Conditions with multiple context keys or
//!   values*).
//! - **Missing keys.** A key absent from the request makes a condition false, except that a
//!   negated operator is then true; `...IfExists` makes any condition true when its key is
//!   absent; `Null` tests presence (`true`: absent, `false`: present) and takes no `IfExists`
//!   (*IAM JSON policy elements: Condition operators*, its "Important" note and its sections on
//!   `...IfExists` and the Null check). A key given with no values counts as absent, as the
//!   "empty data set" of the set-operator pages does.
//! - **Operators.** `StringEquals` (exact, case-sensitive), `StringEqualsIgnoreCase`, `StringLike`
//!   (`*` and `?`, case-sensitive), their `Not` forms; `ArnEquals` and `ArnLike`, which "behave
//!   identically": each of the six components `arn:partition:service:region:account:resource` is
//!   matched separately with `*` and `?`, so a `*` never crosses a colon except inside the resource
//!   part; `ArnNotEquals`/`ArnNotLike` are their negations; `Bool` (`true`/`false`); `Null`
//!   (*IAM JSON policy elements: Condition operators*). Numeric, date, IP and binary operators are
//!   not implemented: a policy using them fails to parse with [`PolicyError::Unsupported`] rather
//!   than being evaluated wrongly.
//! - **Set operators.** `ForAnyValue:` is true when at least one request value satisfies the
//!   operator; `ForAllValues:` when every one does. Over a missing or empty set `ForAllValues:` is
//!   true and `ForAnyValue:` is false (*Single-valued vs. multivalued context keys*). A
//!   single-valued key used with a set operator is a set of one.
//! - **Plain operators on a multivalued key** (a key given more than one value, or one of the global
//!   multivalued keys in [`MULTIVALUED_KEYS`]) never match, negated operators included: "multivalued
//!   context keys require a condition set operator" (*Single-valued vs. multivalued context keys*;
//!   *AWS global condition context keys* says a condition compared with several request values
//!   must use `ForAllValues` or `ForAnyValue`).
//! - **Key names are case-insensitive, the tag-key part included**: `aws:RequestTag/Schedule`
//!   finds a request key `aws:requesttag/schedule` (*IAM JSON policy elements: Condition*: a
//!   condition on `aws:ResourceTag/TagKey1` matches a tag key named `TagKey1` or `tagkey1`, "but
//!   not both"). Values keep the case rules of their operator, so tag keys given as *values*
//!   (`aws:TagKeys`) compare case-sensitively under `StringEquals`. When a request holds several
//!   keys that differ only by case, the exact spelling wins, else the first in sorted order.
//! - **Decisions.** An explicit deny in any policy overrides every allow; without an applicable
//!   allow the request is implicitly denied (*Policy evaluation logic*). For SCPs every level of
//!   the hierarchy (the account, each OU above it, the root) must have an applicable allow, and a
//!   deny at any level denies (*SCP evaluation*).
//! - **Not implemented:** policy variables (`${...}`) in a `2012-10-17` policy are rejected with
//!   [`PolicyError::Unsupported`]; `Principal` and `NotPrincipal`, which SCPs do not accept, are
//!   rejected as invalid.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde_json::{Map, Value};

/// Global condition keys that AWS documents as multivalued: a plain (non-set) operator never
/// matches them, whatever the number of values the request carries.
pub const MULTIVALUED_KEYS: &[&str] = &[
    "aws:TagKeys",
    "aws:CalledVia",
    "aws:PrincipalOrgPaths",
    "aws:PrincipalServiceNamesList",
];

/// Why a policy document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The text is not JSON.
    #[error("the policy is not valid JSON: {message}")]
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the JSON parser said, position included.
        message: String,
    },
    /// The JSON is not a valid policy.
    #[error("{path}: {message}")]
    Invalid {
        /// Where in the document, e.g. `Statement[1].Condition.StringEquals`.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// Valid IAM policy language that this evaluator does not implement.
    #[error("{path}: {what} is not supported by this evaluator")]
    Unsupported {
        /// Where in the document.
        path: String,
        /// The construct, e.g. `the condition operator NumericLessThan`.
        what: String,
    },
}

/// `Allow` or `Deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The statement allows what it matches.
    Allow,
    /// The statement denies what it matches.
    Deny,
}

/// A parsed, validated policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    version: Option<String>,
    id: Option<String>,
    statements: Vec<Statement>,
}

/// One statement of a [`Policy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    sid: Option<String>,
    effect: Effect,
    actions: Patterns,
    resources: Patterns,
    conditions: Vec<Condition>,
}

/// The request being decided.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    /// The action, e.g. `ec2:RunInstances` (matched case-insensitively).
    pub action: String,
    /// The resource ARN, or `*`.
    pub resource: String,
    /// Condition keys and their values; a key absent from the request is absent from the map.
    /// Multivalued keys such as `aws:TagKeys` carry several values.
    pub context: BTreeMap<String, Vec<String>>,
}

/// How a statement is named in a [`Denial`]: its `Sid`, or its 0-based position in `Statement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementId {
    /// The statement's `Sid`.
    Sid(String),
    /// The 0-based index of a statement without a `Sid`.
    Index(usize),
}

/// The outcome of evaluating a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed: no statement denies and (at every level) some statement allows.
    Allow,
    /// Denied, explicitly or implicitly.
    Deny(Denial),
}

/// Why a request was denied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// A `Deny` statement applies.
    Explicit {
        /// The policy holding the statement.
        policy: String,
        /// The statement.
        statement: StatementId,
        /// A sentence for people.
        reason: String,
    },
    /// No `Allow` statement applies (at the level named by `scope`).
    Implicit {
        /// What had no applicable allow: a target such as `ou-ab12-cdef3456`, or a description.
        scope: String,
        /// A sentence for people.
        reason: String,
    },
}

impl Policy {
    /// Reads a policy document. Never panics; every malformed input is an error naming where.
    ///
    /// Rejected: invalid JSON; unknown elements (`Principal` included, which SCPs do not accept);
    /// a statement without exactly one of `Action`/`NotAction` and one of `Resource`/`NotResource`;
    /// empty lists; unknown condition operators or malformed values (`Null`/`Bool` need
    /// `true`/`false`, ARN operators need six-component ARN patterns). Numeric, date, IP and
    /// binary operators and policy variables are [`PolicyError::Unsupported`].
    pub fn parse(text: &str) -> Result<Policy, PolicyError> {
        let value: Value = serde_json::from_str(text).map_err(|e| PolicyError::Json {
            line: e.line(),
            column: e.column(),
            message: e.to_string(),
        })?;
        let Value::Object(top) = value else {
            return Err(invalid("(document)", "a policy must be a JSON object"));
        };
        if let Some(key) = top
            .keys()
            .find(|k| !matches!(k.as_str(), "Version" | "Id" | "Statement"))
        {
            return Err(invalid(
                key,
                "unknown element; a policy has only Version, Id and Statement",
            ));
        }
        let version = optional_string(&top, "Version", "Version")?;
        if let Some(v) = &version
            && v != "2012-10-17"
            && v != "2008-10-17"
        {
            return Err(invalid(
                "Version",
                format!("`{v}` is not a policy language version; use 2012-10-17"),
            ));
        }
        let id = optional_string(&top, "Id", "Id")?;
        // Policy variables exist only in the 2012-10-17 language; before it `${` is literal.
        let variables = version.as_deref() == Some("2012-10-17");
        let statements = match top.get("Statement") {
            None => return Err(invalid("Statement", "missing; a policy needs at least one statement")),
            Some(Value::Object(st)) => vec![Statement::parse("Statement", st, variables)?],
            Some(Value::Array(items)) if items.is_empty() => {
                return Err(invalid("Statement", "empty; a policy needs at least one statement"));
            }
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = format!("Statement[{i}]");
                    match item {
                        Value::Object(st) => Statement::parse(&path, st, variables),
                        _ => Err(invalid(&path, "a statement must be a JSON object")),
                    }
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(invalid("Statement", "must be an object or an array of objects")),
        };
        Ok(Policy {
            version,
            id,
            statements,
        })
    }

    /// The `Version` element, if given.
    #[must_use]
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// The `Id` element, if given.
    #[must_use]
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The statements, in document order.
    #[must_use]
    pub fn statements(&self) -> &[Statement] {
        &self.statements
    }

    /// The first statement with `effect` that applies to `req`, with its index.
    fn first_applying(&self, effect: Effect, req: &Request) -> Option<(usize, &Statement)> {
        self.statements
            .iter()
            .enumerate()
            .find(|(_, s)| s.effect == effect && s.applies(req))
    }
}

impl FromStr for Policy {
    type Err = PolicyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Policy::parse(s)
    }
}

impl Statement {
    /// The `Sid`, if given.
    #[must_use]
    pub fn sid(&self) -> Option<&str> {
        self.sid.as_deref()
    }

    /// `Allow` or `Deny`.
    #[must_use]
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether the statement's action, resource and conditions all match `req`.
    #[must_use]
    pub fn applies(&self, req: &Request) -> bool {
        self.actions.matches(&req.action, action_matches)
            && self.resources.matches(&req.resource, resource_matches)
            && self.conditions.iter().all(|c| c.holds(&req.context))
    }

    fn id_at(&self, index: usize) -> StatementId {
        match &self.sid {
            Some(sid) if !sid.is_empty() => StatementId::Sid(sid.clone()),
            _ => StatementId::Index(index),
        }
    }

    fn parse(path: &str, st: &Map<String, Value>, variables: bool) -> Result<Statement, PolicyError> {
        for key in st.keys() {
            match key.as_str() {
                "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" | "Condition" => {}
                "Principal" | "NotPrincipal" => {
                    return Err(invalid(
                        format!("{path}.{key}"),
                        "service control policies take no principal: they apply to every principal in the account",
                    ));
                }
                _ => {
                    return Err(invalid(
                        format!("{path}.{key}"),
                        "unknown element; a statement has Sid, Effect, Action or NotAction, Resource or NotResource, and Condition",
                    ));
                }
            }
        }
        let sid = optional_string(st, "Sid", &format!("{path}.Sid"))?;
        let effect = match st.get("Effect") {
            Some(Value::String(e)) if e == "Allow" => Effect::Allow,
            Some(Value::String(e)) if e == "Deny" => Effect::Deny,
            Some(_) => return Err(invalid(format!("{path}.Effect"), "must be \"Allow\" or \"Deny\"")),
            None => {
                return Err(invalid(
                    format!("{path}.Effect"),
                    "missing; must be \"Allow\" or \"Deny\"",
                ));
            }
        };
        let actions = Patterns::parse(path, st, "Action", "NotAction", |p, a| {
            if a == "*" || a.split_once(':').is_some_and(|(service, _)| !service.is_empty()) {
                Ok(())
            } else {
                Err(invalid(
                    p,
                    format!("`{a}` is not an action: write service:Action, e.g. ec2:RunInstances, or *"),
                ))
            }
        })?;
        let resources = Patterns::parse(path, st, "Resource", "NotResource", |p, r| {
            if variables && r.contains("${") {
                return Err(unsupported(p, format!("the policy variable in `{r}`")));
            }
            if r == "*" || arn_parts(r).is_some() {
                Ok(())
            } else {
                Err(invalid(
                    p,
                    format!("`{r}` is neither * nor an ARN (arn:partition:service:region:account:resource)"),
                ))
            }
        })?;
        let conditions = match st.get("Condition") {
            None => Vec::new(),
            Some(Value::Object(block)) => Condition::parse_block(&format!("{path}.Condition"), block, variables)?,
            Some(_) => {
                return Err(invalid(
                    format!("{path}.Condition"),
                    "must be an object: { operator: { key: value } }",
                ));
            }
        };
        Ok(Statement {
            sid,
            effect,
            actions,
            resources,
            conditions,
        })
    }
}

/// `Action`/`NotAction` or `Resource`/`NotResource`: the patterns and whether they are negated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Patterns {
    not: bool,
    patterns: Vec<String>,
}

impl Patterns {
    fn parse(
        path: &str,
        st: &Map<String, Value>,
        plain: &str,
        not: &str,
        check: impl Fn(&str, &str) -> Result<(), PolicyError>,
    ) -> Result<Patterns, PolicyError> {
        let (negated, name, value) = match (st.get(plain), st.get(not)) {
            (Some(v), None) => (false, plain, v),
            (None, Some(v)) => (true, not, v),
            (Some(_), Some(_)) => return Err(invalid(path, format!("has both {plain} and {not}; use one"))),
            (None, None) => return Err(invalid(path, format!("needs {plain} or {not}"))),
        };
        let path = format!("{path}.{name}");
        let patterns = match value {
            Value::String(s) => vec![s.clone()],
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| invalid(&path, "every entry must be a string"))?,
            _ => return Err(invalid(&path, "must be a string or a non-empty array of strings")),
        };
        for p in &patterns {
            check(&path, p)?;
        }
        Ok(Patterns { not: negated, patterns })
    }

    fn matches(&self, value: &str, one: fn(&str, &str) -> bool) -> bool {
        self.patterns.iter().any(|p| one(p, value)) != self.not
    }
}

/// A condition operator without its set qualifier and `IfExists` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Base {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Bool,
    Null,
}

impl Base {
    const ALL: [Base; 12] = [
        Base::StringEquals,
        Base::StringNotEquals,
        Base::StringEqualsIgnoreCase,
        Base::StringNotEqualsIgnoreCase,
        Base::StringLike,
        Base::StringNotLike,
        Base::ArnEquals,
        Base::ArnLike,
        Base::ArnNotEquals,
        Base::ArnNotLike,
        Base::Bool,
        Base::Null,
    ];

    /// Documented operators this evaluator does not implement.
    const UNSUPPORTED: [&'static str; 15] = [
        "NumericEquals",
        "NumericNotEquals",
        "NumericLessThan",
        "NumericLessThanEquals",
        "NumericGreaterThan",
        "NumericGreaterThanEquals",
        "DateEquals",
        "DateNotEquals",
        "DateLessThan",
        "DateLessThanEquals",
        "DateGreaterThan",
        "DateGreaterThanEquals",
        "IpAddress",
        "NotIpAddress",
        "BinaryEquals",
    ];

    fn name(self) -> &'static str {
        match self {
            Base::StringEquals => "StringEquals",
            Base::StringNotEquals => "StringNotEquals",
            Base::StringEqualsIgnoreCase => "StringEqualsIgnoreCase",
            Base::StringNotEqualsIgnoreCase => "StringNotEqualsIgnoreCase",
            Base::StringLike => "StringLike",
            Base::StringNotLike => "StringNotLike",
            Base::ArnEquals => "ArnEquals",
            Base::ArnLike => "ArnLike",
            Base::ArnNotEquals => "ArnNotEquals",
            Base::ArnNotLike => "ArnNotLike",
            Base::Bool => "Bool",
            Base::Null => "Null",
        }
    }

    fn is_negated(self) -> bool {
        matches!(
            self,
            Base::StringNotEquals
                | Base::StringNotEqualsIgnoreCase
                | Base::StringNotLike
                | Base::ArnNotEquals
                | Base::ArnNotLike
        )
    }

    fn is_arn(self) -> bool {
        matches!(
            self,
            Base::ArnEquals | Base::ArnLike | Base::ArnNotEquals | Base::ArnNotLike
        )
    }

    /// The positive comparison of one policy value with one request value (negation is applied by
    /// the caller, across all policy values).
    fn compare(self, policy: &str, request: &str) -> bool {
        match self {
            Base::StringEquals | Base::StringNotEquals => policy == request,
            Base::StringEqualsIgnoreCase | Base::StringNotEqualsIgnoreCase => {
                policy.to_lowercase() == request.to_lowercase()
            }
            Base::StringLike | Base::StringNotLike => glob(policy, request),
            Base::ArnEquals | Base::ArnLike | Base::ArnNotEquals | Base::ArnNotLike => arn_like(policy, request),
            Base::Bool => parse_bool(request).is_some() && parse_bool(policy) == parse_bool(request),
            // Null is decided on presence alone, before values are compared.
            Base::Null => false,
        }
    }
}

/// `ForAnyValue:` or `ForAllValues:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetQualifier {
    ForAnyValue,
    ForAllValues,
}

/// One `operator: { key: values }` entry, split per key.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Condition {
    set: Option<SetQualifier>,
    base: Base,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

impl Condition {
    fn parse_block(path: &str, block: &Map<String, Value>, variables: bool) -> Result<Vec<Condition>, PolicyError> {
        let mut out = Vec::new();
        for (operator, keys) in block {
            let op_path = format!("{path}.{operator}");
            let (set, base, if_exists) = parse_operator(&op_path, operator)?;
            let keys = match keys {
                Value::Object(keys) if !keys.is_empty() => keys,
                _ => {
                    return Err(invalid(
                        &op_path,
                        "must be a non-empty object: { condition-key: value or [values] }",
                    ));
                }
            };
            for (key, value) in keys {
                let key_path = format!("{op_path}.{key}");
                if key.is_empty() {
                    return Err(invalid(&key_path, "the condition key is empty"));
                }
                let values = condition_values(&key_path, value)?;
                for v in &values {
                    if matches!(base, Base::Null | Base::Bool) && parse_bool(v).is_none() {
                        return Err(invalid(&key_path, format!("`{v}` is not true or false")));
                    }
                    if variables && v.contains("${") {
                        return Err(unsupported(&key_path, format!("the policy variable in `{v}`")));
                    }
                    if base.is_arn() && arn_parts(v).is_none() {
                        return Err(invalid(
                            &key_path,
                            format!("`{v}` is not an ARN pattern (arn:partition:service:region:account:resource)"),
                        ));
                    }
                }
                out.push(Condition {
                    set,
                    base,
                    if_exists,
                    key: key.clone(),
                    values,
                });
            }
        }
        Ok(out)
    }

    /// Whether the condition holds for the request context (see the module docs for the rules).
    fn holds(&self, context: &BTreeMap<String, Vec<String>>) -> bool {
        let found = lookup(context, &self.key);
        if self.base == Base::Null {
            let absent = found.is_none();
            return self.values.iter().any(|v| parse_bool(v) == Some(absent));
        }
        let Some(found) = found else {
            return self.if_exists
                || match self.set {
                    Some(SetQualifier::ForAllValues) => true,
                    Some(SetQualifier::ForAnyValue) => false,
                    None => self.base.is_negated(),
                };
        };
        match self.set {
            Some(SetQualifier::ForAllValues) => found.iter().all(|v| self.value_satisfies(v)),
            Some(SetQualifier::ForAnyValue) => found.iter().any(|v| self.value_satisfies(v)),
            None if found.len() > 1 || is_multivalued_key(&self.key) => false,
            None => self.value_satisfies(&found[0]),
        }
    }

    /// One request value against all policy values: OR, or NOR for a negated operator.
    fn value_satisfies(&self, request: &str) -> bool {
        self.values.iter().any(|p| self.base.compare(p, request)) != self.base.is_negated()
    }
}

fn parse_operator(path: &str, name: &str) -> Result<(Option<SetQualifier>, Base, bool), PolicyError> {
    let (set, rest) = if let Some(rest) = strip_prefix_ignore_case(name, "ForAnyValue:") {
        (Some(SetQualifier::ForAnyValue), rest)
    } else if let Some(rest) = strip_prefix_ignore_case(name, "ForAllValues:") {
        (Some(SetQualifier::ForAllValues), rest)
    } else {
        (None, name)
    };
    let (base_name, if_exists) = match strip_suffix_ignore_case(rest, "IfExists") {
        Some(base) => (base, true),
        None => (rest, false),
    };
    let Some(base) = Base::ALL.into_iter().find(|b| b.name().eq_ignore_ascii_case(base_name)) else {
        if Base::UNSUPPORTED.iter().any(|u| u.eq_ignore_ascii_case(base_name)) {
            return Err(unsupported(path, format!("the condition operator {name}")));
        }
        let known: Vec<&str> = Base::ALL.iter().map(|b| b.name()).collect();
        return Err(invalid(
            path,
            format!(
                "`{name}` is not a condition operator; supported: {} (optionally with ForAnyValue:/ForAllValues: and IfExists)",
                known.join(", ")
            ),
        ));
    };
    if base == Base::Null && if_exists {
        return Err(invalid(path, "IfExists cannot be added to Null"));
    }
    if base == Base::Null && set.is_some() {
        return Err(invalid(path, "Null takes no ForAnyValue:/ForAllValues: qualifier"));
    }
    Ok((set, base, if_exists))
}

/// A condition's values: a string, boolean or number, or a non-empty array of them.
fn condition_values(path: &str, value: &Value) -> Result<Vec<String>, PolicyError> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    let values = match value {
        Value::Array(items) if !items.is_empty() => items.iter().map(scalar).collect::<Option<Vec<_>>>(),
        Value::Array(_) => None,
        v => scalar(v).map(|s| vec![s]),
    };
    values.ok_or_else(|| {
        invalid(
            path,
            "must be a string, boolean or number, or a non-empty array of them",
        )
    })
}

/// Evaluates one set of policies: denied if any `Deny` statement applies, allowed if some `Allow`
/// statement applies, implicitly denied otherwise.
///
/// A denial names a policy by its `Id`, or by its 0-based position in `policies` (`#0`).
#[must_use]
pub fn evaluate(policies: &[&Policy], req: &Request) -> Decision {
    let labels: Vec<String> = policies
        .iter()
        .enumerate()
        .map(|(i, p)| p.id.clone().unwrap_or_else(|| format!("#{i}")))
        .collect();
    let named: Vec<(&str, &Policy)> = labels
        .iter()
        .map(String::as_str)
        .zip(policies.iter().copied())
        .collect();
    if let Some(denial) = explicit_deny(std::iter::once(named.as_slice()), req) {
        return Decision::Deny(denial);
    }
    if named
        .iter()
        .any(|(_, p)| p.first_applying(Effect::Allow, req).is_some())
    {
        return Decision::Allow;
    }
    Decision::Deny(Denial::Implicit {
        scope: "the given policies".to_owned(),
        reason: format!("no statement in the given policies allows {}", req.action),
    })
}

/// Evaluates the SCP hierarchy: `levels` holds, for each level (the account, each OU, the root, in
/// any order), the `(policy name, policy)` pairs attached there. Denied if any statement at any
/// level denies; otherwise every level must have an applicable `Allow`.
///
/// Levels are named in reasons by position (`level 1`) and their policy names; use
/// [`evaluate_scp_targets`] to name them by target id.
///
/// # Warning
/// An empty `levels` allows everything (no SCP applies), and a level with no policy attached
/// denies everything, as AWS would.
#[must_use]
pub fn evaluate_scp_levels(levels: &[Vec<(&str, &Policy)>], req: &Request) -> Decision {
    let names: Vec<String> = levels
        .iter()
        .enumerate()
        .map(|(i, level)| {
            let policies: Vec<&str> = level.iter().map(|(name, _)| *name).collect();
            format!(
                "level {} ({})",
                i + 1,
                if policies.is_empty() {
                    "no policies".to_owned()
                } else {
                    policies.join(", ")
                }
            )
        })
        .collect();
    let targets: Vec<(&str, &[(&str, &Policy)])> = names
        .iter()
        .map(String::as_str)
        .zip(levels.iter().map(Vec::as_slice))
        .collect();
    decide_hierarchy(&targets, req)
}

/// Like [`evaluate_scp_levels`], with each level named by its target (`ou-ab12-cdef3456`,
/// `r-ab12`, the account id), so an implicit deny reads "no policy attached to ou-… allows …".
#[must_use]
pub fn evaluate_scp_targets(targets: &[(&str, Vec<(&str, &Policy)>)], req: &Request) -> Decision {
    let targets: Vec<(&str, &[(&str, &Policy)])> = targets.iter().map(|(t, ps)| (*t, ps.as_slice())).collect();
    decide_hierarchy(&targets, req)
}

fn decide_hierarchy(targets: &[(&str, &[(&str, &Policy)])], req: &Request) -> Decision {
    if let Some(denial) = explicit_deny(targets.iter().map(|(_, ps)| *ps), req) {
        return Decision::Deny(denial);
    }
    for (target, policies) in targets {
        if !policies
            .iter()
            .any(|(_, p)| p.first_applying(Effect::Allow, req).is_some())
        {
            let reason = if policies.is_empty() {
                format!(
                    "no policy is attached to {target}, so nothing there allows {}",
                    req.action
                )
            } else {
                format!("no policy attached to {target} allows {}", req.action)
            };
            return Decision::Deny(Denial::Implicit {
                scope: (*target).to_owned(),
                reason,
            });
        }
    }
    Decision::Allow
}

/// The first applicable `Deny` statement, in level, policy and statement order.
fn explicit_deny<'a>(levels: impl Iterator<Item = &'a [(&'a str, &'a Policy)]>, req: &Request) -> Option<Denial> {
    levels.flat_map(|level| level.iter()).find_map(|(name, policy)| {
        let (index, statement) = policy.first_applying(Effect::Deny, req)?;
        let statement = statement.id_at(index);
        Some(Denial::Explicit {
            policy: (*name).to_owned(),
            reason: format!("explicit deny in policy {name} statement {statement}"),
            statement,
        })
    })
}

impl Request {
    /// A request for `action` on `resource` with no condition keys.
    #[must_use]
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Request {
        Request {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    /// Adds (or replaces) a condition key with its values.
    #[must_use]
    pub fn with<I, S>(mut self, key: impl Into<String>, values: I) -> Request
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.context
            .insert(key.into(), values.into_iter().map(Into::into).collect());
        self
    }
}

impl Decision {
    /// Whether the request is allowed.
    #[must_use]
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    /// The denial, if denied.
    #[must_use]
    pub fn denial(&self) -> Option<&Denial> {
        match self {
            Decision::Allow => None,
            Decision::Deny(d) => Some(d),
        }
    }
}

impl Denial {
    /// The sentence for people.
    #[must_use]
    pub fn reason(&self) -> &str {
        match self {
            Denial::Explicit { reason, .. } | Denial::Implicit { reason, .. } => reason,
        }
    }
}

impl fmt::Display for StatementId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementId::Sid(sid) => f.write_str(sid),
            StatementId::Index(i) => write!(f, "#{i}"),
        }
    }
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Decision::Allow => f.write_str("allowed"),
            Decision::Deny(d) => write!(f, "denied: {}", d.reason()),
        }
    }
}

/// The request's values for `key`: the exact spelling first, else any spelling that differs only
/// by case. A key with no values counts as absent.
fn lookup<'a>(context: &'a BTreeMap<String, Vec<String>>, key: &str) -> Option<&'a [String]> {
    let values = context.get(key).or_else(|| {
        let folded = key.to_lowercase();
        context.iter().find(|(k, _)| k.to_lowercase() == folded).map(|(_, v)| v)
    })?;
    (!values.is_empty()).then_some(values.as_slice())
}

fn is_multivalued_key(key: &str) -> bool {
    MULTIVALUED_KEYS.iter().any(|k| k.eq_ignore_ascii_case(key))
}

fn action_matches(pattern: &str, action: &str) -> bool {
    pattern == "*" || glob(&pattern.to_lowercase(), &action.to_lowercase())
}

fn resource_matches(pattern: &str, resource: &str) -> bool {
    pattern == "*" || arn_like(pattern, resource)
}

/// The six components of an ARN (the last keeps any further colons), if it has them.
fn arn_parts(arn: &str) -> Option<[&str; 6]> {
    let mut it = arn.splitn(6, ':');
    let parts = [it.next()?, it.next()?, it.next()?, it.next()?, it.next()?, it.next()?];
    Some(parts)
}

/// `ArnLike`: each ARN component matched separately with `*` and `?`, case-sensitively.
fn arn_like(pattern: &str, arn: &str) -> bool {
    match (arn_parts(pattern), arn_parts(arn)) {
        (Some(p), Some(a)) => p.iter().zip(a.iter()).all(|(p, a)| glob(p, a)),
        _ => false,
    }
}

/// Wildcard match of the whole `text`: `*` any run of characters, `?` exactly one.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    // Position of the last `*` in the pattern and of the text it resumed at.
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || (p[pi] != '*' && p[pi] == t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            // Let the last `*` swallow one more character and retry.
            star = Some((sp, st + 1));
            pi = sp + 1;
            ti = st + 1;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(s: &'a str, suffix: &str) -> Option<&'a str> {
    let cut = s.len().checked_sub(suffix.len())?;
    let tail = s.get(cut..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &s[..cut])
}

fn optional_string(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, PolicyError> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(path, "must be a string")),
    }
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

fn unsupported(path: impl Into<String>, what: impl Into<String>) -> PolicyError {
    PolicyError::Unsupported {
        path: path.into(),
        what: what.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        Policy::parse(json).unwrap_or_else(|e| panic!("test policy does not parse: {e}"))
    }

    /// One statement with the given effect, action and condition block (JSON text).
    fn statement_policy(effect: &str, action: &str, condition: &str) -> Policy {
        policy(&format!(
            r#"{{"Version":"2012-10-17","Statement":{{"Sid":"S","Effect":"{effect}","Action":"{action}","Resource":"*","Condition":{condition}}}}}"#
        ))
    }

    /// Whether a Deny statement with this condition block denies `req`.
    fn denies(condition: &str, req: &Request) -> bool {
        let p = statement_policy("Deny", "*", condition);
        p.statements()[0].applies(req)
    }

    fn allow_all() -> Policy {
        policy(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
    }

    fn run_instances() -> Request {
        Request::new("ec2:RunInstances", "arn:aws:ec2:ap-northeast-2:111122223333:instance/*")
    }

    const SCHEDULE_SCP: &str = r#"{
      "Version": "2012-10-17",
      "Statement": [
        {
          "Sid": "DenyUntaggedRunInstances",
          "Effect": "Deny",
          "Action": "ec2:RunInstances",
          "Resource": "arn:aws:ec2:*:*:instance/*",
          "Condition": {
            "Null": { "aws:RequestTag/Schedule": "true" },
            "ArnNotLike": { "aws:PrincipalArn": ["arn:aws:iam::*:role/BreakGlass"] }
          }
        },
        {
          "Sid": "DenyUnknownScheduleValue",
          "Effect": "Deny",
          "Action": ["ec2:RunInstances", "ec2:CreateTags"],
          "Resource": "*",
          "Condition": {
            "StringNotEquals": { "aws:RequestTag/Schedule": ["always-on", "office-hours"] },
            "Null": { "aws:RequestTag/Schedule": "false" }
          }
        },
        {
          "Effect": "Deny",
          "Action": ["ec2:DeleteTags", "autoscaling:DeleteTags"],
          "Resource": "*",
          "Condition": { "ForAnyValue:StringEquals": { "aws:TagKeys": ["Schedule"] } }
        }
      ]
    }"#;

    fn user_role() -> &'static str {
        "arn:aws:iam::111122223333:role/Developer"
    }

    #[test]
    fn an_explicit_deny_beats_an_allow_and_names_the_policy_and_sid() {
        let scp = policy(SCHEDULE_SCP);
        let req = run_instances().with("aws:PrincipalArn", [user_role()]);
        let decision = evaluate_scp_targets(
            &[
                ("111122223333", vec![("FullAWSAccess", &allow_all())]),
                (
                    "ou-ab12-cdef3456",
                    vec![("FullAWSAccess", &allow_all()), ("offhours-require-schedule-tag", &scp)],
                ),
                ("r-ab12", vec![("FullAWSAccess", &allow_all())]),
            ],
            &req,
        );
        let Decision::Deny(Denial::Explicit {
            policy,
            statement,
            reason,
        }) = decision
        else {
            panic!("expected an explicit deny, got {decision:?}");
        };
        assert_eq!(policy, "offhours-require-schedule-tag");
        assert_eq!(statement, StatementId::Sid("DenyUntaggedRunInstances".into()));
        assert_eq!(
            reason,
            "explicit deny in policy offhours-require-schedule-tag statement DenyUntaggedRunInstances"
        );
    }

    #[test]
    fn an_explicit_deny_in_one_policy_set_beats_an_allow_in_another() {
        let deny = policy(
            r#"{"Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},{"Effect":"Deny","Action":"ec2:*","Resource":"*"}]}"#,
        );
        let decision = evaluate(&[&allow_all(), &deny], &run_instances());
        assert_eq!(
            decision.denial().map(Denial::reason),
            Some("explicit deny in policy #1 statement #1")
        );
        assert!(evaluate(&[&allow_all(), &deny], &Request::new("s3:GetObject", "*")).is_allowed());
    }

    #[test]
    fn a_level_without_an_applicable_allow_denies_implicitly_and_names_the_target() {
        let s3_only =
            policy(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}"#);
        let req = run_instances();
        let decision = evaluate_scp_targets(
            &[
                ("111122223333", vec![("FullAWSAccess", &allow_all())]),
                ("ou-ab12-cdef3456", vec![("s3-only", &s3_only)]),
                ("r-ab12", vec![("FullAWSAccess", &allow_all())]),
            ],
            &req,
        );
        assert_eq!(
            decision,
            Decision::Deny(Denial::Implicit {
                scope: "ou-ab12-cdef3456".into(),
                reason: "no policy attached to ou-ab12-cdef3456 allows ec2:RunInstances".into(),
            })
        );
        let unnamed = evaluate_scp_levels(
            &[vec![("FullAWSAccess", &allow_all())], vec![("s3-only", &s3_only)]],
            &req,
        );
        assert_eq!(
            unnamed.denial().map(Denial::reason),
            Some("no policy attached to level 2 (s3-only) allows ec2:RunInstances")
        );
        let empty_level = evaluate_scp_levels(&[vec![("FullAWSAccess", &allow_all())], vec![]], &req);
        assert!(!empty_level.is_allowed());
    }

    #[test]
    fn every_level_allowing_and_nothing_denying_allows() {
        let (scp, all) = (policy(SCHEDULE_SCP), allow_all());
        let req = run_instances()
            .with("aws:RequestTag/Schedule", ["office-hours"])
            .with("aws:PrincipalArn", [user_role()]);
        let levels = vec![
            vec![("FullAWSAccess", &all)],
            vec![("FullAWSAccess", &all), ("offhours", &scp)],
        ];
        assert_eq!(evaluate_scp_levels(&levels, &req), Decision::Allow);
        assert!(
            evaluate(&[], &req).denial().is_some(),
            "no policy at all allows nothing"
        );
    }

    #[test]
    fn null_on_the_schedule_request_tag_is_true_only_when_the_tag_is_missing() {
        let untagged = r#"{"Null":{"aws:RequestTag/Schedule":"true"}}"#;
        let tagged = r#"{"Null":{"aws:RequestTag/Schedule":false}}"#;
        let without = run_instances();
        let with = run_instances().with("aws:RequestTag/Schedule", ["office-hours"]);
        assert!(denies(untagged, &without));
        assert!(!denies(untagged, &with));
        assert!(!denies(tagged, &without));
        assert!(denies(tagged, &with));
        let no_values = run_instances().with("aws:RequestTag/Schedule", Vec::<String>::new());
        assert!(denies(untagged, &no_values), "a key with no values counts as absent");
    }

    #[test]
    fn string_not_equals_is_true_for_a_value_outside_the_list_and_for_a_missing_key() {
        let cond = r#"{"StringNotEquals":{"aws:RequestTag/Schedule":["always-on","office-hours"]}}"#;
        let tagged = |v: &str| run_instances().with("aws:RequestTag/Schedule", [v]);
        assert!(
            !denies(cond, &tagged("office-hours")),
            "a listed value: NOR over the values is false"
        );
        assert!(!denies(cond, &tagged("always-on")));
        assert!(
            denies(cond, &tagged("Office-Hours")),
            "StringNotEquals is case-sensitive"
        );
        assert!(denies(cond, &tagged("nights")));
        assert!(
            denies(cond, &run_instances()),
            "a negated operator is true when the key is missing"
        );
    }

    #[test]
    fn the_schedule_scp_denies_unknown_values_but_not_missing_ones_under_that_statement() {
        let scp = policy(SCHEDULE_SCP);
        let by = |tag: Option<&str>| {
            let mut req = Request::new("ec2:CreateTags", "arn:aws:ec2:ap-northeast-2:111122223333:instance/i-1");
            if let Some(v) = tag {
                req = req.with("aws:RequestTag/Schedule", [v]);
            }
            evaluate(&[&allow_all(), &scp], &req)
        };
        assert_eq!(
            by(Some("nights")).denial().map(Denial::reason),
            Some("explicit deny in policy #1 statement DenyUnknownScheduleValue")
        );
        assert!(by(Some("office-hours")).is_allowed());
        assert!(
            by(None).is_allowed(),
            "Null false guards the negated operator's missing-key truth"
        );
    }

    #[test]
    fn for_any_value_string_not_equals_is_true_when_any_tag_key_is_outside_the_list() {
        let cond = r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["Schedule","Name"]}}"#;
        let keys = |ks: &[&str]| run_instances().with("aws:TagKeys", ks.iter().copied());
        assert!(!denies(cond, &keys(&["Schedule"])));
        assert!(!denies(cond, &keys(&["Schedule", "Name"])));
        assert!(denies(cond, &keys(&["Schedule", "Owner"])));
        assert!(
            denies(cond, &keys(&["schedule"])),
            "tag keys as values compare case-sensitively"
        );
        assert!(
            !denies(cond, &run_instances()),
            "ForAnyValue over a missing key is false"
        );
        assert!(!denies(cond, &keys(&[])), "ForAnyValue over an empty set is false");
    }

    #[test]
    fn for_all_values_is_true_for_an_empty_or_missing_set_and_for_any_value_is_false() {
        let all = r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["Schedule","Name"]}}"#;
        let any = r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["Schedule","Name"]}}"#;
        let missing = run_instances();
        let empty = run_instances().with("aws:TagKeys", Vec::<String>::new());
        for req in [&missing, &empty] {
            assert!(denies(all, req));
            assert!(!denies(any, req));
        }
        let all_not = r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["Schedule"]}}"#;
        assert!(
            denies(all_not, &missing),
            "the empty-set rule holds for negated operators too"
        );
    }

    #[test]
    fn tag_keys_with_several_values_are_compared_one_by_one() {
        let req = Request::new("ec2:DeleteTags", "*").with("aws:TagKeys", ["Name", "Schedule", "Owner"]);
        assert!(denies(
            r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":"Schedule"}}"#,
            &req
        ));
        assert!(!denies(
            r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["Schedule","Name"]}}"#,
            &req
        ));
        assert!(denies(
            r#"{"ForAllValues:StringLike":{"aws:TagKeys":["Schedule","Name","Own*"]}}"#,
            &req
        ));
        let scp = policy(SCHEDULE_SCP);
        assert!(
            !evaluate(&[&allow_all(), &scp], &req).is_allowed(),
            "removing the Schedule tag is denied"
        );
        let other = Request::new("ec2:DeleteTags", "*").with("aws:TagKeys", ["Name", "Owner"]);
        assert!(evaluate(&[&allow_all(), &scp], &other).is_allowed());
    }

    #[test]
    fn a_plain_operator_on_a_multivalued_key_never_matches() {
        let several = run_instances().with("aws:TagKeys", ["Schedule", "Name"]);
        let one = run_instances().with("aws:TagKeys", ["Schedule"]);
        assert!(!denies(r#"{"StringEquals":{"aws:TagKeys":"Schedule"}}"#, &several));
        assert!(!denies(r#"{"StringNotEquals":{"aws:TagKeys":"Owner"}}"#, &several));
        assert!(
            !denies(r#"{"StringEquals":{"aws:TagKeys":"Schedule"}}"#, &one),
            "aws:TagKeys is multivalued"
        );
        let custom = run_instances().with("ec2:Attribute", ["a", "b"]);
        assert!(!denies(r#"{"StringLike":{"ec2:Attribute":"*"}}"#, &custom));
        assert!(denies(r#"{"ForAnyValue:StringLike":{"ec2:Attribute":"*"}}"#, &custom));
    }

    #[test]
    fn arn_not_like_with_a_wildcard_account_exempts_the_break_glass_role_in_any_account() {
        let cond = r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/BreakGlass"}}"#;
        let by = |arn: &str| run_instances().with("aws:PrincipalArn", [arn]);
        assert!(!denies(cond, &by("arn:aws:iam::111122223333:role/BreakGlass")));
        assert!(!denies(cond, &by("arn:aws:iam::444455556666:role/BreakGlass")));
        assert!(denies(cond, &by("arn:aws:iam::111122223333:role/Developer")));
        assert!(
            denies(cond, &by("arn:aws:iam::111122223333:role/breakglass")),
            "ARN matching is case-sensitive"
        );
        assert!(denies(cond, &by("arn:aws:iam::111122223333:role/BreakGlass2")));
        assert!(
            denies(cond, &run_instances()),
            "a negated operator is true when the key is missing"
        );

        let scp = policy(SCHEDULE_SCP);
        let break_glass = run_instances().with("aws:PrincipalArn", ["arn:aws:iam::111122223333:role/BreakGlass"]);
        assert!(
            evaluate(&[&allow_all(), &scp], &break_glass).is_allowed(),
            "untagged, but exempt"
        );
    }

    #[test]
    fn arn_like_matches_each_component_separately_where_string_like_does_not() {
        // The example on the Condition operators page: StringLike's `*` spans colons, ArnLike's does not.
        let value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt";
        let req = run_instances().with("aws:SourceArn", [value]);
        let pattern = "arn:aws:someservice:*:111122223333:finance/*";
        assert!(denies(
            &format!(r#"{{"StringLike":{{"aws:SourceArn":"{pattern}"}}}}"#),
            &req
        ));
        assert!(!denies(
            &format!(r#"{{"ArnLike":{{"aws:SourceArn":"{pattern}"}}}}"#),
            &req
        ));
        assert!(denies(
            r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:someservice:us-east-?:*:store/*"}}"#,
            &req
        ));
        assert!(!denies(
            r#"{"ArnLike":{"aws:SourceArn":"arn:aws:someservice:us-east-2:999999999999:store/abc"}}"#,
            &req
        ));
        let not_an_arn = run_instances().with("aws:SourceArn", ["not-an-arn"]);
        assert!(!denies(r#"{"ArnLike":{"aws:SourceArn":"arn:*:*:*:*:*"}}"#, &not_an_arn));
    }

    #[test]
    fn if_exists_is_true_for_a_missing_key_and_checks_a_present_one() {
        let cond = r#"{"StringLikeIfExists":{"ec2:InstanceType":["t3.*","m7g.*"]}}"#;
        assert!(denies(cond, &run_instances()));
        assert!(denies(cond, &run_instances().with("ec2:InstanceType", ["t3.micro"])));
        assert!(!denies(
            cond,
            &run_instances().with("ec2:InstanceType", ["p5.48xlarge"])
        ));
        let negated = r#"{"StringNotEqualsIfExists":{"aws:RequestTag/Schedule":"office-hours"}}"#;
        assert!(
            denies(negated, &run_instances()),
            "a Deny with a negated IfExists still denies when the key is missing"
        );
        let set = r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":"Schedule"}}"#;
        assert!(
            denies(set, &run_instances()),
            "IfExists wins over ForAnyValue's missing-set rule"
        );
    }

    #[test]
    fn action_names_match_case_insensitively_with_wildcards() {
        let p = policy(
            r#"{"Statement":{"Effect":"Deny","Action":["ec2:Run*","autoscaling:CreateAutoScalingGrou?"],"Resource":"*"}}"#,
        );
        let s = &p.statements()[0];
        assert!(s.applies(&Request::new("ec2:runinstances", "*")));
        assert!(s.applies(&Request::new("EC2:RUNINSTANCES", "*")));
        assert!(s.applies(&Request::new("autoscaling:createautoscalinggroup", "*")));
        assert!(!s.applies(&Request::new("ec2:StartInstances", "*")));
        assert!(!s.applies(&Request::new("autoscaling:CreateAutoScalingGroups", "*")));
    }

    #[test]
    fn not_action_applies_to_every_action_but_the_listed_ones() {
        let p = policy(
            r#"{"Statement":{"Sid":"OnlyEc2","Effect":"Deny","NotAction":["ec2:*","sts:GetCallerIdentity"],"Resource":"*"}}"#,
        );
        assert!(evaluate(&[&allow_all(), &p], &Request::new("EC2:RunInstances", "*")).is_allowed());
        assert!(evaluate(&[&allow_all(), &p], &Request::new("sts:getcalleridentity", "*")).is_allowed());
        assert_eq!(
            evaluate(&[&allow_all(), &p], &Request::new("s3:GetObject", "*"))
                .denial()
                .map(Denial::reason),
            Some("explicit deny in policy #1 statement OnlyEc2")
        );
    }

    #[test]
    fn resources_match_per_arn_segment_case_sensitively() {
        let p = policy(r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"arn:aws:ec2:*:*:instance/*"}}"#);
        let s = &p.statements()[0];
        assert!(s.applies(&Request::new(
            "ec2:RunInstances",
            "arn:aws:ec2:us-east-1:111122223333:instance/i-0abc"
        )));
        assert!(!s.applies(&Request::new(
            "ec2:RunInstances",
            "arn:aws:ec2:us-east-1:111122223333:volume/vol-1"
        )));
        assert!(!s.applies(&Request::new(
            "ec2:RunInstances",
            "arn:aws:ec2:us-east-1:111122223333:Instance/i-0abc"
        )));
        assert!(!s.applies(&Request::new("ec2:RunInstances", "*")));
        let not = policy(r#"{"Statement":{"Effect":"Deny","Action":"*","NotResource":"arn:aws:s3:::logs/*"}}"#);
        assert!(!not.statements()[0].applies(&Request::new("s3:PutObject", "arn:aws:s3:::logs/a/b")));
        assert!(not.statements()[0].applies(&Request::new("s3:PutObject", "arn:aws:s3:::data/a")));
    }

    #[test]
    fn condition_key_names_match_case_insensitively_including_the_tag_key_part() {
        let cond = r#"{"StringEquals":{"aws:RequestTag/Schedule":"office-hours"}}"#;
        let prefix = run_instances().with("AWS:requesttag/Schedule", ["office-hours"]);
        let tag_key = run_instances().with("aws:RequestTag/schedule", ["office-hours"]);
        assert!(denies(cond, &prefix));
        assert!(
            denies(cond, &tag_key),
            "the Condition element page: TagKey1 also finds tagkey1"
        );
        assert!(
            !denies(cond, &run_instances().with("aws:RequestTag/Schedule", ["Office-Hours"])),
            "values keep their case"
        );
        let both = run_instances()
            .with("aws:RequestTag/schedule", ["nights"])
            .with("aws:RequestTag/Schedule", ["office-hours"]);
        assert!(denies(cond, &both), "the exact spelling wins over a case variant");
        assert!(denies(
            r#"{"StringEqualsIgnoreCase":{"aws:RequestTag/Schedule":"OFFICE-HOURS"}}"#,
            &tag_key
        ));
    }

    #[test]
    fn values_are_or_ed_while_keys_and_operators_are_and_ed() {
        let req = run_instances()
            .with("aws:RequestTag/Schedule", ["office-hours"])
            .with("aws:RequestTag/Team", ["infra"]);
        assert!(denies(
            r#"{"StringEquals":{"aws:RequestTag/Schedule":["nights","office-hours"]}}"#,
            &req
        ));
        assert!(!denies(
            r#"{"StringEquals":{"aws:RequestTag/Schedule":"office-hours","aws:RequestTag/Team":"data"}}"#,
            &req
        ));
        assert!(denies(
            r#"{"StringEquals":{"aws:RequestTag/Schedule":"office-hours"},"StringLike":{"aws:RequestTag/Team":"in*"}}"#,
            &req
        ));
        assert!(!denies(
            r#"{"StringEquals":{"aws:RequestTag/Schedule":"office-hours"},"Null":{"aws:RequestTag/Team":"true"}}"#,
            &req
        ));
    }

    #[test]
    fn bool_compares_true_and_false_and_fails_on_a_missing_key() {
        let cond = r#"{"Bool":{"aws:SecureTransport":"false"}}"#;
        assert!(denies(cond, &run_instances().with("aws:SecureTransport", ["false"])));
        assert!(!denies(cond, &run_instances().with("aws:SecureTransport", ["true"])));
        assert!(!denies(cond, &run_instances()));
        assert!(denies(
            r#"{"Bool":{"aws:ViaAWSService":true}}"#,
            &run_instances().with("aws:ViaAWSService", ["TRUE"])
        ));
    }

    #[test]
    fn statements_without_a_sid_are_named_by_index() {
        let p = policy(
            r#"{"Id":"guard","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Effect":"Deny","Action":"ec2:*","Resource":"*"}]}"#,
        );
        let Decision::Deny(Denial::Explicit { policy, statement, .. }) = evaluate(&[&p], &run_instances()) else {
            panic!("expected an explicit deny");
        };
        assert_eq!((policy.as_str(), statement), ("guard", StatementId::Index(1)));
    }

    #[test]
    fn malformed_policies_are_errors_that_say_where() {
        let cases: &[(&str, &str)] = &[
            ("", "not valid JSON"),
            ("[]", "must be a JSON object"),
            (r#"{"Version":"2012-10-17"}"#, "Statement: missing"),
            (r#"{"Statement":[]}"#, "Statement: empty"),
            (r#"{"Version":"2024-01-01","Statement":[]}"#, "Version: `2024-01-01`"),
            (
                r#"{"Statement":[1]}"#,
                "Statement[0]: a statement must be a JSON object",
            ),
            (
                r#"{"Statement":{"Action":"*","Resource":"*"}}"#,
                "Statement.Effect: missing",
            ),
            (
                r#"{"Statement":{"Effect":"allow","Action":"*","Resource":"*"}}"#,
                "Statement.Effect: must be",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
                "needs Action or NotAction",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","NotAction":"s3:*","Resource":"*"}}"#,
                "both Action and NotAction",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":[],"Resource":"*"}}"#,
                "Statement.Action: must be a string or a non-empty array",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"RunInstances","Resource":"*"}}"#,
                "is not an action",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*"}}"#,
                "needs Resource or NotResource",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"bucket"}}"#,
                "neither * nor an ARN",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Principal":"*"}}"#,
                "take no principal",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":[]}}"#,
                "Condition: must be an object",
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEqual":{"k":"v"}}}}"#,
                "is not a condition operator",
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NumericLessThan":{"k":"1"}}}}"#,
                "NumericLessThan is not supported",
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NullIfExists":{"k":"true"}}}}"#,
                "IfExists cannot be added to Null",
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"Null":{"k":"yes"}}}}"#,
                "`yes` is not true or false",
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":[]}}}}"#,
                "Condition.StringEquals.k: must be a string",
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":{"a":1}}}}}"#,
                "must be a string",
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{}}}}"#,
                "must be a non-empty object",
            ),
            (
                r#"{"Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"*"}}}}"#,
                "is not an ARN pattern",
            ),
            (
                r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":"${aws:username}"}}}}"#,
                "policy variable",
            ),
        ];
        for (text, expected) in cases {
            let err = Policy::parse(text).expect_err(text).to_string();
            assert!(
                err.contains(expected),
                "{text}\n  gave: {err}\n  expected it to contain: {expected}"
            );
        }
        // Before 2012-10-17, `${` is literal text.
        assert!(Policy::parse(r#"{"Version":"2008-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"StringEquals":{"k":"${x}"}}}}"#).is_ok());
    }

    #[test]
    fn a_json_error_carries_its_position() {
        let Err(PolicyError::Json { line, column, .. }) = Policy::parse("{\n  \"Statement\": [,]\n}") else {
            panic!("expected a JSON error");
        };
        assert_eq!((line, column), (2, 17));
    }

    #[test]
    fn operator_names_accept_any_case_and_every_qualifier() {
        let cond = r#"{"forallvalues:stringlikeifexists":{"aws:TagKeys":"S*"}}"#;
        assert!(denies(cond, &run_instances()));
        assert!(denies(cond, &run_instances().with("aws:TagKeys", ["Schedule", "Sid"])));
        assert!(!denies(
            cond,
            &run_instances().with("aws:TagKeys", ["Schedule", "Name"])
        ));
    }

    #[test]
    fn glob_handles_stars_question_marks_and_backtracking() {
        assert!(glob("*", ""));
        assert!(glob("a*b*c", "aXXbYYbc"));
        assert!(glob("?at", "hat"));
        assert!(!glob("?at", "at"));
        assert!(glob("**x", "aax"));
        assert!(!glob("a*b", "aXXc"));
        assert!(glob("日*", "日本"));
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// JSON-ish text built from policy fragments, so parsing gets past the JSON layer.
        fn policyish() -> impl Strategy<Value = String> {
            let atoms = prop_oneof![
                Just("\"Version\"".to_owned()),
                Just("\"2012-10-17\"".to_owned()),
                Just("\"Statement\"".to_owned()),
                Just("\"Effect\"".to_owned()),
                Just("\"Allow\"".to_owned()),
                Just("\"Deny\"".to_owned()),
                Just("\"Action\"".to_owned()),
                Just("\"NotResource\"".to_owned()),
                Just("\"Resource\"".to_owned()),
                Just("\"Condition\"".to_owned()),
                Just("\"ForAnyValue:StringNotEqualsIfExists\"".to_owned()),
                Just("\"Null\"".to_owned()),
                Just("\"ArnLike\"".to_owned()),
                Just("\"arn:aws:iam::*:role/X\"".to_owned()),
                Just("\"*\"".to_owned()),
                Just("\"ec2:Run*\"".to_owned()),
                Just("true".to_owned()),
                Just("1".to_owned()),
                "\"[^\"\\\\]{0,8}\"",
            ];
            atoms.prop_recursive(4, 48, 6, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
                    prop::collection::vec((inner.clone(), inner), 0..5).prop_map(|kv| {
                        let body: Vec<String> = kv.into_iter().map(|(k, v)| format!("{k}:{v}")).collect();
                        format!("{{{}}}", body.join(","))
                    }),
                ]
            })
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(crate::fuzz_cases(2000)))]

            #[test]
            fn parsing_arbitrary_text_never_panics(text in any::<String>()) {
                let _ = Policy::parse(&text);
            }

            #[test]
            fn parsing_and_evaluating_policy_shaped_json_never_panics(text in policyish(), key in "[a-zA-Z:/]{0,12}") {
                if let Ok(p) = Policy::parse(&text) {
                    let req = Request::new("ec2:RunInstances", "arn:aws:ec2:us-east-1:1:instance/i-1").with(key, ["v", "w"]);
                    let _ = evaluate(&[&p], &req);
                    let _ = evaluate_scp_levels(&[vec![("p", &p)]], &req);
                }
            }
        }
    }
}
