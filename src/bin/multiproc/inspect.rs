//! `multiproc inspect NAME`: one named object's state, by kind.
//!
//! The header view (kind, size, creator, attached processes) comes from the segment
//! catalog, read before this process attaches; the object's own state from the `inspect`
//! module of the crate that owns the kind. Nothing here takes a lock that could block.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Map, Value, json};
use shm_segment::catalog::{self, SegmentState};
use shm_segment::{ObjectKind, Segment, SegmentOptions};

use crate::{fail, human_size};

/// How long to wait for a segment that is still being initialised.
const INIT_TIMEOUT: Duration = Duration::from_secs(1);

pub(crate) fn run(name: &str, json: bool) -> ExitCode {
    let name = name.strip_prefix(shm_segment::NAME_PREFIX).unwrap_or(name);
    let Some(info) = catalog::describe_name(name) else {
        return fail(&format!("no multiproc segment named '{name}'"));
    };
    match info.state {
        SegmentState::Ready => {}
        SegmentState::NotASegment => {
            return fail(&format!("'{name}' is not a multiproc segment"));
        }
        other => return fail(&format!("cannot inspect '{name}': its state is {other:?}")),
    }
    let mut report = Map::new();
    report.insert("name".into(), json!(name));
    report.insert("kind".into(), json!(info.kind));
    report.insert("size".into(), json!(info.size));
    report.insert(
        "creator".into(),
        json!(
            info.creator
                .map(|c| json!({"pid": c.pid, "alive": info.creator_alive}))
        ),
    );
    report.insert(
        "attached".into(),
        info.attached
            .iter()
            .map(|p| json!({"pid": p.pid, "alive": p.is_alive()}))
            .collect(),
    );
    let seg = match SegmentOptions::any().init_timeout(INIT_TIMEOUT).open(name) {
        Ok(seg) => seg,
        Err(e) => return fail(&format!("cannot open '{name}': {e}")),
    };
    let mut ok = true;
    match describe(name, &seg) {
        Ok(Some(state)) => {
            report.insert("state".into(), state);
        }
        Ok(None) => {}
        Err(Problem::Busy(message)) => {
            report.insert("busy".into(), json!(true));
            report.insert("error".into(), json!(message));
        }
        Err(Problem::Failed(message)) => {
            report.insert("error".into(), json!(message));
            ok = false;
        }
    }
    let report = Value::Object(report);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("a JSON value serialises")
        );
    } else {
        print_text(&report);
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

enum Problem {
    /// The object is busy (its lock is held); try again.
    Busy(String),
    /// It could not be read.
    Failed(String),
}

/// The kind-specific state, `None` for a kind this command does not know.
fn describe(name: &str, seg: &Segment) -> Result<Option<Value>, Problem> {
    let failed = |e: &dyn std::fmt::Display| Problem::Failed(e.to_string());
    let value = match seg.kind() {
        ObjectKind::QUEUE
        | ObjectKind::SIMPLE_QUEUE
        | ObjectKind::JOINABLE_QUEUE
        | ObjectKind::SPSC_QUEUE => {
            to_value(shm_queue::inspect::describe(seg).map_err(|e| failed(&e))?)
        }
        ObjectKind::PIPE => {
            to_value(shm_queue::inspect::describe_pipe(seg).map_err(|e| failed(&e))?)
        }
        ObjectKind::LOCK
        | ObjectKind::RLOCK
        | ObjectKind::SEMAPHORE
        | ObjectKind::BOUNDED_SEMAPHORE
        | ObjectKind::EVENT
        | ObjectKind::CONDITION
        | ObjectKind::BARRIER
        | ObjectKind::VALUE
        | ObjectKind::ARRAY => to_value(shm_lock::inspect::describe(seg).map_err(|e| failed(&e))?),
        ObjectKind::MANAGER => {
            let manager = shm_manager::Manager::open(name).map_err(|e| failed(&e))?;
            match shm_manager::inspect::describe(&manager) {
                Ok(state) => to_value(state),
                Err(e @ shm_manager::inspect::InspectError::Busy { .. }) => {
                    return Err(Problem::Busy(e.to_string()));
                }
                Err(e) => return Err(failed(&e)),
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(value))
}

fn to_value(state: impl serde::Serialize) -> Value {
    serde_json::to_value(state).expect("inspect states serialise")
}

fn print_text(report: &Value) {
    let field = |key: &str| &report[key];
    println!("name:     {}", field("name").as_str().unwrap_or("-"));
    println!("kind:     {}", field("kind").as_str().unwrap_or("-"));
    println!(
        "size:     {}",
        human_size(field("size").as_u64().unwrap_or(0))
    );
    println!("creator:  {}", process(field("creator")));
    let attached: Vec<String> = field("attached")
        .as_array()
        .map(|a| a.iter().map(process).collect())
        .unwrap_or_default();
    println!(
        "attached: {}",
        if attached.is_empty() {
            "-".to_owned()
        } else {
            attached.join(", ")
        }
    );
    if let Some(Value::Object(state)) = report.get("state") {
        for (key, value) in state {
            match value {
                Value::Array(items) if items.iter().all(Value::is_object) => {
                    println!("{key}:");
                    for item in items {
                        println!("  - {}", flat(item));
                    }
                }
                _ => println!("{key}: {}", flat(value)),
            }
        }
    }
    if let Some(error) = report.get("error").and_then(Value::as_str) {
        println!("error: {error}");
    }
}

/// `pid` or `pid (dead)` for a `{"pid", "alive"}` object (`thread TID` for a lock
/// holder whose process is unknown); `-` for null.
fn process(value: &Value) -> String {
    let who = match (value["pid"].as_u64(), value["tid"].as_u64()) {
        (Some(pid), _) => pid.to_string(),
        (None, Some(tid)) => format!("thread {tid}"),
        (None, None) => return "-".to_owned(),
    };
    if value["alive"] == json!(false) {
        format!("{who} (dead)")
    } else {
        who
    }
}

/// A value on one line: holders as `pid (dead)`, objects as `key=value` pairs.
fn flat(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        Value::Object(map) if map.contains_key("alive") => process(value),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", flat(v)))
            .collect::<Vec<_>>()
            .join(" "),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(flat).collect::<Vec<_>>().join(", ")
        ),
        other => other.to_string(),
    }
}
