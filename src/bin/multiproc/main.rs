//! `multiproc`: list, inspect and clean up multiproc's shared-memory segments.
//!
//! ```text
//! multiproc bench [--quick] [--json]      the side-by-side comparison with the references
//! multiproc ls [--json]                   named segments: kind, size, creator, state, attached
//! multiproc inspect NAME [--json]         one object's state by kind (depth, holder, ...)
//! multiproc rm NAME...                    remove named segments
//! multiproc gc [--dry-run] [--prefix P]   remove the segments nobody holds any more
//! ```

mod bench;
mod inspect;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use shm_segment::catalog::{self, SegmentInfo, SegmentState};
use shm_segment::{Segment, UnlinkError};

#[derive(Parser)]
#[command(
    name = "multiproc",
    version,
    about = "Shared-memory multiprocessing: inspect and clean up segments"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure multiproc against the hardware floor and the references, side by side.
    Bench {
        /// At most about a minute (default: the full run, a few minutes).
        #[arg(long)]
        quick: bool,
        /// Print one JSON object instead of the table.
        #[arg(long)]
        json: bool,
        /// Multiplies every iteration count (for smoke tests of the harness itself).
        #[arg(long, hide = true)]
        scale: Option<f64>,
    },
    /// List the named multiproc segments in /dev/shm.
    Ls {
        /// Print one JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show one named object's state by kind: a queue's depth and waiters, a lock's holder,
    /// a manager's containers, ...
    Inspect {
        /// The segment name, as `ls` shows it.
        name: String,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Remove named segments (processes that have them open keep using them).
    Rm {
        /// Segment names, as `ls` shows them (without the `multiproc.` prefix).
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Remove the named segments whose creator and every attached process are dead.
    Gc {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Print a JSON report instead of text.
        #[arg(long)]
        json: bool,
        /// Only consider segments whose names start with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
}

fn main() -> ExitCode {
    // The benchmark's peer processes are this program started again.
    multiproc::init();
    match Cli::parse().command {
        Command::Bench { quick, json, scale } => bench::run(quick, json, scale),
        Command::Ls { json } => ls(json),
        Command::Inspect { name, json } => inspect::run(&name, json),
        Command::Rm { names } => rm(&names),
        Command::Gc {
            dry_run,
            json,
            prefix,
        } => gc(dry_run, json, &prefix),
    }
}

fn ls(json: bool) -> ExitCode {
    let infos = match catalog::list() {
        Ok(infos) => infos,
        Err(e) => return fail(&format!("cannot read /dev/shm: {e}")),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&infos).expect("segment info serialises")
        );
        return ExitCode::SUCCESS;
    }
    if infos.is_empty() {
        println!("no multiproc segments in /dev/shm");
        return ExitCode::SUCCESS;
    }
    let rows: Vec<[String; 6]> = infos.iter().map(row).collect();
    let header = ["NAME", "KIND", "SIZE", "CREATOR", "STATE", "ATTACHED"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    for r in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = r
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
    ExitCode::SUCCESS
}

fn row(info: &SegmentInfo) -> [String; 6] {
    let state = match info.state {
        SegmentState::Ready | SegmentState::Initialising | SegmentState::Failed if info.stale => {
            "stale"
        }
        SegmentState::Ready => "alive",
        SegmentState::Initialising => "initialising",
        SegmentState::Failed => "failed",
        SegmentState::NoHeader if info.stale => "stale (no header)",
        SegmentState::NoHeader => "being created",
        SegmentState::NotASegment => "not a multiproc segment",
        SegmentState::OtherVersion => "other version",
        SegmentState::Unreadable => "unreadable",
    };
    let creator = match info.creator {
        Some(c) => format!(
            "{}{}",
            c.pid,
            if info.creator_alive { "" } else { " (dead)" }
        ),
        None => "-".into(),
    };
    let attached = if info.attached.is_empty() {
        "-".to_owned()
    } else {
        info.attached
            .iter()
            .map(|p| p.pid.to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    [
        info.name.clone(),
        info.kind.clone().unwrap_or_else(|| "-".into()),
        human_size(info.size),
        creator,
        state.to_owned(),
        attached + if info.attach_overflow { " (+more)" } else { "" },
    ]
}

pub(crate) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn rm(names: &[String]) -> ExitCode {
    let mut failed = false;
    for name in names {
        let name = name.strip_prefix(shm_segment::NAME_PREFIX).unwrap_or(name);
        match Segment::unlink(name) {
            Ok(()) => println!("removed {name}"),
            Err(e @ UnlinkError::NotFound { .. }) => {
                eprintln!("multiproc: {e}");
                failed = true;
            }
            Err(e) => {
                eprintln!("multiproc: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn gc(dry_run: bool, json: bool, prefix: &str) -> ExitCode {
    let report = match catalog::gc_matching(prefix, dry_run) {
        Ok(report) => report,
        Err(e) => return fail(&format!("cannot read /dev/shm: {e}")),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("gc report serialises")
        );
        return ExitCode::SUCCESS;
    }
    let verb = if dry_run { "would remove" } else { "removed" };
    for name in &report.removed {
        println!("{verb} {name}");
    }
    for (name, why) in &report.kept {
        println!("kept {name}: {why}");
    }
    println!(
        "{} {verb}, {} kept",
        report.removed.len(),
        report.kept.len()
    );
    ExitCode::SUCCESS
}

pub(crate) fn fail(message: &str) -> ExitCode {
    eprintln!("multiproc: {message}");
    ExitCode::FAILURE
}
