//! The AppConfig Lambda validator's tested handler: AppConfig invokes it
//! with a configuration version about to be deployed (created by `firebell
//! push`, or by hand in the console); it runs exactly `firebell validate`
//! (`firebell_tools::validate::check`: schema, cross-checks, topic ARNs,
//! templates, routing tests, lint at the configured strictness, and the
//! topics against the stack's) on the bundle. An error fails the
//! validation, and AppConfig refuses the deployment with its message: the
//! text `firebell validate` prints.

use base64::Engine as _;
use firebell_engine::bundle::Bundle;
use firebell_tools::validate::{AllowedTopics, Options, check};
use serde::Deserialize;

/// AppConfig's validator event (unknown fields are ignored).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ValidatorEvent {
    #[serde(default)]
    pub application_id: String,
    #[serde(default)]
    pub configuration_profile_id: String,
    #[serde(default)]
    pub configuration_version: String,
    /// The configuration, base64.
    #[serde(default)]
    pub content: String,
    #[serde(default)]
    pub uri: String,
}

/// Settings from the environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `FIREBELL_STRICT=true`: lint warnings are errors (default true).
    pub strict: bool,
    /// `FIREBELL_ALLOWED_TOPICS`: the topics the stack may publish to,
    /// comma-separated (unset: not checked).
    pub allowed_topics: Option<Vec<String>>,
}

impl Settings {
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, String> {
        let strict = match get("FIREBELL_STRICT").as_deref().map(str::trim) {
            None | Some("") | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(format!("FIREBELL_STRICT={other:?}: expected true or false"));
            }
        };
        let allowed_topics =
            get("FIREBELL_ALLOWED_TOPICS").map(|raw| firebell_core::text::comma_list(&raw));
        Ok(Settings {
            strict,
            allowed_topics,
        })
    }

    pub fn from_env() -> Result<Settings, String> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

/// Validates one configuration version: `Ok` with `validate`'s summary
/// line (and warnings), or `Err` with exactly what `validate` prints.
pub fn validate(settings: &Settings, event: &ValidatorEvent) -> Result<String, String> {
    let content = base64::engine::general_purpose::STANDARD
        .decode(event.content.trim())
        .map_err(|e| {
            format!(
                "version {}: the content is not base64: {e}",
                event.configuration_version
            )
        })?;
    let bundle = Bundle::from_json(&content)
        .map_err(|e| format!("version {}: {e}", event.configuration_version))?;
    let checked = check(
        bundle.load(),
        &Options {
            strict: settings.strict,
            allowed_topics: settings.allowed_topics.clone().map(|topics| AllowedTopics {
                topics,
                source: "this stack".to_string(),
            }),
        },
    );
    let report = checked.report();
    match checked.summary() {
        Some(ok) => Ok(format!("{report}{ok}")),
        None => Err(report.trim_end().to_string()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn event(files: &[(&str, &str)]) -> ValidatorEvent {
        let bundle = Bundle {
            format: firebell_engine::bundle::FORMAT.to_string(),
            files: files
                .iter()
                .map(|(p, t)| firebell_engine::bundle::BundleFile {
                    path: (*p).to_string(),
                    text: (*t).to_string(),
                })
                .collect(),
        };
        ValidatorEvent {
            configuration_version: "3".into(),
            content: base64::engine::general_purpose::STANDARD.encode(bundle.to_json()),
            ..ValidatorEvent::default()
        }
    }

    const ROUTING: &str = "receivers:\n  ops: {topics: [arn:aws:sns:us-east-1:123456789012:ops]}\nroute:\n  receiver: ops\n";

    #[test]
    fn the_event_is_read_as_appconfig_sends_it() {
        let e: ValidatorEvent = serde_json::from_str(
            r#"{"applicationId":"a1","configurationProfileId":"p1","configurationVersion":"2","content":"e30=","uri":"hosted"}"#,
        )
        .unwrap();
        assert_eq!(
            (
                e.application_id.as_str(),
                e.configuration_version.as_str(),
                e.content.as_str()
            ),
            ("a1", "2", "e30=")
        );
    }

    #[test]
    fn a_valid_bundle_passes_and_an_invalid_one_fails_with_validates_text() {
        let settings = Settings {
            strict: false,
            allowed_topics: None,
        };
        let ok = validate(&settings, &event(&[("c/routing.yaml", ROUTING)])).unwrap();
        assert!(
            ok.starts_with("ok: 1 file(s), 0 rule(s), 1 receiver(s); config version "),
            "{ok}"
        );
        let bad = ROUTING.replace("receiver: ops", "receiver: nobody");
        let err = validate(&settings, &event(&[("c/routing.yaml", &bad)])).unwrap_err();
        assert_eq!(
            err,
            "c/routing.yaml:4:13: error: receiver \"nobody\" is not defined in `receivers` (defined: ops)\n1 error"
        );
        // The stack's topics.
        let settings = Settings {
            strict: false,
            allowed_topics: Some(vec!["arn:aws:sns:us-east-1:123456789012:other".into()]),
        };
        let err = validate(&settings, &event(&[("c/routing.yaml", ROUTING)])).unwrap_err();
        assert!(
            err.contains("is not one this stack may publish to"),
            "{err}"
        );
        // Not a bundle at all.
        let mut e = event(&[]);
        e.content = "!!".into();
        assert!(
            validate(&settings, &e)
                .unwrap_err()
                .starts_with("version 3: the content is not base64")
        );
    }

    #[test]
    fn strictness_comes_from_the_environment() {
        let s = Settings::from_lookup(|_| None).unwrap();
        assert!(s.strict && s.allowed_topics.is_none());
        let s = Settings::from_lookup(|k| (k == "FIREBELL_STRICT").then(|| "false".to_string()))
            .unwrap();
        assert!(!s.strict);
        assert_eq!(
            Settings::from_lookup(|_| Some("yes".into())).unwrap_err(),
            "FIREBELL_STRICT=\"yes\": expected true or false"
        );
    }
}
