//! The chart of one instance as inline SVG, written by hand: a few rects,
//! lines and one path per chart, styled by the page's CSS (so dark mode is
//! one `prefers-color-scheme` block) and filled with the page's patterns
//! (states told apart by pattern as well as colour).

use std::fmt::Write as _;

use firebell_core::model::{Rule, Unit};
use firebell_core::series::Epoch;
use firebell_core::text::rfc3339;

use super::chart::{BandKind, COLUMNS, Charts, InstanceChart};
use super::esc;

const LEFT: f64 = 72.0;
const RIGHT: f64 = 26.0;
const MARK_ROW: f64 = 12.0;
const PLOT_H: f64 = 150.0;
const LANE_H: f64 = 11.0;
const MUTE_H: f64 = 6.0;
const AXIS_H: f64 = 18.0;

/// One notification marker: where, what it says on hover, where it links.
#[derive(Debug, Clone)]
pub(crate) struct Mark {
    pub at: Epoch,
    pub class: &'static str,
    pub title: String,
    pub href: String,
    /// The notification's index in its report.
    pub index: usize,
}

/// One config's view of an instance (two with `--compare`).
#[derive(Debug)]
pub(crate) struct Side<'a> {
    /// `A`, `B`, or empty when there is one config.
    pub name: &'a str,
    pub chart: Option<&'a InstanceChart>,
    pub rule: Option<&'a Rule>,
    pub marks: Vec<Mark>,
}

/// Pieces of the chart's geometry.
struct Geo {
    from: Epoch,
    span: f64,
    plot_top: f64,
    lo: f64,
    hi: f64,
}

impl Geo {
    fn x(&self, t: Epoch) -> f64 {
        let f = ((t - self.from) as f64 / self.span).clamp(0.0, 1.0);
        LEFT + f * COLUMNS as f64
    }

    fn y(&self, v: f64) -> f64 {
        let f = if self.hi > self.lo {
            (v - self.lo) / (self.hi - self.lo)
        } else {
            0.5
        };
        // NaN (an infinite range or value) is drawn mid-plot, never written.
        let f = if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.5
        };
        self.plot_top + PLOT_H - f * PLOT_H
    }
}

/// `HH:MM`, `MM-DD HH:MM` or `MM-DD` for an axis tick.
fn tick_label(t: Epoch, step: i64, span: i64) -> String {
    let s = rfc3339(t);
    let (date, time) = (s.get(5..10).unwrap_or(""), s.get(11..16).unwrap_or(""));
    if step >= 86_400 {
        date.to_string()
    } else if span > 86_400 {
        format!("{date} {time}")
    } else {
        time.to_string()
    }
}

/// The SVG of one instance; `id` makes its element ids unique in the page.
pub(crate) fn chart(
    id: &str,
    charts: &Charts,
    sides: &[Side<'_>],
    caption: &str,
    summary: &str,
) -> String {
    let (from, to) = (charts.from, charts.to);
    let n = sides.len().max(1) as f64;
    let plot_top = MARK_ROW * n + 2.0;
    let lanes_top = plot_top + PLOT_H + 4.0;
    let height = lanes_top + (LANE_H + MUTE_H + 2.0) * n + AXIS_H;
    let width = LEFT + COLUMNS as f64 + RIGHT;

    // The value range: every side's data and thresholds.
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for s in sides {
        if let Some(c) = s.chart {
            for v in [c.stats.min, c.stats.max].into_iter().flatten() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if let Some(r) = s.rule {
            for v in [Some(r.condition.threshold), r.condition.recovery]
                .into_iter()
                .flatten()
                .filter(|v| v.is_finite())
            {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
    }
    if !lo.is_finite() || !hi.is_finite() {
        (lo, hi) = (0.0, 1.0);
    }
    // Values near ±f64::MAX: their range (and its padding) must stay finite.
    if !(hi - lo).is_finite() {
        (lo, hi) = (lo.max(-f64::MAX / 4.0), hi.min(f64::MAX / 4.0));
    }
    if hi - lo < f64::EPSILON * hi.abs().max(1.0) {
        (lo, hi) = (lo - 1.0, hi + 1.0);
    }
    let pad = (hi - lo) * 0.06;
    // Values that never go below zero keep zero as the floor.
    let floor = if lo >= 0.0 { 0.0 } else { f64::NEG_INFINITY };
    let geo = Geo {
        from,
        span: (to - from).max(1) as f64,
        plot_top,
        lo: (lo - pad).max(floor),
        hi: hi + pad,
    };
    let unit = sides
        .iter()
        .find_map(|s| s.rule.map(|r| r.unit))
        .unwrap_or(Unit::None);

    let mut o = String::new();
    let _ = write!(
        o,
        r#"<svg class="chart" role="img" aria-labelledby="{id}-t {id}-d" viewBox="0 0 {width} {height:.0}" preserveAspectRatio="xMinYMin meet"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
        esc(caption),
        esc(summary)
    );
    let _ = write!(
        o,
        r#"<rect class="plot" x="{LEFT}" y="{plot_top}" width="{COLUMNS}" height="{PLOT_H}"/>"#
    );

    // Where the volume guard kept datapoints from being judged (first side's data).
    if let Some(c) = sides.iter().find_map(|s| s.chart) {
        for (a, b) in runs(c.columns.iter().map(|c| c.unjudged)) {
            let _ = write!(
                o,
                r#"<rect class="unjudged" fill="url(#p-guard)" x="{}" y="{plot_top}" width="{}" height="{PLOT_H}"><title>not judged: volume guard not met</title></rect>"#,
                LEFT as usize + a,
                b - a
            );
        }
    }

    // Value grid and its labels.
    for k in 0..=3 {
        let v = geo.lo + (geo.hi - geo.lo) * f64::from(k) / 3.0;
        let y = geo.y(v);
        let _ = write!(
            o,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="ylab" x="{}" y="{:.1}">{}</text>"#,
            LEFT + COLUMNS as f64,
            LEFT - 4.0,
            y + 3.5,
            esc(&unit.format(v))
        );
    }

    // Time ticks.
    let span = to - from;
    let step = [
        300, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400, 172_800, 604_800,
    ]
    .into_iter()
    .find(|s| span / s <= 8)
    .unwrap_or(2_592_000);
    let mut t = from.div_euclid(step) * step;
    if t < from {
        t += step;
    }
    let axis_y = height - 5.0;
    while t <= to {
        let x = geo.x(t);
        let _ = write!(
            o,
            r#"<line class="tick" x1="{x:.1}" x2="{x:.1}" y1="{plot_top}" y2="{:.1}"/><text class="xlab" x="{x:.1}" y="{axis_y:.1}">{}</text>"#,
            plot_top + PLOT_H,
            tick_label(t, step, span)
        );
        t += step;
    }

    // Thresholds.
    for (si, s) in sides.iter().enumerate() {
        let Some(r) = s.rule else { continue };
        // A line the previous side already drew (same value) is drawn once.
        let drawn = |v: f64, recovery: bool| {
            sides[..si].iter().any(|p| {
                p.rule.is_some_and(|q| {
                    if recovery {
                        q.condition.recovery == Some(v)
                    } else {
                        q.condition.threshold == v
                    }
                })
            })
        };
        let side = if s.name.is_empty() {
            String::new()
        } else {
            format!("{} ", s.name)
        };
        let mut lines = vec![("thr", "threshold", r.condition.threshold)];
        if let Some(rec) = r.condition.recovery {
            lines.push(("rec", "recovery", rec));
        }
        for (class, word, v) in lines {
            if !v.is_finite() || drawn(v, class == "rec") {
                continue;
            }
            let y = geo.y(v);
            let _ = write!(
                o,
                r#"<line class="{class} side{si}" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"><title>{side}{word} {} {}</title></line><text class="thl {class}l" x="{}" y="{:.1}">{side}{word} {}</text>"#,
                LEFT + COLUMNS as f64,
                r.condition.op,
                esc(&r.unit.format(v)),
                if class == "rec" {
                    LEFT + 2.0
                } else {
                    LEFT + COLUMNS as f64 - 2.0
                },
                y - 3.0,
                esc(&r.unit.format(v))
            );
        }
    }

    // The series: min and max per pixel column.
    if let Some(c) = sides.iter().find_map(|s| s.chart) {
        let mut d = String::new();
        let mut prev = false;
        // Consecutive datapoints are joined (across empty columns when a
        // datapoint spans several); a missing one breaks the line.
        for (i, col) in c.columns.iter().enumerate() {
            if col.values == 0 {
                if col.missing {
                    prev = false;
                }
                continue;
            }
            let x = LEFT as usize + i;
            let (yh, yl) = (geo.y(col.hi).round(), geo.y(col.lo).round());
            let cmd = if prev { 'L' } else { 'M' };
            if yh == yl {
                // A lone point is a dot (round caps).
                let _ = write!(d, "{cmd}{x} {yh}{}", if prev { "" } else { "h0.5" });
            } else {
                let _ = write!(d, "{cmd}{x} {yh}V{yl}");
            }
            prev = true;
        }
        if !d.is_empty() {
            let _ = write!(o, r#"<path class="series" d="{d}"/>"#);
        } else {
            let _ = write!(
                o,
                r#"<text class="empty" x="{}" y="{:.1}">no value judged in the range</text>"#,
                LEFT + COLUMNS as f64 / 2.0,
                plot_top + PLOT_H / 2.0
            );
        }
    } else {
        let _ = write!(
            o,
            r#"<text class="empty" x="{}" y="{:.1}">no instance judged in the range</text>"#,
            LEFT + COLUMNS as f64 / 2.0,
            plot_top + PLOT_H / 2.0
        );
    }

    // State and muting lanes, one pair per side.
    for (si, s) in sides.iter().enumerate() {
        let top = lanes_top + (LANE_H + MUTE_H + 2.0) * si as f64;
        let label = if s.name.is_empty() { "state" } else { s.name };
        let _ = write!(
            o,
            r#"<text class="lane" x="{}" y="{:.1}">{}</text><rect class="laneb" x="{LEFT}" y="{top:.1}" width="{COLUMNS}" height="{}"/>"#,
            LEFT - 4.0,
            top + LANE_H - 2.0,
            esc(label),
            LANE_H + MUTE_H
        );
        let Some(c) = s.chart else { continue };
        for b in &c.bands {
            if b.to < from || b.from > to {
                continue;
            }
            let (y, h) = match b.kind {
                BandKind::Pending | BandKind::Firing | BandKind::NoData => (top, LANE_H),
                BandKind::Silenced | BandKind::Inhibited => (top + LANE_H, MUTE_H),
            };
            let x1 = geo.x(b.from.max(from));
            let x2 = geo.x(b.to.min(to)).max(x1 + 1.0);
            // The silence's author and comment, the inhibitor's labels:
            // user text, escaped like every other.
            let what = esc(if b.by.is_empty() {
                b.kind.name()
            } else {
                &b.by
            });
            let _ = write!(
                o,
                r#"<rect class="band {k}" fill="url(#p-{k})" x="{x1:.1}" y="{y:.1}" width="{:.1}" height="{h}"><title>{} {what} {} .. {}</title></rect>"#,
                x2 - x1,
                s.name,
                rfc3339(b.from),
                rfc3339(b.to),
                k = b.kind.name(),
            );
            // Firing and NoData also tint the plot above.
            if matches!(b.kind, BandKind::Firing | BandKind::NoData) && si == 0 {
                let _ = write!(
                    o,
                    r#"<rect class="tint {}" x="{x1:.1}" y="{plot_top}" width="{:.1}" height="{PLOT_H}"/>"#,
                    b.kind.name(),
                    x2 - x1
                );
            }
        }
    }

    // Notification markers: hover for the subject, click for the text.
    for (si, s) in sides.iter().enumerate() {
        let y = MARK_ROW * si as f64 + 1.0;
        for m in &s.marks {
            if m.at < from || m.at > to {
                continue;
            }
            let x = geo.x(m.at);
            let _ = write!(
                o,
                r##"<a href="{}"><title>{}</title><path class="mark {}" d="M{:.1} {y:.1}h9l-4.5 9z"/></a>"##,
                esc(&m.href),
                esc(&m.title),
                m.class,
                x - 4.5
            );
        }
    }
    o.push_str("</svg>");
    o
}

/// `[start, end)` runs of true values.
fn runs(flags: impl Iterator<Item = bool>) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut n = 0;
    for (i, f) in flags.enumerate() {
        n = i + 1;
        match (f, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        out.push((s, n));
    }
    out
}

/// The page's patterns and a legend swatch for each state.
pub(crate) fn defs() -> String {
    let mut o = String::from(
        r#"<svg class="defs" width="0" height="0" aria-hidden="true" focusable="false"><defs>"#,
    );
    // pending: diagonal stripes; firing: cross-hatch; nodata: dots;
    // silenced: horizontal lines; inhibited: back-diagonal stripes.
    o.push_str(concat!(
        r#"<pattern id="p-pending" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect class="bg pending" width="6" height="6"/><line class="fg pending" x1="0" y1="0" x2="0" y2="6"/></pattern>"#,
        r#"<pattern id="p-firing" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)"><rect class="bg firing" width="6" height="6"/><line class="fg firing" x1="0" y1="0" x2="0" y2="6"/><line class="fg firing" x1="0" y1="0" x2="6" y2="0"/></pattern>"#,
        r#"<pattern id="p-nodata" width="5" height="5" patternUnits="userSpaceOnUse"><rect class="bg nodata" width="5" height="5"/><circle class="dot nodata" cx="2.5" cy="2.5" r="1.2"/></pattern>"#,
        r#"<pattern id="p-silenced" width="4" height="4" patternUnits="userSpaceOnUse"><rect class="bg silenced" width="4" height="4"/><line class="fg silenced" x1="0" y1="2" x2="4" y2="2"/></pattern>"#,
        r#"<pattern id="p-inhibited" width="5" height="5" patternUnits="userSpaceOnUse" patternTransform="rotate(-45)"><rect class="bg inhibited" width="5" height="5"/><line class="fg inhibited" x1="0" y1="0" x2="0" y2="5"/></pattern>"#,
        r#"<pattern id="p-guard" width="4" height="4" patternUnits="userSpaceOnUse"><line class="fg guard" x1="1" y1="0" x2="1" y2="4"/></pattern>"#,
    ));
    o.push_str("</defs></svg>");
    o
}

/// A small swatch of a state's pattern, for the legend.
pub(crate) fn swatch(kind: &str) -> String {
    format!(
        r#"<svg class="swatch" width="28" height="14" viewBox="0 0 28 14" aria-hidden="true"><rect class="band {kind}" fill="url(#p-{kind})" width="28" height="14"/></svg>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_of_flags() {
        let f = |v: &[bool]| runs(v.iter().copied());
        assert_eq!(f(&[]), vec![]);
        assert_eq!(f(&[true, true, false, true]), vec![(0, 2), (3, 4)]);
        assert_eq!(f(&[false, true, true]), vec![(1, 3)]);
    }

    #[test]
    fn tick_labels() {
        assert_eq!(tick_label(1_800_000_000, 3600, 86_400), "08:00");
        assert_eq!(tick_label(1_800_000_000, 3600, 3 * 86_400), "01-15 08:00");
        assert_eq!(tick_label(1_800_000_000, 86_400, 14 * 86_400), "01-15");
    }
}
