//! The adapter test suite (`cluster_testkit::suite`, shared with every host adapter) on
//! tokio: each test's body runs on a current-thread runtime and its drivers are tokio tasks.

use cluster_core::Policy;
use cluster_testkit::Runtime;
use cluster_tokio::{Cluster, Driver, Handle, JoinError, Options};

/// A current-thread tokio runtime per test, as `#[tokio::test]` builds.
#[derive(Debug, Clone, Copy)]
struct Tokio;

impl Runtime for Tokio {
    fn run<F: Future>(self, body: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime")
            .block_on(body)
    }

    fn spawn(self, task: impl Future<Output = ()> + Send + 'static) {
        tokio::spawn(task);
    }

    async fn start<P: Policy + Send + 'static>(
        self,
        options: Options,
        policy: P,
    ) -> Result<(Handle, Driver), JoinError> {
        Cluster::start(options, policy).await
    }
}

cluster_testkit::adapter_suite!(tokio => crate::Tokio);
