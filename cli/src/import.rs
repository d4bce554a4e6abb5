//! `firebell import cloudwatch-alarms`: reads the account's CloudWatch
//! alarms (`DescribeAlarms`, metric and composite,
//! `firebell_aws::alarm_definitions`), translates them
//! (`firebell_tools::import`) and writes `DIR/rules.yaml`,
//! `DIR/routing.yaml` and `DIR/not-translated.txt`, then validates `DIR`
//! with `firebell validate`'s own check (exit 1 when it fails). Prints
//! what became of every alarm (`-o json`: one `firebell.import/v1`
//! document).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use firebell_tools::import::{ImportOptions, Imported, Outcome, translate};
use firebell_tools::validate::{Options, Verdict, check};
use serde_json::{Value, json};

/// `firebell import SOURCE`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub source: Source,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Source {
    /// The account's CloudWatch alarms (metric, metric-math and composite) as firebell rules and routing.
    CloudwatchAlarms(AlarmArgs),
}

#[derive(Debug, clap::Args)]
pub(crate) struct AlarmArgs {
    /// Only alarms whose name starts with this.
    #[arg(long, value_name = "P")]
    pub prefix: Option<String>,
    /// The directory to write rules.yaml, routing.yaml and not-translated.txt into.
    #[arg(long, value_name = "DIR", default_value = "imported-alarms")]
    pub out: PathBuf,
    /// firebell's sentinel alarms (skipped) start with this. Default: $FIREBELL_SENTINEL_PREFIX, else `firebell-sentinel-`.
    #[arg(long, value_name = "PREFIX")]
    pub sentinel_prefix: Option<String>,
    #[command(flatten)]
    pub output: crate::output::OutputArgs,
    /// `--region`, `--profile`.
    #[command(flatten)]
    pub aws: crate::backend::AwsArgs,
}

/// The schema of the `-o json` document.
pub(crate) const IMPORT: &str = "firebell.import/v1";

/// The file listing what was not translated.
pub(crate) const NOT_TRANSLATED_FILE: &str = "not-translated.txt";

pub(crate) fn main(args: &Args) -> Result<ExitCode> {
    match &args.source {
        Source::CloudwatchAlarms(a) => cloudwatch_alarms(a),
    }
}

fn cloudwatch_alarms(args: &AlarmArgs) -> Result<ExitCode> {
    let sentinel_prefix = firebell_aws::sentinel_prefix(
        args.sentinel_prefix
            .clone()
            .or_else(|| std::env::var(firebell_aws::SENTINEL_PREFIX_ENV).ok())
            .as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("--sentinel-prefix: {e}"))?;
    for name in ["rules.yaml", "routing.yaml"] {
        let path = args.out.join(name);
        if path.exists() {
            bail!(
                "{} already exists: import into a new directory (--out DIR)",
                path.display()
            );
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let alarms = rt
        .block_on(async {
            let sdk = args.aws.sdk_config().await?;
            let cw = firebell_aws::CloudWatchAlarms::from_sdk_config(&sdk);
            firebell_aws::alarm_definitions::describe_all(cw.client(), args.prefix.as_deref())
                .await
                .map_err(anyhow::Error::from)
        })
        .context("reading CloudWatch alarms")?;
    let imported = translate(&alarms, &ImportOptions { sentinel_prefix });
    if imported.translated.iter().all(|o| o.rule.is_none()) {
        print(args, &imported, alarms.len(), None);
        eprintln!("import: no alarm was translated; nothing written");
        return Ok(ExitCode::from(1));
    }
    if imported.receivers.is_empty() {
        print(args, &imported, alarms.len(), None);
        eprintln!(
            "import: no translated alarm notifies an SNS topic, so there is nothing to route to; nothing written"
        );
        return Ok(ExitCode::from(1));
    }
    write(&args.out, &imported).with_context(|| format!("writing {}", args.out.display()))?;
    let checked = check(firebell_engine::load(&args.out), &Options::default());
    let valid = checked.verdict == Verdict::Ok;
    print(args, &imported, alarms.len(), Some(valid));
    if !valid {
        eprint!("{}", checked.report());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn write(dir: &Path, imported: &Imported) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("rules.yaml"), &imported.rules_yaml)?;
    std::fs::write(dir.join("routing.yaml"), &imported.routing_yaml)?;
    let mut listed = String::from(
        "# CloudWatch alarms `firebell import cloudwatch-alarms` did not translate, and why.\n",
    );
    listed.push_str(&imported.not_translated_text());
    std::fs::write(dir.join(NOT_TRANSLATED_FILE), listed)?;
    Ok(())
}

fn outcome_json(o: &Outcome) -> Value {
    json!({"alarm": o.alarm, "rule": o.rule, "notes": o.notes})
}

fn print(args: &AlarmArgs, imported: &Imported, read: usize, valid: Option<bool>) {
    let dir = args.out.display().to_string();
    if args.output.json() {
        crate::json::print(&json!({
            "schema": IMPORT,
            "out": dir,
            "alarms_read": read,
            "validated": valid,
            "translated": imported.translated.iter().map(outcome_json).collect::<Vec<_>>(),
            "not_translated": imported.not_translated.iter().map(outcome_json).collect::<Vec<_>>(),
            "skipped": imported.skipped.iter().map(outcome_json).collect::<Vec<_>>(),
        }));
        return;
    }
    let rules = imported
        .translated
        .iter()
        .filter(|o| o.rule.is_some())
        .count();
    println!(
        "firebell import: {read} CloudWatch alarm{} read, {rules} rule{} written{}",
        if read == 1 { "" } else { "s" },
        if rules == 1 { "" } else { "s" },
        match valid {
            Some(true) => format!(" to {dir}/rules.yaml and {dir}/routing.yaml (valid)"),
            Some(false) => format!(" to {dir} (NOT valid: see below)"),
            None => String::new(),
        }
    );
    if !imported.translated.is_empty() {
        println!("\nTranslated");
        for o in &imported.translated {
            match &o.rule {
                Some(r) => println!("  {} -> rule {r}", o.alarm),
                None => println!("  {}", o.alarm),
            }
            for n in &o.notes {
                println!("      {n}");
            }
        }
    }
    if !imported.not_translated.is_empty() {
        println!(
            "\nNot translated ({}{})",
            imported.not_translated.len(),
            if valid.is_some() {
                format!(", also in {dir}/{NOT_TRANSLATED_FILE}")
            } else {
                String::new()
            }
        );
        for o in &imported.not_translated {
            println!("  {}: {}", o.alarm, o.notes.join("; "));
        }
    }
    if !imported.skipped.is_empty() {
        println!("\nSkipped ({})", imported.skipped.len());
        for o in &imported.skipped {
            println!("  {}: {}", o.alarm, o.notes.join("; "));
        }
    }
    if valid == Some(true) {
        println!(
            "\nNext: `firebell cost --config {dir}` compares polling these rules with the CloudWatch alarms they replace (its `alarms` column and \"Total CloudWatch alarms\"); `firebell backtest --config {dir} --source cloudwatch --from T1 --to T2` shows what they would have sent."
        );
    }
}
