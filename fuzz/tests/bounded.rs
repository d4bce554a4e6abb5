//! A bounded fuzz run in the test suite: every target, a fixed seed, a fixed
//! number of execs, each batch in a child under a 512 MiB address-space limit.
//! Fails on any finding not in `known_crashes/signatures.txt`, printing it.

use std::path::PathBuf;
use std::time::Duration;

use firebell_fuzz::{Options, Target, campaign};

const EXECS: u64 = 2_000;
const SEED: u64 = 1;

fn known() -> Vec<String> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("known_crashes/signatures.txt");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect()
}

#[test]
fn every_target_survives_a_bounded_run() {
    let mut opts = Options::new(Target::ALL.to_vec(), EXECS, SEED);
    opts.findings_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-findings");
    opts.timeout = Duration::from_secs(10);
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_firebell-fuzz"));
    let reports = campaign::run(&exe, &opts, &mut |l| println!("{l}")).unwrap();
    let known = known();
    let mut new = Vec::new();
    for r in &reports {
        assert_eq!(r.execs, EXECS);
        for (sig, (n, f)) in r.unique() {
            let is_known = known.iter().any(|k| {
                k.split_once(": ")
                    .is_some_and(|(head, sub)| sig.starts_with(head) && sig.contains(sub))
            });
            println!(
                "{} {n} x {sig} (exec {}, {} bytes)",
                if is_known { "known" } else { "NEW  " },
                f.index,
                f.input.len()
            );
            if !is_known {
                new.push(format!(
                    "{sig}\n  reason: {}\n  input ({} bytes): {:?}",
                    f.reason,
                    f.input.len(),
                    String::from_utf8_lossy(&f.input[..f.input.len().min(2000)])
                ));
            }
        }
    }
    assert!(new.is_empty(), "fuzz findings:\n{}", new.join("\n"));
}

/// The run is a function of (target, seed, index): the supervisor rebuilds
/// the input a child died on from its index.
#[test]
fn inputs_are_deterministic_and_bounded() {
    for t in Target::ALL {
        let seeds = firebell_fuzz::corpus::seeds(t);
        assert!(!seeds.is_empty(), "{}", t.name());
        for i in 0..200 {
            let a = campaign::input(t, &seeds, 7, i, 4096);
            assert_eq!(a, campaign::input(t, &seeds, 7, i, 4096));
            assert!(a.len() <= 4096.max(seeds.iter().map(Vec::len).max().unwrap_or(0)));
        }
    }
}
