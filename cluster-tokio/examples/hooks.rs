//! Mirrors the reference README's hooks example: a node answers queries from a `Policy`
//! (here: the current value of a counter) and refuses events on channel 5 from services
//! without the tag `trusted`.
//!
//! ```sh
//! cargo run -p cluster-tokio --example hooks
//! ```

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::time::Duration;

use cluster_core::wire::Message;
use cluster_core::{Policy, Refusal, Reply, Service, Verdict};
use cluster_tokio::{Cluster, Event, Options, QuerySpec, Selector, SendSpec};

/// The hooks: `answer_query` and `on_event`, called synchronously by the node.
#[derive(Debug, Default)]
struct Counter {
    answered: u32,
}

impl Policy for Counter {
    fn answer_query(
        &mut self,
        _from: &Service,
        query: &Message<'_>,
        reply: &mut Reply<'_>,
    ) -> Result<(), Refusal> {
        let text = query.data.and_then(|d| d.to_str().ok()).unwrap_or_default();
        if text != "count?" {
            return Err(Refusal::new("unknown question"));
        }
        self.answered += 1;
        write!(reply, "{}", self.answered).map_err(|_| Refusal::new("reply too large"))
    }

    fn on_event(&mut self, from: &Service, msg: &Message<'_>) -> Verdict {
        let trusted = from.tags().iter().any(|t| t == "trusted");
        if msg.channel == Some(5) && !trusted {
            Verdict::Reject
        } else {
            Verdict::Accept
        }
    }
}

fn options() -> Options {
    Options::default()
        .interface(Ipv4Addr::LOCALHOST)
        .port(23_103)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server =
        Cluster::join_with(options().channel(5)?.tag("counter")?, Counter::default()).await?;
    let client = Cluster::join(options().tag("trusted")?).await?;
    let mut client_events = client.events();
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = client_events.next().await {
            if matches!(event, Event::Discovered(ref s) if s.sid == server.sid()) {
                break;
            }
        }
    })
    .await?;

    for question in ["count?", "count?", "colour?"] {
        let outcome = client
            .query(QuerySpec::new(Selector::resolve(["counter"]), question))
            .await?
            .collect()
            .await;
        for (_, payload) in &outcome.responses {
            println!("{question} -> {}", payload.data_lossy());
        }
        for (_, error) in &outcome.errors {
            println!("{question} -> refused: {error}");
        }
    }

    let mut server_events = server.events();
    client
        .send(SendSpec::new(Selector::resolve(["counter"]), "from a trusted client").channel(5))
        .await?;
    tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = server_events.next().await {
            if let Event::Message { payload, .. } = event {
                println!("server accepted an event: {}", payload.data_lossy());
                break;
            }
        }
    })
    .await?;

    client.leave().await?;
    server.leave().await?;
    Ok(())
}
