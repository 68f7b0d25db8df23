//! `ferry bench`: Ferry's work timed beside the raw cost of the same work, in the same run.
//! Each measurement is the best of several rounds, since machines are shared and noisy.

#![allow(clippy::disallowed_methods, reason = "benchmarks measure real elapsed time")]

mod browser;
mod device;
mod files;
mod floor;
mod live;
mod load;
mod server;
mod writers;

use std::hint::black_box;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ferry_constraint::{Context, NoGraph};
use ferry_model::arbitrary::Arbitrary;
use ferry_model::{Decimal, Object, ObjectId, Timestamp, Value, samples};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Size {
    /// The sizes the targets are stated for.
    Full,
    /// Small sizes, to check that the benchmarks run.
    Quick,
}

/// Rounds per measurement; the best is reported.
const ROUNDS: usize = 5;

/// The three-clause constraint of the evaluation benchmark.
const EVAL_CONSTRAINT: &str = "[Status = 'Open' and Priority >= 3 and Amount < 500]";

/// A constraint of about 200 characters for the parse-and-check benchmark.
const PARSE_CONSTRAINT: &str = "[(Status = 'Open' or Status = 'InProgress') and Priority >= 3 and Amount < 500.00  and DueDate >= '[%BeginOfCurrentDay%]' and Field.WorkOrder_Site/Field.Site/Field.Site_City/Field.City/Name != empty ]";

/// The benchmarks, by the name `--only` selects them with.
pub(crate) const SCENARIOS: [&str; 11] = [
    "evaluate",
    "parse",
    "upload",
    "writers",
    "download",
    "incremental",
    "device",
    "files",
    "load",
    "live",
    "browser",
];

/// The scenarios that measure a process's memory: each runs in a process of its own, which
/// holds nothing from the scenarios before.
const OWN_PROCESS: [&str; 5] = ["device", "files", "load", "live", "browser"];

/// `ferry bench [--quick] [--only NAME]`.
pub(crate) fn command(args: crate::cli::BenchArgs) -> ExitCode {
    let size = if args.quick { Size::Quick } else { Size::Full };
    let only = args.only.as_deref();
    if only.is_none() {
        let code = run(size, &|name| !OWN_PROCESS.contains(&name));
        if code != ExitCode::SUCCESS {
            return code;
        }
        for name in OWN_PROCESS {
            let code = own_process(name, size);
            if code != ExitCode::SUCCESS {
                return code;
            }
        }
        return ExitCode::SUCCESS;
    }
    run(size, &|name| only == Some(name))
}

/// Runs `ferry bench --only NAME` as a child process.
fn own_process(name: &str, size: Size) -> ExitCode {
    let mut child = std::process::Command::new(match std::env::current_exe() {
        Ok(exe) => exe,
        Err(error) => {
            eprintln!("error: find the ferry binary: {error}");
            return ExitCode::from(crate::EXIT_IO);
        }
    });
    child.args(["bench", "--only", name]);
    if size == Size::Quick {
        child.arg("--quick");
    }
    match child.status() {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("error: the {name} benchmarks ended with {status}");
            ExitCode::from(crate::EXIT_IO)
        }
        Err(error) => {
            eprintln!("error: start the {name} benchmarks: {error}");
            ExitCode::from(crate::EXIT_IO)
        }
    }
}

fn run(size: Size, selected: &dyn Fn(&str) -> bool) -> ExitCode {
    let objects = if size == Size::Full { 1_000_000 } else { 20_000 };
    let parses = if size == Size::Full { 20_000 } else { 1_000 };
    println!("benchmark                               ferry        raw cost     ratio   target");
    if selected("evaluate") {
        evaluation(objects);
    }
    if selected("parse") {
        parse_and_check(parses);
    }
    if let Err(error) = server::run(size, selected) {
        eprintln!("error: server benchmarks: {error:#}");
        return ExitCode::from(crate::EXIT_IO);
    }
    ExitCode::SUCCESS
}

fn best_of<T>(mut work: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut result = None;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let value = black_box(work());
        best = best.min(start.elapsed());
        result = Some(value);
    }
    (best, result.expect("at least one round"))
}

/// In-memory evaluation of a three-clause constraint over many WorkOrder objects, against
/// hand-written Rust doing the same three comparisons on the same objects.
fn evaluation(count: usize) {
    let model = samples::field_service();
    let entity = model.entity("Field.WorkOrder").expect("sample entity");
    let now = Timestamp::parse("2026-11-23T10:00:00Z").expect("valid time");
    let mut arbitrary = Arbitrary::new(7, now);
    let objects: Vec<Object> = (0..count)
        .map(|n| arbitrary.object(entity, ObjectId::from_u128(n as u128), &mut |_| Vec::new()))
        .collect();
    let constraint =
        ferry_constraint::check(&model, "Field.WorkOrder", EVAL_CONSTRAINT).expect("valid");
    let bound = constraint.bind(&Context {
        user: None,
        roles: Vec::new(),
        now,
        parameters: Default::default(),
    });
    let (ferry, ferry_matches) =
        best_of(|| objects.iter().filter(|o| bound.matches(o, &NoGraph)).count());

    let slot = |name: &str| entity.attribute(name).expect("sample attribute").0;
    let (status, priority, amount) = (slot("Status"), slot("Priority"), slot("Amount"));
    let limit = Decimal::new(50_000, 2).expect("500.00 fits");
    let (raw, raw_matches) = best_of(|| {
        objects
            .iter()
            .filter(|o| {
                matches!(&o.values[status], Value::Enumeration(s) if s == "Open")
                    && matches!(o.values[priority], Value::Integer(p) if p >= 3)
                    && matches!(o.values[amount], Value::Decimal(a) if a < limit)
            })
            .count()
    });
    assert_eq!(
        ferry_matches, raw_matches,
        "the benchmark's two sides must select the same objects"
    );
    let rate = count as f64 / ferry.as_secs_f64() / 1e6;
    println!(
        "evaluate 3 clauses x {count:>9} objects  {:>9.1} ms  {:>9.1} ms  {:>6.2}x  >= 5M objects/s: {rate:.1}M/s",
        ms(ferry),
        ms(raw),
        ferry.as_secs_f64() / raw.as_secs_f64(),
    );
}

/// Parsing and checking a 200-character constraint against the model.
fn parse_and_check(count: usize) {
    let model = samples::field_service();
    let (elapsed, _) = best_of(|| {
        (0..count)
            .map(|_| {
                ferry_constraint::check(&model, "Field.WorkOrder", black_box(PARSE_CONSTRAINT))
                    .is_ok()
            })
            .filter(|ok| *ok)
            .count()
    });
    // The raw cost: reading every byte of the text once, the least any parser must do.
    let (raw, _) = best_of(|| {
        (0..count)
            .map(|_| black_box(PARSE_CONSTRAINT).bytes().map(u64::from).sum::<u64>())
            .sum::<u64>()
    });
    let each = elapsed.as_secs_f64() * 1e6 / count as f64;
    println!(
        "parse+check {}-char constraint        {:>9.2} us  {:>9.3} us  {:>6.0}x  <= 20 us",
        PARSE_CONSTRAINT.len(),
        each,
        raw.as_secs_f64() * 1e6 / count as f64,
        elapsed.as_secs_f64() / raw.as_secs_f64(),
    );
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}
