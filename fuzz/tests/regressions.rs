//! Every input in `regressions/<target>/` (fuzz findings, now fixed) runs
//! through its target without a panic, abort, stack overflow or hang, in a
//! child under a 512 MiB address-space limit. A `<name>.expect` next to
//! `<name>.input` holds lines the outcome must contain (the exact error
//! message, with file:line:column, the offending value and what was expected).

use std::path::PathBuf;
use std::process::{Command, Stdio};

use firebell_fuzz::Target;

#[test]
fn saved_findings_no_longer_crash() {
    let exe = env!("CARGO_BIN_EXE_firebell-fuzz");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("regressions");
    let mut ran = 0;
    let mut failed = Vec::new();
    for t in Target::ALL {
        let Ok(rd) = std::fs::read_dir(root.join(t.name())) else {
            continue;
        };
        let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        for f in files
            .iter()
            .filter(|f| f.extension().is_some_and(|x| x == "input"))
        {
            let out = Command::new("sh")
                .arg("-c")
                .arg("ulimit -v 524288 && exec \"$0\" \"$@\"")
                .arg(exe)
                .arg("--exec")
                .arg(t.name())
                .arg(f)
                .env("RUST_BACKTRACE", "0")
                .stdin(Stdio::null())
                .output()
                .unwrap();
            ran += 1;
            let stdout = String::from_utf8_lossy(&out.stdout);
            if !out.status.success() {
                failed.push(format!(
                    "{}: {}\n{}",
                    f.display(),
                    out.status,
                    String::from_utf8_lossy(&out.stderr)
                ));
                continue;
            }
            let expect = std::fs::read_to_string(f.with_extension("expect")).unwrap_or_default();
            for line in expect.lines().filter(|l| !l.trim().is_empty()) {
                if !stdout.contains(line) {
                    failed.push(format!(
                        "{}: the outcome lacks {line:?}; it was:\n{stdout}",
                        f.display()
                    ));
                }
            }
        }
    }
    println!("{ran} regression input(s) replayed");
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
