//! Test support of the `cluster` workspace (not published).
//!
//! * The adapter test suite ([`suite`]), written once against the front half every host
//!   adapter shares (`cluster_host::Handle` and its kin) and run over every adapter and
//!   executor: an adapter's `tests/suite.rs` implements [`Runtime`] (run a body, spawn a
//!   driver, start a node) and calls [`adapter_suite!`], which makes one `#[test]` per test
//!   and runtime. `cluster-tokio` runs it over tokio; `cluster-smol` over smol and
//!   async-std.
//! * [`common`]: what the socket tests share (fresh ports, loopback options, bounded waits).
//! * [`netns`]: network namespaces, a bridge with TAP devices, and the processes the
//!   multi-host tests run in them.
//! * [`flooder`]: hostile traffic for the flood test (`cluster-tokio/tests/flood.rs`) and
//!   the flood benchmark (`benches/benches/flood.rs`).
//!
//! ```ignore
//! // cluster-tokio/tests/suite.rs
//! #[derive(Clone, Copy)]
//! struct Tokio;
//! impl cluster_testkit::Runtime for Tokio { /* block_on, tokio::spawn, Cluster::start */ }
//! cluster_testkit::adapter_suite!(tokio => crate::Tokio);
//! ```

pub mod common;
pub mod flooder;
pub mod netns;
pub mod suite;

pub use common::Runtime;

/// Defines the whole adapter suite as `#[test]`s, one per test and runtime:
/// `adapter_suite!(name => crate::Value, ...)`, where each value is a unit value (a
/// `crate::`-rooted path) whose type implements [`Runtime`]. The tests are named
/// `<module>::<test>::<name>`, for example `loopback::tag_edits_reach_the_other_nodes::smol`.
#[macro_export]
macro_rules! adapter_suite {
    ($($rt:ident => $runtime:path),+ $(,)?) => {
        $crate::adapter_suite!(@modules [$($rt => $runtime),+]
            loopback {
                two_nodes_discover_each_other_and_a_leave_is_seen_at_once,
                the_third_node_queries_the_other_two_which_answer,
                a_refused_query_yields_an_error_event_then_done,
                an_event_on_a_channel_reaches_its_subscriber_directly_and_by_broadcast,
                queued_sends_arrive_in_order_and_a_refused_one_is_an_event_and_a_counter,
                a_crashed_node_is_dropped_after_its_ttl,
                dropping_the_last_handle_leaves_cleanly,
                tag_edits_reach_the_other_nodes,
                two_local_nodes_talk_over_unix_sockets,
                a_send_to_a_dead_tcp_listener_falls_back_to_multicast_with_a_failed_report,
                a_failed_report_about_our_tcp_reopens_the_listener,
            }
            data {
                published_data_reaches_the_other_nodes_services_and_updates_replace_it,
                data_filters_select_the_services_whose_data_matches,
            }
            held {
                a_held_query_is_answered_later_from_another_task,
                a_dropped_responder_answers_with_an_error_and_is_counted,
                queries_go_back_to_the_policy_once_the_stream_is_dropped,
            }
            typed {
                a_typed_query_round_trips_through_a_typed_answer_policy,
                a_bad_typed_answer_is_an_error_and_the_other_answers_still_arrive,
                a_held_typed_query_is_answered_later,
                typed_events_carry_only_their_type,
            }
            limits {
                connections_over_the_limit_are_refused_and_counted_while_real_peers_keep_working,
                a_connection_declaring_a_huge_frame_is_resynced_and_counted_without_buffering_it,
                a_subscriber_that_falls_behind_is_told_and_counted,
                keys_rotate_through_the_handles_while_queries_keep_being_answered,
            }
        );
    };
    (@modules $rts:tt $($module:ident { $($test:ident,)* })*) => {
        $(
            mod $module {
                $(
                    mod $test {
                        $crate::adapter_suite!(@test $module $test $rts);
                    }
                )*
            }
        )*
    };
    (@test $module:ident $test:ident [$($rt:ident => $runtime:path),+]) => {
        $(
            #[test]
            fn $rt() {
                $crate::Runtime::run($runtime, $crate::suite::$module::$test($runtime));
            }
        )+
    };
}
