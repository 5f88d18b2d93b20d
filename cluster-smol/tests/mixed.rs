//! One cluster, three runtimes: a `cluster-tokio` node (its driver on a tokio runtime), a
//! node driven by smol's executor and a node driven by async-std's, on one loopback port.
//! They discover each other and answer each other's queries. The test body itself runs under
//! `futures_lite::future::block_on`: every handle works from any executor.

mod common;

use std::future::Future;

use cluster_core::{LostReason, Sid};
use cluster_smol::{Answer, QuerySpec, Selector};
use common::{PATIENCE, Rt, Runtime, discovered_all, fresh_port, lost, options, within};
use futures_lite::future::block_on;

/// The tokio node's events, until each of `who` was discovered.
async fn tokio_discovered_all(events: &mut cluster_tokio::Events, who: &[Sid]) {
    let mut missing = who.to_vec();
    within("the tokio node's discoveries", async {
        while !missing.is_empty() {
            match events.next().await {
                Some(cluster_tokio::Event::Discovered(s)) => missing.retain(|m| *m != s.sid),
                Some(_) => {}
                None => panic!("the tokio node stopped"),
            }
        }
    })
    .await;
}

/// The answers of a query to every other node, by sid.
async fn answers<F>(query: F) -> Vec<(Sid, String)>
where
    F: Future<Output = Vec<(Sid, String)>>,
{
    let mut answers = within("the answers", query).await;
    answers.sort_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
    answers
}

#[test]
fn tokio_smol_and_async_std_nodes_discover_and_answer_each_other() {
    let port = fresh_port();
    let tokio_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    // Same options on both sides: cluster-smol and cluster-tokio share cluster-host's.
    let tokio_node = tokio_rt
        .block_on(cluster_tokio::Cluster::join_with(
            options(port),
            Answer::new("from tokio"),
        ))
        .expect("tokio join");
    let mut tokio_events = tokio_node.events();

    block_on(async {
        let smol_node = Rt::Smol
            .join_with(options(port), Answer::new("from smol"))
            .await;
        let std_node = Rt::AsyncStd
            .join_with(options(port), Answer::new("from async-std"))
            .await;
        let mut smol_events = smol_node.events();
        let mut std_events = std_node.events();
        let (t, s, a) = (tokio_node.sid(), smol_node.sid(), std_node.sid());

        tokio_discovered_all(&mut tokio_events, &[s, a]).await;
        discovered_all(&mut smol_events, &[t, a]).await;
        discovered_all(&mut std_events, &[t, s]).await;

        let expected = |pairs: &[(Sid, &str)]| {
            let mut v: Vec<(Sid, String)> =
                pairs.iter().map(|(s, t)| (*s, (*t).to_owned())).collect();
            v.sort_by(|x, y| x.0.as_bytes().cmp(y.0.as_bytes()));
            v
        };
        // The tokio node asks the other two.
        let from_tokio = answers(async {
            let outcome = tokio_node
                .query(QuerySpec::new(Selector::all(), "who?"))
                .await
                .expect("tokio query")
                .collect()
                .await;
            assert_eq!(outcome.summary.missing, 0);
            outcome
                .responses
                .into_iter()
                .map(|(sid, p)| (sid, p.data_lossy()))
                .collect()
        })
        .await;
        assert_eq!(
            from_tokio,
            expected(&[(s, "from smol"), (a, "from async-std")])
        );
        // The smol node and the async-std node ask theirs.
        for (asker, others) in [
            (&smol_node, [(t, "from tokio"), (a, "from async-std")]),
            (&std_node, [(t, "from tokio"), (s, "from smol")]),
        ] {
            let got = answers(async {
                let outcome = asker
                    .query(QuerySpec::new(Selector::all(), "who?"))
                    .await
                    .expect("query")
                    .collect()
                    .await;
                assert_eq!(outcome.summary.missing, 0);
                outcome
                    .responses
                    .into_iter()
                    .map(|(sid, p)| (sid, p.data_lossy()))
                    .collect()
            })
            .await;
            assert_eq!(got, expected(&others));
        }

        // The tokio node leaves: the others see its disconnect at once.
        tokio_node.leave().await.expect("tokio leave");
        assert_eq!(lost(&mut smol_events, t).await, LostReason::Disconnected);
        assert_eq!(lost(&mut std_events, t).await, LostReason::Disconnected);
        smol_node.leave().await.expect("smol leave");
        assert_eq!(lost(&mut std_events, s).await, LostReason::Disconnected);
        std_node.leave().await.expect("async-std leave");
    });
    tokio_rt.shutdown_timeout(PATIENCE);
}
