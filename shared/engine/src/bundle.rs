//! A config bundle: a config directory's files as one document, the unit
//! `firebell push` deploys (an AWS AppConfig hosted configuration version),
//! the validator Lambda checks and the functions load between cycles.
//!
//! ```json
//! {"format":"firebell.bundle/v1","files":[{"path":"examples/routing.yaml","text":"..."}]}
//! ```
//!
//! The paths are the ones [`crate::load`] names the files by (as given on the
//! command line), so a deployed bundle's diagnostics, rule origins and
//! config version are exactly those `firebell validate` showed for the
//! directory.
//!
//! The last bundle a function loaded successfully is kept in the store
//! ([`save_good`], [`load_good`]): a cold start whose deployed config cannot
//! be fetched or loaded runs it rather than the (older) bundled config.

use std::path::{Path, PathBuf};

use firebell_core::diag::{ConfigError, Diagnostics};
use firebell_core::ports::{Expect, Item, Key, StateStore, StoreError};
use firebell_core::series::Epoch;
use serde::{Deserialize, Serialize};

use crate::config::{Config, load_read, read_files};

/// The bundle format this build reads and writes.
pub const FORMAT: &str = "firebell.bundle/v1";
/// The bundle's content type (of the AppConfig hosted version).
pub const CONTENT_TYPE: &str = "application/json";
/// The largest bundle: AppConfig's default quota for a hosted configuration
/// (2 MB).
pub const MAX_BYTES: usize = 2 * 1024 * 1024;

/// A config directory's files as one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bundle {
    /// [`FORMAT`].
    pub format: String,
    /// The files in reading order.
    pub files: Vec<BundleFile>,
}

/// One file of a [`Bundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleFile {
    /// The path `firebell validate` names it by.
    pub path: String,
    pub text: String,
}

/// Why bytes are not a bundle.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BundleError {
    #[error("the configuration is empty")]
    Empty,
    #[error("the configuration is {0} bytes; a bundle holds at most {MAX_BYTES} bytes")]
    TooLarge(usize),
    #[error(
        "the configuration is not a firebell bundle (JSON {{\"format\":\"{FORMAT}\",\"files\":[...]}}): {0}"
    )]
    NotABundle(String),
    #[error(
        "the bundle's format is {found:?}; this firebell reads {FORMAT:?} (a newer firebell pushed it?)"
    )]
    Format { found: String },
}

impl Bundle {
    /// Reads a config directory (or one file) as [`crate::load`] does. Every
    /// problem at once; a directory that cannot be read completely is an
    /// error (a partial bundle is never deployed).
    pub fn read(path: &Path) -> Result<Bundle, ConfigError> {
        let mut diags = Diagnostics::new();
        let texts = read_files(path, &mut diags);
        match texts {
            Some((texts, _)) if !diags.has_errors() => Ok(Bundle {
                format: FORMAT.to_string(),
                files: texts
                    .into_iter()
                    .map(|(path, text)| BundleFile { path, text })
                    .collect(),
            }),
            _ => {
                diags.sort();
                Err(ConfigError(diags))
            }
        }
    }

    /// The bundle as bytes (compact JSON).
    pub fn to_json(&self) -> Vec<u8> {
        // A struct of strings always serialises.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a bundle from bytes (a deployed configuration).
    pub fn from_json(bytes: &[u8]) -> Result<Bundle, BundleError> {
        if bytes.is_empty() {
            return Err(BundleError::Empty);
        }
        if bytes.len() > MAX_BYTES {
            return Err(BundleError::TooLarge(bytes.len()));
        }
        #[derive(Deserialize)]
        struct Head {
            format: String,
        }
        let head: Head =
            serde_json::from_slice(bytes).map_err(|e| BundleError::NotABundle(e.to_string()))?;
        if head.format != FORMAT {
            return Err(BundleError::Format { found: head.format });
        }
        serde_json::from_slice(bytes).map_err(|e| BundleError::NotABundle(e.to_string()))
    }

    /// Loads and validates the bundle's config as [`crate::load`] loads a
    /// directory: every error at once, warnings beside the config.
    pub fn load(&self) -> Result<(Config, Diagnostics), ConfigError> {
        let mut diags = Diagnostics::new();
        if self.files.is_empty() {
            diags.error("bundle", 1, 1, "no config files in the bundle");
            return Err(ConfigError(diags));
        }
        let texts: Vec<(String, String)> = self
            .files
            .iter()
            .map(|f| (f.path.clone(), f.text.clone()))
            .collect();
        let files: Vec<PathBuf> = self.files.iter().map(|f| PathBuf::from(&f.path)).collect();
        load_read(&texts, files, diags)
    }
}

/// The partition of the last good bundle.
const PK: &str = "config";
/// Its head: which version, how many pages.
const HEAD_SK: &str = "good";
/// Bytes of bundle per page item: DynamoDB items hold at most 400 KB, and
/// JSON escaping can at most double a chunk.
const PAGE_BYTES: usize = 160 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Head {
    version: String,
    pages: usize,
    at: Epoch,
}

#[derive(Debug, Serialize, Deserialize)]
struct Page {
    chunk: String,
}

fn page_key(version: &str, n: usize) -> Key {
    Key::new(PK, format!("good#{version}#{n:03}"))
}

/// Splits `s` into pieces of at most `max` bytes on char boundaries.
fn chunks(s: &str, max: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let mut end = rest.len().min(max);
        while !rest.is_char_boundary(end) {
            end -= 1;
        }
        let (a, b) = rest.split_at(end);
        out.push(a);
        rest = b;
    }
    out
}

/// Keeps `bundle` (config version `version`) as the last good one: its
/// pages, then the head naming them (so a failure half-way leaves the
/// previous one whole), then the previous version's pages are deleted.
/// Writes only when the version differs from the one kept.
pub async fn save_good(
    store: &dyn StateStore,
    bundle: &Bundle,
    version: &str,
    at: Epoch,
) -> Result<usize, StoreError> {
    let head_key = Key::new(PK, HEAD_SK);
    let old = match store.get(&head_key).await? {
        Some(item) => serde_json::from_str::<Head>(&item.data)
            .ok()
            .map(|h| (h, item.version)),
        None => None,
    };
    if old.as_ref().is_some_and(|(h, _)| h.version == version) {
        return Ok(0);
    }
    let text = String::from_utf8(bundle.to_json()).unwrap_or_default();
    let pages = chunks(&text, PAGE_BYTES);
    let mut writes = 0;
    for (n, chunk) in pages.iter().enumerate() {
        let key = page_key(version, n);
        let data = serde_json::to_string(&Page {
            chunk: (*chunk).to_string(),
        })
        .unwrap_or_default();
        store
            .put(
                Item {
                    pk: key.pk,
                    sk: key.sk,
                    version: 1,
                    data,
                    expires_at: None,
                },
                Expect::Any,
            )
            .await?;
        writes += 1;
    }
    let head = Head {
        version: version.to_string(),
        pages: pages.len(),
        at,
    };
    // Conditional on the head read above: should another process have
    // kept another version meanwhile, its head stands and no page it names
    // is deleted here.
    let expect = match &old {
        Some((_, v)) => Expect::Version(*v),
        None => Expect::Absent,
    };
    match store
        .put(
            Item {
                pk: head_key.pk,
                sk: head_key.sk,
                version: old.as_ref().map_or(1, |(_, v)| v + 1),
                data: serde_json::to_string(&head).unwrap_or_default(),
                expires_at: None,
            },
            expect,
        )
        .await
    {
        Ok(()) => writes += 1,
        Err(e) if e.is_conflict() => return Ok(writes),
        Err(e) => return Err(e),
    }
    if let Some((h, _)) = old {
        for n in 0..h.pages {
            // A page left behind is only space: never an error.
            if store
                .delete(&page_key(&h.version, n), Expect::Any)
                .await
                .is_ok()
            {
                writes += 1;
            }
        }
    }
    Ok(writes)
}

/// Forgets the last good bundle (its head; the pages it named are only
/// space): what was kept was rolled back, and nothing is deployed.
pub async fn forget_good(store: &dyn StateStore) -> Result<(), StoreError> {
    store.delete(&Key::new(PK, HEAD_SK), Expect::Any).await
}

/// The last good bundle kept by [`save_good`], if any, with its version.
/// A kept bundle that is incomplete or unreadable is `None` (the caller
/// falls back further), never an error.
pub async fn load_good(store: &dyn StateStore) -> Result<Option<(Bundle, String)>, StoreError> {
    let Some(item) = store.get(&Key::new(PK, HEAD_SK)).await? else {
        return Ok(None);
    };
    let Ok(head) = serde_json::from_str::<Head>(&item.data) else {
        return Ok(None);
    };
    let keys: Vec<Key> = (0..head.pages)
        .map(|n| page_key(&head.version, n))
        .collect();
    let mut items = store.batch_get(&keys).await?;
    items.sort_by(|a, b| a.sk.cmp(&b.sk));
    if items.len() != head.pages {
        return Ok(None);
    }
    let mut text = String::new();
    for item in &items {
        let Ok(page) = serde_json::from_str::<Page>(&item.data) else {
            return Ok(None);
        };
        text.push_str(&page.chunk);
    }
    Ok(Bundle::from_json(text.as_bytes())
        .ok()
        .map(|b| (b, head.version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_split_on_char_boundaries() {
        let s = "aé".repeat(5);
        let parts = chunks(&s, 4);
        assert_eq!(parts.concat(), s);
        assert!(parts.iter().all(|p| p.len() <= 4));
        assert!(chunks("", 4).is_empty());
    }
}
