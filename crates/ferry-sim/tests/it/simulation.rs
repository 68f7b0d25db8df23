//! The deterministic simulation on fixed seeds, and a replay of any seed from the environment
//! (`cargo xtask sim --seed 0x… --steps N`).

use ferry_sim::sim::{SimOptions, simulate};

/// Seeds CI runs every time; a seed that ever failed joins them with its fix.
const SEEDS: [u64; 6] =
    [0x5EED, 0xF00D, 0xBEEF, 0x1234_5678, 0x6FD1_544D_A2CD_F2F4, 0x6197_DD00_5911_F890];
const STEPS: usize = 150;

/// Each seed runs twice: a run is a function of its seed, so the two must do and hold the same.
/// The clock is paused: a retry's wait takes no real time.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn simulation_keeps_the_promises_on_fixed_seeds() {
    run_fixed_seeds(false).await;
}

/// The fixed seeds again, with devices going live and offline during the run.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn simulation_with_live_devices_keeps_the_promises_on_fixed_seeds() {
    run_fixed_seeds(true).await;
}

async fn run_fixed_seeds(live: bool) {
    for seed in SEEDS {
        let options = SimOptions { seed, steps: STEPS, check_every: 50, live };
        let first = match simulate(options).await {
            Ok(report) => report,
            Err(failure) => panic!("seed {seed:#x}: {failure}"),
        };
        eprintln!("seed {seed:#x}: {first:?}");
        assert!(first.refreshes > 0, "seed {seed:#x} renewed no session: {first:?}");
        if live {
            assert!(first.live_syncs > 0, "seed {seed:#x} had no live sync: {first:?}");
        }
        let second =
            simulate(options).await.unwrap_or_else(|f| panic!("seed {seed:#x}, again: {f}"));
        assert_eq!(
            format!("{first:?}"),
            format!("{second:?}"),
            "seed {seed:#x} ran otherwise the second time: {}",
            ferry_sim::sim::replay_line(&options)
        );
    }
}

/// Runs the seed and steps of `FERRY_SIM_SEED` and `FERRY_SIM_STEPS`; asked to replay nothing
/// (no seed), it fails rather than pass having checked nothing. `cargo xtask sim` runs it.
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn simulation_replay() {
    let seed = std::env::var("FERRY_SIM_SEED")
        .expect("FERRY_SIM_SEED names the seed to replay: cargo xtask sim --seed 0x… --steps N");
    let seed = u64::from_str_radix(seed.trim_start_matches("0x"), 16).expect("a hex seed");
    let steps = std::env::var("FERRY_SIM_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(STEPS);
    let live = std::env::var("FERRY_SIM_LIVE").is_ok_and(|v| v == "1");
    let report = simulate(SimOptions { seed, steps, check_every: 50, live }).await;
    match report {
        Ok(report) => eprintln!("seed {seed:#x}: {report:?}"),
        Err(failure) => panic!("seed {seed:#x}: {failure}"),
    }
}

/// Each planted bug must make the simulation fail within the fixed seeds
/// (`cargo nextest run -p ferry-sim --features planted-bugs planted`).
#[cfg(feature = "planted-bugs")]
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_planted_bug_is_caught() {
    let bugs = [
        "skip-removals",
        "keep-dirty-after-upload",
        "checkpoint-without-data",
        "upload-twice",
        "skip-read-rule",
        "skip-tombstones",
    ];
    let mut missed = Vec::new();
    for bug in bugs {
        ferry_model::planted::plant(Some(bug));
        let mut caught = None;
        for seed in SEEDS {
            if let Err(failure) =
                simulate(SimOptions { seed, steps: STEPS, check_every: 50, live: false }).await
            {
                caught = Some((seed, failure.lines().next().unwrap_or_default().to_owned()));
                break;
            }
        }
        match caught {
            Some((seed, reason)) => eprintln!("{bug}: caught by seed {seed:#x}: {reason}"),
            None => missed.push(bug),
        }
    }
    ferry_model::planted::plant(None);
    assert!(missed.is_empty(), "planted bugs the simulation missed: {missed:?}");
}

/// New seeds each run, for `FERRY_SIM_BATCH_SECONDS` (60 unless set): each seed is printed
/// first, so a failure replays with `cargo xtask sim --seed …`. `cargo xtask ci` runs it; the
/// suite's default filter leaves it out of other runs.
#[tokio::test(flavor = "current_thread", start_paused = true)]
#[allow(
    clippy::disallowed_methods,
    reason = "the batch's budget is real time, while the simulation's clock is paused"
)]
async fn simulation_random_batch() {
    let seconds: u64 =
        std::env::var("FERRY_SIM_BATCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    let mut runs = 0;
    while std::time::Instant::now() < deadline {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("randomness for the seed");
        let seed = u64::from_le_bytes(bytes);
        eprintln!(
            "seed {seed:#x}: starting (replay: cargo xtask sim --seed {seed:#x} --steps {STEPS})"
        );
        if let Err(failure) =
            simulate(SimOptions { seed, steps: STEPS, check_every: 50, live: false }).await
        {
            panic!("seed {seed:#x}: {failure}");
        }
        runs += 1;
    }
    eprintln!("{runs} random seeds kept the promises");
}
