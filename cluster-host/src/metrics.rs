//! [`NodeMetrics`]: a node's counters as OpenMetrics, through the Prometheus project's
//! `prometheus-client`, in the application's own [`Registry`] or in one of their own
//! (`cluster join --metrics ADDR` serves the latter at `GET /metrics`).
//!
//! The node's state lives in its driver task, so the metrics are a snapshot: each
//! [`refresh`](NodeMetrics::refresh) asks the node (over its [`Handle`]) for its counters,
//! services and interfaces, and scrapes encode the last snapshot. Refresh right before a
//! scrape (as the CLI does), or periodically. The query latency histogram is fed by the
//! engine itself as answers arrive: pass [`NodeMetrics::query_latency`] in
//! [`Options::query_latency`](crate::Options::query_latency) before joining.
//!
//! | metric | type | labels |
//! | --- | --- | --- |
//! | `cluster_node_<counter>_total` | counter | — (every field of [`cluster_core::Stats`]) |
//! | `cluster_transport_<counter>_total` | counter | — (every field of [`TransportStats`] but `connections_open`) |
//! | `cluster_transport_connections_open` | gauge | — |
//! | `cluster_services` | gauge | `location` = `local`, `remote` |
//! | `cluster_frames_sent_total`, `cluster_frames_received_total` | counter | `transport` = `multicast` (IPv4), `multicast_v6`, `stream` (`t` and `u`) |
//! | `cluster_interfaces` | gauge | `interface` (one sample per interface in use, value 1) |
//! | `cluster_query_latency_seconds` | histogram | — (from a query's start to each answer or refusal) |

use std::sync::{Arc, Mutex, PoisonError};

use cluster_core::Stats;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::error::CommandError;
use crate::handle::Handle;
use crate::json::{node_counters, transport_counters};
use crate::transports::TransportStats;

/// The query latency histogram the engine feeds (buckets from 1 ms to about 8 s, doubling).
#[derive(Debug, Clone)]
pub struct QueryLatency(Histogram);

impl Default for QueryLatency {
    fn default() -> Self {
        Self(Histogram::new(exponential_buckets(0.001, 2.0, 14)))
    }
}

impl QueryLatency {
    /// Records one answer `millis` after its query started.
    pub fn observe_ms(&self, millis: u64) {
        // Milliseconds to seconds: exact for any latency below 2^53 ms.
        #[allow(clippy::cast_precision_loss)]
        self.0.observe(millis as f64 / 1000.0);
    }
}

/// What a scrape shows: the last snapshot of the node.
#[derive(Debug, Clone, Default)]
struct Snapshot {
    node: Stats,
    transport: TransportStats,
    local: u64,
    remote: u64,
    interfaces: Vec<String>,
}

/// A node's metrics (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct NodeMetrics {
    snapshot: Arc<Mutex<Snapshot>>,
    latency: QueryLatency,
}

impl NodeMetrics {
    /// Empty metrics (all zero until the first [`refresh`](Self::refresh)).
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// The histogram to pass in [`Options::query_latency`](crate::Options::query_latency).
    #[must_use]
    pub fn query_latency(&self) -> QueryLatency {
        self.latency.clone()
    }

    /// Registers every metric in `registry` (names start with `cluster_`; register in the
    /// root registry, or a sub-registry adds its own prefix in front).
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(SnapshotCollector(Arc::clone(&self.snapshot))));
        registry.register_with_unit(
            "cluster_query_latency",
            "Time from a query's start to each answer or refusal",
            Unit::Seconds,
            self.latency.0.clone(),
        );
    }

    /// A registry holding only these metrics.
    #[must_use]
    pub fn registry(&self) -> Registry {
        let mut registry = Registry::default();
        self.register(&mut registry);
        registry
    }

    /// Takes a new snapshot from the node.
    ///
    /// # Errors
    ///
    /// The node stopped ([`CommandError::Closed`]).
    pub async fn refresh(&self, handle: &Handle) -> Result<(), CommandError> {
        let (node, transport) = handle.stats().await?;
        let services = handle.services().await?;
        let interfaces = handle.info().await?.interfaces;
        let local = services.iter().filter(|s| s.local).count();
        let snapshot = Snapshot {
            node,
            transport,
            local: u64::try_from(local).unwrap_or(u64::MAX),
            remote: u64::try_from(services.len() - local).unwrap_or(u64::MAX),
            interfaces,
        };
        *self.snapshot.lock().unwrap_or_else(PoisonError::into_inner) = snapshot;
        Ok(())
    }

    /// The OpenMetrics text of these metrics alone (ends with `# EOF`).
    #[must_use]
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a `String` cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry());
        text
    }
}

/// Encodes the last snapshot on each scrape.
#[derive(Debug)]
struct SnapshotCollector(Arc<Mutex<Snapshot>>);

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let s = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (name, value) in node_counters(&s.node) {
            let name = format!("cluster_node_{name}");
            counter(&mut encoder, &name, &format!("Node counter {name}"), value)?;
        }
        for (name, value) in transport_counters(&s.transport) {
            let full = format!("cluster_transport_{name}");
            if name == "connections_open" {
                gauge(&mut encoder, &full, "Stream connections open", value)?;
            } else {
                counter(
                    &mut encoder,
                    &full,
                    &format!("Transport counter {name}"),
                    value,
                )?;
            }
        }
        let t = &s.transport;
        let v4_received = t.datagrams_received.saturating_sub(t.datagrams_received_v6);
        labelled(
            &mut encoder,
            ("cluster_frames_sent", "Frames sent, by transport"),
            MetricType::Counter,
            "transport",
            &[
                ("multicast", t.datagrams_sent),
                ("multicast_v6", t.datagrams_sent_v6),
                ("stream", t.writes_ok),
            ],
        )?;
        labelled(
            &mut encoder,
            ("cluster_frames_received", "Frames received, by transport"),
            MetricType::Counter,
            "transport",
            &[
                ("multicast", v4_received),
                ("multicast_v6", t.datagrams_received_v6),
                ("stream", t.stream_frames_received),
            ],
        )?;
        labelled(
            &mut encoder,
            (
                "cluster_services",
                "Known services, on this host or elsewhere",
            ),
            MetricType::Gauge,
            "location",
            &[("local", s.local), ("remote", s.remote)],
        )?;
        let interfaces: Vec<(&str, u64)> = s.interfaces.iter().map(|i| (i.as_str(), 1)).collect();
        labelled(
            &mut encoder,
            (
                "cluster_interfaces",
                "Interfaces the multicast group is joined on",
            ),
            MetricType::Gauge,
            "interface",
            &interfaces,
        )
    }
}

fn counter(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(
    encoder: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let metric = ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

/// One family with one label: a sample per `(label value, value)`.
fn labelled(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help): (&str, &str),
    kind: MetricType,
    label: &str,
    samples: &[(&str, u64)],
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(name, help, None, kind)?;
    for &(value_label, value) in samples {
        let labels = [(label, value_label)];
        let sample = family.encode_family(&labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(value).encode(sample)?,
            _ => ConstGauge::new(i64::try_from(value).unwrap_or(i64::MAX)).encode(sample)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_snapshot_encodes_every_family_with_its_prefix_and_the_eof() {
        let metrics = NodeMetrics::new();
        {
            let mut s = metrics.snapshot.lock().unwrap();
            s.transport.datagrams_sent = 7;
            s.transport.datagrams_sent_v6 = 5;
            s.local = 2;
            s.interfaces = vec!["eth0".into()];
        }
        metrics.query_latency().observe_ms(30);
        let text = metrics.encode();
        for needle in [
            "# TYPE cluster_node_frames_accepted counter",
            "cluster_transport_datagrams_sent_total 7",
            "cluster_frames_sent_total{transport=\"multicast_v6\"} 5",
            "cluster_services{location=\"local\"} 2",
            "cluster_interfaces{interface=\"eth0\"} 1",
            "# UNIT cluster_query_latency_seconds seconds",
            "cluster_query_latency_seconds_count 1",
        ] {
            assert!(text.contains(needle), "{needle} missing from:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
