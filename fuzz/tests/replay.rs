//! Replays every file of `corpus/<target>/` and, when present, `artifacts/<target>/` through
//! the target's body: the corpora are a regression suite on stable Rust, without cargo-fuzz.
//!
//! A missing or empty corpus folder is a failure: the replay must never pass by testing
//! nothing.

use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn replay(name: &str) {
    let (_, target) = cluster_fuzz::TARGETS
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("a known target");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = root.join("corpus").join(name);
    assert!(
        corpus.is_dir(),
        "corpus folder {} is missing",
        corpus.display()
    );
    let mut inputs = files(&corpus);
    assert!(
        !inputs.is_empty(),
        "corpus folder {} is empty",
        corpus.display()
    );
    let seeds = inputs.len();
    let artifacts = root.join("artifacts").join(name);
    if artifacts.is_dir() {
        inputs.extend(files(&artifacts));
    }
    let mut failed = Vec::new();
    for path in &inputs {
        let data = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if catch_unwind(AssertUnwindSafe(|| target(&data))).is_err() {
            let shown = if data.len() <= 512 {
                hex(&data)
            } else {
                format!("{}... ({} bytes)", hex(&data[..512]), data.len())
            };
            failed.push(format!("{}: {shown}", path.display()));
        }
    }
    println!(
        "{name}: replayed {} corpus files and {} artifacts",
        seeds,
        inputs.len() - seeds
    );
    assert!(
        failed.is_empty(),
        "{} of {} inputs of `{name}` failed (see the panics above):\n{}",
        failed.len(),
        inputs.len(),
        failed.join("\n")
    );
}

#[test]
fn decode_corpus_replays() {
    replay("decode");
}

#[test]
fn stream_corpus_replays() {
    replay("stream");
}

#[test]
fn tcl_list_corpus_replays() {
    replay("tcl_list");
}

#[test]
fn node_corpus_replays() {
    replay("node");
}

#[test]
fn sealed_corpus_replays() {
    replay("sealed");
}
