//! firebell's fuzz harness, on stable Rust and with no new dependency.
//!
//! **Targets** ([`Target`]), one `fn(&[u8])` each: the config loader
//! (`firebell_engine::load_texts`), expressions (`Expr::parse`, analyses,
//! `eval` over a 16-bucket grid), label matchers (`Matcher::parse_list`,
//! each matcher's `Display` read back, matching), durations (`parse_duration`, `format_duration`, the decoder's
//! `duration`), annotation templates (`render_annotation` on a sample alert),
//! replay files (`ReplaySource::parse`, `to_text`, parse again), and `run`:
//! what `validate` then `run` do — `load_texts` on the input's files (split
//! at `#--- NAME` lines), `lint` when it loads, then two engine cycles of
//! the backtest `Simulator` over the demo replay data. Every target returns
//! a description of its outcome (the diagnostics, the error, the rendered
//! text), which regression inputs assert on.
//!
//! **Inputs** are seeds mutated by a deterministic engine ([`mutate`]): an
//! xorshift64* PRNG, byte flips and sets, deletes, in-place duplicates,
//! splices and crossovers with another seed, and token-aware mutations —
//! a per-target dictionary (YAML syntax and keys, expression operators and
//! functions, regex and template syntax, edge numbers), duplicated lines,
//! nesting deeper (`- - -`, `[[[`, `((`, `m + m + ...`, nested `{% if %}`),
//! digit runs replaced by huge numbers, short chunks repeated thousands of
//! times. Seeds ([`corpus`]) come from `examples/` (rules, SLOs, routing,
//! rule tests, the head of the demo replay), `cli/tests/fixtures`,
//! `tests/fixtures`, values found in them (expressions, durations,
//! matchers, templates) and a few hand-written inputs per target.
//! Exec `i` of a run is a pure function of (target, seed, `i`) —
//! [`campaign::input`] — so a run is reproducible and any input can be
//! rebuilt from its index.
//!
//! **Isolation.** Stack overflows, allocation failures and aborts cannot be
//! caught in-process, and those are exactly the crashes issue #10 is about.
//! So the supervisor ([`campaign::run`]) re-invokes the fuzz binary as a
//! child (`--batch TARGET SEED START END MAXLEN`) under `ulimit -v` (512 MiB
//! by default); the child runs the execs from `START` in-process with
//! `catch_unwind` (a panic is recorded and the loop goes on) and prints the
//! index before each exec. When the child dies (signal, abort, OOM) or
//! prints nothing for the per-exec timeout (a hang: it is killed), the
//! supervisor records the last started index as a finding, rebuilds its
//! input, and starts a new child after it. One child per batch keeps the
//! cost of isolation to one process per crash, not per exec. Inputs are
//! capped at [`campaign::MAX_INPUT`] (64 KiB).
//!
//! The 64 KiB cap keeps a batch fast; it still reaches the known deep-input
//! crashes (a debug build overflows its stack on ~8k nested `- ` or an
//! ~8k-term `m-m-...`). Inputs beyond the cap are regression files.
//!
//! **Findings** are saved under `fuzz/findings/<target>/<kind>-<hash>.input`
//! (the raw input) and `.txt` (the reason), deduplicated by signature (kind
//! and the panic location or the last stderr line). Each one becomes a
//! regression input in `fuzz/regressions/<target>/` (replayed by
//! `tests/regressions.rs`, must not crash) — or, for crashes other branches
//! of issue #10 are fixing, in `fuzz/known_crashes/<target>/`, which the
//! lead moves into `regressions/` once those fixes are merged.
//!
//! **Running.** The test suite runs a bounded campaign (`tests/bounded.rs`:
//! every target, seed 1, 2,000 execs each, about 5 s in debug; fails on any
//! finding whose signature is not listed in `known_crashes/signatures.txt`,
//! the crash classes other branches of issue #10 are fixing). A
//! long run:
//!
//! ```text
//! cargo run --release -p firebell-fuzz -- --target all --execs 1000000 --seed 7
//! ```
//!
//! prints execs run, execs/s and the findings per target. Options:
//! `--target NAME[,NAME]|all`, `--execs N` (per target), `--seed N`,
//! `--timeout-ms N` (per exec, default 5000), `--memory-mib N` (child
//! address-space limit, 0 for none, default 512), `--findings DIR`,
//! `--max-input BYTES`, `--seconds N` (time budget per target: stop early). `--exec TARGET FILE` runs one saved input in-process
//! (to reproduce a finding under a debugger). Exit status 1 when anything
//! was found.

pub mod campaign;
pub mod corpus;
pub mod mutate;
pub mod targets;

pub use campaign::{Finding, Kind, Options, Report, exec_catching, run};
pub use targets::Target;
