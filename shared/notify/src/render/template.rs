//! The template sandbox: minijinja with no loader, no templates of its own,
//! no `debug()`, a low recursion limit and a cap on output size.
//!
//! Templates can use Jinja syntax, the built-in filters and tests, `range`,
//! `dict` and `namespace`, and the variables of their context. `include`,
//! `import` and `extends` fail (there is nothing to load, and no loader that
//! could reach the file system); nothing reads the environment. A template
//! that fails never fails a send: callers fall back to a default.

use std::collections::BTreeMap;
use std::io;

use firebell_core::alert::Alert;
use firebell_core::model::Labels;
use minijinja::Environment;
use serde::Serialize;

use firebell_core::text::rfc3339;

use super::format::{ELLIPSIS, one_line, unit_name};

/// Nesting depth of macros, calls and blocks a template may reach.
const RECURSION_LIMIT: usize = 64;
/// Output cap of one rendered annotation, in bytes.
pub(crate) const ANNOTATION_LIMIT: usize = 4096;

/// The output of a template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rendered {
    pub text: String,
    /// The output reached the cap: `text` is its first part.
    pub truncated: bool,
}

/// An `io::Write` that takes at most `limit` bytes, then fails.
#[derive(Debug)]
struct Capped {
    buf: Vec<u8>,
    limit: usize,
    full: bool,
}

impl io::Write for Capped {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        let room = self.limit.saturating_sub(self.buf.len());
        if b.len() > room {
            self.buf.extend_from_slice(&b[..room]);
            self.full = true;
            return Err(io::Error::other("template output limit reached"));
        }
        self.buf.extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Instructions one template render may execute.
const FUEL: u64 = 2_000_000;
/// Largest string (bytes) or sequence (items) one step of a template may
/// build: `~`, `+`, `*`, every filter, function and captured block.
pub(crate) const MAX_VALUE: usize = 256 * 1024;
/// Bytes all the values one render builds may add up to.
pub(crate) const MAX_BUILT: usize = 16 * 1024 * 1024;

/// Installs the value limits on this thread while a render runs.
struct Budget;

impl Budget {
    fn install() -> Budget {
        minijinja::budget::set(Some(minijinja::budget::Limits {
            max_value: MAX_VALUE,
            total: MAX_BUILT,
        }));
        Budget
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        minijinja::budget::set(None);
    }
}

/// A sandboxed minijinja environment for templates borrowed for `'s`.

#[derive(Debug)]
pub(crate) struct Sandbox<'s> {
    env: Environment<'s>,
}

impl<'s> Sandbox<'s> {
    pub(super) fn new() -> Sandbox<'s> {
        let mut env = Environment::new();
        // No loader is set and no template is added: `include`, `import` and
        // `extends` find nothing. `debug()` would dump the whole context.
        env.remove_global("debug");
        env.set_recursion_limit(RECURSION_LIMIT);
        // Bounded work per render: a template with nested loops over a big
        // range runs out of fuel and falls back to the default instead of
        // burning the cycle's time.
        env.set_fuel(Some(FUEL));
        Sandbox { env }
    }

    /// Compiles `source`: `Err` is the syntax error.
    #[cfg(test)]
    pub(super) fn compile(&self, source: &'s str) -> Result<(), String> {
        self.env
            .template_from_str(source)
            .map(|_| ())
            .map_err(|e| one_line(&e.to_string()))
    }

    /// Compiles `source` and renders it over `ctx` within the value budget,
    /// into a buffer that stops at `limit` bytes (reaching it is no error).
    fn run<S: Serialize>(
        &self,
        source: &'s str,
        ctx: S,
        limit: usize,
    ) -> Result<Capped, minijinja::Error> {
        let tmpl = self.env.template_from_str(source)?;
        let mut out = Capped {
            buf: Vec::new(),
            limit,
            full: false,
        };
        let result = {
            let _budget = Budget::install();
            tmpl.render_captured_to(ctx, &mut out).map(|_| ())
        };
        match result {
            Err(e) if !out.full => Err(e),
            _ => Ok(out),
        }
    }

    /// Renders `source` over `ctx`. Rendering stops once the output reaches
    /// `limit` bytes, and the output so far is returned, marked truncated.
    pub(super) fn render<S: Serialize>(
        &self,
        source: &'s str,
        ctx: S,
        limit: usize,
    ) -> Result<Rendered, String> {
        let out = self
            .run(source, ctx, limit)
            .map_err(|e| one_line(&e.to_string()))?;
        let text = match String::from_utf8(out.buf) {
            Ok(s) => s,
            Err(e) => {
                // Cut inside a character: keep the valid prefix.
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                String::from_utf8(bytes).unwrap_or_default()
            }
        };
        Ok(Rendered {
            text,
            truncated: out.full,
        })
    }
}

/// What an annotation template sees.
///
/// | variable | example |
/// |---|---|
/// | `alertname`, `status` | `PaymentsErrorRate`, `firing` |
/// | `labels` | `labels.service` |
/// | `value`, `threshold`, `peak` | formatted with the unit: `5.2%`, `1%`; `value` is `no data` without a value, `peak` empty |
/// | `value_raw`, `threshold_raw`, `peak_raw` | numbers (`none` when absent) |
/// | `op`, `condition`, `unit` | `>`, `5.2% > 1%`, `percent` |
/// | `expression` | the rule's expression |
/// | `active_since`, `fired_at`, `resolved_at` | RFC 3339, UTC |
#[derive(Debug, Serialize)]
pub(crate) struct AnnotationContext<'a> {
    alertname: &'a str,
    status: &'static str,
    labels: &'a Labels,
    value: String,
    value_raw: Option<f64>,
    threshold: String,
    threshold_raw: f64,
    peak: String,
    peak_raw: Option<f64>,
    op: String,
    condition: String,
    unit: &'static str,
    expression: &'a str,
    active_since: String,
    fired_at: String,
    resolved_at: Option<String>,
}

impl<'a> AnnotationContext<'a> {
    pub(super) fn new(alert: &'a Alert) -> AnnotationContext<'a> {
        let value = alert
            .value
            .map(|v| alert.unit.format(v))
            .unwrap_or_else(|| "no data".to_string());
        let threshold = alert.unit.format(alert.threshold);
        AnnotationContext {
            alertname: alert.name(),
            status: alert.status.as_str(),
            labels: &alert.labels,
            condition: format!("{value} {} {threshold}", alert.op),
            value,
            value_raw: alert.value,
            threshold,
            threshold_raw: alert.threshold,
            peak: alert.peak.map(|v| alert.unit.format(v)).unwrap_or_default(),
            peak_raw: alert.peak,
            op: alert.op.to_string(),
            unit: unit_name(alert.unit),
            expression: &alert.expression,
            active_since: rfc3339(alert.active_since),
            fired_at: rfc3339(alert.fired_at),
            resolved_at: alert.resolved_at.map(rfc3339),
        }
    }
}

fn looks_templated(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// Renders one annotation template; see [`super::render_annotation`].
pub(crate) fn annotation<'s>(
    sandbox: &Sandbox<'s>,
    template: &'s str,
    ctx: &AnnotationContext<'_>,
) -> String {
    match try_annotation(sandbox, template, ctx) {
        Ok(text) => text,
        Err(e) => format!("{template} [template error: {e}]"),
    }
}

/// Renders one annotation template: `Err` is the error (with the
/// Prometheus hint where it applies).
fn try_annotation<'s>(
    sandbox: &Sandbox<'s>,
    template: &'s str,
    ctx: &AnnotationContext<'_>,
) -> Result<String, String> {
    if !looks_templated(template) {
        return Ok(template.to_string());
    }
    match sandbox.render(template, ctx, ANNOTATION_LIMIT) {
        Ok(r) if r.truncated => {
            let mut text = r.text;
            text.push(ELLIPSIS);
            Ok(text)
        }
        Ok(r) => Ok(r.text),
        Err(e) => {
            let hint = if template.contains("$labels") || template.contains("$value") {
                "; use `labels.name` and `value`, not `$labels`/`$value`"
            } else {
                ""
            };
            Err(format!("{e}{hint}"))
        }
    }
}

/// Renders every annotation of `alert`. One that fails to render is left
/// out, so the message falls back to its default text there (the default
/// title, the default headline, no extra section); the second value lists
/// the failures as `(annotation, error)`, for the message's notes.
pub(crate) fn annotations<'s>(
    sandbox: &Sandbox<'s>,
    alert: &'s Alert,
) -> (BTreeMap<String, String>, Vec<(String, String)>) {
    let ctx = AnnotationContext::new(alert);
    let mut failures = Vec::new();
    let mut rendered = BTreeMap::new();
    for (k, t) in &alert.annotations {
        match try_annotation(sandbox, t, &ctx) {
            Ok(text) => {
                rendered.insert(k.clone(), text);
            }
            Err(e) => failures.push((k.clone(), e)),
        }
    }
    (rendered, failures)
}

/// Where a Prometheus/Alertmanager habit shows in `template`, the firebell
/// way to say it (`""` when none applies).
pub(crate) fn migrant_hint(template: &str) -> &'static str {
    if template.contains("$labels") || template.contains("$value") {
        "; firebell templates use `{{ labels.name }}` and `{{ value }}`, not `$labels.name`/`$value`"
    } else if template.contains(".Labels")
        || template.contains(".Value")
        || template.contains(".Annotations")
        || template.contains(".CommonLabels")
        || template.contains(".Alerts")
    {
        "; firebell templates are Jinja (minijinja), not Go templates: write `{{ labels.name }}`, `{{ value }}`, `{% for a in alerts %}`, not `{{ .Labels.name }}`, `{{ .Value }}`, `{{ range .Alerts }}`"
    } else {
        ""
    }
}

/// A template error as a validate message: what failed and the line of
/// the template it failed on.
pub(crate) fn describe(e: &minijinja::Error) -> String {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    match e.line() {
        Some(line) => format!("{what} (line {line} of the template)"),
        None => what,
    }
}

impl<'s> Sandbox<'s> {
    /// Compiles and renders `source` over `ctx` as a trial: `Err` is the
    /// syntax or render error, described for `firebell validate`. Output
    /// over the cap is not an error (it is cut at run time).
    pub(crate) fn trial<S: Serialize>(&self, source: &'s str, ctx: S) -> Result<String, String> {
        let out = self
            .run(source, ctx, ANNOTATION_LIMIT)
            .map_err(|e| describe(&e))?;
        Ok(String::from_utf8_lossy(&out.buf).into_owned())
    }
}
