#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The output contract (`docs/output.md`): every command's `-o json`
//! follows its published schema (`docs/schemas/`), and every published
//! schema is a valid JSON Schema (draft 2020-12) named after its entity.

mod common;
use common::{assert_schema, firebell, text};

use serde_json::{Value, json};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Stdout as one JSON document.
fn doc(out: &std::process::Output) -> Value {
    serde_json::from_str(&text(&out.stdout))
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", text(&out.stdout), text(&out.stderr)))
}

/// Stdout as JSON Lines.
fn lines(out: &std::process::Output) -> Vec<Value> {
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Checks every object of `list` against the schema its `schema` names
/// (`firebell.<entity>/v1`), returning the entities seen in order.
fn check_each(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|v| {
            let name = v["schema"]
                .as_str()
                .unwrap_or_else(|| panic!("no schema: {v}"));
            let entity = name
                .strip_prefix("firebell.")
                .and_then(|n| n.strip_suffix("/v1"))
                .unwrap_or_else(|| panic!("not a firebell v1 schema: {name}"));
            assert_schema(entity, v);
            entity.to_string()
        })
        .collect()
}

#[test]
fn every_published_schema_is_a_valid_schema_named_after_its_entity() {
    // The meta-schema check can fail: an invalid schema is refused.
    assert!(jsonschema::meta::validate(&json!({"type": "invalid_type"})).is_err());
    let docs = std::fs::read_to_string(format!("{ROOT}/docs/output.md")).unwrap();
    let mut entities = Vec::new();
    for entry in std::fs::read_dir(format!("{ROOT}/docs/schemas")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        let entity = name
            .strip_suffix(".schema.json")
            .unwrap_or_else(|| panic!("{name}: not <entity>.schema.json"));
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        if let Err(e) = jsonschema::meta::validate(&schema) {
            panic!("{name} is not a valid JSON Schema: {e}");
        }
        assert_eq!(
            schema["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert_eq!(
            schema["properties"]["schema"]["const"],
            format!("firebell.{entity}/v1"),
            "{name}"
        );
        assert!(
            schema["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("schema"))),
            "{name}: `schema` must be required"
        );
        assert!(
            docs.contains(&format!("`firebell.{entity}/v1`")),
            "docs/output.md does not describe firebell.{entity}/v1"
        );
        entities.push(entity.to_string());
    }
    entities.sort();
    for expected in [
        "cost",
        "cycle",
        "diagnostic",
        "notification-record",
        "route",
        "silence",
        "transition",
    ] {
        assert!(
            entities.iter().any(|e| e == expected),
            "{expected} missing from {entities:?}"
        );
    }
}

#[test]
fn the_checker_refuses_a_document_that_breaks_its_schema() {
    let bad = json!({"schema": "firebell.silence/v1", "id": 7});
    let refused = std::panic::catch_unwind(|| assert_schema("silence", &bad));
    assert!(refused.is_err());
}

#[test]
fn demo_prints_notification_records_and_json_is_an_alias() {
    let out = firebell(&["demo", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let records = lines(&out);
    assert_eq!(check_each(&records), vec!["notification-record"; 5]);
    assert_eq!(
        text(&firebell(&["demo", "--json"]).stdout),
        text(&out.stdout)
    );
}

#[test]
fn run_streams_transitions_notifications_and_cycles() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let jsonl = dir.path().join("sent.jsonl");
    let out = firebell(&[
        "run",
        "-c",
        "examples",
        "--at",
        "2026-11-23T15:44:00Z",
        "--until",
        "2026-11-23T15:47:00Z",
        "--state",
        state.to_str().unwrap(),
        "--jsonl",
        jsonl.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let all = lines(&out);
    let entities = check_each(&all);
    // Four cycles, each ending with its summary; the page at 15:46.
    assert_eq!(entities.iter().filter(|e| *e == "cycle").count(), 4);
    assert_eq!(entities.last().map(String::as_str), Some("cycle"));
    let fired = all
        .iter()
        .find(|v| v["schema"] == "firebell.transition/v1" && v["event"] == "fired")
        .expect("a fired transition");
    assert_eq!(fired["rule"], "PaymentsHighErrorRate");
    assert_eq!(fired["at"], "2026-11-23T15:45:00Z");
    assert_eq!(fired["tick"], "2026-11-23T15:46:00Z");
    let sent: Vec<&Value> = all
        .iter()
        .filter(|v| v["schema"] == "firebell.notification-record/v1")
        .collect();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0]["at"], "2026-11-23T15:46:00Z");
    let cycle = all
        .iter()
        .find(|v| v["schema"] == "firebell.cycle/v1" && v["tick"] == "2026-11-23T15:46:00Z")
        .unwrap();
    assert_eq!(cycle["notifications"], 1);
    assert_eq!(cycle["skipped"], Value::Null);
    // --jsonl FILE holds the same records.
    let file: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(file.iter().collect::<Vec<_>>(), sent);
    // The same ticks again: skipped cycles, reported as such.
    let again = firebell(&[
        "run",
        "-c",
        "examples",
        "--once",
        "--at",
        "2026-11-23T15:46:00Z",
        "--state",
        state.to_str().unwrap(),
        "-o",
        "json",
    ]);
    let again = lines(&again);
    assert_eq!(check_each(&again), vec!["cycle"]);
    assert_eq!(again[0]["skipped"], "duplicate");
}

#[test]
fn backtest_prints_notification_records() {
    let out = firebell(&["backtest", "-c", "examples", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(check_each(&lines(&out)), vec!["notification-record"; 5]);
    let alias = firebell(&["backtest", "-c", "examples", "--format", "json"]);
    assert_eq!(text(&alias.stdout), text(&out.stdout));
}

#[test]
fn silences_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_str().unwrap();
    let add = firebell(&[
        "silence",
        "add",
        "-c",
        "examples",
        "-m",
        "team=\"payments\"",
        "--duration",
        "2h",
        "--created-by",
        "alice",
        "--comment",
        "deploy",
        "--state",
        state,
        "-o",
        "json",
    ]);
    assert!(add.status.success(), "{}", text(&add.stderr));
    let added = doc(&add);
    assert_eq!(check_each(std::slice::from_ref(&added)), ["silence"]);
    assert_eq!(added["state"], "active");
    assert_eq!(added["matchers"], json!(["team=\"payments\""]));
    let id = added["id"].as_str().unwrap();
    let list = doc(&firebell(&[
        "silence", "list", "--state", state, "-o", "json",
    ]));
    let list = list.as_array().unwrap();
    assert_eq!(check_each(list), ["silence"]);
    assert_eq!(list[0]["id"], id);
    let expired = doc(&firebell(&[
        "silence", "expire", id, "--state", state, "-o", "json",
    ]));
    assert_eq!(check_each(std::slice::from_ref(&expired)), ["silence"]);
    assert_eq!(expired["state"], "expired");
}

#[test]
fn validate_prints_diagnostics() {
    let f = "cli/tests/fixtures/three_mistakes.yaml";
    let out = firebell(&["validate", f, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let list = doc(&out);
    assert_eq!(check_each(list.as_array().unwrap()), vec!["diagnostic"; 3]);
    assert_eq!(
        list[1],
        json!({
            "schema": "firebell.diagnostic/v1",
            "file": f,
            "line": 8,
            "column": 10,
            "severity": "error",
            "message": "invalid duration \"soon\" for `for` (expected a duration such as 30s, 5m, 1h or 1h30m)",
        })
    );
    assert_eq!(text(&out.stderr), "");
    let ok = firebell(&["validate", "--config", "examples", "-o", "json"]);
    assert!(ok.status.success());
    assert_eq!(text(&ok.stdout), "[]\n");
}

#[test]
fn lint_prints_diagnostics_with_their_code() {
    let out = firebell(&["lint", "-c", "cli/tests/fixtures/lint.yaml", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let list = doc(&out);
    let list = list.as_array().unwrap();
    assert_eq!(check_each(list), vec!["diagnostic"; 6]);
    assert_eq!(list[0]["severity"], "warning");
    assert_eq!(list[0]["code"], "page-without-runbook");
    let strict = firebell(&[
        "lint",
        "cli/tests/fixtures/lint.yaml",
        "--strict",
        "-o",
        "json",
    ]);
    assert_eq!(strict.status.code(), Some(1));
    assert_eq!(doc(&strict)[0]["severity"], "error");
}

#[test]
fn test_prints_failed_checks_as_diagnostics() {
    let out = firebell(&[
        "test",
        "tests/fixtures/failing_rule_test.yaml",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let list = doc(&out);
    let list = list.as_array().unwrap();
    assert_eq!(check_each(list), vec!["diagnostic"; 2]);
    assert_eq!(
        list[0],
        json!({
            "schema": "firebell.diagnostic/v1",
            "file": "tests/fixtures/failing_rule_test.yaml",
            "line": 14,
            "column": 9,
            "severity": "error",
            "message": "wrongly expects a page after 2 minutes: alerts of PaymentsHighErrorRate at eval_time 2m",
            "test": "wrongly expects a page after 2 minutes",
            "diff": [
                "- firing  {service=\"payments\", severity=\"page\", team=\"payments\"}",
                "+ pending {service=\"payments\", severity=\"page\", team=\"payments\"}",
            ],
        })
    );
}

#[test]
fn routes_and_cost_as_json() {
    let out = firebell(&[
        "routes",
        "-c",
        "examples",
        "--labels",
        "team=checkout,severity=ticket",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = doc(&out);
    let list = list.as_array().unwrap();
    assert_eq!(check_each(list), ["route"]);
    assert_eq!(list[0]["receiver"], "checkout-oncall");
    let out = firebell(&["cost", "-c", "examples", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cost = doc(&out);
    assert_eq!(check_each(std::slice::from_ref(&cost)), ["cost"]);
    assert_eq!(cost["rules"].as_array().map(Vec::len), Some(9));
    assert_eq!(cost["shards"], 1);
    assert_eq!(cost["step_functions"], 0.0);
    assert_eq!(cost["lambda_requests"], 43_800.0);
    // 5 shared reads and 9 empty state bucket Queries at 0.5.
    assert_eq!(cost["read_units_per_tick"], 9.5);
    // Sharded: 4 shards and the delivery stage a tick, one Express execution.
    let out = firebell(&["cost", "-c", "examples", "--shards", "4", "-o", "json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sharded = doc(&out);
    assert_eq!(check_each(std::slice::from_ref(&sharded)), ["cost"]);
    assert_eq!(sharded["shards"], 4);
    assert_eq!(sharded["lambda_requests"], 219_000.0);
    assert_eq!(sharded["read_units_per_tick"], 13.5);
    assert_eq!(cost["sentinels"]["mode"], "off");
    assert_eq!(cost["rules"][0]["mode"], "polling");
    // As if sentinels were on: the rules they watch, and why others are polled.
    let out = firebell(&[
        "cost",
        "-c",
        "examples",
        "--sentinels",
        "auto",
        "-o",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let auto = doc(&out);
    assert_eq!(check_each(std::slice::from_ref(&auto)), ["cost"]);
    assert_eq!(auto["sentinels"]["mode"], "auto");
    assert_eq!(auto["sentinels"]["covered_rules"], 6);
    assert_eq!(
        auto["sentinels"]["alarms"].as_array().map(Vec::len),
        Some(4)
    );
    let modes: Vec<(&str, &str, bool)> = auto["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap(),
                r["mode"].as_str().unwrap(),
                r["polling_reason"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        [
            ("CheckoutErrorRate", "sentinel", false),
            ("CheckoutLatencyP99", "sentinel", false),
            ("PaymentsHighErrorRate", "polling", true),
            ("PaymentsAvailability:page:1h", "sentinel", false),
            ("PaymentsAvailability:page:6h", "sentinel", false),
            ("PaymentsAvailability:ticket:3d", "polling", true),
            ("CheckoutLatency:page:1h", "sentinel", false),
            ("CheckoutLatency:page:6h", "sentinel", false),
            ("CheckoutLatency:ticket:3d", "polling", true),
        ]
    );
    let sfn = sharded["step_functions"].as_f64().unwrap_or_default();
    assert!(
        (sfn - (0.0438 + 1_642.5 * 0.000_016_67)).abs() < 1e-9,
        "{sfn}"
    );
}
