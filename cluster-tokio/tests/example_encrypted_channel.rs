//! Runs `examples/encrypted_channel.rs` on loopback: the key holder reads the text, the
//! service without the key gets ciphertext in `raw` and no `data`.

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/encrypted_channel.rs"]
mod example;

#[tokio::test]
async fn channel_5_is_readable_only_with_the_key() {
    let text = "the launch code is 0000";
    let outcome = example::run(23_171, text).await.expect("the scenario runs");
    assert_eq!(outcome.with_key.data_str(), Some(text));
    assert_eq!(outcome.with_key.raw, None);
    assert_eq!(outcome.without_key.data, None);
    let raw = outcome.without_key.raw.expect("ciphertext in raw");
    assert_eq!(raw.len(), 24 + text.len() + 16);
    assert!(!raw.windows(text.len()).any(|w| w == text.as_bytes()));
}
