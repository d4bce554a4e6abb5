//! The HTML report of the noise report (`firebell report --html FILE`):
//! per team its figures and a bar chart of its pages per day (out of hours
//! hatched), the table of those days beside it, and the noisiest rules with
//! the suggested change. Everything is the noise report's
//! ([`crate::report::report`]); nothing is counted here.

use std::fmt::Write as _;

use firebell_core::series::Epoch;

use super::{CSS, esc, svg};
use crate::report::NoiseReport;

const DAY: Epoch = 86_400;

fn span(secs: Option<Epoch>) -> String {
    secs.map_or_else(
        || "-".to_string(),
        |s| {
            firebell_core::decode::format_duration(std::time::Duration::from_secs(s.unsigned_abs()))
        },
    )
}

fn share(s: Option<f64>) -> String {
    s.map_or_else(|| "-".to_string(), |v| format!("{:.0}%", v * 100.0))
}

/// `2026-11-23`.
fn day(t: Epoch) -> String {
    firebell_core::text::rfc3339(t)
        .get(..10)
        .unwrap_or("")
        .to_string()
}

/// Writes the page of a noise report.
pub fn noise_page(r: &NoiseReport, generator: &str) -> String {
    let mut o = String::with_capacity(32 * 1024);
    let title = format!("firebell report: {} .. {}", day(r.since), day(r.until));
    let _ = write!(
        o,
        r#"<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><meta name="color-scheme" content="light dark"><title>{}</title><style>{CSS}</style></head><body>"#,
        esc(&title)
    );
    o.push_str(&svg::defs());
    let pages: usize = r.teams.iter().map(|t| t.pages).sum();
    let ooh: usize = r.teams.iter().map(|t| t.pages_out_of_hours).sum();
    let _ = write!(
        o,
        "<header><h1>{}</h1><dl class=\"meta\"><dt>period</dt><dd>{} .. {} (UTC)</dd><dt>pages</dt><dd>{pages} ({ooh} out of hours) to {} teams</dd><dt>silences created</dt><dd>{}</dd></dl></header><main>",
        esc(&title),
        esc(&firebell_core::text::rfc3339(r.since)),
        esc(&firebell_core::text::rfc3339(r.until)),
        r.teams.len(),
        r.silences.created
    );

    o.push_str("<section id=\"teams\"><h2>Teams</h2><table class=\"teams\"><thead><tr><th scope=\"col\">team</th><th scope=\"col\">working hours</th><th scope=\"col\">notifications</th><th scope=\"col\">pages</th><th scope=\"col\">out of hours</th><th scope=\"col\">toast</th><th scope=\"col\">silences</th></tr></thead><tbody>");
    for (i, t) in r.teams.iter().enumerate() {
        let _ = write!(
            o,
            "<tr><th scope=\"row\"><a href=\"#team-{i}\">{}</a></th><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&t.receiver),
            esc(&t.working_hours),
            t.notifications,
            t.pages,
            t.pages_out_of_hours,
            share(t.toast_share()),
            t.silences.created
        );
    }
    o.push_str("</tbody></table>");

    // Pages per day, per team.
    let first = r.since.div_euclid(DAY) * DAY;
    // The days the period touches (an end at midnight starts no day).
    let days = usize::try_from((r.until - 1 - first).max(0) / DAY + 1)
        .unwrap_or(1)
        .clamp(1, 400);
    let max = r
        .teams
        .iter()
        .flat_map(|t| t.pages_by_day.values().map(|(p, _)| *p))
        .max()
        .unwrap_or(0)
        .max(1);
    for (i, t) in r.teams.iter().enumerate() {
        let (w, h, left, top) = (720.0, 90.0, 40.0, 6.0);
        let bw = w / days as f64;
        let bar = (bw * 0.7).min(40.0);
        let _ = write!(
            o,
            "<figure class=\"instance\" id=\"team-{i}\"><figcaption>{}: pages per day</figcaption><svg class=\"chart\" role=\"img\" aria-labelledby=\"team-{i}-t\" viewBox=\"0 0 {} {}\"><title id=\"team-{i}-t\">{}: {} pages over the period, {} out of hours; the numbers are in the table below the chart</title>",
            esc(&t.receiver),
            w + left + 10.0,
            h + top + 20.0,
            esc(&t.receiver),
            t.pages,
            t.pages_out_of_hours
        );
        let _ = write!(
            o,
            "<rect class=\"plot\" x=\"{left}\" y=\"{top}\" width=\"{w}\" height=\"{h}\"/><text class=\"ylab\" x=\"{}\" y=\"{}\">{max}</text><text class=\"ylab\" x=\"{}\" y=\"{}\">0</text>",
            left - 4.0,
            top + 8.0,
            left - 4.0,
            top + h
        );
        for (d, (p, out)) in &t.pages_by_day {
            let k = ((d - first) / DAY) as f64;
            let x = left + k * bw + (bw - bar) / 2.0;
            let bh = h * *p as f64 / max as f64;
            let oh = h * *out as f64 / max as f64;
            let _ = write!(
                o,
                "<g><title>{}: {p} page(s), {out} out of hours</title><rect class=\"bar\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                day(*d),
                top + h - bh,
                bar,
                bh - oh
            );
            if *out > 0 {
                let _ = write!(
                    o,
                    "<rect class=\"bar night\" fill=\"url(#p-inhibited)\" x=\"{x:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{oh:.1}\"/>",
                    top + h - oh,
                    bar
                );
            }
            o.push_str("</g>");
        }
        // A date label about every week.
        let every = (days / 7).max(1);
        for k in (0..days).step_by(every) {
            let _ = write!(
                o,
                "<text class=\"xlab\" x=\"{:.1}\" y=\"{}\">{}</text>",
                left + (k as f64 + 0.5) * bw,
                top + h + 14.0,
                day(first + k as Epoch * DAY).get(5..).unwrap_or("")
            );
        }
        o.push_str("</svg><details><summary>Numbers</summary><table class=\"figures\"><thead><tr><th scope=\"col\">day (UTC)</th><th scope=\"col\">pages</th><th scope=\"col\">out of hours</th></tr></thead><tbody>");
        if t.pages_by_day.is_empty() {
            o.push_str("<tr><td colspan=\"3\">no page</td></tr>");
        }
        for (d, (p, out)) in &t.pages_by_day {
            let _ = write!(
                o,
                "<tr><th scope=\"row\">{}</th><td>{p}</td><td>{out}</td></tr>",
                day(*d)
            );
        }
        o.push_str("</tbody></table></details></figure>");
    }
    o.push_str("<p class=\"hint\">Bars: pages per UTC day; the hatched part was sent out of the team's working hours.</p></section>");

    o.push_str("<section id=\"noisiest\"><h2>Noisiest rules</h2><table class=\"noisiest\"><thead><tr><th scope=\"col\">rule</th><th scope=\"col\">teams</th><th scope=\"col\">pages</th><th scope=\"col\">out of hours</th><th scope=\"col\">notifications</th><th scope=\"col\">flaps</th><th scope=\"col\">toast</th><th scope=\"col\">median resolve</th><th scope=\"col\">suggestion</th></tr></thead><tbody>");
    if r.noisiest.is_empty() {
        o.push_str("<tr><td colspan=\"9\">(none)</td></tr>");
    }
    for n in &r.noisiest {
        let s = &n.stats;
        let _ = write!(
            o,
            "<tr><th scope=\"row\">{}</th><td class=\"text\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.rule),
            esc(&n.receivers.join(", ")),
            s.pages,
            s.pages_out_of_hours,
            s.notifications,
            s.flaps,
            share(s.toast_share()),
            span(s.median_resolve()),
            esc(&n.advice)
        );
    }
    o.push_str("</tbody></table></section>");
    let _ = writeln!(
        o,
        "</main><footer>Written by {}. Self-contained: no script, no external resource.</footer></body></html>",
        esc(generator)
    );
    o
}
