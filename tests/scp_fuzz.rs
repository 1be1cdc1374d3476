//! The SCP evaluator under structured fuzzing: generated policies (statements, actions,
//! resources, negations, conditions) and requests that really get evaluated, against an
//! oracle written here from the IAM User Guide's rules for the subset generated; and
//! generated policies with one fault planted at a known place, whose rejection must name
//! that place as its JSON path. Every run counts its cases and how many were evaluated.
//!
//! The oracle's rules (IAM User Guide, "Policy evaluation logic" and "Condition
//! operators"; "Single-valued vs. multivalued context keys"):
//! - an explicit Deny that applies wins; else an Allow that applies allows; else implicit deny;
//! - a statement applies when its action, resource and every condition match; `NotAction`
//!   and `NotResource` match what their patterns do not; `*` and `?` are wildcards, and
//!   actions compare case-insensitively;
//! - `StringEquals`/`StringLike` on a single-valued key: false when the key is absent, else
//!   true when any policy value matches; `Null: true` holds when the key is absent, `false`
//!   when present; `ForAnyValue:StringEquals`: some request value equals some policy value
//!   (false when the key is absent); `ForAllValues:StringEquals`: every request value equals
//!   some policy value (true when the key is absent or empty); keys compare case-insensitively.
//!
//! Cases: `OFFHOURS_FUZZ_CASES` (default 3,000 of each kind); seed: `PROPTEST_RNG_SEED`.

use std::cell::Cell;
use std::collections::BTreeMap;

use offhours::policy::eval::{Decision, Denial, Policy, PolicyError, Request, evaluate};
use proptest::prelude::*;
use proptest::test_runner::{Config as RunnerConfig, TestRunner};
use serde_json::{Value, json};

const ACTIONS: &[&str] = &[
    "*",
    "ec2:*",
    "ec2:RunInstances",
    "EC2:runinstances",
    "ec2:Run*",
    "ec2:?unInstances",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "autoscaling:*",
    "autoscaling:CreateAutoScalingGroup",
];
const REQUEST_ACTIONS: &[&str] = &[
    "ec2:RunInstances",
    "ec2:CreateTags",
    "ec2:DeleteTags",
    "ec2:StopInstances",
    "autoscaling:CreateAutoScalingGroup",
    "autoscaling:DeleteTags",
];
const RESOURCES: &[&str] = &[
    "*",
    "arn:aws:ec2:*:*:instance/*",
    "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
    "arn:aws:ec2:*:*:volume/*",
    "arn:aws:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/*",
    "arn:aws:ec2:eu-west-?:*:instance/*",
];
const REQUEST_RESOURCES: &[&str] = &[
    "arn:aws:ec2:us-east-1:111122223333:instance/i-1",
    "arn:aws:ec2:eu-west-1:111122223333:instance/i-2",
    "arn:aws:ec2:us-east-1:111122223333:volume/vol-1",
    "arn:aws:autoscaling:us-east-1:111122223333:autoScalingGroup:0f1e:autoScalingGroupName/dev",
];
const SINGLE_KEYS: &[&str] = &["aws:RequestTag/Schedule", "aws:PrincipalArn", "ec2:Region"];
const VALUES: &[&str] = &[
    "office-hours",
    "always-on",
    "office-*",
    "arn:aws:iam::*:role/offhours/*",
    "arn:aws:iam::111122223333:role/offhours/offhours-member",
    "us-east-1",
];
const TAG_KEYS: &[&str] = &["Schedule", "Team", "offhours:saved-capacity", "Name"];
const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringLike",
    "Null",
    "ForAnyValue:StringEquals",
    "ForAllValues:StringEquals",
];

fn cases() -> u32 {
    std::env::var("OFFHOURS_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

fn pick(from: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(from)
}

/// One condition: (operator, key, values).
fn condition() -> impl Strategy<Value = (&'static str, &'static str, Vec<&'static str>)> {
    pick(OPERATORS).prop_flat_map(|op| {
        let key = match op {
            "ForAnyValue:StringEquals" | "ForAllValues:StringEquals" => Just("aws:TagKeys").boxed(),
            _ => pick(SINGLE_KEYS).boxed(),
        };
        let values = match op {
            "Null" => prop::sample::select(vec![vec!["true"], vec!["false"]]).boxed(),
            "ForAnyValue:StringEquals" | "ForAllValues:StringEquals" => {
                prop::sample::subsequence(TAG_KEYS.to_vec(), 1..=3).boxed()
            }
            _ => prop::sample::subsequence(VALUES.to_vec(), 1..=3).boxed(),
        };
        (Just(op), key, values)
    })
}

/// A generated statement, kept as data for the oracle.
#[derive(Debug, Clone)]
struct Gen {
    deny: bool,
    not_action: bool,
    actions: Vec<&'static str>,
    not_resource: bool,
    resources: Vec<&'static str>,
    conditions: Vec<(&'static str, &'static str, Vec<&'static str>)>,
}

fn statement() -> impl Strategy<Value = Gen> {
    (
        any::<bool>(),
        prop::bool::weighted(0.2),
        prop::sample::subsequence(ACTIONS.to_vec(), 1..=3),
        prop::bool::weighted(0.2),
        prop::sample::subsequence(RESOURCES.to_vec(), 1..=2),
        prop::collection::vec(condition(), 0..=2),
    )
        .prop_map(|(deny, not_action, actions, not_resource, resources, conditions)| Gen {
            deny,
            not_action,
            actions,
            not_resource,
            resources,
            // One block per operator: the same operator twice would be one JSON key.
            conditions: {
                let mut seen = std::collections::BTreeSet::new();
                conditions.into_iter().filter(|c| seen.insert(c.0)).collect()
            },
        })
}

fn to_json(statements: &[Gen]) -> Value {
    let list: Vec<Value> = statements
        .iter()
        .map(|g| {
            let mut st = serde_json::Map::new();
            st.insert("Effect".into(), json!(if g.deny { "Deny" } else { "Allow" }));
            st.insert(
                if g.not_action { "NotAction" } else { "Action" }.into(),
                json!(g.actions),
            );
            st.insert(
                if g.not_resource { "NotResource" } else { "Resource" }.into(),
                json!(g.resources),
            );
            if !g.conditions.is_empty() {
                let mut block = serde_json::Map::new();
                for (op, key, values) in &g.conditions {
                    let v = if *op == "Null" { json!(values[0]) } else { json!(values) };
                    block.insert((*op).into(), json!({ *key: v }));
                }
                st.insert("Condition".into(), Value::Object(block));
            }
            Value::Object(st)
        })
        .collect();
    json!({ "Version": "2012-10-17", "Statement": list })
}

/// `*` and `?` wildcards, written here without reference to offhours' matcher.
fn wild(pattern: &[char], text: &[char]) -> bool {
    match (pattern.first(), text.first()) {
        (None, None) => true,
        (Some('*'), _) => wild(&pattern[1..], text) || (!text.is_empty() && wild(pattern, &text[1..])),
        (Some('?'), Some(_)) => wild(&pattern[1..], &text[1..]),
        (Some(p), Some(t)) if p == t => wild(&pattern[1..], &text[1..]),
        _ => false,
    }
}

fn like(pattern: &str, text: &str, fold: bool) -> bool {
    let f = |s: &str| -> Vec<char> {
        if fold {
            s.to_lowercase().chars().collect()
        } else {
            s.chars().collect()
        }
    };
    wild(&f(pattern), &f(text))
}

fn oracle_applies(g: &Gen, req: &Request) -> bool {
    let action = g.actions.iter().any(|p| like(p, &req.action, true)) != g.not_action;
    let resource = g.resources.iter().any(|p| like(p, &req.resource, false)) != g.not_resource;
    let conditions = g.conditions.iter().all(|(op, key, values)| {
        let got = req
            .context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_slice());
        match *op {
            "StringEquals" => got.is_some_and(|v| v.iter().any(|x| values.iter().any(|p| p == x))),
            "StringLike" => got.is_some_and(|v| v.iter().any(|x| values.iter().any(|p| like(p, x, false)))),
            "Null" => got.is_none() == (values[0] == "true"),
            "ForAnyValue:StringEquals" => got.is_some_and(|v| v.iter().any(|x| values.contains(&x.as_str()))),
            "ForAllValues:StringEquals" => got.is_none_or(|v| v.iter().all(|x| values.contains(&x.as_str()))),
            other => unreachable!("{other}"),
        }
    });
    action && resource && conditions
}

/// (explicitly denied by statement index, allowed).
fn oracle(statements: &[Gen], req: &Request) -> (Option<usize>, bool) {
    let deny = statements.iter().position(|g| g.deny && oracle_applies(g, req));
    let allow = statements.iter().any(|g| !g.deny && oracle_applies(g, req));
    (deny, deny.is_none() && allow)
}

fn request() -> impl Strategy<Value = Request> {
    (
        pick(REQUEST_ACTIONS),
        pick(REQUEST_RESOURCES),
        prop::option::of(pick(VALUES)),
        prop::option::of(pick(VALUES)),
        prop::option::of(prop::sample::subsequence(TAG_KEYS.to_vec(), 0..=3)),
    )
        .prop_map(|(action, resource, schedule, principal, tag_keys)| {
            let mut context: BTreeMap<String, Vec<String>> = BTreeMap::new();
            if let Some(s) = schedule {
                context.insert("aws:RequestTag/Schedule".into(), vec![s.into()]);
            }
            if let Some(p) = principal {
                context.insert("aws:PrincipalArn".into(), vec![p.into()]);
            }
            if let Some(k) = tag_keys {
                context.insert("aws:TagKeys".into(), k.into_iter().map(String::from).collect());
            }
            Request {
                action: action.into(),
                resource: resource.into(),
                context,
            }
        })
}

#[test]
fn generated_policies_are_evaluated_as_iam_documents_say() {
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases(),
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let (ran, evaluated, denied, allowed) = (Cell::new(0u32), Cell::new(0u32), Cell::new(0u32), Cell::new(0u32));
    let bump = |c: &Cell<u32>| c.set(c.get() + 1);
    let strategy = (
        prop::collection::vec(statement(), 1..=4),
        prop::collection::vec(request(), 1..=4),
    );
    runner
        .run(&strategy, |(statements, requests)| {
            bump(&ran);
            let text = to_json(&statements).to_string();
            let policy = Policy::parse(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
            for req in &requests {
                bump(&evaluated);
                let got = evaluate(&[&policy], req);
                let (deny, allow) = oracle(&statements, req);
                match (&got, deny) {
                    (Decision::Deny(Denial::Explicit { .. }), Some(_)) => bump(&denied),
                    (Decision::Allow, None) if allow => bump(&allowed),
                    (Decision::Deny(Denial::Implicit { .. }), None) if !allow => {}
                    _ => {
                        return Err(TestCaseError::fail(format!(
                            "{req:?}\npolicy {text}\ngot {got:?}, the oracle says deny by {deny:?}, allow {allow}"
                        )));
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let (ran, evaluated, denied, allowed) = (ran.get(), evaluated.get(), denied.get(), allowed.get());
    eprintln!("{ran} policies, {evaluated} requests evaluated: {denied} denied explicitly, {allowed} allowed");
    assert_eq!(ran, cases());
    assert!(evaluated >= ran, "every generated policy parsed and was evaluated");
    // The generator reaches every outcome often: not a run of trivial cases.
    assert!(
        denied * 10 >= evaluated && allowed * 10 >= evaluated,
        "{denied} denied, {allowed} allowed of {evaluated}"
    );
}

/// A fault planted in statement `i`: (what to do to it, the path the rejection must name).
fn plant(st: &mut serde_json::Map<String, Value>, i: usize, fault: u8) -> String {
    let at = format!("Statement[{i}]");
    match fault % 7 {
        0 => {
            st.insert("Effect".into(), json!("Maybe"));
            format!("{at}.Effect")
        }
        1 => {
            let key = if st.contains_key("Action") {
                "Action"
            } else {
                "NotAction"
            };
            st.insert(key.into(), json!([]));
            format!("{at}.{key}")
        }
        2 => {
            st.insert("Principal".into(), json!("*"));
            format!("{at}.Principal")
        }
        3 => {
            let key = if st.contains_key("Resource") {
                "Resource"
            } else {
                "NotResource"
            };
            st.insert(key.into(), json!(["arn:aws:ec2"]));
            format!("{at}.{key}")
        }
        4 => {
            st.insert(
                "Condition".into(),
                json!({ "StringEqualz": { "aws:PrincipalArn": "x" } }),
            );
            format!("{at}.Condition.StringEqualz")
        }
        5 => {
            st.insert(
                "Condition".into(),
                json!({ "Null": { "aws:RequestTag/Schedule": "maybe" } }),
            );
            format!("{at}.Condition.Null")
        }
        _ => {
            let key = if st.contains_key("Action") {
                "Action"
            } else {
                "NotAction"
            };
            st.insert(key.into(), json!(["RunInstances"]));
            format!("{at}.{key}")
        }
    }
}

#[test]
fn a_planted_fault_is_rejected_with_its_json_path() {
    let mut runner = TestRunner::new(RunnerConfig {
        cases: cases(),
        failure_persistence: None,
        ..RunnerConfig::default()
    });
    let ran = Cell::new(0u32);
    let kinds: [Cell<u32>; 7] = Default::default();
    let strategy = (
        prop::collection::vec(statement(), 1..=4),
        any::<prop::sample::Index>(),
        any::<u8>(),
    );
    runner
        .run(&strategy, |(statements, index, fault)| {
            ran.set(ran.get() + 1);
            let mut doc = to_json(&statements);
            let i = index.index(statements.len());
            let st = doc["Statement"][i].as_object_mut().unwrap();
            let want = plant(st, i, fault);
            let k = &kinds[usize::from(fault % 7)];
            k.set(k.get() + 1);
            let text = doc.to_string();
            match Policy::parse(&text) {
                Ok(_) => Err(TestCaseError::fail(format!("accepted a fault at {want}: {text}"))),
                Err(PolicyError::Invalid { path, .. } | PolicyError::Unsupported { path, .. }) => {
                    prop_assert!(
                        path == want || path.starts_with(&format!("{want}.")) || path.starts_with(&format!("{want}[")),
                        "rejected at {path}, the fault is at {want}: {text}"
                    );
                    Ok(())
                }
                Err(e) => Err(TestCaseError::fail(format!("{e}: not a path for {want}"))),
            }
        })
        .unwrap();
    let (ran, kinds) = (ran.get(), kinds.map(|k| k.get()));
    eprintln!("{ran} planted faults, by kind {kinds:?}");
    assert_eq!(ran, cases());
    assert!(kinds.iter().all(|k| *k > 0), "every kind of fault planted: {kinds:?}");
}
