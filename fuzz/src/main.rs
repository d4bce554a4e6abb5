//! `firebell-fuzz`: see the crate docs of `firebell_fuzz`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use firebell_fuzz::{Options, Target, campaign};

fn usage() -> ExitCode {
    eprintln!(
        "usage: firebell-fuzz [--target NAME[,NAME]|all] [--execs N] [--seed N] [--timeout-ms N]\n\
         \x20                    [--memory-mib N] [--findings DIR] [--max-input BYTES] [--seconds N]\n\
         \x20      firebell-fuzz --exec TARGET FILE\n\
         targets: config, expr, matcher, duration, template, replay"
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--batch") => batch(&args[1..]),
        Some("--exec") => exec(&args[1..]),
        _ => campaign_main(&args),
    }
}

fn batch(args: &[String]) -> ExitCode {
    let [target, seed, start, end, max_len] = args else {
        return usage();
    };
    let (Some(target), Ok(seed), Ok(start), Ok(end), Ok(max_len)) = (
        Target::from_name(target),
        seed.parse(),
        start.parse(),
        end.parse(),
        max_len.parse(),
    ) else {
        return usage();
    };
    match campaign::child(target, seed, start, end, max_len) {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(3),
    }
}

fn exec(args: &[String]) -> ExitCode {
    let [target, file] = args else { return usage() };
    let Some(target) = Target::from_name(target) else {
        return usage();
    };
    let data = match std::fs::read(file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{file}: {e}");
            return ExitCode::from(2);
        }
    };
    let outcome = target.exec(&data);
    println!("{outcome}");
    ExitCode::SUCCESS
}

fn campaign_main(args: &[String]) -> ExitCode {
    let mut opts = Options::new(Target::ALL.to_vec(), 10_000, 1);
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let Some(v) = it.next() else { return usage() };
        let num = v.parse::<u64>();
        match (flag.as_str(), num) {
            ("--target", _) if v == "all" => opts.targets = Target::ALL.to_vec(),
            ("--target", _) => {
                let mut ts = Vec::new();
                for name in v.split(',') {
                    let Some(t) = Target::from_name(name) else {
                        eprintln!("unknown target `{name}`");
                        return usage();
                    };
                    ts.push(t);
                }
                opts.targets = ts;
            }
            ("--findings", _) => opts.findings_dir = PathBuf::from(v),
            ("--execs", Ok(n)) => opts.execs = n,
            ("--seed", Ok(n)) => opts.seed = n,
            ("--seconds", Ok(n)) => opts.time_budget = Some(Duration::from_secs(n)),
            ("--timeout-ms", Ok(n)) => opts.timeout = Duration::from_millis(n),
            ("--memory-mib", Ok(n)) => opts.memory_kib = n.saturating_mul(1024),
            ("--max-input", Ok(n)) => opts.max_input = usize::try_from(n).unwrap_or(usize::MAX),
            _ => return usage(),
        }
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("cannot locate the fuzz binary: {e}");
            return ExitCode::from(2);
        }
    };
    let reports = match campaign::run(&exe, &opts, &mut |line| println!("{line}")) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("fuzz: {e}");
            return ExitCode::from(2);
        }
    };
    let mut total = 0;
    println!(
        "\nseed {}, findings saved under {}",
        opts.seed,
        opts.findings_dir.display()
    );
    for r in &reports {
        println!(
            "{:<9} {:>9} execs {:>8.0} execs/s  {} finding(s)",
            r.target.name(),
            r.execs,
            r.execs_per_sec(),
            r.findings.len()
        );
        for (sig, (n, f)) in r.unique() {
            let at = f
                .saved
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            println!(
                "    {n:>5} x {sig}\n            e.g. exec {} ({} bytes) {at}",
                f.index,
                f.input.len()
            );
        }
        total += r.findings.len();
    }
    if total > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
