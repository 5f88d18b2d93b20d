//! Pre-shared keys: [`Key`], the [`KeyRing`] of keys a node accepts and the one it sends
//! with, and the key file's text format.

use core::fmt;

use zeroize::Zeroize;

/// The most keys a ring holds: enough for the key in use, its successor and a retired one
/// during a rotation.
pub const MAX_KEYS: usize = 4;

/// Bytes of one key.
pub const KEY_LEN: usize = 32;

/// One 256-bit key with its id. The id travels in every sealed frame, so that a receiver
/// picks the right key of its ring without trying each.
///
/// `Debug` never shows the key; the bytes are wiped when the key is dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    id: u8,
    bytes: [u8; KEY_LEN],
}

impl Key {
    /// A key with id `id`.
    #[must_use]
    pub const fn new(id: u8, bytes: [u8; KEY_LEN]) -> Self {
        Self { id, bytes }
    }

    /// Its id.
    #[must_use]
    pub const fn id(&self) -> u8 {
        self.id
    }

    pub(crate) const fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl Drop for Key {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a key ring could not be built or changed. Nothing changed.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRingError {
    /// The ring already holds [`MAX_KEYS`] keys.
    Full,
    /// Another key of the ring has this id.
    DuplicateId(u8),
    /// No key of the ring has this id.
    UnknownId(u8),
    /// The key used to send cannot be removed: choose another one first.
    RemovesSendKey(u8),
    /// A key file line is not `[*]ID HEX` (line numbers count from 1).
    Syntax {
        /// The line.
        line: usize,
    },
    /// A key file holds no key, or marks no key (or two) with `*`.
    NoSendKey,
}

impl fmt::Display for KeyRingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full => write!(f, "a key ring holds at most {MAX_KEYS} keys"),
            Self::DuplicateId(id) => write!(f, "two keys have id {id}"),
            Self::UnknownId(id) => write!(f, "no key has id {id}"),
            Self::RemovesSendKey(id) => write!(f, "key {id} seals outgoing frames"),
            Self::Syntax { line } => write!(
                f,
                "key file line {line}: expected `[*]ID HEX` (an id 0-255, 64 hex digits)"
            ),
            Self::NoSendKey => f.write_str("mark exactly one key with `*`: the one to send with"),
        }
    }
}

impl core::error::Error for KeyRingError {}

/// The keys a node accepts, and the one it seals its own frames with.
///
/// Rotating a cluster's key without downtime takes three steps, each rolled out to every node
/// before the next: add the new key to every ring; make it the send key everywhere
/// ([`set_send`](Self::set_send)); remove the old key. At every moment each node accepts what
/// every other node sends.
///
/// `Debug` shows the ids only.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyRing {
    keys: heapless::Vec<Key, MAX_KEYS>,
    send: u8,
}

impl KeyRing {
    /// A ring of one key, which is also the send key.
    #[must_use]
    pub fn new(key: Key) -> Self {
        let send = key.id;
        let mut keys = heapless::Vec::new();
        // Cannot fail: the ring is empty.
        let _ = keys.push(key);
        Self { keys, send }
    }

    /// Adds a key that frames may be opened with.
    ///
    /// # Errors
    ///
    /// [`KeyRingError::Full`] or [`KeyRingError::DuplicateId`]; the ring is unchanged.
    pub fn add(&mut self, key: Key) -> Result<(), KeyRingError> {
        if self.get(key.id).is_some() {
            return Err(KeyRingError::DuplicateId(key.id));
        }
        self.keys.push(key).map_err(|_| KeyRingError::Full)
    }

    /// Seals outgoing frames with key `id` from now on.
    ///
    /// # Errors
    ///
    /// [`KeyRingError::UnknownId`]; the ring is unchanged.
    pub fn set_send(&mut self, id: u8) -> Result<(), KeyRingError> {
        self.get(id).ok_or(KeyRingError::UnknownId(id))?;
        self.send = id;
        Ok(())
    }

    /// Removes key `id`.
    ///
    /// # Errors
    ///
    /// [`KeyRingError::UnknownId`], or [`KeyRingError::RemovesSendKey`] for the send key; the
    /// ring is unchanged.
    pub fn remove(&mut self, id: u8) -> Result<(), KeyRingError> {
        if id == self.send {
            return Err(KeyRingError::RemovesSendKey(id));
        }
        let index = self
            .keys
            .iter()
            .position(|k| k.id == id)
            .ok_or(KeyRingError::UnknownId(id))?;
        self.keys.remove(index);
        Ok(())
    }

    /// The key with id `id`.
    #[must_use]
    pub fn get(&self, id: u8) -> Option<&Key> {
        self.keys.iter().find(|k| k.id == id)
    }

    /// The key outgoing frames are sealed with.
    #[must_use]
    pub fn send_key(&self) -> &Key {
        // The send id always names a key of the ring; the first key is a safe answer anyway.
        self.get(self.send)
            .or_else(|| self.keys.first())
            .unwrap_or_else(|| unreachable_key())
    }

    /// The ids of the keys, in the order they were added.
    pub fn ids(&self) -> impl Iterator<Item = u8> + '_ {
        self.keys.iter().map(Key::id)
    }

    /// Reads a key file: one key per line, `ID HEX` with an id from 0 to 255 and 64 hex digits,
    /// the send key marked with a leading `*`. Blank lines and lines starting with `#` are
    /// skipped.
    ///
    /// ```text
    /// # cluster keys: rotate by adding a key, moving the `*`, then removing the old key
    /// 1 6d1e3a5f0c9b8a7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d
    /// *2 00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff
    /// ```
    ///
    /// # Errors
    ///
    /// [`KeyRingError::Syntax`] with the line, [`KeyRingError::NoSendKey`],
    /// [`KeyRingError::Full`] or [`KeyRingError::DuplicateId`].
    pub fn parse(text: &str) -> Result<Self, KeyRingError> {
        let mut keys: heapless::Vec<Key, MAX_KEYS> = heapless::Vec::new();
        let mut send = None;
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let syntax = KeyRingError::Syntax { line: index + 1 };
            let (marked, line) = match line.strip_prefix('*') {
                Some(rest) => (true, rest),
                None => (false, line),
            };
            let mut words = line.split_whitespace();
            let (Some(id), Some(hex), None) = (words.next(), words.next(), words.next()) else {
                return Err(syntax);
            };
            let id: u8 = id.parse().map_err(|_| syntax)?;
            let bytes = parse_hex_key(hex).ok_or(syntax)?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyRingError::DuplicateId(id));
            }
            keys.push(Key::new(id, bytes))
                .map_err(|_| KeyRingError::Full)?;
            if marked {
                if send.is_some() {
                    return Err(KeyRingError::NoSendKey);
                }
                send = Some(id);
            }
        }
        let send = send.ok_or(KeyRingError::NoSendKey)?;
        Ok(Self { keys, send })
    }
}

/// Never called: a ring always holds its send key. Kept apart so that `send_key` reads simply
/// and the core has no panic on this path.
fn unreachable_key() -> &'static Key {
    static NONE: Key = Key::new(0, [0; KEY_LEN]);
    &NONE
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field(
                "ids",
                &self
                    .keys
                    .iter()
                    .map(Key::id)
                    .collect::<heapless::Vec<u8, MAX_KEYS>>(),
            )
            .field("send", &self.send)
            .finish()
    }
}

/// 64 hex digits as 32 bytes.
fn parse_hex_key(hex: &str) -> Option<[u8; KEY_LEN]> {
    let digits = hex.as_bytes();
    if digits.len() != 2 * KEY_LEN {
        return None;
    }
    let mut bytes = [0u8; KEY_LEN];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let high = hex_digit(*pair.first()?)?;
        let low = hex_digit(*pair.get(1)?)?;
        *byte = (high << 4) | low;
    }
    Some(bytes)
}

fn hex_digit(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    const HEX_A: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const HEX_B: &str = "FFEEDDCCBBAA99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn a_key_file_gives_every_key_and_the_marked_send_key() {
        let text = format!("# keys\n\n1 {HEX_A}\n  *7 {HEX_B}  \n");
        let ring = KeyRing::parse(&text).unwrap();
        assert_eq!(ring.ids().collect::<std::vec::Vec<_>>(), [1, 7]);
        assert_eq!(ring.send_key().id(), 7);
        assert_eq!(ring.get(1).unwrap().bytes()[1], 0x11);
        assert_eq!(ring.get(7).unwrap().bytes()[0], 0xFF);
    }

    #[test]
    fn bad_key_files_name_the_problem() {
        let missing_star = format!("1 {HEX_A}\n");
        assert_eq!(KeyRing::parse(&missing_star), Err(KeyRingError::NoSendKey));
        let two_stars = format!("*1 {HEX_A}\n*2 {HEX_B}\n");
        assert_eq!(KeyRing::parse(&two_stars), Err(KeyRingError::NoSendKey));
        let short = "*1 0011\n";
        assert_eq!(KeyRing::parse(short), Err(KeyRingError::Syntax { line: 1 }));
        let bad_id = format!("\n*256 {HEX_A}\n");
        assert_eq!(
            KeyRing::parse(&bad_id),
            Err(KeyRingError::Syntax { line: 2 })
        );
        let not_hex = format!("*1 {}\n", HEX_A.replace('a', "g"));
        assert_eq!(
            KeyRing::parse(&not_hex),
            Err(KeyRingError::Syntax { line: 1 })
        );
        let duplicate = format!("*1 {HEX_A}\n1 {HEX_B}\n");
        assert_eq!(
            KeyRing::parse(&duplicate),
            Err(KeyRingError::DuplicateId(1))
        );
        let five: std::string::String = (0..5).map(|i| format!("{i} {HEX_A}\n")).collect();
        assert_eq!(KeyRing::parse(&five), Err(KeyRingError::Full));
    }

    #[test]
    fn rotation_steps_keep_the_send_key_in_the_ring() {
        let mut ring = KeyRing::new(Key::new(1, [1; 32]));
        ring.add(Key::new(2, [2; 32])).unwrap();
        assert_eq!(
            ring.add(Key::new(2, [3; 32])),
            Err(KeyRingError::DuplicateId(2))
        );
        assert_eq!(ring.remove(1), Err(KeyRingError::RemovesSendKey(1)));
        ring.set_send(2).unwrap();
        ring.remove(1).unwrap();
        assert_eq!(ring.set_send(1), Err(KeyRingError::UnknownId(1)));
        assert_eq!(ring.send_key().id(), 2);
    }

    #[test]
    fn debug_never_shows_key_bytes() {
        let ring = KeyRing::new(Key::new(9, [0xAB; 32]));
        let shown = format!("{ring:?} {:?}", ring.send_key());
        assert!(
            !shown.contains("171") && !shown.to_lowercase().contains("ab"),
            "{shown}"
        );
    }
}
