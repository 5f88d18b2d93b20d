//! Reads OpenMetrics text with a real parser: the Prometheus project's Python client
//! (`prometheus_client.openmetrics.parser`, installed by `.ci/run`), which refuses text that
//! breaks the format. Its families come back as JSON.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::Value;

const PARSER: &str = r#"
import json, sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
families = []
for family in text_string_to_metric_families(sys.stdin.read()):
    families.append({
        "name": family.name,
        "type": family.type,
        "unit": family.unit,
        "samples": [{"name": s.name, "labels": s.labels, "value": s.value} for s in family.samples],
    })
json.dump(families, sys.stdout)
"#;

/// The families of `text`, each `{"name", "type", "unit", "samples": [{"name", "labels",
/// "value"}]}`.
///
/// # Panics
///
/// The parser is missing (`pip install prometheus_client`) or refuses the text.
pub fn parse(text: &str) -> Vec<Value> {
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the scrape");
    let output = child.wait_with_output().expect("parser");
    assert!(
        output.status.success(),
        "the OpenMetrics parser refused the text (or is missing: pip install prometheus_client):\n{}\n--- text:\n{text}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice::<Vec<Value>>(&output.stdout).expect("the parser's JSON")
}

/// The family named `name` (without the `_total` of counters' samples).
pub fn family<'a>(families: &'a [Value], name: &str) -> &'a Value {
    families
        .iter()
        .find(|f| f["name"] == name)
        .unwrap_or_else(|| panic!("no family {name}"))
}

/// The value of `family`'s sample `sample` whose labels include `labels`.
pub fn sample(family: &Value, sample: &str, labels: &[(&str, &str)]) -> f64 {
    family["samples"]
        .as_array()
        .expect("samples")
        .iter()
        .find(|s| s["name"] == sample && labels.iter().all(|(k, v)| s["labels"][*k] == *v))
        .and_then(|s| s["value"].as_f64())
        .unwrap_or_else(|| panic!("no sample {sample} {labels:?} in {family}"))
}
