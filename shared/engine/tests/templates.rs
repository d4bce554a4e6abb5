//! Annotation templates are compiled and trial-rendered at load (issue #10):
//! a template that cannot render is an error at the template's position,
//! never a page that says `[template error ...]`.

use std::path::PathBuf;

use firebell_core::diag::Diagnostics;

fn load(yaml: &str) -> Vec<String> {
    let mut diags = Diagnostics::new();
    firebell_engine::load_texts(
        &[("r.yaml".to_string(), yaml.to_string())],
        &mut diags,
        vec![PathBuf::from("r.yaml")],
    );
    diags.errors().map(|d| d.to_string()).collect()
}

fn rule(annotations: &str) -> String {
    format!(
        "rules:\n  - name: ApiErrors\n    metrics:\n      e: {{namespace: Shop, metric: Errors, dimensions: {{Service: '*'}}, stat: Sum, period: 1m}}\n    expression: e\n    condition: {{op: \">\", threshold: 5}}\n    labels: {{team: api}}\n    annotations:\n{annotations}"
    )
}

#[test]
fn annotation_syntax_errors_are_load_errors_with_a_hint() {
    let errors = load(&rule(
        "      title: \"{{ labels.team }\"\n      summary: \"Errors at {{ $value }} on {{ $labels.Service }}\"\n      description: \"{{ .Labels.team }}\"\n",
    ));
    assert_eq!(
        errors,
        vec![
            "r.yaml:9:14: error: annotation `title` of rule \"ApiErrors\": syntax error: unexpected `}`, expected end of variable block (line 1 of the template), rendering a sample alert (firing, value 10 > 5)",
            "r.yaml:10:16: error: annotation `summary` of rule \"ApiErrors\": syntax error: unexpected character (line 1 of the template), rendering a sample alert (firing, value 10 > 5); firebell templates use `{{ labels.name }}` and `{{ value }}`, not `$labels.name`/`$value`",
            "r.yaml:11:20: error: annotation `description` of rule \"ApiErrors\": syntax error: unexpected `.` (line 1 of the template), rendering a sample alert (firing, value 10 > 5); firebell templates are Jinja (minijinja), not Go templates: write `{{ labels.name }}`, `{{ value }}`, `{% for a in alerts %}`, not `{{ .Labels.name }}`, `{{ .Value }}`, `{{ range .Alerts }}`",
        ]
    );
}

#[test]
fn annotations_that_cannot_render_are_load_errors() {
    let errors = load(&rule(
        "      title: \"{{ labels.nope.x }}\"\n      summary: \"{{ value | indent(2000000000) }}\"\n      description: \"{{ resolved_at | length }}\"\n",
    ));
    assert_eq!(
        errors,
        vec![
            "r.yaml:9:14: error: annotation `title` of rule \"ApiErrors\": undefined value (line 1 of the template), rendering a sample alert (firing, value 10 > 5)",
            "r.yaml:10:16: error: annotation `summary` of rule \"ApiErrors\": invalid operation: value too large: 2000000002 bytes (limit 262144 bytes) (line 1 of the template), rendering a sample alert (firing, value 10 > 5)",
            "r.yaml:11:20: error: annotation `description` of rule \"ApiErrors\": invalid operation: cannot calculate length of value of type none (line 1 of the template), rendering a sample alert (firing, value 10 > 5)",
        ]
    );
}

#[test]
fn annotations_that_render_are_accepted() {
    let errors = load(&rule(
        "      title: \"{{ labels.Service }} errors\"\n      summary: \"{{ value }} > {{ threshold }} for {{ labels.team | upper }}{% if resolved_at %} until {{ resolved_at }}{% endif %}\"\n      runbook_url: https://runbooks.example.com/x\n",
    ));
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn the_examples_validate() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    if let Err(e) = firebell_engine::load(&root) {
        panic!("{e}");
    }
}

/// An SLO's annotations are checked over its burn-rate rules (with the
/// budget it has spent set), reported once at the SLO's template.
#[test]
fn slo_annotations_are_checked_once() {
    let slo = |description: &str| {
        format!(
            "slos:\n  - name: ApiAvailability\n    team: api\n    objective: 99.9\n    window: 30d\n    sli:\n      errors: {{namespace: App, metric: Errors, dimensions: {{Service: api}}, stat: Sum}}\n      total: {{namespace: App, metric: Requests, dimensions: {{Service: api}}, stat: Sum}}\n    annotations:\n      title: API availability\n      description: \"{description}\"\n"
        )
    };
    assert_eq!(
        load(&slo(
            "{{ (budget_spent * 100) | round }}% of the budget spent"
        )),
        Vec::<String>::new()
    );
    let errors = load(&slo("{% if %}"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with(
            "r.yaml:11:20: error: annotation `description` of rule \"ApiAvailability:page:1h\": syntax error: "
        ),
        "{errors:?}"
    );
}
