//! Seed corpora: the repository's examples and test fixtures, plus a few
//! hand-written inputs per target.

use std::path::{Path, PathBuf};

use crate::targets::Target;

/// The repository root (this crate lives in `fuzz/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// YAML files the config seeds come from, relative to the repository root.
const YAML_DIRS: &[&str] = &[
    "examples",
    "examples/rules",
    "examples/tests",
    "cli/tests/fixtures",
    "tests/fixtures",
];

fn yaml_files(root: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for dir in YAML_DIRS {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = rd
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        paths.sort();
        for p in paths {
            if let Ok(t) = std::fs::read_to_string(&p) {
                out.push((p, t));
            }
        }
    }
    out
}

/// Values of `key:` lines in the YAML seeds (unquoted), e.g. every `expression:`.
fn yaml_values(files: &[(PathBuf, String)], keys: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for (_, text) in files {
        for line in text.lines() {
            let l = line.trim_start().trim_start_matches("- ");
            for key in keys {
                if let Some(rest) = l.strip_prefix(key).and_then(|r| r.strip_prefix(':')) {
                    let v = rest.trim().trim_matches('"').trim_matches('\'');
                    if !v.is_empty() && !out.iter().any(|o| o == v) {
                        out.push(v.to_string());
                    }
                }
            }
        }
    }
    out
}

/// The seeds of `target`, in a fixed order (the run is a function of the seed).
pub fn seeds(target: Target) -> Vec<Vec<u8>> {
    let root = repo_root();
    let files = yaml_files(&root);
    let mut out: Vec<String> = match target {
        Target::Config | Target::Run => files.iter().map(|(_, t)| t.clone()).collect(),
        Target::Expr => {
            let mut v = yaml_values(&files, &["expression", "expr", "good", "total"]);
            v.extend(
                [
                    "m",
                    "100 * FILL(errors, 0) / requests",
                    "RSUM(FILL(errors, 0), 60) / RSUM(requests, 60)",
                    "IF(a > 1 AND b < 2, a, -b)",
                    "MAX(a, b, 3) - MIN(a)",
                    "FILL(a, REPEAT) + FILL(b, LINEAR) + FILL(c, 0)",
                    "RATE(a) + DIFF(b) || SQRT(c) && LOG(d) >= LOG10(e)",
                    "ABS(-x) + CEIL(.5) * FLOOR(1e3) / AVG(x, y)",
                ]
                .map(String::from),
            );
            v
        }
        Target::Matcher => {
            let mut v = yaml_values(&files, &["matchers"]);
            v.extend(
                [
                    "severity=page",
                    "team!=payments",
                    "service=~\"pay.*\"",
                    "alertname!~\"Test.+\"",
                    "alertname=~\".+\"",
                    "alertname!~\"\"",
                    "env=\"prod, eu\"",
                    "a=\"\\\"quoted\\\"\"",
                    "{foo=\"bar\", baz!=\"quux\"}",
                    "foo=bar,dings!=bums",
                    "foo=!bar\\n",
                    "foo🙂=bar",
                    "\"foo bar\"=\"x\\ty\"",
                    "a=\"x\\ty\"",
                ]
                .map(String::from),
            );
            v
        }
        Target::Duration => {
            let mut v = yaml_values(
                &files,
                &[
                    "for",
                    "interval",
                    "keep_firing_for",
                    "window",
                    "period",
                    "group_wait",
                    "group_interval",
                    "repeat_interval",
                ],
            );
            v.extend(
                [
                    "0",
                    "30s",
                    "5m",
                    "1h30m",
                    "2d",
                    "1w",
                    "99999999999d",
                    "10000000000000w",
                    "1h 30m",
                ]
                .map(String::from),
            );
            v
        }
        Target::Template => {
            let mut v: Vec<String> = Vec::new();
            for (_, text) in &files {
                for line in text.lines() {
                    if line.contains("{{") || line.contains("{%") {
                        let t = line.split_once(':').map_or(line, |(_, r)| r).trim();
                        let t = t.trim_matches('"').to_string();
                        if !v.contains(&t) {
                            v.push(t);
                        }
                    }
                }
            }
            v.extend(
                [
                    "{{ labels.service }} at {{ value }} (> {{ threshold }}, peak {{ peak }})",
                    "{% if value_raw > 5 %}bad{% endif %}",
                    "{{ condition }} {{ unit }} {{ status }}",
                    "{% for k, v in labels | items %}{{ k }}={{ v }} {% endfor %}",
                    "{{ 'ab' ~ 'cd' | upper | replace('A', 'xy') | indent(2) }}",
                    "{% set s = 'x' %}{% for i in range(3) %}{% set s = s ~ s %}{% endfor %}{{ s }}",
                    "{{ [1, 2, 3] | join(', ') }} {{ '%s-%s' | format(1, 2) }} {{ 'a' * 3 }}",
                ]
                .map(String::from),
            );
            v
        }
        Target::Replay => {
            let mut v = vec![
                "{\"namespace\":\"Shop\",\"metric\":\"Errors\",\"dimensions\":{\"Service\":\"checkout\"},\"stat\":\"Sum\",\"period\":60,\"points\":[[1795392000,0],[1795392060,1.5],[1795392120,3]]}\n{\"namespace\":\"Shop\",\"metric\":\"Latency\",\"dimensions\":{},\"stat\":\"p99\",\"period\":300,\"points\":[[1795392000,850]]}\n".to_string(),
                "{\"namespace\":\"A\",\"metric\":\"B\",\"dimensions\":{},\"stat\":\"Average\",\"period\":1,\"points\":[]}\n".to_string(),
            ];
            // The head of the demo replay: its first lines, points cut short.
            if let Ok(day) = std::fs::read_to_string(root.join("examples/demo/day.jsonl")) {
                for line in day.lines().take(4) {
                    if let Some(i) = line.find("\"points\":[") {
                        let head = &line[..i + 10];
                        let pts: Vec<&str> = line[i + 10..].split("],[").take(5).collect();
                        let mut p = pts.join("],[");
                        if !p.ends_with(']') {
                            p.push(']');
                        }
                        v.push(format!("{head}{p}]}}\n"));
                    }
                }
            }
            v
        }
    };
    if target == Target::Run {
        // The example config as one input (its files joined), and each file alone.
        let config: Vec<&(PathBuf, String)> = files
            .iter()
            .filter(|(p, t)| !p.starts_with(root.join("examples/tests")) && !t.contains("\ntests:"))
            .collect();
        let mut all = String::new();
        for (p, t) in &config {
            let name = p.strip_prefix(&root).unwrap_or(p).display().to_string();
            all.push_str(&format!("{}{name}\n{t}", crate::targets::FILE_SEPARATOR));
            if !t.ends_with('\n') {
                all.push('\n');
            }
        }
        out.insert(0, all);
    }
    if out.is_empty() {
        out.push(String::new());
    }
    out.into_iter().map(String::into_bytes).collect()
}
