//! Opening the configured state store for commands that need one.
//!
//! `--backend embedded` (the default): the on-disk store under `--state DIR`.
//! `--backend aws`: the DynamoDB table `--table NAME` (or `FIREBELL_TABLE`),
//! with clients from the standard AWS environment (credentials, profiles,
//! `AWS_REGION`, `AWS_ENDPOINT_URL`), exactly as the Lambda builds them,
//! with `--region` / `--profile` ([`AwsArgs`], flattened into every command
//! that talks to AWS) on top. A missing region, missing credentials or an
//! unknown profile fail at once, in one line with the fix
//! ([`firebell_aws::AwsProblem`]).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use firebell_aws::{AwsSettings, DynamoStore, SdkConfig};
use firebell_core::ports::{Clock, StateStore, SystemClock};
use firebell_embedded::FileStore;

/// Which adapters a command uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Backend {
    /// Local: on-disk store (and, for `run`, a replay file and the terminal).
    #[default]
    Embedded,
    /// AWS: DynamoDB store (and, for `run`, CloudWatch metrics and SNS).
    Aws,
}

/// The environment variable naming the DynamoDB table (as in the Lambda).
pub(crate) const TABLE_ENV: &str = "FIREBELL_TABLE";

/// `--region`, `--profile`: which AWS region and credentials a command
/// uses. Flattened into every command that talks to AWS.
#[derive(Debug, Clone, Default, clap::Args)]
pub(crate) struct AwsArgs {
    /// AWS region (aws backend / CloudWatch). Default: $AWS_REGION, else the profile's region.
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// AWS profile of ~/.aws/config (aws backend / CloudWatch). Default: $AWS_PROFILE, else `default`.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
}

impl AwsArgs {
    /// Whether either flag was given.
    pub(crate) fn given(&self) -> bool {
        self.region.is_some() || self.profile.is_some()
    }

    /// The SDK config: the standard environment with `--region` and
    /// `--profile` applied, checked (a region, credentials that load).
    pub(crate) async fn sdk_config(&self) -> Result<SdkConfig> {
        let settings = AwsSettings {
            region: self.region.clone(),
            profile: self.profile.clone(),
        };
        Ok(firebell_aws::load_sdk_config_for(&settings).await?)
    }
}

/// Where state lives. Embedded (on-disk) by default.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct StoreArgs {
    /// `embedded`: on-disk state (--state); `aws`: DynamoDB (--table), CloudWatch, SNS.
    #[arg(long, value_enum, default_value_t = Backend::Embedded)]
    pub backend: Backend,
    /// Directory of the on-disk state store (embedded backend).
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
    /// DynamoDB table holding alert state (aws backend). Default: $FIREBELL_TABLE.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    #[command(flatten)]
    pub aws: AwsArgs,
}

impl StoreArgs {
    /// Rejects flags that belong to the other backend; the aws backend needs a table.
    pub(crate) fn check(&self) -> Result<()> {
        match self.backend {
            Backend::Embedded if self.table.is_some() => {
                bail!(
                    "--table is for --backend aws (the embedded backend keeps state in --state DIR)"
                )
            }
            Backend::Embedded if self.aws.given() => {
                bail!(
                    "--region and --profile are for --backend aws (the embedded backend talks to no AWS service)"
                )
            }
            Backend::Aws if self.state.is_some() => {
                bail!(
                    "--state is for --backend embedded (the aws backend keeps state in --table NAME)"
                )
            }
            Backend::Aws => self.table_name().map(drop),
            Backend::Embedded => Ok(()),
        }
    }

    /// The on-disk state directory (embedded backend).
    pub(crate) fn state_dir(&self) -> PathBuf {
        self.state.clone().unwrap_or_else(crate::default_state_dir)
    }

    /// The DynamoDB table: `--table`, else `FIREBELL_TABLE`.
    pub(crate) fn table_name(&self) -> Result<String> {
        self.table
            .clone()
            .or_else(|| std::env::var(TABLE_ENV).ok())
            .filter(|t| !t.trim().is_empty())
            .with_context(|| {
                format!("--backend aws needs the DynamoDB table: --table NAME or {TABLE_ENV}=NAME")
            })
    }

    /// Where state is read from, for people: `DIR (embedded)` or `DynamoDB table T`.
    pub(crate) fn name(&self) -> String {
        match self.backend {
            Backend::Embedded => format!("{} (embedded)", self.state_dir().display()),
            Backend::Aws => match self.table_name() {
                Ok(t) => format!("DynamoDB table {t}"),
                Err(_) => "DynamoDB".to_string(),
            },
        }
    }

    /// The store to read from, or `None` for an embedded store that was
    /// never written (reading never creates its directory).
    pub(crate) async fn open_for_read(&self) -> Result<Option<Arc<dyn StateStore>>> {
        self.check()?;
        if self.backend == Backend::Embedded && !self.state_dir().exists() {
            return Ok(None);
        }
        self.open().await.map(Some)
    }

    /// The configured store, on the wall clock.
    pub(crate) async fn open(&self) -> Result<Arc<dyn StateStore>> {
        self.check()?;
        match self.backend {
            Backend::Embedded => {
                let dir = self.state_dir();
                let clock: Arc<dyn Clock> = Arc::new(SystemClock);
                let store = FileStore::open(&dir, clock)
                    .with_context(|| format!("opening state store {}", dir.display()))?;
                Ok(Arc::new(store))
            }
            Backend::Aws => {
                let table = self.table_name()?;
                let sdk = self.aws.sdk_config().await?;
                let clock: Arc<dyn Clock> = Arc::new(SystemClock);
                Ok(Arc::new(DynamoStore::from_sdk_config(&sdk, table, clock)))
            }
        }
    }
}
