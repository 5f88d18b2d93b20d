//! Per-node data through the handles, over real sockets on loopback: what one node publishes
//! shows in the others' `services()` and as `DataChanged` events, an update replaces it as a
//! whole, and `data:KEY=VALUE` filters (and `data:` members in resolver expressions) select by it.

use crate::common::{Runtime, discovered_all, fresh_port, options, wait_for, within};
use cluster_host::node_data::DataMap;
use cluster_host::prelude::{Answer, Event, Handle, QuerySpec, Selector};

fn map(pairs: &[(&str, &[u8])]) -> DataMap {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
        .collect()
}

/// Waits until `watcher`'s `services()` show `of` at `version`.
async fn data_seen(watcher: &Handle, of: &Handle, version: u16) -> DataMap {
    let mut events = watcher.events();
    loop {
        let services = watcher.services().await.unwrap();
        if let Some(s) = services
            .iter()
            .find(|s| s.sid == of.sid() && s.data_version >= version)
        {
            return s.data.clone();
        }
        wait_for(&mut events, |e| match e {
            Event::DataChanged { sid, .. } if *sid == of.sid() => Some(()),
            _ => None,
        })
        .await;
    }
}

pub async fn published_data_reaches_the_other_nodes_services_and_updates_replace_it(
    rt: impl Runtime,
) {
    let port = fresh_port();
    let publisher = rt.join(options(port)).await;
    let watcher = rt.join(options(port)).await;
    discovered_all(&mut watcher.events(), &[publisher.sid()]).await;
    let blob: &[u8] = &[0, 0xff, 7];
    let version = publisher
        .set_data([("region", b"eu".to_vec()), ("blob", blob.to_vec())])
        .await
        .unwrap();
    assert_eq!(version, 1);
    let seen = within("the data", data_seen(&watcher, &publisher, 1)).await;
    assert_eq!(seen, map(&[("region", b"eu"), ("blob", blob)]));
    // 4 KiB of data in all.
    let big = "x".repeat(4096);
    let version = publisher.set_data([("big", big.clone())]).await.unwrap();
    assert_eq!(version, 2);
    let seen = within("the update", data_seen(&watcher, &publisher, 2)).await;
    assert_eq!(seen, map(&[("big", big.as_bytes())]), "replaced as a whole");
    publisher.leave().await.unwrap();
    watcher.leave().await.unwrap();
}

pub async fn data_filters_select_the_services_whose_data_matches(rt: impl Runtime) {
    let port = fresh_port();
    let eu = rt.join_with(options(port), Answer::new("eu here")).await;
    let us = rt.join_with(options(port), Answer::new("us here")).await;
    let bare = rt.join(options(port)).await;
    let client = rt.join(options(port)).await;
    discovered_all(&mut client.events(), &[eu.sid(), us.sid(), bare.sid()]).await;
    eu.set_data([("region", "eu")]).await.unwrap();
    us.set_data([("region", "us")]).await.unwrap();
    within("the data", data_seen(&client, &eu, 1)).await;
    within("the data", data_seen(&client, &us, 1)).await;
    let resolve = |filters: &[&str]| Selector::resolve(filters.iter().copied());
    let eu_only = client.resolve(resolve(&["data:region=eu"])).await.unwrap();
    assert_eq!(eu_only, [eu.sid()]);
    let both = client.resolve(resolve(&["data:region"])).await.unwrap();
    assert_eq!(both.len(), 2);
    assert!(both.contains(&eu.sid()) && both.contains(&us.sid()));
    assert!(
        client
            .resolve(resolve(&["data:region=mars"]))
            .await
            .unwrap()
            .is_empty()
    );
    // The resolver form: each pair is the members `data:KEY` and `data:KEY=VALUE`.
    let resolver = |args: &[&str]| Selector {
        resolver: Some(args.iter().map(|a| (*a).to_owned()).collect()),
        services: Vec::new(),
    };
    let eu_by_glob = client
        .resolve(resolver(&["-match", "data:region=e*"]))
        .await
        .unwrap();
    assert_eq!(eu_by_glob, [eu.sid()]);
    let without_region = client
        .resolve(resolver(&["-not", "data:region"]))
        .await
        .unwrap();
    assert!(without_region.contains(&bare.sid()));
    assert!(!without_region.contains(&eu.sid()) && !without_region.contains(&us.sid()));
    let either = client
        .resolve(resolver(&["-some", "data:region=us data:region=eu"]))
        .await
        .unwrap();
    assert_eq!(either.len(), 2);
    // Who answers "who?" asked of `to`: (sid, answer) pairs.
    let answers = |to: Selector| {
        let client = &client;
        async move {
            let outcome = within(
                "the answer",
                client
                    .query(QuerySpec::new(to, "who?"))
                    .await
                    .unwrap()
                    .collect(),
            )
            .await;
            outcome
                .responses
                .iter()
                .map(|(sid, answer)| (*sid, answer.data_lossy()))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        answers(resolver(&["-match", "data:region=u?"])).await,
        [(us.sid(), "us here".to_owned())]
    );
    assert_eq!(
        answers(resolve(&["data:region=eu"])).await,
        [(eu.sid(), "eu here".to_owned())]
    );
    assert!(
        client
            .query(QuerySpec::new(resolve(&["data:region=mars"]), "who?"))
            .await
            .is_err()
    );
    for node in [eu, us, bare, client] {
        node.leave().await.unwrap();
    }
}
