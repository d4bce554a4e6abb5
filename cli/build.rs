//! Build metadata for `firebell --version`: the git commit (`unknown` when
//! git or the repository is absent, e.g. a source tarball) and the build
//! date (UTC; `SOURCE_DATE_EPOCH` when set, for reproducible builds).
//!
//! Re-runs only when HEAD moves (`HEAD`, the branch ref it points to, and
//! `packed-refs`) or `SOURCE_DATE_EPOCH` changes, so an ordinary edit-build
//! cycle does not rebuild the crate for a new date.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// `YYYY-MM-DD` of a Unix time (days to civil date, Howard Hinnant's algorithm).
fn date(secs: i64) -> String {
    let z = secs.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
    // The files that change when HEAD moves (a worktree's HEAD is in its
    // own git dir, its branch refs in the common one: --git-path knows).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"]) {
        // Its directory too: a branch whose ref is packed (after `git gc`)
        // has no file to watch until the next commit writes one.
        if let Some((dir, _)) = r.rsplit_once('/') {
            watched.push(dir.to_string());
        }
        watched.push(r);
    }
    for p in watched {
        if let Some(path) = git(&["rev-parse", "--path-format=absolute", "--git-path", &p])
            && std::path::Path::new(&path).exists()
        {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown".to_string());
    let now = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0)
        });
    println!("cargo:rustc-env=FIREBELL_GIT_COMMIT={commit}");
    println!("cargo:rustc-env=FIREBELL_BUILD_DATE={}", date(now));
}
