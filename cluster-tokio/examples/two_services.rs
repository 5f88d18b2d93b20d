//! Mirrors the reference README's first example: two services join the same cluster and
//! discover each other.
//!
//! ```sh
//! cargo run -p cluster-tokio --example two_services
//! ```
//!
//! Both nodes run in this process on loopback (`127.0.0.1` joins the group) and a port of
//! their own, so the example neither disturbs nor sees other nodes; drop the `.interface`
//! and `.port` calls to join the real LAN cluster.

use std::net::Ipv4Addr;
use std::time::Duration;

use cluster_tokio::{Cluster, Event, Options};

fn options(tag: &str) -> Result<Options, cluster_tokio::JoinError> {
    Ok(Options::default()
        .interface(Ipv4Addr::LOCALHOST)
        .port(23_101)
        .tag(tag)?)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let first = Cluster::join(options("first")?).await?;
    let second = Cluster::join(options("second")?).await?;
    println!("joined {} and {}", first.sid(), second.sid());
    for (me, peer, mut events) in [
        (&first, &second, first.events()),
        (&second, &first, second.events()),
    ] {
        let found = tokio::time::timeout(Duration::from_secs(5), async {
            while let Some(event) = events.next().await {
                if let Event::Discovered(service) = event
                    && service.sid == peer.sid()
                {
                    return Some(service);
                }
            }
            None
        })
        .await?
        .ok_or("node stopped")?;
        println!(
            "{} discovered {} (tags {:?}, protocols {:?})",
            me.sid(),
            found.sid,
            found.tags,
            found.protocols
        );
    }
    first.leave().await?;
    second.leave().await?;
    Ok(())
}
