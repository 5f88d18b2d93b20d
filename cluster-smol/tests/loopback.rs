//! The driver with no executor at all (the suite itself, `tests/suite.rs`, runs under smol
//! and async-std).

mod common;

use cluster_smol::{Answer, Cluster, QuerySpec, Selector};
use common::{Rt, Runtime, discovered, fresh_port, options, within};

/// No executor at all: the driver is awaited by `futures_lite::future::block_on` on a
/// thread of its own, and it ends once the node left.
#[test]
fn the_driver_runs_under_plain_block_on_and_ends_after_the_leave() {
    let rt = Rt::BlockOn;
    rt.run(async {
        let port = fresh_port();
        let a = rt.join_with(options(port), Answer::new("plain")).await;
        let (b, driver) = Cluster::start(options(port), Answer::default())
            .await
            .unwrap();
        let (ended, ended_rx) = async_channel::bounded::<()>(1);
        std::thread::spawn(move || {
            futures_lite::future::block_on(driver);
            let _ = ended.try_send(());
        });
        let mut events = b.events();
        discovered(&mut events, a.sid()).await;
        let outcome = within(
            "the answer",
            b.query(QuerySpec::new(Selector::service(a.sid()), "?"))
                .await
                .unwrap()
                .collect(),
        )
        .await;
        assert_eq!(outcome.responses[0].1.data_lossy(), "plain");
        b.leave().await.unwrap();
        within("the driver's end", ended_rx.recv()).await.unwrap();
        a.leave().await.unwrap();
    });
}
