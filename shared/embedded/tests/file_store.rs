//! FileStore specifics: durability, layout, corruption, purging, locking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use firebell_core::ports::{Expect, Item, Key, StateStore, StoreError};
use firebell_embedded::{FileStore, ManualClock};

fn item(pk: &str, sk: &str, version: u64, expires_at: Option<i64>) -> Item {
    Item {
        pk: pk.into(),
        sk: sk.into(),
        version,
        data: format!(r#"{{"v":{version}}}"#),
        expires_at,
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::at_epoch(1_700_000_000))
}

#[tokio::test]
async fn survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    {
        let store = FileStore::open(dir.path(), clock.clone()).unwrap();
        store
            .put(item("alert#cpu", "a", 1, None), Expect::Absent)
            .await
            .unwrap();
        store
            .put(item("alert#cpu", "b", 1, None), Expect::Absent)
            .await
            .unwrap();
        store
            .delete(&Key::new("alert#cpu", "b"), Expect::Any)
            .await
            .unwrap();
    }
    let store = FileStore::open(dir.path(), clock).unwrap();
    let got = store.query("alert#cpu", "").await.unwrap();
    assert_eq!(got, vec![item("alert#cpu", "a", 1, None)]);
    assert_eq!(store.items().unwrap(), got);
}

#[tokio::test]
async fn layout_is_one_jsonl_file_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), clock()).unwrap();
    store
        .put(item("Alert#cpu", "b", 2, None), Expect::Absent)
        .await
        .unwrap();
    store
        .put(
            item("Alert#cpu", "a", 1, Some(1_800_000_000)),
            Expect::Absent,
        )
        .await
        .unwrap();
    let path = store.partition_path("Alert#cpu");
    assert_eq!(path.file_name().unwrap(), "p-%41lert%23cpu.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        text,
        concat!(
            r#"{"pk":"Alert#cpu","sk":"a","version":1,"data":"{\"v\":1}","expires_at":1800000000}"#,
            "\n",
            r#"{"pk":"Alert#cpu","sk":"b","version":2,"data":"{\"v\":2}","expires_at":null}"#,
            "\n"
        )
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [".lock", "p-%41lert%23cpu.jsonl"],
        "no temporary files left"
    );

    // Deleting the last item removes the file.
    store
        .delete(&Key::new("Alert#cpu", "a"), Expect::Any)
        .await
        .unwrap();
    store
        .delete(&Key::new("Alert#cpu", "b"), Expect::Version(2))
        .await
        .unwrap();
    assert!(!path.exists());
}

#[tokio::test]
async fn corrupt_file_is_invalid_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), clock()).unwrap();
    store
        .put(item("p", "a", 1, None), Expect::Absent)
        .await
        .unwrap();
    let path = store.partition_path("p");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"pk\":\"p\",\"sk\":\"b\",\"version\":\"two\"}\n");
    std::fs::write(&path, text).unwrap();

    let err = store.get(&Key::new("p", "a")).await.unwrap_err();
    let StoreError::Invalid(msg) = &err else {
        panic!("expected Invalid, got {err:?}");
    };
    assert!(
        msg.starts_with(&format!("{}:2: invalid item:", path.display())),
        "{msg}"
    );
    assert!(!err.is_retryable());
    // Writes to a corrupt partition fail too, and leave the file alone.
    let err = store
        .put(item("p", "c", 1, None), Expect::Any)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    // Other partitions still work.
    store
        .put(item("q", "a", 1, None), Expect::Absent)
        .await
        .unwrap();
}

#[tokio::test]
async fn item_in_the_wrong_file_is_invalid() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileStore::open(dir.path(), clock()).unwrap();
    store
        .put(item("p", "a", 1, None), Expect::Absent)
        .await
        .unwrap();
    std::fs::copy(store.partition_path("p"), store.partition_path("q")).unwrap();
    let err = store.query("q", "").await.unwrap_err();
    assert!(
        err.to_string()
            .contains(":1: item of partition \"p\" in the file of partition \"q\""),
        "{err}"
    );
}

#[tokio::test]
async fn expired_items_are_purged_on_the_next_write() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let store = FileStore::open(dir.path(), clock.clone()).unwrap();
    store
        .put(item("p", "old", 1, Some(1_700_000_100)), Expect::Absent)
        .await
        .unwrap();
    store
        .put(item("p", "keep", 1, None), Expect::Absent)
        .await
        .unwrap();
    clock.advance_secs(100);
    // Hidden at once, still on disk.
    assert_eq!(store.get(&Key::new("p", "old")).await.unwrap(), None);
    let path = store.partition_path("p");
    assert!(std::fs::read_to_string(&path).unwrap().contains("\"old\""));
    store
        .put(item("p", "new", 1, None), Expect::Absent)
        .await
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("\"old\""), "{text}");
    assert_eq!(text.lines().count(), 2);
}

#[tokio::test]
async fn stale_temp_files_are_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".tmp-1234-0.tmp"), "half a write").unwrap();
    let _store = FileStore::open(dir.path(), clock()).unwrap();
    assert!(!dir.path().join(".tmp-1234-0.tmp").exists());
}

#[tokio::test]
async fn open_fails_cleanly_on_a_file_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    let err = FileStore::open(&file, clock()).unwrap_err();
    assert!(err.to_string().contains("not-a-dir"), "{err}");
}

/// Writers on OS threads through separate handles (as separate processes
/// would be) never lose an update: 8 threads x 25 read-modify-write increments.
#[test]
fn threads_on_separate_handles_never_lose_updates() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let setup = FileStore::open(dir.path(), clock.clone()).unwrap();
    rt.block_on(setup.put(item("counter", "n", 0, None), Expect::Absent))
        .unwrap();
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let clock = clock.clone();
            let path = dir.path().to_path_buf();
            scope.spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                let store = FileStore::open(path, clock).unwrap();
                increment(&store, &rt, 25);
            });
        }
    });
    let got = rt
        .block_on(setup.get(&Key::new("counter", "n")))
        .unwrap()
        .unwrap();
    assert_eq!(got.version, 200);
}

const CHILD_DIR_ENV: &str = "FIREBELL_FILE_STORE_CHILD_DIR";

fn increment(store: &FileStore, rt: &tokio::runtime::Runtime, times: u64) {
    let key = Key::new("counter", "n");
    let mut done = 0;
    while done < times {
        let current = rt.block_on(store.get(&key)).unwrap().unwrap();
        let next = item("counter", "n", current.version + 1, None);
        match rt.block_on(store.put(next, Expect::Version(current.version))) {
            Ok(()) => done += 1,
            Err(e) if e.is_conflict() => {}
            Err(e) => panic!("{e}"),
        }
    }
}

/// Run by `two_processes_never_lose_updates` in child processes; a no-op otherwise.
#[test]
fn cross_process_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = FileStore::open(dir, clock()).unwrap();
    increment(&store, &rt, 40);
}

#[test]
fn two_processes_never_lose_updates() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = FileStore::open(dir.path(), clock()).unwrap();
    rt.block_on(store.put(item("counter", "n", 0, None), Expect::Absent))
        .unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            std::process::Command::new(&exe)
                .args(["--exact", "cross_process_child", "--test-threads=1"])
                .env(CHILD_DIR_ENV, dir.path())
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    increment(&store, &rt, 40);
    for mut child in children {
        assert!(child.wait().unwrap().success());
    }
    let got = rt
        .block_on(store.get(&Key::new("counter", "n")))
        .unwrap()
        .unwrap();
    assert_eq!(got.version, 120);
}

/// A large partition is written per item: a put appends one line (the file
/// grows by that line, the rest untouched), a line cut short by a crash is
/// ignored and cut off by the next write, another handle sees every write,
/// and the file is compacted once mostly garbage.
#[tokio::test]
async fn large_partitions_are_appended_to_and_compacted() {
    let dir = tempfile::tempdir().unwrap();
    let clock = clock();
    let store = FileStore::open(dir.path(), clock.clone()).unwrap();
    let other = FileStore::open(dir.path(), clock.clone()).unwrap();
    let big = |sk: &str, v: u64| Item {
        data: format!(r#"{{"v":{v},"pad":"{}"}}"#, "x".repeat(200)),
        ..item("state#r", sk, v, None)
    };
    for i in 0..300 {
        store
            .put(big(&format!("k{i:04}"), 1), Expect::Absent)
            .await
            .unwrap();
    }
    let path = store.partition_path("state#r");
    let before = std::fs::read(&path).unwrap();
    store
        .put(big("k0005", 2), Expect::Version(1))
        .await
        .unwrap();
    let after = std::fs::read(&path).unwrap();
    assert_eq!(
        &after[..before.len()],
        &before[..],
        "appended, not rewritten"
    );
    let added = std::str::from_utf8(&after[before.len()..]).unwrap();
    assert_eq!(added.lines().count(), 1, "{added}");
    assert_eq!(
        other.get(&Key::new("state#r", "k0005")).await.unwrap(),
        Some(big("k0005", 2))
    );
    // A crash in the middle of an append: the torn line is not an item.
    let mut torn = after.clone();
    torn.extend_from_slice(br#"{"pk":"state#r","sk":"k9"#);
    std::fs::write(&path, &torn).unwrap();
    let fresh = FileStore::open(dir.path(), clock.clone()).unwrap();
    assert_eq!(fresh.query("state#r", "").await.unwrap().len(), 300);
    fresh
        .delete(&Key::new("state#r", "k0001"), Expect::Version(1))
        .await
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        text.ends_with("{\"deleted\":true,\"pk\":\"state#r\",\"sk\":\"k0001\"}\n")
            && !text.contains("\"k9"),
        "torn line cut off"
    );
    assert_eq!(store.query("state#r", "").await.unwrap().len(), 299);
    // Rewriting every item many times compacts the file.
    for round in 2..12 {
        for i in (0..300).filter(|i| *i != 1) {
            let sk = format!("k{i:04}");
            let cur = store.get(&Key::new("state#r", &sk)).await.unwrap().unwrap();
            store
                .put(big(&sk, round + 100), Expect::Version(cur.version))
                .await
                .unwrap();
        }
    }
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(
        len < 2 * 299 * 260 + 256 * 1024 + 1024,
        "compacted: {len} bytes"
    );
    let all = other.query("state#r", "").await.unwrap();
    assert_eq!(all.len(), 299);
    assert!(all.iter().all(|i| i.version == 111));
    let reopened = FileStore::open(dir.path(), clock).unwrap();
    assert_eq!(reopened.items().unwrap(), all);
}
