//! `firebell validate`, as one function: the CLI (`firebell validate`,
//! `firebell push`) and the AppConfig validator Lambda (`functions/validator`)
//! all call [`check`] and print [`Checked::report`], so a config the Lambda
//! refuses is refused with the very text `validate` prints.
//!
//! What it checks: everything the loader checks (schema, cross-references,
//! topic ARNs, templates, routing tests; [`firebell_engine::load`]), the lint
//! warnings ([`crate::lint`]) at the asked strictness, and, when the
//! deployment's topics are known, that every receiver topic is one the
//! deployment may publish to.

use firebell_core::diag::{ConfigError, Diagnostic, Diagnostics, Severity};
use firebell_engine::Config;

/// How strictly to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Lint warnings are errors.
    pub strict: bool,
    /// The topics the deployment may publish to, and where that list comes
    /// from (for the message); `None`: not checked.
    pub allowed_topics: Option<AllowedTopics>,
}

/// The topics a deployment's role may publish to.
#[derive(Debug, Clone)]
pub struct AllowedTopics {
    pub topics: Vec<String>,
    /// Whose list it is, e.g. `environment "staging"`.
    pub source: String,
}

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid (warnings, if any, are only warnings).
    Ok,
    /// Errors.
    Errors,
    /// Valid, but with this many warnings under `strict`.
    StrictWarnings(usize),
}

/// What [`check`] found.
#[derive(Debug)]
pub struct Checked {
    /// The config, when it loaded (even with topic errors or strict warnings).
    pub config: Option<Config>,
    /// Errors, or warnings: every diagnostic, sorted.
    pub diagnostics: Diagnostics,
    pub verdict: Verdict,
    strict: bool,
}

/// Checks a loaded config (the result of [`firebell_engine::load`] or
/// [`firebell_engine::bundle::Bundle::load`]).
pub fn check(loaded: Result<(Config, Diagnostics), ConfigError>, opts: &Options) -> Checked {
    let (config, mut diags) = match loaded {
        Ok(ok) => ok,
        Err(ConfigError(diags)) => {
            return Checked {
                config: None,
                diagnostics: diags,
                verdict: Verdict::Errors,
                strict: opts.strict,
            };
        }
    };
    if let Some(allowed) = &opts.allowed_topics {
        for r in firebell_notify::arn::outside(&config.notify.topic_refs, &allowed.topics) {
            diags.error(
                &r.origin.file,
                r.origin.line,
                r.origin.column,
                format!(
                    "receiver {:?}: topic {:?} is not one {} may publish to (its topics: {}); deploy the stack with TeamTopicArns=\"$(firebell topics --config DIR)\" first",
                    r.receiver,
                    r.topic,
                    allowed.source,
                    if allowed.topics.is_empty() {
                        "none".to_string()
                    } else {
                        allowed.topics.join(", ")
                    }
                ),
            );
        }
    }
    diags.extend(crate::lint::lint(&config));
    diags.sort();
    let verdict = if diags.has_errors() {
        Verdict::Errors
    } else {
        match diags.warnings().count() {
            n if opts.strict && n > 0 => Verdict::StrictWarnings(n),
            _ => Verdict::Ok,
        }
    };
    Checked {
        config: Some(config),
        diagnostics: diags,
        verdict,
        strict: opts.strict,
    }
}

impl Checked {
    /// Whether the config may be deployed.
    pub fn passed(&self) -> bool {
        self.verdict == Verdict::Ok
    }

    /// What `validate` prints on standard error: the errors and their
    /// count; or the warnings (and, under `strict`, their count).
    pub fn report(&self) -> String {
        match self.verdict {
            Verdict::Errors => {
                let mut errors = Diagnostics::new();
                for e in self.diagnostics.errors() {
                    errors.error(&e.file, e.line, e.column, e.message.clone());
                }
                errors.omitted += self.diagnostics.omitted;
                format!("{}\n", ConfigError(errors))
            }
            Verdict::Ok | Verdict::StrictWarnings(_) => {
                let mut s = String::new();
                for w in self.diagnostics.warnings() {
                    s.push_str(&w.to_string());
                    s.push('\n');
                }
                if let Verdict::StrictWarnings(n) = self.verdict {
                    s.push_str(&format!("{n} warning(s) (errors with --strict)\n"));
                }
                s
            }
        }
    }

    /// The `ok:` line `validate` prints on standard output when it passed.
    pub fn summary(&self) -> Option<String> {
        let config = self.config.as_ref().filter(|_| self.passed())?;
        let n_warn = self.diagnostics.warnings().count();
        Some(format!(
            "ok: {} file(s), {} rule(s), {} receiver(s){}; config version {}",
            config.files.len(),
            config.rules.rules.len(),
            config.notify.receivers.len(),
            if n_warn > 0 {
                format!(", {n_warn} warning(s)")
            } else {
                String::new()
            },
            config.version
        ))
    }

    /// The diagnostics as `validate -o json` lists them: every one, and
    /// under `strict` the warnings as errors.
    pub fn json_list(&self) -> Vec<Diagnostic> {
        let mut list: Vec<Diagnostic> = match self.verdict {
            Verdict::Errors => self.diagnostics.list.clone(),
            _ => self.diagnostics.warnings().cloned().collect(),
        };
        if self.strict && self.verdict != Verdict::Errors {
            for d in &mut list {
                d.severity = Severity::Error;
            }
        }
        list
    }
}
