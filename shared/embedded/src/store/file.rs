//! An on-disk state store: one JSON Lines file per partition.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use firebell_core::ports::{Clock, Expect, Item, Key, StateStore, StoreError};
use firebell_core::series::Epoch;
use sha2::{Digest, Sha256};

use super::{check_expect, is_live, validate_item};

const LOCK_FILE: &str = ".lock";
const TEMP_PREFIX: &str = ".tmp-";
const PARTITION_PREFIX: &str = "p-";
const PARTITION_SUFFIX: &str = ".jsonl";
/// Longer encoded partition keys are shortened and suffixed with a hash.
const MAX_ENCODED_LEN: usize = 160;
const KEPT_ENCODED_LEN: usize = 100;

/// A [`StateStore`] in a directory, durable across restarts.
///
/// Layout: one file per partition key, `p-<encoded pk>.jsonl`, holding one
/// JSON object per item (the serde form of [`Item`]) sorted by sort key. The
/// encoding keeps `a-z 0-9 - _ .` and writes every other byte as `%XX`
/// (so names are safe on case-insensitive file systems too); keys whose
/// encoding is longer than 160 bytes are cut and suffixed with `~` and a
/// SHA-256 prefix of the key.
///
/// Every write rewrites its partition file: a temporary file is written and
/// fsynced, renamed over the old one and the directory fsynced, all before
/// `put`/`delete` return. Writes hold an in-process mutex and an exclusive
/// advisory lock on `<dir>/.lock`, so several stores (in one or several
/// processes) can share a directory; reads take no lock and see whole files.
/// Expired items are dropped from a partition the next time it is written.
///
/// I/O is blocking `std::fs` inside the async methods: fine for the local
/// mode, not meant for a busy server.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    lock: Mutex<File>,
}

/// Numbers temporary files, unique within the process (with the pid, across processes).
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

impl FileStore {
    /// Opens (creating if needed) the store in directory `dir`. Removes
    /// temporary files left behind by a crashed writer.
    pub fn open(dir: impl Into<PathBuf>, clock: Arc<dyn Clock>) -> Result<FileStore, StoreError> {
        let dir = dir.into();
        fs::create_dir_all(&dir).map_err(|e| io_error(&dir, &e))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|e| io_error(&lock_path, &e))?;
        let store = FileStore {
            dir,
            clock,
            lock: Mutex::new(lock),
        };
        store.remove_stale_temp_files()?;
        Ok(store)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file holding partition `pk`.
    pub fn partition_path(&self, pk: &str) -> PathBuf {
        self.dir.join(partition_file_name(pk))
    }

    /// Every live item, ordered by partition then sort key (for debugging and demos).
    pub fn items(&self) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, &e))?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_error(&self.dir, &e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(PARTITION_PREFIX) && name.ends_with(PARTITION_SUFFIX) {
                let path = entry.path();
                out.extend(
                    read_items(&path, None)?
                        .into_iter()
                        .filter(|i| is_live(i, now)),
                );
            }
        }
        out.sort_by(|a, b| (&a.pk, &a.sk).cmp(&(&b.pk, &b.sk)));
        Ok(out)
    }

    fn now(&self) -> Epoch {
        self.clock.now().as_second()
    }

    /// All items of partition `pk`, expired ones included, sorted by sort key.
    fn read_partition(&self, pk: &str) -> Result<Vec<Item>, StoreError> {
        read_items(&self.partition_path(pk), Some(pk))
    }

    /// Replaces partition `pk` with `items` (sorted by sort key) durably.
    fn write_partition(&self, pk: &str, items: &[Item]) -> Result<(), StoreError> {
        let path = self.partition_path(pk);
        if items.is_empty() {
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error(&path, &e)),
            }
            return sync_dir(&self.dir);
        }
        let mut text = String::new();
        for item in items {
            let line = serde_json::to_string(item)
                .map_err(|e| StoreError::Invalid(format!("cannot encode item: {e}")))?;
            text.push_str(&line);
            text.push('\n');
        }
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TEMP_PREFIX}{}-{seq}.tmp", std::process::id()));
        let written = write_synced(&tmp, text.as_bytes()).and_then(|()| fs::rename(&tmp, &path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(&path, &e));
        }
        sync_dir(&self.dir)
    }

    /// Serialises writers in this process (mutex) and across processes (file lock).
    fn write_lock(&self) -> Result<WriteLock<'_>, StoreError> {
        let file = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        file.lock()
            .map_err(|e| io_error(&self.dir.join(LOCK_FILE), &e))?;
        Ok(WriteLock { file })
    }

    fn remove_stale_temp_files(&self) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let entries = fs::read_dir(&self.dir).map_err(|e| io_error(&self.dir, &e))?;
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name
                .to_str()
                .is_some_and(|n| n.starts_with(TEMP_PREFIX) && n.ends_with(".tmp"))
            {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn live_in(items: &[Item], sk: &str, now: Epoch) -> Option<Item> {
        items
            .iter()
            .find(|i| i.sk == sk && is_live(i, now))
            .cloned()
    }
}

struct WriteLock<'a> {
    file: MutexGuard<'a, File>,
}

impl Drop for WriteLock<'_> {
    fn drop(&mut self) {
        // Closing the store's lock file would release it too; an unlock error
        // leaves nothing to repair here.
        let _ = self.file.unlock();
    }
}

#[async_trait]
impl StateStore for FileStore {
    async fn get(&self, key: &Key) -> Result<Option<Item>, StoreError> {
        let items = self.read_partition(&key.pk)?;
        Ok(Self::live_in(&items, &key.sk, self.now()))
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let mut by_pk: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for key in keys {
            by_pk.entry(&key.pk).or_default().insert(&key.sk);
        }
        let mut out = Vec::new();
        for (pk, sks) in by_pk {
            let items = self.read_partition(pk)?;
            out.extend(
                items
                    .into_iter()
                    .filter(|i| sks.contains(i.sk.as_str()) && is_live(i, now)),
            );
        }
        Ok(out)
    }

    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        validate_item(&item)?;
        let key = Key::new(item.pk.clone(), item.sk.clone());
        let _lock = self.write_lock()?;
        let now = self.now();
        let mut items = self.read_partition(&key.pk)?;
        let current = Self::live_in(&items, &key.sk, now);
        check_expect(expect, current.as_ref(), &key)?;
        items.retain(|i| i.sk != key.sk && is_live(i, now));
        let at = items.partition_point(|i| i.sk < key.sk);
        items.insert(at, item);
        self.write_partition(&key.pk, &items)
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let items = self.read_partition(pk)?;
        Ok(items
            .into_iter()
            .filter(|i| i.sk.starts_with(sk_prefix) && is_live(i, now))
            .collect())
    }

    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let now = self.now();
        let mut items = self.read_partition(&key.pk)?;
        let current = Self::live_in(&items, &key.sk, now);
        check_expect(expect, current.as_ref(), key)?;
        let before = items.len();
        items.retain(|i| i.sk != key.sk && is_live(i, now));
        if items.len() == before {
            return Ok(());
        }
        self.write_partition(&key.pk, &items)
    }
}

/// `p-<encoded pk>.jsonl`: see [`FileStore`].
pub(crate) fn partition_file_name(pk: &str) -> String {
    let mut enc = String::with_capacity(pk.len());
    for b in pk.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => enc.push(char::from(b)),
            _ => {
                let _ = write!(enc, "%{b:02X}");
            }
        }
    }
    if enc.len() > MAX_ENCODED_LEN {
        // `enc` is ASCII, so any byte index is a char boundary.
        enc.truncate(KEPT_ENCODED_LEN);
        enc.push('~');
        for b in &Sha256::digest(pk.as_bytes())[..16] {
            let _ = write!(enc, "{b:02x}");
        }
    }
    format!("{PARTITION_PREFIX}{enc}{PARTITION_SUFFIX}")
}

/// Reads a partition file (missing = empty). With `expect_pk`, every item
/// must belong to that partition.
fn read_items(path: &Path, expect_pk: Option<&str>) -> Result<Vec<Item>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(path, &e)),
    };
    let mut items: Vec<Item> = Vec::new();
    let mut first_pk: Option<String> = None;
    for (index, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        let line_no = index + 1;
        let corrupt =
            |what: String| StoreError::Invalid(format!("{}:{line_no}: {what}", path.display()));
        let line = std::str::from_utf8(raw).map_err(|e| corrupt(format!("not UTF-8: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let item: Item =
            serde_json::from_str(line).map_err(|e| corrupt(format!("invalid item: {e}")))?;
        let want = expect_pk.or(first_pk.as_deref());
        if let Some(want) = want
            && item.pk != want
        {
            return Err(corrupt(format!(
                "item of partition {:?} in the file of partition {want:?}",
                item.pk
            )));
        }
        if items.iter().any(|i| i.sk == item.sk) {
            return Err(corrupt(format!("duplicate sort key {:?}", item.sk)));
        }
        if first_pk.is_none() {
            first_pk = Some(item.pk.clone());
        }
        items.push(item);
    }
    items.sort_by(|a, b| a.sk.cmp(&b.sk));
    Ok(items)
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

/// Makes a rename or removal in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_error(dir, &e))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

fn io_error(path: &Path, e: &io::Error) -> StoreError {
    StoreError::Unavailable(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe_and_distinct() {
        assert_eq!(partition_file_name("alert#cpu"), "p-alert%23cpu.jsonl");
        assert_eq!(partition_file_name("A"), "p-%41.jsonl");
        assert_ne!(partition_file_name("Case"), partition_file_name("case"));
        assert_eq!(partition_file_name("../x"), "p-..%2Fx.jsonl");
        assert_eq!(partition_file_name("é"), "p-%C3%A9.jsonl");
        let long_a = "a".repeat(300);
        let long_b = format!("{}b", "a".repeat(299));
        let (na, nb) = (partition_file_name(&long_a), partition_file_name(&long_b));
        assert_ne!(na, nb);
        assert!(na.len() < 200, "{na}");
        assert!(na.contains('~'));
    }
}
