//! Mirrors the reference README's "encrypt channel 5 with hooks" scenario: two services that
//! share a key encrypt the events they send on channel 5 into the `raw` field from their send
//! hook and decrypt them in their receive hook. A third service on channel 5 without the key
//! receives the same broadcast and sees only ciphertext.
//!
//! This is per-channel payload encryption built on the hook trait ([`Policy`]), as the
//! reference offers it. To seal every frame of a cluster (headers included, with replay
//! protection), use a key ring instead: `cluster join --key-file FILE`, or `Options::keys`.
//!
//! ```sh
//! cargo run -p cluster-tokio --example encrypted_channel
//! ```

use std::net::Ipv4Addr;
use std::time::Duration;

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{Tag, XChaCha20Poly1305, XNonce};
use cluster_core::wire::{Message, MessageKind};
use cluster_core::{Outgoing, PayloadMut, Policy, Source, Verdict};
use cluster_tokio::{Cluster, Event, Handle, Options, Payload, Selector, SendSpec};

/// The channel whose events travel encrypted.
const SECRET_CHANNEL: u64 = 5;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The hooks: `on_send` encrypts, `on_receive` decrypts, both on channel 5 only.
struct EncryptedChannel {
    cipher: XChaCha20Poly1305,
}

impl std::fmt::Debug for EncryptedChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EncryptedChannel")
    }
}

impl EncryptedChannel {
    fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(key.into()),
        }
    }

    /// `raw` = nonce | ciphertext | tag.
    fn seal(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = XNonce::default();
        getrandom::fill(&mut nonce).ok()?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plain.len() + TAG_LEN);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plain);
        let tag = self
            .cipher
            .encrypt_inout_detached(&nonce, &[], (&mut sealed[NONCE_LEN..]).into())
            .ok()?;
        sealed.extend_from_slice(&tag);
        Some(sealed)
    }

    fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        let (nonce, rest) = sealed.split_at_checked(NONCE_LEN)?;
        let (ciphertext, tag) = rest.split_at_checked(rest.len().checked_sub(TAG_LEN)?)?;
        let nonce = XNonce::try_from(nonce).ok()?;
        let mut plain = ciphertext.to_vec();
        self.cipher
            .decrypt_inout_detached(
                &nonce,
                &[],
                plain.as_mut_slice().into(),
                &Tag::try_from(tag).ok()?,
            )
            .ok()?;
        Some(plain)
    }
}

impl Policy for EncryptedChannel {
    fn on_send(&mut self, out: &mut Outgoing<'_>) -> Verdict {
        if out.kind != MessageKind::Event || out.channel != SECRET_CHANNEL {
            return Verdict::Accept;
        }
        let plain = out.payload.data().unwrap_or_default().to_vec();
        match self.seal(&plain) {
            Some(sealed) if out.payload.set(None, Some(&sealed)).is_ok() => Verdict::Accept,
            // Never send in the clear what was meant to be secret.
            _ => Verdict::Reject,
        }
    }

    fn on_receive(
        &mut self,
        msg: &Message<'_>,
        _from: &Source,
        payload: &mut PayloadMut<'_>,
    ) -> Verdict {
        if msg.kind != Some(MessageKind::Event) || msg.channel != Some(SECRET_CHANNEL) {
            return Verdict::Accept;
        }
        let opened = payload.raw().and_then(|raw| self.open(raw));
        match opened {
            Some(plain) if payload.set(Some(&plain), None).is_ok() => Verdict::Accept,
            // Not from a key holder, or altered on the way.
            _ => Verdict::Reject,
        }
    }
}

/// What each listener received on channel 5.
#[derive(Debug)]
pub struct Outcome {
    /// The payload the key holder's event stream delivered.
    pub with_key: Payload,
    /// The payload the service without the key saw.
    pub without_key: Payload,
}

fn options(port: u16) -> Options {
    Options::default().interface(Ipv4Addr::LOCALHOST).port(port)
}

async fn next_message(handle: &Handle) -> Result<Payload, Box<dyn std::error::Error>> {
    let mut events = handle.events();
    let payload = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(event) = events.next().await {
            if let Event::Message { payload, .. } = event {
                return Some(payload);
            }
        }
        None
    })
    .await?
    .ok_or("the node stopped")?;
    Ok(payload)
}

/// Runs the scenario on `port` of loopback and returns what each listener got.
pub async fn run(port: u16, text: &str) -> Result<Outcome, Box<dyn std::error::Error>> {
    let key = [7u8; 32];
    let sender = Cluster::join_with(
        options(port).channel(SECRET_CHANNEL)?.tag("sender")?,
        EncryptedChannel::new(&key),
    )
    .await?;
    let receiver = Cluster::join_with(
        options(port).channel(SECRET_CHANNEL)?.tag("vault")?,
        EncryptedChannel::new(&key),
    )
    .await?;
    let outsider = Cluster::join(options(port).channel(SECRET_CHANNEL)?.tag("vault")?).await?;
    let with_key = tokio::spawn({
        let receiver = receiver.clone();
        async move { next_message(&receiver).await.map_err(|e| e.to_string()) }
    });
    let without_key = tokio::spawn({
        let outsider = outsider.clone();
        async move { next_message(&outsider).await.map_err(|e| e.to_string()) }
    });
    // Wait until the sender knows both listeners, then broadcast to them on channel 5.
    tokio::time::timeout(Duration::from_secs(5), async {
        while sender
            .resolve(Selector::resolve(["vault"]))
            .await
            .map_or(0, |s| s.len())
            < 2
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await?;
    sender
        .send(
            SendSpec::new(Selector::resolve(["vault"]), text)
                .channel(SECRET_CHANNEL)
                .broadcast(true),
        )
        .await?;
    let outcome = Outcome {
        with_key: with_key.await??,
        without_key: without_key.await??,
    };
    for node in [sender, receiver, outsider] {
        node.leave().await?;
    }
    Ok(outcome)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let outcome = run(23_105, "the launch code is 0000").await?;
    println!("with the key:    {:?}", outcome.with_key.data_lossy());
    println!(
        "without the key: data {:?}, raw {} bytes of ciphertext",
        outcome.without_key.data,
        outcome.without_key.raw.as_ref().map_or(0, Vec::len)
    );
    Ok(())
}
