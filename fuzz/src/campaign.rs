//! Running a campaign: a supervisor that re-invokes the fuzz binary as a
//! child per batch, and the child loop that executes inputs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::corpus;
use crate::mutate::{Rng, mutate};
use crate::targets::Target;

/// Inputs never grow past this many bytes (see the crate docs).
pub const MAX_INPUT: usize = 64 * 1024;

/// The parameters of a campaign.
#[derive(Debug, Clone)]
pub struct Options {
    pub targets: Vec<Target>,
    pub execs: u64,
    pub seed: u64,
    /// Longest one exec may take before it counts as a hang.
    pub timeout: Duration,
    /// Address-space limit of the child, in KiB (`ulimit -v`); 0 for none.
    pub memory_kib: u64,
    /// Where findings are saved (`<dir>/<target>/<kind>-<hash>.input` and `.txt`).
    pub findings_dir: PathBuf,
    /// Largest input the mutator produces.
    pub max_input: usize,
    /// Stop a target after this long even if `execs` are not all run.
    pub time_budget: Option<Duration>,
}

/// Execs per child when nothing crashes (a time budget is checked between batches).
const BATCH: u64 = 20_000;

impl Options {
    pub fn new(targets: Vec<Target>, execs: u64, seed: u64) -> Options {
        Options {
            targets,
            execs,
            seed,
            timeout: Duration::from_secs(5),
            memory_kib: 512 * 1024,
            findings_dir: corpus::repo_root().join("fuzz/findings"),
            max_input: MAX_INPUT,
            time_budget: None,
        }
    }
}

/// What went wrong on one input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A Rust panic, caught in the child.
    Panic,
    /// The child died: abort, stack overflow, out of memory, a signal.
    Crash,
    /// One exec ran past the timeout; the child was killed.
    Hang,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Panic => "panic",
            Kind::Crash => "crash",
            Kind::Hang => "hang",
        }
    }
}

/// One finding.
#[derive(Debug, Clone)]
pub struct Finding {
    pub target: Target,
    pub kind: Kind,
    /// The exec index: the input is `input(target, seed, index)`.
    pub index: u64,
    /// The panic message and location, or the tail of the child's stderr.
    pub reason: String,
    pub input: Vec<u8>,
    /// Saved as (if the findings directory could be written).
    pub saved: Option<PathBuf>,
}

impl Finding {
    /// What makes two findings the same bug: kind and the first line of the reason
    /// (for panics the message and its source location).
    pub fn signature(&self) -> String {
        let first = self
            .reason
            .lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        let first = first.trim();
        // A dead child's line carries a thread id or a byte count that varies
        // with the input: those digits do not tell bugs apart.
        let first = if self.kind == Kind::Panic {
            first.to_string()
        } else {
            let mut out = String::new();
            let mut prev_digit = false;
            for c in first.chars() {
                if c.is_ascii_digit() {
                    if !prev_digit {
                        out.push('N');
                    }
                    prev_digit = true;
                } else {
                    out.push(c);
                    prev_digit = false;
                }
            }
            out
        };
        format!("{} {}: {}", self.target.name(), self.kind.name(), first)
    }
}

/// The result of one target's run.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: Target,
    pub execs: u64,
    pub elapsed: Duration,
    pub findings: Vec<Finding>,
    /// How many children were started (one per batch, plus one per crash or hang).
    pub children: u64,
}

impl Report {
    pub fn execs_per_sec(&self) -> f64 {
        self.execs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Findings deduplicated by signature, with their counts.
    pub fn unique(&self) -> BTreeMap<String, (usize, &Finding)> {
        let mut m: BTreeMap<String, (usize, &Finding)> = BTreeMap::new();
        for f in &self.findings {
            m.entry(f.signature()).or_insert((0, f)).0 += 1;
        }
        m
    }
}

/// The input of exec `index`: a pure function of target, seed and index, so a
/// supervisor can rebuild the input a child died on from its index alone.
pub fn input(target: Target, seeds: &[Vec<u8>], seed: u64, index: u64, max_len: usize) -> Vec<u8> {
    let mut rng = Rng::new(
        seed ^ (target as u64).wrapping_mul(0x100_0000_01b3)
            ^ index.wrapping_mul(0x9e37_79b9_7f4a_7c15),
    );
    let base = rng.pick(seeds);
    // A few execs per hundred run a seed unchanged.
    if rng.chance(50) {
        return base.clone();
    }
    let other = rng.pick(seeds);
    mutate(target, &mut rng, base, other, max_len)
}

// ------------------------------------------------------------------ child

static LAST_PANIC: Mutex<Option<String>> = Mutex::new(None);

fn quiet_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let msg = if let Some(s) = info.payload().downcast_ref::<&str>() {
            (*s).to_string()
        } else if let Some(s) = info.payload().downcast_ref::<String>() {
            s.clone()
        } else {
            "panic".to_string()
        };
        let at = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        if let Ok(mut p) = LAST_PANIC.lock() {
            *p = Some(format!("{msg}{at}"));
        }
    }));
}

/// The child: executes inputs `start..end` of `target`, printing `s <i>`
/// before each (so the supervisor knows which one killed it), `p <i> <msg>`
/// for each caught panic, and `done` at the end.
pub fn child(
    target: Target,
    seed: u64,
    start: u64,
    end: u64,
    max_len: usize,
) -> std::io::Result<()> {
    quiet_panic_hook();
    let seeds = corpus::seeds(target);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for i in start..end {
        let data = input(target, &seeds, seed, i, max_len);
        writeln!(out, "s {i}")?;
        out.flush()?;
        if std::panic::catch_unwind(|| drop(target.exec(&data))).is_err() {
            let msg = LAST_PANIC
                .lock()
                .ok()
                .and_then(|mut p| p.take())
                .unwrap_or_else(|| "panic".to_string());
            writeln!(out, "p {i} {}", msg.replace('\n', "\\n"))?;
        }
    }
    writeln!(out, "done")?;
    out.flush()
}

/// Runs one input in-process, returning the panic message if it panicked
/// (for regression tests replaying saved inputs).
pub fn exec_catching(target: Target, data: &[u8]) -> Result<String, String> {
    std::panic::catch_unwind(|| target.exec(data)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".to_string())
    })
}

// ------------------------------------------------------------- supervisor

enum Event {
    Line(String),
    Eof,
}

/// Runs a campaign: every target in turn, each in children of `exe` (this
/// crate's binary) under the memory limit. `progress` is called with a line
/// for every finding and once per target.
pub fn run(
    exe: &Path,
    opts: &Options,
    progress: &mut dyn FnMut(&str),
) -> std::io::Result<Vec<Report>> {
    let mut reports = Vec::new();
    for &target in &opts.targets {
        let r = run_target(exe, opts, target, progress)?;
        progress(&format!(
            "{}: {} execs in {:.1}s ({:.0} execs/s), {} finding(s), {} unique",
            target.name(),
            r.execs,
            r.elapsed.as_secs_f64(),
            r.execs_per_sec(),
            r.findings.len(),
            r.unique().len()
        ));
        reports.push(r);
    }
    Ok(reports)
}

fn run_target(
    exe: &Path,
    opts: &Options,
    target: Target,
    progress: &mut dyn FnMut(&str),
) -> std::io::Result<Report> {
    let started = Instant::now();
    let seeds = corpus::seeds(target);
    let mut findings = Vec::new();
    let mut next = 0u64;
    let mut children = 0u64;
    while next < opts.execs && opts.time_budget.is_none_or(|b| started.elapsed() < b) {
        children += 1;
        let end = opts.execs.min(next.saturating_add(BATCH));
        let mut cmd = if opts.memory_kib > 0 {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!(
                    "ulimit -v {} && exec \"$0\" \"$@\"",
                    opts.memory_kib
                ))
                .arg(exe);
            c
        } else {
            Command::new(exe)
        };
        cmd.args([
            "--batch",
            target.name(),
            &opts.seed.to_string(),
            &next.to_string(),
            &end.to_string(),
            &opts.max_input.to_string(),
        ])
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn()?;
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take();
        let reader = std::thread::spawn(move || {
            if let Some(s) = stdout {
                for line in BufReader::new(s).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(Event::Line(line)).is_err() {
                        return;
                    }
                }
            }
            let _ = tx.send(Event::Eof);
        });
        let mut stderr = child.stderr.take();
        let err_reader = std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(s) = stderr.as_mut() {
                let _ = s.take(1 << 20).read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        });
        let mut current: Option<u64> = None;
        let mut done = false;
        let mut hung = false;
        loop {
            match rx.recv_timeout(opts.timeout) {
                Ok(Event::Line(l)) => {
                    if let Some(i) = l.strip_prefix("s ").and_then(|s| s.parse().ok()) {
                        current = Some(i);
                    } else if let Some(rest) = l.strip_prefix("p ") {
                        let (i, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                        let i: u64 = i.parse().unwrap_or(0);
                        let f = finding(
                            opts,
                            target,
                            &seeds,
                            Kind::Panic,
                            i,
                            msg.replace("\\n", "\n"),
                        );
                        report_new(&findings, &f, progress);
                        findings.push(f);
                    } else if l == "done" {
                        done = true;
                    }
                }
                Ok(Event::Eof) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    hung = true;
                    let _ = child.kill();
                    break;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        let status = child.wait()?;
        let _ = reader.join();
        let err = err_reader.join().unwrap_or_default();
        if done && status.success() {
            next = end;
            continue;
        }
        let Some(i) = current else {
            return Err(std::io::Error::other(format!(
                "fuzz child for {} failed before its first exec ({status}): {err}",
                target.name()
            )));
        };
        let (kind, reason) = if hung {
            (Kind::Hang, format!("no progress within {:?}", opts.timeout))
        } else {
            (
                Kind::Crash,
                format!("{}\n(child exited: {status})", crash_reason(&err)),
            )
        };
        let f = finding(opts, target, &seeds, kind, i, reason);
        report_new(&findings, &f, progress);
        findings.push(f);
        next = i + 1;
    }
    Ok(Report {
        target,
        execs: next,
        elapsed: started.elapsed(),
        findings,
        children,
    })
}

/// Prints a finding the first time its signature shows up.
fn report_new(seen: &[Finding], f: &Finding, progress: &mut dyn FnMut(&str)) {
    let sig = f.signature();
    if !seen.iter().any(|s| s.signature() == sig) {
        progress(&format!("  new: {sig} (exec {})", f.index));
    }
}

/// The telling line of a dead child's stderr: the allocation failure, stack
/// overflow or runtime error, else its last lines.
fn crash_reason(stderr: &str) -> String {
    const TELLING: [&str; 4] = [
        "memory allocation of",
        "has overflowed its stack",
        "fatal runtime error",
        "panicked at",
    ];
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    if let Some(l) = lines.iter().find(|l| TELLING.iter().any(|t| l.contains(t))) {
        // "memory allocation of N bytes failed": N varies with the input.
        if l.starts_with("memory allocation of") {
            return format!("memory allocation failed ({l})");
        }
        return (*l).to_string();
    }
    lines[lines.len().saturating_sub(3)..].join("\n")
}

fn finding(
    opts: &Options,
    target: Target,
    seeds: &[Vec<u8>],
    kind: Kind,
    index: u64,
    reason: String,
) -> Finding {
    let data = input(target, seeds, opts.seed, index, opts.max_input);
    let mut f = Finding {
        target,
        kind,
        index,
        reason,
        input: data,
        saved: None,
    };
    f.saved = save(&opts.findings_dir, &f).ok();
    f
}

fn save(dir: &Path, f: &Finding) -> std::io::Result<PathBuf> {
    let dir = dir.join(f.target.name());
    std::fs::create_dir_all(&dir)?;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in &f.input {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let base = dir.join(format!("{}-{h:016x}", f.kind.name()));
    let input = base.with_extension("input");
    std::fs::write(&input, &f.input)?;
    std::fs::write(
        base.with_extension("txt"),
        format!(
            "target: {}\nkind: {}\nexec: {}\nlength: {} bytes\nreason:\n{}\n",
            f.target.name(),
            f.kind.name(),
            f.index,
            f.input.len(),
            f.reason
        ),
    )?;
    Ok(input)
}
