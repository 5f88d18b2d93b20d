//! The adapter test suite (`cluster_testkit::suite`, shared with every host adapter) under
//! smol and under async-std: each test's body is blocked on, and its drivers spawned on, the
//! same executor.

mod common;

cluster_testkit::adapter_suite!(smol => crate::common::SMOL, async_std => crate::common::ASYNC_STD);
