//! An on-disk state store: one JSON Lines file per partition, written per item.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
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

/// Partitions whose live items take fewer bytes than this are rewritten
/// whole at every write (sorted, expired items dropped); larger ones are
/// appended to.
const REWRITE_BELOW: usize = 16 * 1024;
/// An appended partition file is compacted (rewritten with its live items)
/// when it is larger than twice its live items plus this.
const COMPACT_SLACK: usize = 256 * 1024;
/// Bytes compared at the start and at the end of what a cache has read, to
/// notice a file replaced by another (a compaction elsewhere).
const PROBE: usize = 64;

/// A [`StateStore`] in a directory, durable across restarts.
///
/// Layout: one file per partition key, `p-<encoded pk>.jsonl`, holding one
/// JSON object per line: an item (the serde form of [`Item`]) or a deletion
/// (`{"pk":..,"sk":..,"deleted":true}`); a later line for a sort key
/// replaces earlier ones. The encoding of the file name keeps
/// `a-z 0-9 - _ .` and writes every other byte as `%XX` (so names are safe
/// on case-insensitive file systems too); keys whose encoding is longer than
/// 160 bytes are cut and suffixed with `~` and a SHA-256 prefix of the key.
///
/// Writes cost one item, not one partition: a small partition (live items
/// under 16 KB) is rewritten whole, sorted by sort key and without expired
/// items (a temporary file written and fsynced, renamed over the old one,
/// the directory fsynced); a larger one gets the item appended as one line
/// and the file fsynced, and is compacted the same way once the file is over
/// twice its live items plus 256 KB. A line cut short by a crash is ignored
/// and cut off by the next write. Every write is durable before
/// `put`/`delete` return. Writes hold an in-process mutex and an exclusive
/// advisory lock on `<dir>/.lock`, so several stores (in one or several
/// processes) can share a directory; reads take no lock. Each store keeps
/// the partitions it read in memory and reads only what was appended since
/// (a file replaced by another writer's compaction is read again whole).
///
/// I/O is blocking `std::fs` inside the async methods: fine for the local
/// mode, not meant for a busy server.
#[derive(Debug)]
pub struct FileStore {
    dir: PathBuf,
    clock: Arc<dyn Clock>,
    lock: Mutex<File>,
    cache: Mutex<HashMap<String, Cached>>,
}

/// What a store knows of one partition file.
#[derive(Debug, Default)]
struct Cached {
    /// Items by sort key (expired ones included), each with its line's length.
    items: BTreeMap<String, (Item, usize)>,
    /// Identity of the file read (device, inode), if any.
    id: Option<(u64, u64)>,
    /// Bytes read: up to and including the last complete line.
    offset: u64,
    /// Lines read.
    lines: usize,
    /// The first and the last [`PROBE`] bytes read.
    head: Vec<u8>,
    tail: Vec<u8>,
}

/// A line of a partition file.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Deletion {
    pk: String,
    sk: String,
    #[allow(dead_code)]
    deleted: bool,
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
            cache: Mutex::new(HashMap::new()),
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
                let mut c = Cached::default();
                refresh(&mut c, &path, None)?;
                out.extend(
                    c.items
                        .into_values()
                        .map(|(i, _)| i)
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

    /// Runs `f` on partition `pk` brought up to date with its file.
    fn with_partition<T>(
        &self,
        pk: &str,
        f: impl FnOnce(&mut Cached, &Path) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        let path = self.partition_path(pk);
        let c = cache.entry(pk.to_string()).or_default();
        if let Err(e) = refresh(c, &path, Some(pk)) {
            *c = Cached::default();
            return Err(e);
        }
        f(c, &path)
    }

    /// Writes `line` (an item or a deletion of `sk`) to partition `pk`,
    /// whose cache `c` is up to date, and updates `c` to `after`.
    fn write(
        &self,
        c: &mut Cached,
        path: &Path,
        sk: &str,
        line: &str,
        after: Option<Item>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        match after {
            Some(item) => {
                c.items.insert(sk.to_string(), (item, line.len()));
            }
            None => {
                c.items.remove(sk);
            }
        }
        let live = c
            .items
            .values()
            .filter(|(i, _)| is_live(i, now))
            .map(|(_, n)| n + 1)
            .sum::<usize>();
        let file_after = usize::try_from(c.offset)
            .unwrap_or(usize::MAX)
            .saturating_add(line.len() + 1);
        if live < REWRITE_BELOW || file_after > live.saturating_mul(2).saturating_add(COMPACT_SLACK)
        {
            c.items.retain(|_, (i, _)| is_live(i, now));
            let result = self.rewrite(path, c);
            if result.is_err() {
                *c = Cached::default();
            }
            return result;
        }
        let result = append(path, c.offset, line, &self.dir);
        match result {
            Ok(created) => {
                if created {
                    c.id = file_id(path);
                }
                c.offset += u64::try_from(line.len() + 1).unwrap_or(u64::MAX);
                c.lines += 1;
                if c.head.len() < PROBE {
                    c.head
                        .extend(line.bytes().chain([b'\n']).take(PROBE - c.head.len()));
                }
                let mut tail = std::mem::take(&mut c.tail);
                tail.extend(line.bytes().chain([b'\n']));
                c.tail = tail[tail.len().saturating_sub(PROBE)..].to_vec();
                Ok(())
            }
            Err(e) => {
                *c = Cached::default();
                Err(e)
            }
        }
    }

    /// Replaces the file with the items of `c`, sorted, durably; `c` then
    /// describes the new file.
    fn rewrite(&self, path: &Path, c: &mut Cached) -> Result<(), StoreError> {
        if c.items.is_empty() {
            *c = Cached::default();
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_error(path, &e)),
            }
            return sync_dir(&self.dir);
        }
        let mut text = String::new();
        for (item, len) in c.items.values_mut() {
            let line = encode(item)?;
            *len = line.len();
            text.push_str(&line);
            text.push('\n');
        }
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!("{TEMP_PREFIX}{}-{seq}.tmp", std::process::id()));
        let written = write_synced(&tmp, text.as_bytes()).and_then(|()| fs::rename(&tmp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(io_error(path, &e));
        }
        sync_dir(&self.dir)?;
        let bytes = text.as_bytes();
        c.id = file_id(path);
        c.offset = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        c.lines = c.items.len();
        c.head = bytes[..bytes.len().min(PROBE)].to_vec();
        c.tail = bytes[bytes.len().saturating_sub(PROBE)..].to_vec();
        Ok(())
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

    fn live_in(c: &Cached, sk: &str, now: Epoch) -> Option<Item> {
        c.items
            .get(sk)
            .map(|(i, _)| i)
            .filter(|i| is_live(i, now))
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
        let now = self.now();
        self.with_partition(&key.pk, |c, _| Ok(Self::live_in(c, &key.sk, now)))
    }

    async fn batch_get(&self, keys: &[Key]) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        let mut by_pk: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for key in keys {
            by_pk.entry(&key.pk).or_default().insert(&key.sk);
        }
        let mut out = Vec::new();
        for (pk, sks) in by_pk {
            self.with_partition(pk, |c, _| {
                out.extend(sks.iter().filter_map(|sk| Self::live_in(c, sk, now)));
                Ok(())
            })?;
        }
        Ok(out)
    }

    async fn put(&self, item: Item, expect: Expect) -> Result<(), StoreError> {
        validate_item(&item)?;
        let key = Key::new(item.pk.clone(), item.sk.clone());
        let line = encode(&item)?;
        let _lock = self.write_lock()?;
        let now = self.now();
        self.with_partition(&key.pk, |c, path| {
            let current = Self::live_in(c, &key.sk, now);
            check_expect(expect, current.as_ref(), &key)?;
            self.write(c, path, &key.sk, &line, Some(item))
        })
    }

    async fn query(&self, pk: &str, sk_prefix: &str) -> Result<Vec<Item>, StoreError> {
        let now = self.now();
        self.with_partition(pk, |c, _| {
            Ok(c.items
                .range::<str, _>((
                    std::ops::Bound::Included(sk_prefix),
                    std::ops::Bound::Unbounded,
                ))
                .take_while(|(sk, _)| sk.starts_with(sk_prefix))
                .map(|(_, (i, _))| i)
                .filter(|i| is_live(i, now))
                .cloned()
                .collect())
        })
    }

    async fn delete(&self, key: &Key, expect: Expect) -> Result<(), StoreError> {
        let _lock = self.write_lock()?;
        let now = self.now();
        self.with_partition(&key.pk, |c, path| {
            let current = Self::live_in(c, &key.sk, now);
            check_expect(expect, current.as_ref(), key)?;
            if !c.items.contains_key(&key.sk) {
                return Ok(());
            }
            let line = serde_json::json!({"pk": key.pk, "sk": key.sk, "deleted": true}).to_string();
            self.write(c, path, &key.sk, &line, None)
        })
    }
}

fn encode(item: &Item) -> Result<String, StoreError> {
    serde_json::to_string(item).map_err(|e| StoreError::Invalid(format!("cannot encode item: {e}")))
}

#[cfg(unix)]
fn file_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_id(_path: &Path) -> Option<(u64, u64)> {
    None
}

/// Appends `line` to the file at `path`, first cutting off anything after
/// `offset` (a line a crashed writer left incomplete), then fsyncs it.
/// Returns whether the file was created.
fn append(path: &Path, offset: u64, line: &str, dir: &Path) -> Result<bool, StoreError> {
    let created = !path.exists();
    let run = || -> io::Result<()> {
        let mut f = OpenOptions::new().create(true).append(true).open(path)?;
        if f.metadata()?.len() > offset {
            f.set_len(offset)?;
        }
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        f.write_all(&bytes)?;
        f.sync_data()
    };
    run().map_err(|e| io_error(path, &e))?;
    if created {
        sync_dir(dir)?;
    }
    Ok(created)
}

/// Brings `c` up to date with the file at `path` (missing = empty): reads
/// only what was appended since `c` was last brought up to date, or the
/// whole file when it was replaced. With `expect_pk`, every line must
/// belong to that partition.
fn refresh(c: &mut Cached, path: &Path, expect_pk: Option<&str>) -> Result<(), StoreError> {
    let mut f = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            *c = Cached::default();
            return Ok(());
        }
        Err(e) => return Err(io_error(path, &e)),
    };
    let meta = f.metadata().map_err(|e| io_error(path, &e))?;
    let len = meta.len();
    #[cfg(unix)]
    let id = {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    };
    #[cfg(not(unix))]
    let id: Option<(u64, u64)> = None;
    let same = id.is_some() && c.id == id && len >= c.offset && probes_match(&mut f, c)?;
    if !same {
        *c = Cached {
            id,
            ..Cached::default()
        };
    }
    if len == c.offset {
        return Ok(());
    }
    f.seek(SeekFrom::Start(c.offset))
        .map_err(|e| io_error(path, &e))?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes).map_err(|e| io_error(path, &e))?;
    // Only complete lines: a line being appended (or cut short) waits.
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n') else {
        return Ok(());
    };
    let bytes = &bytes[..=end];
    for raw in bytes[..end].split(|&b| b == b'\n') {
        c.lines += 1;
        let line_no = c.lines;
        let corrupt =
            |what: String| StoreError::Invalid(format!("{}:{line_no}: {what}", path.display()));
        let line = std::str::from_utf8(raw).map_err(|e| corrupt(format!("not UTF-8: {e}")))?;
        if line.trim().is_empty() {
            continue;
        }
        let (pk, sk, item) = match serde_json::from_str::<Deletion>(line) {
            Ok(d) => (d.pk, d.sk, None),
            Err(_) => {
                let item: Item = serde_json::from_str(line)
                    .map_err(|e| corrupt(format!("invalid item: {e}")))?;
                (item.pk.clone(), item.sk.clone(), Some(item))
            }
        };
        let first_pk = c.items.values().next().map(|(i, _)| i.pk.clone());
        if let Some(want) = expect_pk.map(str::to_string).or(first_pk)
            && pk != want
        {
            return Err(corrupt(format!(
                "item of partition {pk:?} in the file of partition {want:?}"
            )));
        }
        match item {
            Some(item) => {
                c.items.insert(sk, (item, raw.len()));
            }
            None => {
                c.items.remove(&sk);
            }
        }
    }
    if c.offset == 0 {
        c.head = bytes[..bytes.len().min(PROBE)].to_vec();
    }
    let mut tail = std::mem::take(&mut c.tail);
    tail.extend_from_slice(&bytes[bytes.len().saturating_sub(PROBE)..]);
    c.tail = tail[tail.len().saturating_sub(PROBE)..].to_vec();
    c.offset += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
    Ok(())
}

/// Whether the file still starts and (at `c.offset`) ends what `c` read.
fn probes_match(f: &mut File, c: &Cached) -> Result<bool, StoreError> {
    let io = |e: io::Error| StoreError::Unavailable(e.to_string());
    let mut head = vec![0; c.head.len()];
    f.seek(SeekFrom::Start(0)).map_err(io)?;
    f.read_exact(&mut head).map_err(io)?;
    let mut tail = vec![0; c.tail.len()];
    let at = c.offset - u64::try_from(c.tail.len()).unwrap_or(0);
    f.seek(SeekFrom::Start(at)).map_err(io)?;
    f.read_exact(&mut tail).map_err(io)?;
    Ok(head == c.head && tail == c.tail)
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
