//! Renderer tests. Golden files live in `shared/notify/tests/golden/`;
//! `UPDATE_GOLDEN=1 cargo test -p firebell-notify render` rewrites them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use firebell_core::alert::{ALERTSTATE_LABEL, Alert, AlertStatus, NODATA};
use firebell_core::model::{Labels, MetricSpec, Op, Stat, Unit};
use firebell_core::ports::Outbound;
use serde_json::Value;

use super::payload::SCHEMA;
use super::text::MAX_SUBJECT_CHARS;
use super::*;
use crate::types::{GroupNotification, MessageOptions, Receiver};

/// JSON Schema (draft 2020-12) of the [`SCHEMA`] payload.
const PAYLOAD_JSON_SCHEMA: &str = include_str!("notification.schema.json");

/// Checks that `source` is a valid template (annotation, `subject_template`
/// or `body_template`): `Err` is the syntax error.
fn check_template(source: &str) -> Result<(), String> {
    Sandbox::new().compile(source)
}

/// 2024-01-15T14:54:00Z: 15:54 CET.
const AT: i64 = 1_705_330_440;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn metric(ns: &str, name: &str, dims: &[(&str, &str)], stat: Stat, period: u64) -> MetricSpec {
    MetricSpec {
        namespace: ns.into(),
        metric_name: name.into(),
        dimensions: labels(dims),
        stat,
        period: Duration::from_secs(period),
        account: None,
        region: None,
        query: None,
    }
}

fn error_rate() -> Alert {
    let l = labels(&[
        ("alertname", "PaymentsErrorRate"),
        ("service", "payments"),
        ("severity", "page"),
        ("team", "payments"),
    ]);
    let recent = [0.4, 0.5, f64::NAN, 1.2, 2.0, 3.1, 4.4, 5.9, 5.5, 5.2]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let t = AT - 600 + 60 * i as i64;
            (t, if v.is_nan() { None } else { Some(*v) })
        })
        .collect();
    Alert {
        fingerprint: firebell_core::alert::fingerprint(&l),
        labels: l,
        annotations: BTreeMap::from([
            ("title".into(), "Payments error rate".into()),
            (
                "description".into(),
                "{{ value }} of payment requests fail (threshold {{ threshold }}).\nCheck the latest deploy of {{ labels.service }}.".into(),
            ),
            ("runbook_url".into(), "https://runbooks.example.com/payments/error-rate".into()),
            ("dashboard".into(), "https://grafana.example.com/d/payments".into()),
        ]),
        status: AlertStatus::Firing,
        active_since: AT - 12 * 60,
        fired_at: AT - 7 * 60,
        resolved_at: None,
        value: Some(5.2),
        peak: Some(5.9),
        op: Op::Gt,
        threshold: 1.0,
        unit: Unit::Percent,
        recent,
        expression: "100 * FILL(errors, 0) / requests".into(),
        metrics: BTreeMap::from([
            (
                "errors".into(),
                metric("Shop/Payments", "Errors", &[("Service", "payments")], Stat::Sum, 60),
            ),
            (
                "requests".into(),
                metric("Shop/Payments", "Requests", &[("Service", "payments")], Stat::Sum, 60),
            ),
        ]),
    }
}

fn latency() -> Alert {
    let l = labels(&[
        ("alertname", "CheckoutLatency"),
        ("service", "payments"),
        ("severity", "ticket"),
        ("team", "payments"),
        ("Endpoint", "/checkout"),
    ]);
    Alert {
        fingerprint: firebell_core::alert::fingerprint(&l),
        labels: l,
        annotations: BTreeMap::from([(
            "summary".into(),
            "Checkout p99 latency is {{ value }}".into(),
        )]),
        status: AlertStatus::Firing,
        active_since: AT - 3 * 3600 - 5 * 60,
        fired_at: AT - 3 * 3600,
        resolved_at: None,
        value: Some(850.0),
        peak: Some(1240.0),
        op: Op::Ge,
        threshold: 500.0,
        unit: Unit::Milliseconds,
        recent: (0..6)
            .map(|i| (AT - 300 + 60 * i, Some(700.0 + 30.0 * i as f64)))
            .collect(),
        expression: "p99".into(),
        metrics: BTreeMap::from([(
            "p99".into(),
            metric(
                "Shop/Payments",
                "Latency",
                &[("Endpoint", "*")],
                Stat::Percentile(99.0),
                60,
            ),
        )]),
    }
}

fn throughput_nodata() -> Alert {
    let l = labels(&[
        ("alertname", "PaymentsThroughputLow"),
        (ALERTSTATE_LABEL, NODATA),
        ("service", "payments"),
        ("severity", "page"),
    ]);
    Alert {
        fingerprint: firebell_core::alert::fingerprint(&l),
        labels: l,
        annotations: BTreeMap::from([(
            "description".into(),
            "No datapoints for {{ labels.service }} since {{ active_since }}: {{ $labels.service }}".into(),
        )]),
        status: AlertStatus::Firing,
        active_since: AT - 2 * 86400,
        fired_at: AT - 2 * 86400 + 600,
        resolved_at: None,
        value: None,
        peak: None,
        op: Op::Lt,
        threshold: 10.0,
        unit: Unit::Count,
        recent: vec![(AT - 120, None), (AT - 60, None)],
        expression: "requests".into(),
        metrics: BTreeMap::from([(
            "requests".into(),
            metric("Shop/Payments", "Requests", &[("Service", "payments")], Stat::Sum, 60),
        )]),
    }
}

fn resolved_error_rate() -> Alert {
    let mut a = error_rate();
    a.status = AlertStatus::Resolved;
    a.resolved_at = Some(AT - 60);
    a.value = Some(0.4);
    a.peak = Some(7.9);
    a.labels.insert("region".into(), "eu-central-1".into());
    a.fingerprint = firebell_core::alert::fingerprint(&a.labels);
    a
}

fn receiver(tz: &str) -> Receiver {
    Receiver {
        name: "payments-oncall".into(),
        topics: vec!["arn:aws:sns:eu-central-1:111122223333:payments-alerts".into()],
        time_zone: tz.into(),
        working_hours: None,
        send_resolved: true,
        message: MessageOptions {
            chatbot: false,
            subject_template: None,
            body_template: None,
            console_region: Some("eu-central-1".into()),
            role_accounts: Default::default(),
        },
    }
}

fn notification(firing: Vec<Alert>, resolved: Vec<Alert>) -> GroupNotification {
    GroupNotification {
        receiver: "payments-oncall".into(),
        group_key: "payments-oncall/{service=\"payments\"}".into(),
        group_labels: labels(&[("service", "payments")]),
        status: if firing.is_empty() {
            AlertStatus::Resolved
        } else {
            AlertStatus::Firing
        },
        firing,
        resolved,
        more_firing: 0,
        more_resolved: 0,
        notes: vec![],
        seq: 3,
        at: AT,
        update: false,
    }
}

fn one(receiver: &Receiver, n: &GroupNotification) -> Outbound {
    let mut out = render(receiver, n).unwrap().messages;
    assert_eq!(out.len(), 1);
    out.remove(0)
}

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `actual` with the golden file `name` exactly, or rewrites the
/// file when `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var("UPDATE_GOLDEN").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if actual != expected {
        panic!(
            "{} differs (run with UPDATE_GOLDEN=1 to accept):\n--- expected\n{expected}\n--- actual\n{actual}",
            path.display()
        );
    }
}

/// The text message as a reader sees it: subject, attributes, email body.
fn text_view(o: &Outbound) -> String {
    let attrs: Vec<String> = o
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "Subject: {}\nAttributes: {}\nIdempotency-Key: {}\n\n{}",
        o.subject,
        attrs.join(", "),
        o.idempotency_key,
        o.bodies["email"]
    )
}

/// A JSON body pretty-printed (keys sorted), for golden files.
fn pretty(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap();
    serde_json::to_string_pretty(&v).unwrap() + "\n"
}

fn mixed_group() -> GroupNotification {
    let mut n = notification(
        vec![error_rate(), latency(), throughput_nodata()],
        vec![resolved_error_rate()],
    );
    n.notes = vec!["Silence 3f2a by alice ended; 2 alerts still firing".into()];
    n
}

// ---------------------------------------------------------------- golden

#[test]
fn golden_single_firing_text() {
    let o = one(
        &receiver("Europe/Berlin"),
        &notification(vec![error_rate()], vec![]),
    );
    assert_eq!(
        o.subject,
        "[FIRING] Payments error rate 5.2% > 1% (payments, page)"
    );
    assert_eq!(o.bodies["default"], o.bodies["email"]);
    golden("firing_single.txt", &text_view(&o));
}

#[test]
fn golden_resolved_text() {
    let o = one(
        &receiver("America/New_York"),
        &notification(vec![], vec![resolved_error_rate()]),
    );
    assert_eq!(
        o.subject,
        "[RESOLVED] Payments error rate back to 0.4% (payments, page)"
    );
    golden("resolved_single.txt", &text_view(&o));
}

#[test]
fn golden_group_text() {
    let o = one(&receiver("Europe/Berlin"), &mixed_group());
    // Three rules in one group: the subject names each (one incident, one
    // page that says what is wrong).
    assert_eq!(
        o.subject,
        "[FIRING:3] payments: Payments error rate 5.2%, Checkout p99 latency is 850ms, PaymentsThroughputLow"
    );
    golden("group_mixed.txt", &text_view(&o));
}

#[test]
fn golden_group_payload() {
    let o = one(&receiver("Europe/Berlin"), &mixed_group());
    assert_eq!(o.bodies["sqs"], o.bodies["lambda"]);
    assert_eq!(o.bodies["sqs"], o.bodies["https"]);
    let body = &o.bodies["sqs"];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["schema"], SCHEMA);
    validate(&v).unwrap();
    golden("payload_group.json", &pretty(body));
}

#[test]
fn golden_group_chatbot() {
    let mut r = receiver("Europe/Berlin");
    r.message.chatbot = true;
    let o = one(&r, &mixed_group());
    let v: Value = serde_json::from_str(&o.bodies["default"]).unwrap();
    assert_eq!(v["version"], "1.0");
    assert_eq!(v["source"], "custom");
    assert_eq!(v["content"]["textType"], "client-markdown");
    assert!(
        v["content"]["description"]
            .as_str()
            .unwrap()
            .chars()
            .count()
            <= chatbot::MAX_DESCRIPTION
    );
    // Email subscribers still get text; queues the payload.
    assert!(o.bodies["email"].starts_with("Payments error rate hit 5.2%"));
    assert_eq!(
        serde_json::from_str::<Value>(&o.bodies["sqs"]).unwrap()["schema"],
        SCHEMA
    );
    golden("chatbot_group.json", &pretty(&o.bodies["default"]));
}

// ---------------------------------------------------------------- payload schema

/// A small JSON Schema checker: `type`, `const`, `enum`, `required`,
/// `properties`, `additionalProperties`, `items`, `minimum`, `maxLength` and
/// local `$ref`s, which is all `notification.schema.json` uses.
fn check(root: &Value, schema: &Value, v: &Value, path: &str) -> Result<(), String> {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(root, |s, k| &s[k]))
            .ok_or_else(|| format!("unsupported $ref {r}"))?;
        if target.is_null() {
            return Err(format!("dangling $ref {r}"));
        }
        check(root, target, v, path)?;
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("bad type in schema at {path}")),
        };
        let ok = types.iter().any(|t| match *t {
            "object" => v.is_object(),
            "array" => v.is_array(),
            "string" => v.is_string(),
            "number" => v.is_number(),
            "integer" => v.is_u64() || v.is_i64(),
            "boolean" => v.is_boolean(),
            "null" => v.is_null(),
            _ => false,
        });
        if !ok {
            return Err(format!("{path}: {v} is not of type {t}"));
        }
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        return Err(format!("{path}: {v} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{path}: {v} is not one of {e:?}"));
    }
    if let (Some(min), Some(n)) = (schema.get("minimum").and_then(Value::as_f64), v.as_f64())
        && n < min
    {
        return Err(format!("{path}: {n} < {min}"));
    }
    if let (Some(max), Some(s)) = (schema.get("maxLength").and_then(Value::as_u64), v.as_str())
        && s.chars().count() as u64 > max
    {
        return Err(format!("{path}: longer than {max}"));
    }
    if let Some(obj) = v.as_object() {
        for key in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let key = key.as_str().unwrap_or_default();
            if !obj.contains_key(key) {
                return Err(format!("{path}: missing required `{key}`"));
            }
        }
        let props = schema.get("properties").and_then(Value::as_object);
        for (k, item) in obj {
            let sub = format!("{path}.{k}");
            match (
                props.and_then(|p| p.get(k)),
                schema.get("additionalProperties"),
            ) {
                (Some(s), _) => check(root, s, item, &sub)?,
                (None, Some(Value::Bool(false))) => return Err(format!("{sub}: not allowed")),
                (None, Some(s @ Value::Object(_))) => check(root, s, item, &sub)?,
                _ => {}
            }
        }
    }
    if let (Some(items), Some(arr)) = (schema.get("items"), v.as_array()) {
        for (i, item) in arr.iter().enumerate() {
            check(root, items, item, &format!("{path}[{i}]"))?;
        }
    }
    Ok(())
}

fn validate(v: &Value) -> Result<(), String> {
    let schema: Value = serde_json::from_str(PAYLOAD_JSON_SCHEMA).unwrap();
    check(&schema, &schema, v, "$")
}

#[test]
fn schema_is_draft_2020_12_and_checks_required_keys() {
    let schema: Value = serde_json::from_str(PAYLOAD_JSON_SCHEMA).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(schema["properties"]["schema"]["const"], SCHEMA);
    // The golden payload validates; taking a required key away does not.
    let text = std::fs::read_to_string(golden_path("payload_group.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    validate(&v).unwrap();
    v["alerts"][0].as_object_mut().unwrap().remove("links");
    assert!(validate(&v).unwrap_err().contains("links"));
    v.as_object_mut().unwrap().remove("counts");
    assert!(validate(&v).is_err());
}

#[test]
fn every_schema_field_is_documented() {
    let doc = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("PAYLOAD.md"))
        .unwrap();
    let schema: Value = serde_json::from_str(PAYLOAD_JSON_SCHEMA).unwrap();
    let mut fields: Vec<String> = Vec::new();
    for props in [
        &schema["properties"],
        &schema["$defs"]["alert"]["properties"],
        &schema["$defs"]["counts"]["properties"],
        &schema["$defs"]["links"]["properties"],
        &schema["$defs"]["point"]["properties"],
    ] {
        fields.extend(props.as_object().unwrap().keys().cloned());
    }
    for f in fields {
        assert!(
            doc.contains(&format!("`{f}`")),
            "PAYLOAD.md does not document `{f}`"
        );
    }
}

// ---------------------------------------------------------------- subject

#[test]
fn long_subjects_are_cut_keeping_status_and_labels() {
    let mut a = error_rate();
    a.annotations.insert("title".into(), "Payments error rate of the EU checkout cluster behind the new load balancer (canary fleet)".into());
    let o = one(&receiver("UTC"), &notification(vec![a], vec![]));
    assert!(
        o.subject.chars().count() <= MAX_SUBJECT_CHARS,
        "{}",
        o.subject
    );
    assert!(
        o.subject
            .starts_with("[FIRING] Payments error rate of the EU")
    );
    assert!(
        o.subject.contains("… 5.2% > 1% (payments, page)"),
        "{}",
        o.subject
    );

    // Nothing but a huge label: the whole line is cut.
    let mut a = error_rate();
    a.labels.insert("service".into(), "s".repeat(500));
    let o = one(&receiver("UTC"), &notification(vec![a], vec![]));
    assert_eq!(o.subject.chars().count(), MAX_SUBJECT_CHARS);
    assert!(o.subject.ends_with('…'));
}

#[test]
fn subject_has_no_line_breaks_and_falls_back_to_alertname() {
    let mut a = error_rate();
    a.annotations.remove("title");
    a.annotations
        .insert("summary".into(), "Errors\nare   high".into());
    let o = one(&receiver("UTC"), &notification(vec![a.clone()], vec![]));
    assert_eq!(
        o.subject,
        "[FIRING] Errors are high 5.2% > 1% (payments, page)"
    );
    a.annotations.insert("summary".into(), "x".repeat(200));
    let o = one(&receiver("UTC"), &notification(vec![a], vec![]));
    assert_eq!(
        o.subject,
        "[FIRING] PaymentsErrorRate 5.2% > 1% (payments, page)"
    );
}

// ---------------------------------------------------------------- size

fn many(n: usize) -> Vec<Alert> {
    (0..n)
        .map(|i| {
            let mut a = error_rate();
            a.labels.insert("instance".into(), format!("i-{i:08}"));
            a.fingerprint = firebell_core::alert::fingerprint(&a.labels);
            a
        })
        .collect()
}

fn total_size(o: &Outbound) -> usize {
    message_size(&o.subject, &o.bodies, &o.attributes).unwrap()
}

#[test]
fn five_thousand_alerts_fit_in_one_message() {
    for chatbot in [false, true] {
        let mut r = receiver("Europe/Berlin");
        r.message.chatbot = chatbot;
        let n = notification(many(4000), many(1000));
        let started = std::time::Instant::now();
        let o = one(&r, &n);
        let took = started.elapsed();
        assert!(
            total_size(&o) <= SNS_MAX_MESSAGE_BYTES,
            "{} bytes",
            total_size(&o)
        );
        assert!(o.subject.starts_with("[FIRING:4000] Payments error rate"));
        let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
        validate(&v).unwrap();
        let listed = v["alerts"].as_array().unwrap().len();
        assert!(listed >= 20, "only {listed} alerts listed");
        assert_eq!(v["counts"]["listed"], listed);
        assert_eq!(v["counts"]["omitted"], 5000 - listed);
        assert_eq!(v["counts"]["total"], 5000);
        let more = format!("… and {} more (", 5000 - listed);
        assert!(o.bodies["email"].contains(&more), "no `{more}`");
        // Filled: one more alert would not fit.
        assert!(
            total_size(&o) > SNS_MAX_MESSAGE_BYTES - 4 * 1024 - 1024,
            "{}",
            total_size(&o)
        );
        assert!(took.as_secs() < 20, "rendering took {took:?}");
    }
}

#[test]
fn huge_annotations_labels_and_notes_are_capped() {
    let mut a = error_rate();
    a.annotations
        .insert("description".into(), "d".repeat(1 << 20));
    a.annotations.insert(
        "{{ range(100000) | join }}".into(),
        "{{ range(100000) | join(',') }}".into(),
    );
    a.labels.insert("blob".into(), "b".repeat(1 << 20));
    a.recent = (0..100_000)
        .map(|i| (AT - 100_000 + i, Some(i as f64)))
        .collect();
    let mut n = notification(vec![a], vec![]);
    n.notes = vec!["n".repeat(64 << 10); 100];
    let o = one(&receiver("UTC"), &n);
    assert!(total_size(&o) <= SNS_MAX_MESSAGE_BYTES);
    let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
    validate(&v).unwrap();
    assert_eq!(v["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["alerts"][0]["recent"].as_array().unwrap().len(),
        view::MAX_RECENT
    );
    assert!(o.bodies["email"].contains("… and 80 more notes"));
}

#[test]
fn a_group_that_cannot_fit_still_sends() {
    // A group label of 1 MiB cannot be cut from the payload's group_labels
    // by the listing: the minimal message takes over.
    let mut n = notification(vec![error_rate()], vec![]);
    n.group_labels.insert("huge".into(), "h".repeat(1 << 20));
    for chatbot in [false, true] {
        let mut r = receiver("UTC");
        r.message.chatbot = chatbot;
        let o = one(&r, &n);
        assert!(total_size(&o) <= SNS_MAX_MESSAGE_BYTES);
        let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
        validate(&v).unwrap();
        assert_eq!(v["counts"]["omitted"], 1);
        assert!(o.bodies["email"].contains("too large to send in full"));
    }
}

// ---------------------------------------------------------------- time zones

#[test]
fn times_are_in_the_receivers_zone() {
    let n = notification(vec![error_rate()], vec![]);
    let winter = one(&receiver("Europe/Berlin"), &n);
    assert!(
        winter.bodies["email"]
            .starts_with("Payments error rate hit 5.2% (threshold 1%) since 15:42 CET (12m ago)\n")
    );
    let mut summer_n = n.clone();
    let half_year = 182 * 86400;
    summer_n.at += half_year;
    for a in &mut summer_n.firing {
        a.active_since += half_year;
        a.fired_at += half_year;
    }
    let summer = one(&receiver("Europe/Berlin"), &summer_n);
    assert!(
        summer.bodies["email"].contains("since 16:42 CEST (12m ago)"),
        "{}",
        summer.bodies["email"]
    );
    let utc = one(&receiver(""), &n);
    assert!(utc.bodies["email"].contains("since 14:42 UTC (12m ago)"));
    let v: Value = serde_json::from_str(&winter.bodies["sqs"]).unwrap();
    assert_eq!(v["time_zone"], "Europe/Berlin");
    assert_eq!(v["at"], "2024-01-15T14:54:00Z");
    assert_eq!(v["alerts"][0]["active_since"], "2024-01-15T14:42:00Z");
}

#[test]
fn an_unknown_zone_falls_back_to_utc_with_a_note() {
    let o = one(
        &receiver("Mars/Olympus_Mons"),
        &notification(vec![error_rate()], vec![]),
    );
    assert!(o.bodies["email"].contains("since 14:42 UTC"));
    assert!(
        o.bodies["email"]
            .contains("Note: Times are in UTC: unknown time zone \"Mars/Olympus_Mons\".")
    );
}

// ---------------------------------------------------------------- keys, attributes

#[test]
fn idempotency_keys_are_deterministic() {
    let n = mixed_group();
    let r = receiver("Europe/Berlin");
    let a = render(&r, &n).unwrap().messages;
    let b = render(&r, &n).unwrap().messages;
    assert_eq!(a, b, "rendering is deterministic");
    assert_eq!(
        a[0].idempotency_key,
        idempotency_key("payments-oncall", &n.group_key, 3)
    );
    assert_eq!(a[0].idempotency_key.len(), 64);
    // sha256("payments-oncall|payments-oncall/{service=\"payments\"}|3")
    assert_eq!(
        a[0].idempotency_key,
        sha256_hex("payments-oncall|payments-oncall/{service=\"payments\"}|3")
    );
    let mut next = n.clone();
    next.seq = 4;
    assert_ne!(
        render(&r, &next).unwrap().messages[0].idempotency_key,
        a[0].idempotency_key
    );

    let mut two = r.clone();
    two.topics
        .push("arn:aws:sns:eu-central-1:111122223333:payments-chat".into());
    let out = render(&two, &n).unwrap().messages;
    assert_eq!(out.len(), 2);
    assert_eq!(
        out[0].idempotency_key,
        format!("{}-0", a[0].idempotency_key)
    );
    assert_eq!(
        out[1].idempotency_key,
        format!("{}-1", a[0].idempotency_key)
    );
    assert_eq!(out[1].destination, two.topics[1]);
    assert_eq!(out[0].bodies, out[1].bodies);
    assert_eq!(out[0].group_key, n.group_key);
    assert_eq!(out[0].receiver, "payments-oncall");
}

#[test]
fn attributes_are_few_and_from_labels() {
    let mut a = error_rate();
    for i in 0..30 {
        a.labels.insert(format!("extra{i}"), "x".into());
    }
    let o = one(&receiver("UTC"), &notification(vec![a], vec![]));
    assert!(o.attributes.len() <= 10);
    let expected: BTreeMap<String, String> = [
        ("alertname", "PaymentsErrorRate"),
        ("service", "payments"),
        ("severity", "page"),
        ("status", "firing"),
        ("team", "payments"),
        ("update", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(o.attributes, expected);
    // A group's later notification in the same episode is an update.
    let mut later = notification(vec![error_rate()], vec![]);
    later.update = true;
    let o = one(&receiver("UTC"), &later);
    assert_eq!(o.attributes["update"], "true");

    // Missing labels are left out (SNS rejects empty values); the group's
    // labels stand in for the alert's.
    let mut bare = throughput_nodata();
    bare.labels.remove("service");
    bare.labels.insert("severity".into(), String::new());
    let o = one(&receiver("UTC"), &notification(vec![bare], vec![]));
    assert_eq!(
        o.attributes.get("service").map(String::as_str),
        Some("payments")
    );
    assert!(!o.attributes.contains_key("severity"));
    assert!(!o.attributes.contains_key("team"));
}

#[test]
fn extreme_times_and_values_do_not_panic() {
    let mut a = error_rate();
    a.active_since = i64::MIN;
    a.fired_at = i64::MAX;
    a.resolved_at = Some(i64::MIN);
    a.value = Some(f64::MAX);
    a.peak = Some(f64::INFINITY);
    a.threshold = -f64::MAX;
    a.recent = vec![
        (i64::MIN, Some(f64::MAX)),
        (i64::MAX, Some(-f64::MAX)),
        (0, Some(f64::NAN)),
    ];
    let mut n = notification(vec![a.clone()], vec![a]);
    n.at = i64::MAX;
    let o = one(&receiver("Europe/Berlin"), &n);
    let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
    validate(&v).unwrap();
    assert!(v["alerts"][0]["peak"].is_null());
}

#[test]
fn errors() {
    let mut r = receiver("UTC");
    r.topics.clear();
    assert!(matches!(
        render(&r, &notification(vec![error_rate()], vec![])),
        Err(RenderError::NoTopics(_))
    ));
    assert!(matches!(
        render(&receiver("UTC"), &notification(vec![], vec![])),
        Err(RenderError::EmptyGroup(_))
    ));
}

// ---------------------------------------------------------------- templates

#[test]
fn annotations_render_with_units_and_labels() {
    let a = error_rate();
    assert_eq!(
        render_annotation(
            "{{ labels.service }} at {{ value }} (> {{ threshold }}, peak {{ peak }})",
            &a
        ),
        "payments at 5.2% (> 1%, peak 5.9%)"
    );
    assert_eq!(
        render_annotation("{% if value_raw > 5 %}bad{% endif %}", &a),
        "bad"
    );
    assert_eq!(
        render_annotation("{{ condition }} {{ unit }} {{ status }}", &a),
        "5.2% > 1% percent firing"
    );
    assert_eq!(
        render_annotation("no template here", &a),
        "no template here"
    );
    assert_eq!(render_annotation("{{ labels.nope }}|{{ nope }}", &a), "|");
    let mut nodata = a.clone();
    nodata.value = None;
    assert_eq!(render_annotation("{{ value }}", &nodata), "no data");
}

#[test]
fn broken_annotations_fall_back_to_their_text() {
    let a = error_rate();
    let out = render_annotation("Error rate {{ $value }}", &a);
    assert!(
        out.starts_with("Error rate {{ $value }} [template error: "),
        "{out}"
    );
    assert!(out.contains("not `$labels`/`$value`"));
    let out = render_annotation("{{ value | nosuchfilter }}", &a);
    assert!(
        out.starts_with("{{ value | nosuchfilter }} [template error: "),
        "{out}"
    );
    // Output is capped, not failed.
    let out = render_annotation("{% for i in range(10000) %}xxxxxxxxxx{% endfor %}", &a);
    assert_eq!(out.chars().count(), template::ANNOTATION_LIMIT + 1);
    assert!(out.ends_with('…'));
}

#[test]
fn the_sandbox_reaches_nothing_outside() {
    let a = error_rate();
    for t in [
        "{% include '/etc/passwd' %}",
        "{% include 'subject' %}",
        "{% import '/etc/hosts' as h %}",
        "{% extends '../../Cargo.toml' %}",
        "{{ debug() }}",
        "{{ env('HOME') }}",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
        "{{ range(1000000000) }}",
    ] {
        let out = render_annotation(t, &a);
        assert!(
            out.starts_with(&format!("{t} [template error: ")),
            "{t} gave {out}"
        );
        assert!(!out.contains("root:"), "{t} leaked a file");
    }
    // There is no `env` or `config`: undefined names are empty, and their
    // attributes an error.
    assert_eq!(render_annotation("{{ config }}{{ environ }}", &a), "");
    let out = render_annotation("{{ env.HOME }}", &a);
    assert!(
        out.starts_with("{{ env.HOME }} [template error: undefined value"),
        "{out}"
    );
}

#[test]
fn a_template_that_burns_cpu_runs_out_of_fuel() {
    let a = error_rate();
    // Nested loops with no output: the output cap never triggers, fuel does.
    let t = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}";
    let out = render_annotation(t, &a);
    assert!(out.starts_with(&format!("{t} [template error: ")), "{out}");
    assert!(out.contains("fuel"), "{out}");
}

/// Templates that build huge values (issue #10: 3-6 GB, then an abort) fail
/// fast with a clear error; nothing is allocated beyond the value limits.
#[test]
fn templates_that_grow_values_fail_fast_with_a_clear_error() {
    let a = error_rate();
    let cases = [
        // the one-liners
        ("{{ value | indent(2000000000) }}", "value too large"),
        (
            "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
            "value too large",
        ),
        (
            "{{ 'x' | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') }}",
            "value too large",
        ),
        // the other operators and filters that can grow a value
        (
            "{% set s = 'xxxxxxxxxxxxxxxx' * 100000 %}{{ s | length }}",
            "value too large",
        ),
        (
            "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
            "value too large",
        ),
        (
            "{{ range(100000) | join('xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx') }}",
            "value too large",
        ),
        ("{{ '%2000000000s' | format('x') }}", "value too large"),
        (
            "{{ [1] | batch(2000000000, 'x') | list }}",
            "sequence too long",
        ),
        ("{{ [1] | slice(2000000000) | list }}", "sequence too long"),
        (
            "{{ ([1] * 2000000000) | list | length }}",
            "sequence too long",
        ),
        (
            "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | list | length }}",
            "sequence too long",
        ),
        (
            "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% else %}{{ s | length }}{% endif %}{% endmacro %}{{ d('xxxxxxxx', 60) }}",
            "recursion limit exceeded",
        ),
        (
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set b %}{{ ns.s }}{{ ns.s }}{% endset %}{% set ns.s = b %}{% endfor %}{{ ns.s | length }}",
            "",
        ),
        (
            "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [(i ~ 'x') * 60000] %}{% endfor %}{{ ns.l | length }}",
            "template built more than",
        ),
    ];
    let doubling = format!(
        "{{% set s = 'xxxxxxxx' %}}{}{{{{ s | length }}}}",
        "{% set s = s ~ s %}".repeat(40)
    );
    let cases: Vec<(&str, &str)> = cases
        .into_iter()
        .chain([(doubling.as_str(), "value too large")])
        .collect();
    let big_seq = "{% set s = 'x' * 200000 %}{% set l = [s] * 200000 %}";
    let stringified = [
        format!("{big_seq}{{{{ (l ~ l) | length }}}}"),
        format!("{big_seq}{{{{ l | string | length }}}}"),
        format!("{big_seq}{{{{ l | join | length }}}}"),
        format!("{big_seq}{{{{ l | upper | length }}}}"),
        format!("{big_seq}{{{{ l | pprint | length }}}}"),
        format!("{big_seq}{{{{ {{'a': l}} | pprint | length }}}}"),
    ];
    // A long sequence printed as a string is cut at the value limit (or
    // fails): it never allocates its full text.
    for t in &stringified {
        let out = render_annotation(t, &a);
        let ok =
            out == "262144" || out.contains("[template error: invalid operation: value too large");
        assert!(ok, "{t} gave {}", out.chars().take(300).collect::<String>());
    }
    for (t, want) in cases {
        let out = render_annotation(t, &a);
        assert!(
            out.starts_with(&format!("{t} [template error: ")),
            "{t} gave {}",
            out.chars().take(200).collect::<String>()
        );
        assert!(out.contains(want), "{t} gave {out}");
    }
    // Ordinary use of the same operators and filters is untouched.
    assert_eq!(
        render_annotation(
            "{{ labels.service ~ '/' ~ alertname }} {{ 'ab' * 3 }} {{ 'a-b' | replace('-', '+') }} {{ [1, 2] | join(',') }} {{ 'x' | indent(2, true) }} {{ '%5s' | format('a') }}",
            &a
        ),
        "payments/PaymentsErrorRate ababab a+b 1,2   x     a"
    );
}

#[test]
fn receiver_templates_override_subject_and_body() {
    let mut r = receiver("Europe/Berlin");
    r.message.subject_template = Some(
        "{{ status | upper }} {{ counts.firing }}/{{ counts.total }} {{ group_labels.service }}: {{ alerts[0].title }} at {{ alerts[0].value_text }}\nsecond line".into(),
    );
    r.message.body_template = Some(
        "{% for a in firing %}* {{ a.headline }} [{{ a.labels.severity }}] {{ a.links.runbook or '' }}\n{% endfor %}{{ counts.omitted }} omitted; {{ notes | length }} notes; seq {{ seq }} at {{ at_local }}\n--\n{{ default_body | length > 0 }}".into(),
    );
    let o = one(&r, &mixed_group());
    assert_eq!(
        o.subject,
        "FIRING 3/4 payments: Payments error rate at 5.2% second line"
    );
    let body = &o.bodies["email"];
    assert!(body.starts_with("* Payments error rate hit 5.2% (threshold 1%) since 15:42 CET (12m ago) [page] https://runbooks.example.com/payments/error-rate\n"), "{body}");
    assert!(
        body.contains("0 omitted; 2 notes; seq 3 at 2024-01-15 15:54 CET\n--\nTrue"),
        "{body}"
    );
    assert_eq!(o.bodies["default"], *body);
    // The payload does not change with templates, except for the subject.
    let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
    assert_eq!(v["subject"], o.subject);
}

#[test]
fn a_body_template_can_wrap_the_default_body() {
    let mut r = receiver("Europe/Berlin");
    r.message.body_template = Some("{{ default_body }}".into());
    let default = one(&receiver("Europe/Berlin"), &mixed_group());
    let o = one(&r, &mixed_group());
    assert_eq!(o.bodies["email"], default.bodies["email"]);
    r.message.subject_template = Some("{{ default_subject }} [prod]".into());
    let o = one(&r, &mixed_group());
    // (Cut to SNS's limit: 99 characters.)
    assert_eq!(
        o.subject,
        "[FIRING:3] payments: Payments error rate 5.2%, Checkout p99 latency is 850ms, PaymentsThroughputLo…"
    );
    assert!(default.subject.len() + " [prod]".len() > 99);
}

#[test]
fn templates_can_be_checked_ahead() {
    assert!(check_template("{{ labels.service }} {% if value_raw > 1 %}x{% endif %}").is_ok());
    let e = check_template("{{ $labels.service }}").unwrap_err();
    assert!(e.contains("syntax error"), "{e}");
    assert!(check_template("{% for %}").is_err());
}

#[test]
fn a_short_count_in_the_title_is_not_taken_for_the_value() {
    let mut a = throughput_nodata();
    a.value = Some(2.0);
    a.annotations
        .insert("title".into(), "EC2 fleet throughput".into());
    let o = one(&receiver("UTC"), &notification(vec![a], vec![]));
    assert_eq!(
        o.subject,
        "[FIRING] EC2 fleet throughput 2 < 10 (payments, page)"
    );
    assert!(o.bodies["email"].starts_with("EC2 fleet throughput fell to 2 (threshold 10) since "));
}

#[test]
fn failing_receiver_templates_fall_back_to_defaults() {
    let default = one(&receiver("Europe/Berlin"), &mixed_group());
    for (subject, body) in [
        ("{% include '/etc/passwd' %}", "{% include '/etc/passwd' %}"),
        ("{{ unclosed", "{% for %}"),
        ("{{ env.HOME }}", "{{ nothing }}"),
        ("{{ debug() }}", "{% extends 'x' %}"),
    ] {
        let mut r = receiver("Europe/Berlin");
        r.message.subject_template = Some(subject.into());
        r.message.body_template = Some(body.into());
        let o = one(&r, &mixed_group());
        assert_eq!(o.subject, default.subject, "{subject}");
        let text = &o.bodies["email"];
        assert!(text.contains("Note: subject_template failed ("), "{text}");
        assert!(text.contains("; using the default subject."), "{text}");
        assert!(text.contains("Note: body_template failed ("), "{text}");
        assert!(text.starts_with("Payments error rate hit 5.2%"), "{text}");
        assert!(!text.contains("root:"));
        let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
        // The two receiver templates, and the broken `description`
        // annotation of the group (left out, with a note).
        assert_eq!(v["notes"].as_array().unwrap().len(), 4);
        // ... and each failure is reported to the caller, which pages the
        // operators (`CycleError::Template`, self-monitoring `check=render`).
        let failures = render(&r, &mixed_group()).unwrap().template_failures;
        assert_eq!(failures.len(), 3, "{failures:#?}");
        assert!(
            failures[0].starts_with("annotation `description` of PaymentsThroughputLow failed ("),
            "{failures:#?}"
        );
        assert!(failures[0].ends_with("); left out."), "{failures:#?}");
        assert!(
            failures[1].starts_with("subject_template failed ("),
            "{failures:#?}"
        );
        assert!(
            failures[2].starts_with("body_template failed ("),
            "{failures:#?}"
        );
    }
    // A message whose templates all render reports none.
    let ok = render(
        &receiver("Europe/Berlin"),
        &notification(vec![error_rate()], vec![]),
    )
    .unwrap();
    assert_eq!(ok.template_failures, Vec::<String>::new());
}

// ---------------------------------------------------------------- links, details

#[test]
fn console_links_resolve_wildcards_from_labels() {
    let o = one(&receiver("UTC"), &notification(vec![latency()], vec![]));
    let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
    let url = v["alerts"][0]["links"]["console"].as_str().unwrap();
    assert!(url.starts_with(
        "https://eu-central-1.console.aws.amazon.com/cloudwatch/home?region=eu-central-1#metricsV2:graph=~(metrics~(~(~'Shop*2fPayments~'Latency~'Endpoint~'*2fcheckout~(id~'p99~stat~'p99~period~60)))"
    ), "{url}");
    // Without the label there is no link rather than a wrong graph.
    let mut a = latency();
    a.labels.remove("Endpoint");
    let o = one(&receiver("UTC"), &notification(vec![a], vec![]));
    let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
    assert!(v["alerts"][0]["links"]["console"].is_null());
    // Default region.
    let mut r = receiver("UTC");
    r.message.console_region = None;
    let o = one(&r, &notification(vec![error_rate()], vec![]));
    assert!(o.bodies["email"].contains("Console    https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#metricsV2:graph=~("));
}

#[test]
fn sparkline_and_recent_values_in_text() {
    let o = one(&receiver("UTC"), &notification(vec![error_rate()], vec![]));
    let text = &o.bodies["email"];
    assert!(
        text.contains("Graph      ▁▁ ▂▃▄▆█▇▇  min 0.4%  max 5.9%\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "Recent     0.4% 0.5% · 1.2% 2% 3.1% 4.4% 5.9% 5.5% 5.2%  (14:44–14:53 UTC, every 1m)\n"
        ),
        "{text}"
    );
    assert!(text.contains(
        "Labels     alertname=PaymentsErrorRate, service=payments, severity=page, team=payments\n"
    ));
    assert!(text.contains("Runbook    https://runbooks.example.com/payments/error-rate\n"));
    assert!(text.contains("Dashboard  https://grafana.example.com/d/payments\n"));
    assert!(text.contains("Expression 100 * FILL(errors, 0) / requests\n"));
    assert!(text.contains("1 firing · group service=payments\n"));
}

/// Templates that would exhaust memory at run time (issue #10) do not stop
/// the page: a receiver template falls back to the default with a note,
/// an annotation shows its raw text and the error, and the message goes out.
#[test]
fn memory_bomb_templates_at_run_time_still_deliver_the_page() {
    let default = one(&receiver("Europe/Berlin"), &mixed_group());
    let bomb = "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}";
    let mut r = receiver("Europe/Berlin");
    r.message.subject_template = Some("{{ subject | indent(2000000000) }}".into());
    r.message.body_template = Some(bomb.into());
    let mut n = mixed_group();
    n.firing[0].annotations.insert(
        "description".into(),
        "{{ 'x' | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') }}".into(),
    );
    let o = one(&r, &n);
    assert_eq!(o.subject, default.subject);
    let text = &o.bodies["email"];
    assert!(
        text.contains("Note: subject_template failed (invalid operation: value too large: "),
        "{text}"
    );
    assert!(
        text.contains("Note: body_template failed (invalid operation: value too large: "),
        "{text}"
    );
    // The annotation that cannot render is left out (the default text) and
    // the note says why; the page still goes out.
    assert!(
        text.contains("Note: annotation `description` of PaymentsErrorRate failed (invalid operation: value too large: "),
        "{text}"
    );
    assert!(!text.contains("[template error:"), "{text}");
    assert!(text.starts_with("Payments error rate hit 5.2%"), "{text}");
    assert!(text.len() < 64 * 1024, "{}", text.len());
}

/// A `title` template that fails at run time gives way to the default title
/// (the summary, else the alert name) with a note; the page goes out.
#[test]
fn a_failing_title_template_falls_back_to_the_default_title_with_a_note() {
    let mut n = notification(vec![error_rate()], vec![]);
    n.firing[0]
        .annotations
        .insert("title".into(), "{{ value | indent(2000000000) }}".into());
    let o = one(&receiver("UTC"), &n);
    let text = &o.bodies["email"];
    assert!(text.starts_with("PaymentsErrorRate hit 5.2%"), "{text}");
    assert!(o.subject.contains("PaymentsErrorRate"), "{}", o.subject);
    assert!(
        text.contains(
            "Note: title template of PaymentsErrorRate failed (invalid operation: value too large: 2000000004 bytes (limit 262144 bytes) (in <string>:1)); using the default title."
        ),
        "{text}"
    );
    let v: Value = serde_json::from_str(&o.bodies["sqs"]).unwrap();
    assert_eq!(v["notes"].as_array().unwrap().len(), 1);
}

#[test]
fn slo_budget_figures_from_less_than_the_window_are_marked_partial() {
    let t = firebell_core::slo::budget_template(std::time::Duration::from_secs(30 * 86_400));
    let mut a = error_rate();
    a.value = Some(16.75);
    let with = |spent: &str, covered: &str| {
        render_annotation(
            &format!(
                "{{% set budget_spent = {spent} %}}{{% set budget_spent_covered = {covered} %}}{t}"
            ),
            &a,
        )
    };
    // The whole window had data: the figure as it is.
    assert_eq!(
        with("0.792", "1"),
        "Error budget left: 20.8% of the 30d budget; at 16.8x it is gone in 8.9 hours."
    );
    // 14 hours of a 30-day window: said so.
    assert_eq!(
        with("1.265", "0.019444"),
        "Error budget exhausted: 126.5% of the 30d budget spent. (Partial: computed from only 14.0 hours of data, not the full 30d.)"
    );
    assert_eq!(
        with("0.1", "0.5"),
        "Error budget left: 90.0% of the 30d budget; at 16.8x it is gone in 38.7 hours. (Partial: computed from only 15.0 days of data, not the full 30d.)"
    );
    // Unknown: no figure to mark.
    assert_eq!(
        with("none", "0"),
        "Error budget left: unknown (no data over the last 30d)."
    );
}
