//! Benchmark (not a test): renders the issue #10 memory-bomb annotation
//! templates and prints, per template, the wall time and the first words of
//! the error, then the process's peak RSS (Linux `VmHWM`).
//!
//! `cargo run --release -p firebell-notify --example template_bombs`

use std::collections::BTreeMap;
use std::time::Instant;

use firebell_core::alert::{Alert, AlertStatus};
use firebell_core::model::{Op, Unit};

fn main() {
    let labels: BTreeMap<String, String> = [("alertname", "Bomb"), ("service", "payments")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let alert = Alert {
        fingerprint: firebell_core::alert::fingerprint(&labels),
        labels,
        annotations: BTreeMap::new(),
        status: AlertStatus::Firing,
        active_since: 1_700_000_000,
        fired_at: 1_700_000_000,
        resolved_at: None,
        value: Some(5.2),
        peak: Some(5.9),
        op: Op::Gt,
        threshold: 1.0,
        unit: Unit::Percent,
        recent: Vec::new(),
        expression: "e".to_string(),
        metrics: BTreeMap::new(),
    };
    let doubling = format!(
        "{{% set s = 'xxxxxxxx' %}}{}{{{{ s }}}}",
        "{% set s = s ~ s %}".repeat(40)
    );
    let bombs = [
        "{{ value | indent(2000000000) }}".to_string(),
        "{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}".to_string(),
        doubling,
        "{{ 'x' | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') | replace('', 'xxxxxxxxxxxxxxxx') }}".to_string(),
        "{{ '%2000000000s' | format('x') }}".to_string(),
        "{% set ns = namespace(l=[]) %}{% for i in range(100000) %}{% set ns.l = ns.l + [(i ~ 'x') * 60000] %}{% endfor %}{{ ns.l | length }}".to_string(),
    ];
    for t in &bombs {
        let start = Instant::now();
        let out = firebell_notify::render_annotation(t, &alert);
        let err = out
            .find("[template error: ")
            .map(|i| out[i..].chars().take(90).collect::<String>())
            .unwrap_or_else(|| format!("rendered {} bytes", out.len()));
        println!(
            "{:>8.2} ms  {}  <- {}",
            start.elapsed().as_secs_f64() * 1000.0,
            err,
            t.chars().take(60).collect::<String>()
        );
    }
    let hwm = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "VmHWM: unknown".to_string());
    println!("peak RSS {hwm}");
}
