//! What the node commands print: JSON lines (`--json`), or readable lines, coloured when
//! stdout is a terminal (and `NO_COLOR` is unset).

use std::io::{self, IsTerminal, Write};

use cluster_core::{Sid, Stats};
use cluster_tokio::json::{self, JoinedInfo};
use cluster_tokio::{Event, KeyRing, QueryEvent, QuerySummary, ServiceInfo, TransportStats};
use serde_json::Value;

/// ANSI colours, the few we use.
#[derive(Debug, Clone, Copy)]
enum Colour {
    Green = 32,
    Red = 31,
    Yellow = 33,
    Cyan = 36,
    Magenta = 35,
    Dim = 2,
}

/// Where and how lines are printed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Printer {
    json: bool,
    colour: bool,
    /// A progress line may be drawn on stderr.
    progress: bool,
}

impl Printer {
    pub(crate) fn new(json: bool) -> Self {
        let colour = !json && io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        let progress = !json && io::stderr().is_terminal();
        Self {
            json,
            colour,
            progress,
        }
    }

    fn paint(self, colour: Colour, text: &str) -> String {
        if self.colour {
            format!("\x1b[{}m{text}\x1b[0m", colour as u8)
        } else {
            text.to_owned()
        }
    }

    /// One line on stdout, flushed (a reader of a pipe sees it at once).
    fn line(self, json: &Value, text: impl FnOnce() -> String) -> io::Result<()> {
        let mut out = io::stdout().lock();
        if self.json {
            writeln!(out, "{json}")?;
        } else {
            writeln!(out, "{}", text())?;
        }
        out.flush()
    }

    pub(crate) fn joined(self, info: &JoinedInfo) -> io::Result<()> {
        self.line(&json::joined_json(info), || {
            let tcp = info
                .tcp_port
                .map(|p| format!(" tcp {p}"))
                .unwrap_or_default();
            let unix = info
                .unix_path
                .as_ref()
                .map(|p| format!(" unix {p}"))
                .unwrap_or_default();
            format!(
                "{} {}@{} on {} via {}{tcp}{unix}",
                self.paint(Colour::Green, "joined"),
                info.sid,
                info.hid,
                info.group,
                info.interfaces.join(" "),
            )
        })
    }

    pub(crate) fn event(self, event: &Event) -> io::Result<()> {
        self.line(&json::event_json(event), || match event {
            Event::Discovered(s) => format!(
                "{} {}",
                self.paint(Colour::Green, "+ discovered"),
                service_text(s)
            ),
            Event::Lost { sid, reason } => format!(
                "{} {sid} ({})",
                self.paint(Colour::Red, "- lost"),
                reason.name()
            ),
            Event::TagsChanged { sid, tags } => format!(
                "{} {sid} [{}]",
                self.paint(Colour::Yellow, "~ tags"),
                tags.join(" ")
            ),
            Event::Message {
                sid,
                channel,
                payload,
                ..
            } => format!(
                "{} {sid} channel {channel}: {}",
                self.paint(Colour::Cyan, "> message"),
                payload.data_lossy()
            ),
            Event::QueryReceived {
                sid, ruid, payload, ..
            } => format!(
                "{} {sid} {}: {}",
                self.paint(Colour::Magenta, "? query"),
                ruid.as_deref().unwrap_or("-"),
                payload.data_lossy()
            ),
            Event::ProtocolRefreshed { protocol } => format!(
                "{} {protocol} listener reopened",
                self.paint(Colour::Yellow, "~ refreshed")
            ),
            Event::Dropped { count } => {
                format!("{} {count} events", self.paint(Colour::Red, "! dropped"))
            }
            Event::DataChanged { sid, version, data } => format!(
                "{} {sid} v{version}: {}",
                self.paint(Colour::Yellow, "~ data"),
                data.iter()
                    .map(|(k, v)| format!("{k}={}", String::from_utf8_lossy(v)))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            _ => format!("{event:?}"),
        })
    }

    pub(crate) fn query_event(self, event: &QueryEvent) -> io::Result<()> {
        self.clear_progress();
        self.line(&json::query_event_json(event), || match event {
            QueryEvent::Response { sid, payload } => format!(
                "{} {sid}: {}",
                self.paint(Colour::Green, "response"),
                payload.data_lossy()
            ),
            QueryEvent::Error { sid, error } => {
                format!("{} {sid}: {error}", self.paint(Colour::Red, "error"))
            }
            QueryEvent::Missing { sid } => {
                format!("{} {sid}", self.paint(Colour::Yellow, "missing"))
            }
            QueryEvent::Done(summary) => done_text(self, summary),
        })
    }

    /// The final line of a query, naming the targets that did not answer, with extra keys.
    pub(crate) fn done(
        self,
        summary: &QuerySummary,
        missing: &[Sid],
        extra: &[(&str, Value)],
    ) -> io::Result<()> {
        self.clear_progress();
        let mut value = json::query_done_json(summary, missing);
        if let Value::Object(map) = &mut value {
            for (key, v) in extra {
                map.insert((*key).to_owned(), v.clone());
            }
        }
        self.line(&value, || {
            let mut text = done_text(self, summary);
            if !missing.is_empty() {
                let sids: Vec<String> = missing.iter().map(ToString::to_string).collect();
                text.push_str(": ");
                text.push_str(&sids.join(" "));
            }
            text
        })
    }

    /// `answered / expected` on stderr, redrawn in place (terminals only).
    pub(crate) fn progress(self, answered: usize, expected: usize) {
        if self.progress {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K{answered} / {expected} answered");
            let _ = err.flush();
        }
    }

    fn clear_progress(self) {
        if self.progress {
            let mut err = io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
        }
    }

    /// A line for a service (`cluster services --json`).
    pub(crate) fn service(self, service: &ServiceInfo) -> io::Result<()> {
        self.line(&json::service_json("service", service), || {
            service_text(service)
        })
    }

    /// The table of `cluster services`.
    pub(crate) fn service_table(self, services: &[ServiceInfo]) -> io::Result<()> {
        if self.json {
            return services.iter().try_for_each(|s| self.service(s));
        }
        let mut out = io::stdout().lock();
        let header = format!(
            "{:<16} {:<17} {:<15} {:<12} {:<9} {:<10} {:<5} {:<9} {:<6} TAGS",
            "SID", "HID", "IP", "INTERFACE", "LEARNED", "SEGMENT", "LOCAL", "PROTOCOLS", "TCP"
        );
        writeln!(out, "{}", self.paint(Colour::Dim, &header))?;
        for s in services {
            writeln!(
                out,
                "{:<16} {:<17} {:<15} {:<12} {:<9} {:<10} {:<5} {:<9} {:<6} {}",
                s.sid.to_string(),
                s.hid.to_string(),
                s.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into()),
                s.heard_on
                    .as_ref()
                    .map_or_else(|| "-".into(), |h| h.interface.clone()),
                s.learned,
                s.segment.as_deref().unwrap_or("-"),
                if s.local { "yes" } else { "no" },
                s.protocols.letters().join(" "),
                s.tcp_port
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "-".into()),
                s.tags.join(" "),
            )?;
        }
        writeln!(out, "{} service(s)", services.len())?;
        out.flush()
    }

    /// Every counter (`cluster services --stats`): one `stats` line, or a table of the
    /// node's counters and one of the transports'.
    pub(crate) fn stats(self, node: &Stats, transport: &TransportStats) -> io::Result<()> {
        if self.json {
            return self.line(&json::stats_json(node, transport), String::new);
        }
        let mut out = io::stdout().lock();
        for (title, counters) in [
            ("NODE", json::node_counters(node)),
            ("TRANSPORT", json::transport_counters(transport)),
        ] {
            let header = format!("{:<28} {:>12}", format!("{title} COUNTER"), "VALUE");
            writeln!(out, "{}", self.paint(Colour::Dim, &header))?;
            for (name, value) in counters {
                writeln!(out, "{name:<28} {value:>12}")?;
            }
        }
        out.flush()
    }

    /// The key ring now in use (ids only), after SIGHUP made `cluster join` read its key
    /// file again.
    pub(crate) fn keys(self, keys: Option<&KeyRing>) -> io::Result<()> {
        self.line(&json::keys_json(keys), || match keys {
            Some(ring) => {
                let ids: Vec<String> = ring.ids().map(|id| id.to_string()).collect();
                format!(
                    "{} {} (sending with {})",
                    self.paint(Colour::Yellow, "~ keys"),
                    ids.join(" "),
                    ring.send_key().id()
                )
            }
            None => format!("{} off", self.paint(Colour::Yellow, "~ keys")),
        })
    }

    /// Something a running node was asked to do failed and nothing changed (`what` names
    /// it): an `error` line with `--json`, else a message on stderr ending with `outcome`.
    pub(crate) fn error(
        self,
        what: &str,
        error: &dyn std::fmt::Display,
        outcome: &str,
    ) -> io::Result<()> {
        if self.json {
            return self.line(&json::error_json(what, error), String::new);
        }
        let mut err = io::stderr().lock();
        writeln!(err, "cluster: {error}; {outcome}")?;
        err.flush()
    }

    /// Where the metrics are served (`cluster join --metrics`).
    pub(crate) fn metrics(self, address: std::net::SocketAddr) -> io::Result<()> {
        let line = serde_json::json!({ "event": "metrics", "address": address.to_string() });
        self.line(&line, || format!("metrics at http://{address}/metrics"))
    }

    /// One interface's verdict (`cluster doctor`): its JSON line, or its text line followed
    /// by one indented line per hint.
    pub(crate) fn doctor(self, value: &Value, text: String, hints: &[String]) -> io::Result<()> {
        self.line(value, || {
            let mut text = text;
            for hint in hints {
                text.push_str("\n  hint: ");
                text.push_str(hint);
            }
            text
        })
    }

    /// A line saying what a send did.
    pub(crate) fn sent(self, value: &Value, text: String) -> io::Result<()> {
        self.line(value, || text)
    }
}

fn service_text(s: &ServiceInfo) -> String {
    format!(
        "{}@{} {}{} [{}] protocols {}{}",
        s.sid,
        s.hid,
        s.ip.map(|ip| ip.to_string()).unwrap_or_else(|| "-".into()),
        s.heard_on
            .as_ref()
            .map(|h| format!(" on {} ({})", h.interface, h.address))
            .unwrap_or_default(),
        s.tags.join(" "),
        s.protocols.letters().join(" "),
        if s.local { " local" } else { "" }
    )
}

fn done_text(printer: Printer, summary: &QuerySummary) -> String {
    let colour = if summary.missing == 0 {
        Colour::Green
    } else {
        Colour::Yellow
    };
    format!(
        "{} {} answered, {} missing{}",
        printer.paint(colour, "done"),
        summary.answered,
        summary.missing,
        if summary.timed_out {
            " (timed out)"
        } else {
            ""
        }
    )
}
