//! Mirrors the reference README's "Hello, World!" example: three services; the first answers
//! queries with "Hello,", the second with "World!", and the third queries both and prints
//! the answers joined.
//!
//! ```sh
//! cargo run -p cluster-tokio --example hello_world
//! ```
//!
//! The answers are hooks: [`Answer`] is a ready-made [`Policy`](cluster_core::Policy) that
//! replies the same text to every query (write your own `Policy::answer_query` for anything
//! smarter). Everything runs on loopback on a port of its own.

use std::net::Ipv4Addr;
use std::time::Duration;

use cluster_tokio::{Answer, Cluster, Event, Options, QuerySpec, Selector};

fn options(tag: &str) -> Result<Options, cluster_tokio::JoinError> {
    Ok(Options::default()
        .interface(Ipv4Addr::LOCALHOST)
        .port(23_102)
        .tag(tag)?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let hello = Cluster::join_with(options("hello")?, Answer::new("Hello,")).await?;
    let world = Cluster::join_with(options("world")?, Answer::new("World!")).await?;
    let asker = Cluster::join(options("asker")?).await?;

    // Wait until the asker knows both.
    let mut events = asker.events();
    let mut known = 0;
    tokio::time::timeout(Duration::from_secs(5), async {
        while known < 2 {
            match events.next().await {
                Some(Event::Discovered(_)) => known += 1,
                Some(_) => {}
                None => break,
            }
        }
    })
    .await?;

    // One query to both (resolved by tag); answers arrive as they come.
    let mut answers = Vec::new();
    for tag in ["hello", "world"] {
        let outcome = asker
            .query(QuerySpec::new(Selector::resolve([tag]), "greeting?"))
            .await?
            .collect()
            .await;
        for (_, payload) in outcome.responses {
            answers.push(payload.data_lossy());
        }
    }
    println!("{}", answers.join(" "));

    for node in [hello, world, asker] {
        node.leave().await?;
    }
    Ok(())
}
