//! XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha-03: RFC 8439's AEAD with HChaCha20 and a
//! 24-byte nonce), written for size where it costs no speed: one ChaCha20 block function
//! shared by HChaCha20, the Poly1305 key and the keystream (its double round written out, the
//! keystream XORed a word at a time), and a 32-bit Poly1305 (26-bit limbs, as
//! poly1305-donna, each limb of the product five multiply-adds over a window of `r` and `5 r`).
//!
//! It replaces RustCrypto's `chacha20poly1305` in the node: the same construction and the
//! same bytes (the draft's vectors and a comparison with RustCrypto on random inputs are in
//! the tests), in less flash on a Cortex-M (BENCHMARKS.md). Both halves are constant-time:
//! no branch and no memory index depends on the key, the nonce or the data, only on lengths
//! (Poly1305 also needs a constant-time 32 x 32 -> 64-bit multiply, as the Cortex-M4's `umlal`
//! is and the Cortex-M3's is not, as for any portable Poly1305). The tag is compared without
//! an early exit, and the plaintext is only written after the tag verified. Subkeys,
//! keystream blocks and the Poly1305 key and state are zeroed after use.
//!
//! Indexing here is over fixed-size arrays with constant indices (the quarter rounds, the
//! limbs), never over received bytes: those are read with `chunks` and `get`.

use zeroize::Zeroize;

/// Key length in bytes.
pub(crate) const KEY_LEN: usize = 32;
/// Nonce length in bytes.
pub(crate) const NONCE_LEN: usize = 24;
/// Tag length in bytes.
pub(crate) const TAG_LEN: usize = 16;

/// "expand 32-byte k".
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// The tag did not verify: the buffer is left as it was (ciphertext).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Forged;

fn le32(bytes: &[u8]) -> u32 {
    let mut word = [0u8; 4];
    if let Some(src) = bytes.get(..4) {
        word.copy_from_slice(src);
    }
    u32::from_le_bytes(word)
}

/// Reads `N` little-endian words from `bytes` (missing bytes read as zero).
fn words<const N: usize>(bytes: &[u8]) -> [u32; N] {
    let mut out = [0u32; N];
    read_words(&mut out, bytes);
    out
}

/// Fills `out` with little-endian words of `bytes`: one copy of the loop for every `N`.
#[inline(never)]
fn read_words(out: &mut [u32], bytes: &[u8]) {
    for (word, chunk) in out.iter_mut().zip(bytes.chunks(4)) {
        *word = le32(chunk);
    }
}

/// One quarter round on the words `a`, `b`, `c`, `d` of `s`.
#[inline(always)]
#[allow(clippy::indexing_slicing)] // constant indices below 16 at every call
fn quarter(s: &mut [u32; 16], a: usize, b: usize, c: usize, d: usize) {
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(16);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(12);
    s[a] = s[a].wrapping_add(s[b]);
    s[d] = (s[d] ^ s[a]).rotate_left(8);
    s[c] = s[c].wrapping_add(s[d]);
    s[b] = (s[b] ^ s[c]).rotate_left(7);
}

/// ChaCha20's 20 rounds, in place, without the final addition. The double round is written
/// out (constant indices: the words stay in registers as far as they fit) and the ten double
/// rounds are a loop.
#[inline(never)]
fn rounds(state: &mut [u32; 16]) {
    let mut s = *state;
    for _ in 0..10 {
        quarter(&mut s, 0, 4, 8, 12);
        quarter(&mut s, 1, 5, 9, 13);
        quarter(&mut s, 2, 6, 10, 14);
        quarter(&mut s, 3, 7, 11, 15);
        quarter(&mut s, 0, 5, 10, 15);
        quarter(&mut s, 1, 6, 11, 12);
        quarter(&mut s, 2, 7, 8, 13);
        quarter(&mut s, 3, 4, 9, 14);
    }
    *state = s;
    s.zeroize();
}

/// The initial state: constants, key, then `tail` (counter and nonce, or HChaCha20's nonce).
fn state(key: &[u32; 8], tail: [u32; 4]) -> [u32; 16] {
    let mut s = [0u32; 16];
    let (constants, rest) = s.split_at_mut(4);
    let (k, t) = rest.split_at_mut(8);
    constants.copy_from_slice(&SIGMA);
    k.copy_from_slice(key);
    t.copy_from_slice(&tail);
    s
}

/// HChaCha20: the subkey for a 16-byte nonce prefix (draft-irtf-cfrg-xchacha-03, 2.2).
fn hchacha20(key: &[u8; KEY_LEN], nonce16: &[u8]) -> [u32; 8] {
    let mut key_words = words::<8>(key);
    let mut s = state(&key_words, words::<4>(nonce16));
    rounds(&mut s);
    let mut subkey = [0u32; 8];
    let (first, last) = subkey.split_at_mut(4);
    first.copy_from_slice(s.get(..4).unwrap_or_default());
    last.copy_from_slice(s.get(12..).unwrap_or_default());
    s.zeroize();
    key_words.zeroize();
    subkey
}

/// ChaCha20 (RFC 8439) under a subkey and a 96-bit nonce (`nonce`: its last two words; the
/// first is zero for XChaCha20).
struct ChaCha20 {
    key: [u32; 8],
    nonce: [u32; 2],
}

impl ChaCha20 {
    /// The keystream block `counter`.
    fn block(&self, counter: u32) -> [u32; 16] {
        let [n1, n2] = self.nonce;
        let input = state(&self.key, [counter, 0, n1, n2]);
        let mut s = input;
        rounds(&mut s);
        for (word, add) in s.iter_mut().zip(input) {
            *word = word.wrapping_add(add);
        }
        s
    }

    /// XORs `buf` with the keystream from block 1 on (block 0 keys Poly1305), a word at a
    /// time (the last bytes of a buffer whose length is not a multiple of 4 one by one).
    fn apply(&self, buf: &mut [u8]) {
        for (counter, chunk) in (1u32..).zip(buf.chunks_mut(64)) {
            let mut block = self.block(counter);
            for (bytes, key) in chunk.chunks_mut(4).zip(&block) {
                if let Ok(word) = <&mut [u8; 4]>::try_from(&mut *bytes) {
                    *word = (u32::from_le_bytes(*word) ^ key).to_le_bytes();
                } else {
                    for (byte, key) in bytes.iter_mut().zip(key.to_le_bytes()) {
                        *byte ^= key;
                    }
                }
            }
            block.zeroize();
        }
    }
}

impl Drop for ChaCha20 {
    fn drop(&mut self) {
        self.key.zeroize();
    }
}

/// Poly1305 over whole 16-byte blocks (the AEAD pads every part to 16 bytes), with 26-bit
/// limbs and 64-bit products, as poly1305-donna-32.
struct Poly1305 {
    r: [u32; 5],
    h: [u32; 5],
    pad: [u32; 4],
}

const MASK26: u32 = 0x03ff_ffff;

/// The 64-bit product of two 32-bit words (one `umull`).
#[inline(always)]
fn mul(a: u32, b: u32) -> u64 {
    u64::from(a) * u64::from(b)
}

impl Poly1305 {
    fn new(key: &[u32; 16]) -> Self {
        let [k0, k1, k2, k3, p0, p1, p2, p3, ..] = *key;
        // r, clamped, in 26-bit limbs.
        let r = [
            k0 & 0x03ff_ffff,
            ((k0 >> 26) | (k1 << 6)) & 0x03ff_ff03,
            ((k1 >> 20) | (k2 << 12)) & 0x03ff_c0ff,
            ((k2 >> 14) | (k3 << 18)) & 0x03f0_3fff,
            (k3 >> 8) & 0x000f_ffff,
        ];
        Self {
            r,
            h: [0; 5],
            pad: [p0, p1, p2, p3],
        }
    }

    /// Absorbs one block (the 2^128 bit set: every AEAD block is whole).
    #[allow(clippy::indexing_slicing)] // constant indices below 5
    fn block(&mut self, m: &[u8; 16]) {
        let [m0, m1, m2, m3] = words::<4>(m);
        let h = &mut self.h;
        h[0] = h[0].wrapping_add(m0 & MASK26);
        h[1] = h[1].wrapping_add(((m0 >> 26) | (m1 << 6)) & MASK26);
        h[2] = h[2].wrapping_add(((m1 >> 20) | (m2 << 12)) & MASK26);
        h[3] = h[3].wrapping_add(((m2 >> 14) | (m3 << 18)) & MASK26);
        h[4] = h[4].wrapping_add((m3 >> 8) | (1 << 24));
        // d[i] = sum of h[j] * r[i - j], with r[k + 5] = 5 * r[k] (2^130 = 5 mod p): with
        // t = [5 r1, 5 r2, 5 r3, 5 r4, r0, r1, r2, r3, r4], d[i] = sum of h[j] * t[4 + i - j],
        // five 32 x 32 bit products (one `umull`/`umlal` each) over a window of t. Each is
        // below 2^55 (limbs below 2^27, 5 * r below 2^29), so the sums fit in 64 bits.
        let [r0, r1, r2, r3, r4] = self.r;
        let t = [r1 * 5, r2 * 5, r3 * 5, r4 * 5, r0, r1, r2, r3, r4];
        // Each limb of the product is carried into the next as it is made.
        let [h0, h1, h2, h3, h4] = *h;
        let mut carry = 0u64;
        for (limb, window) in h.iter_mut().zip(t.windows(5)) {
            if let [t0, t1, t2, t3, t4] = *window {
                let d = mul(h0, t4) + mul(h1, t3) + mul(h2, t2) + mul(h3, t1) + mul(h4, t0) + carry;
                *limb = (d as u32) & MASK26;
                carry = d >> 26;
            }
        }
        // 2^130 = 5 (mod p).
        h[0] = h[0].wrapping_add((carry as u32).wrapping_mul(5));
        let c = h[0] >> 26;
        h[0] &= MASK26;
        h[1] = h[1].wrapping_add(c);
    }

    /// Absorbs `data` zero-padded to a multiple of 16 bytes.
    fn padded(&mut self, data: &[u8]) {
        for chunk in data.chunks(16) {
            let mut block = [0u8; 16];
            if let Some(dst) = block.get_mut(..chunk.len()) {
                dst.copy_from_slice(chunk);
            }
            self.block(&block);
        }
    }

    /// The tag.
    #[allow(clippy::indexing_slicing)] // constant indices below 5
    fn finish(mut self) -> [u8; TAG_LEN] {
        let h = &mut self.h;
        // Carry fully.
        let mut c = 0;
        for limb in h.iter_mut().skip(1) {
            *limb = limb.wrapping_add(c);
            c = *limb >> 26;
            *limb &= MASK26;
        }
        h[0] = h[0].wrapping_add(c.wrapping_mul(5));
        c = h[0] >> 26;
        h[0] &= MASK26;
        h[1] = h[1].wrapping_add(c);
        // g = h + 5 - 2^130; take it when it did not go negative (h >= p).
        let mut g = [0u32; 5];
        let mut c = 5;
        for (g, h) in g.iter_mut().zip(h.iter()) {
            *g = h.wrapping_add(c);
            c = *g >> 26;
            *g &= MASK26;
        }
        g[4] = g[4].wrapping_add(c << 26).wrapping_sub(1 << 26);
        let take_g = (g[4] >> 31).wrapping_sub(1);
        for (h, g) in h.iter_mut().zip(g) {
            *h = (*h & !take_g) | (g & take_g);
        }
        // h mod 2^128, plus the pad, mod 2^128.
        let words = [
            h[0] | (h[1] << 26),
            (h[1] >> 6) | (h[2] << 20),
            (h[2] >> 12) | (h[3] << 14),
            (h[3] >> 18) | (h[4] << 8),
        ];
        let mut tag = [0u8; TAG_LEN];
        let mut carry = 0u64;
        for ((out, word), pad) in tag.chunks_mut(4).zip(words).zip(self.pad) {
            let sum = u64::from(word) + u64::from(pad) + carry;
            out.copy_from_slice(&(sum as u32).to_le_bytes());
            carry = sum >> 32;
        }
        tag
    }
}

impl Drop for Poly1305 {
    fn drop(&mut self) {
        self.r.zeroize();
        self.h.zeroize();
        self.pad.zeroize();
    }
}

/// The cipher and the Poly1305 state for one message.
fn setup(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN]) -> (ChaCha20, Poly1305) {
    let (prefix, rest) = nonce.split_at(16);
    let cipher = ChaCha20 {
        key: hchacha20(key, prefix),
        nonce: words::<2>(rest),
    };
    let mut block = cipher.block(0);
    let poly = Poly1305::new(&block);
    block.zeroize();
    (cipher, poly)
}

/// The tag over `aad` and the ciphertext `ct` (RFC 8439, 2.8).
fn tag(mut poly: Poly1305, aad: &[u8], ct: &[u8]) -> [u8; TAG_LEN] {
    poly.padded(aad);
    poly.padded(ct);
    let mut lengths = [0u8; 16];
    let (a, c) = lengths.split_at_mut(8);
    a.copy_from_slice(&(aad.len() as u64).to_le_bytes());
    c.copy_from_slice(&(ct.len() as u64).to_le_bytes());
    poly.block(&lengths);
    poly.finish()
}

/// Encrypts `buf` in place and returns the tag.
pub(crate) fn encrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> [u8; TAG_LEN] {
    let (cipher, poly) = setup(key, nonce);
    cipher.apply(buf);
    tag(poly, aad, buf)
}

/// Verifies `expected` over `aad` and the ciphertext in `buf`, then decrypts `buf` in place.
/// On [`Forged`], `buf` is unchanged.
pub(crate) fn decrypt(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut [u8],
    expected: &[u8; TAG_LEN],
) -> Result<(), Forged> {
    let (cipher, poly) = setup(key, nonce);
    let actual = tag(poly, aad, buf);
    // No early exit: the time does not depend on where the tags differ.
    let diff = actual
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    if core::hint::black_box(diff) != 0 {
        return Err(Forged);
    }
    cipher.apply(buf);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::vec::Vec;

    use chacha20poly1305::aead::{AeadInOut, KeyInit};
    use chacha20poly1305::{XChaCha20Poly1305, XNonce};
    use proptest::prelude::*;

    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn hchacha20_matches_the_drafts_vector() {
        // draft-irtf-cfrg-xchacha-03, 2.2.1.
        let key: [u8; 32] = core::array::from_fn(|i| i as u8);
        let nonce = hex("000000090000004a0000000031415927");
        let subkey = hchacha20(&key, &nonce);
        let bytes: Vec<u8> = subkey.iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(
            bytes,
            hex("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc")
        );
    }

    /// draft-irtf-cfrg-xchacha-03, A.3.1.
    const KEY: &str = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
    const NONCE: &str = "404142434445464748494a4b4c4d4e4f5051525354555657";
    const AAD: &str = "50515253c0c1c2c3c4c5c6c7";
    const PLAINTEXT: &[u8] = b"Ladies and Gentlemen of the class of '99: If I could offer you \
only one tip for the future, sunscreen would be it.";
    const CIPHERTEXT: &str = concat!(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb",
        "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452",
        "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9",
        "21f9664c97637da9768812f615c68b13b52e"
    );
    const TAG: &str = "c0875924c1c7987947deafd8780acf49";
    const POLY_KEY: &str = "7b191f80f361f099094f6f4b8fb97df847cc6873a8f2b190dd73807183f907d5";

    fn vector_key_nonce() -> ([u8; 32], [u8; 24]) {
        (hex(KEY).try_into().unwrap(), hex(NONCE).try_into().unwrap())
    }

    #[test]
    fn the_poly1305_key_matches_the_drafts_vector() {
        let (key, nonce) = vector_key_nonce();
        let (cipher, _) = setup(&key, &nonce);
        let block = cipher.block(0);
        let bytes: Vec<u8> = block
            .iter()
            .flat_map(|w| w.to_le_bytes())
            .take(32)
            .collect();
        assert_eq!(bytes, hex(POLY_KEY));
    }

    #[test]
    fn encrypt_matches_the_drafts_vector() {
        let (key, nonce) = vector_key_nonce();
        let mut buf = PLAINTEXT.to_vec();
        let tag = encrypt(&key, &nonce, &hex(AAD), &mut buf);
        assert_eq!(buf, hex(CIPHERTEXT));
        assert_eq!(tag.to_vec(), hex(TAG));
    }

    #[test]
    fn decrypt_matches_the_drafts_vector_and_refuses_any_change() {
        let (key, nonce) = vector_key_nonce();
        let tag: [u8; 16] = hex(TAG).try_into().unwrap();
        let mut buf = hex(CIPHERTEXT);
        decrypt(&key, &nonce, &hex(AAD), &mut buf, &tag).unwrap();
        assert_eq!(buf, PLAINTEXT);

        let ct = hex(CIPHERTEXT);
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            let kept = bad.clone();
            assert_eq!(
                decrypt(&key, &nonce, &hex(AAD), &mut bad, &tag),
                Err(Forged)
            );
            assert_eq!(bad, kept, "a forged buffer stays as it was");
        }
        for i in 0..16 {
            let mut bad_tag = tag;
            bad_tag[i] ^= 0x80;
            let mut buf = hex(CIPHERTEXT);
            assert_eq!(
                decrypt(&key, &nonce, &hex(AAD), &mut buf, &bad_tag),
                Err(Forged)
            );
        }
        let mut aad = hex(AAD);
        aad[0] ^= 1;
        let mut buf = hex(CIPHERTEXT);
        assert_eq!(decrypt(&key, &nonce, &aad, &mut buf, &tag), Err(Forged));
        let mut bad_nonce = nonce;
        bad_nonce[23] ^= 1;
        let mut buf = hex(CIPHERTEXT);
        assert_eq!(
            decrypt(&key, &bad_nonce, &hex(AAD), &mut buf, &tag),
            Err(Forged)
        );
    }

    #[test]
    fn poly1305_reduces_values_at_and_above_p() {
        // All-ones blocks drive h towards 2^130 - 5, exercising the final reduction; compared
        // with RustCrypto, whose Poly1305 is independent of this one.
        let key = [0xffu8; 32];
        let nonce = [0xffu8; 24];
        for len in [0usize, 1, 15, 16, 17, 63, 64, 65, 200] {
            let data = std::vec![0xffu8; len];
            let ours = {
                let mut buf = data.clone();
                (encrypt(&key, &nonce, &data, &mut buf), buf)
            };
            let theirs = {
                let mut buf = data.clone();
                let nonce: XNonce = nonce.into();
                let tag = XChaCha20Poly1305::new(&key.into())
                    .encrypt_inout_detached(&nonce, &data, buf.as_mut_slice().into())
                    .unwrap();
                (<[u8; 16]>::try_from(tag.as_slice()).unwrap(), buf)
            };
            assert_eq!(ours, theirs, "length {len}");
        }
    }

    proptest! {
        #[test]
        fn agrees_with_rustcrypto(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 24]>(),
            aad in proptest::collection::vec(any::<u8>(), 0..80),
            data in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut ours = data.clone();
            let tag = encrypt(&key, &nonce, &aad, &mut ours);
            let mut theirs = data.clone();
            let their_nonce: XNonce = nonce.into();
            let their_tag = XChaCha20Poly1305::new(&key.into())
                .encrypt_inout_detached(&their_nonce, &aad, theirs.as_mut_slice().into())
                .unwrap();
            prop_assert_eq!(&ours, &theirs);
            prop_assert_eq!(tag.as_slice(), their_tag.as_slice());
            decrypt(&key, &nonce, &aad, &mut ours, &tag).unwrap();
            prop_assert_eq!(ours, data);
        }
    }
}
