//! JSON lines on the console, written field by field without `core::fmt` (which would cost
//! kilobytes of flash) and without a buffer. The lines and field names are those of
//! `cluster join --json` (cluster-host's `json` module): a string that is not UTF-8 is written
//! as `{"bytes_hex": "..."}`, and strings are escaped as serde_json escapes them.

use crate::uart::Uart;

/// One JSON object being written: `{"event":"NAME"` at creation, `}` and a line feed at
/// [`end`](Self::end).
pub struct Line<'u> {
    out: &'u mut Uart,
}

impl<'u> Line<'u> {
    /// Starts the line of event `name`.
    pub fn event(out: &'u mut Uart, name: &str) -> Self {
        out.write(b"{\"event\":");
        let mut line = Self { out };
        line.string(name.as_bytes());
        line
    }

    /// Ends the line.
    pub fn end(self) {
        self.out.write(b"}\n");
    }

    fn key(&mut self, key: &str) -> &mut Self {
        self.out.write(b",\"");
        self.out.write(key.as_bytes());
        self.out.write(b"\":");
        self
    }

    /// `"key":"text"` for UTF-8 bytes, `"key":{"bytes_hex":"..."}` for others.
    pub fn bytes(&mut self, key: &str, value: &[u8]) -> &mut Self {
        self.key(key).value_bytes(value);
        self
    }

    /// `"key":N`.
    pub fn number(&mut self, key: &str, value: u64) -> &mut Self {
        self.key(key).value_number(value);
        self
    }

    /// `"key":true` or `"key":false`.
    pub fn boolean(&mut self, key: &str, value: bool) -> &mut Self {
        self.key(key);
        self.out.write(if value { b"true" } else { b"false" });
        self
    }

    /// `"key":null`.
    pub fn null(&mut self, key: &str) -> &mut Self {
        self.key(key);
        self.out.write(b"null");
        self
    }

    /// `"key":[...]` of the items as strings (or `bytes_hex` objects).
    pub fn list<'i>(&mut self, key: &str, items: impl Iterator<Item = &'i [u8]>) -> &mut Self {
        self.key(key);
        self.out.write(b"[");
        for (i, item) in items.enumerate() {
            if i > 0 {
                self.out.write(b",");
            }
            self.value_bytes(item);
        }
        self.out.write(b"]");
        self
    }

    fn value_bytes(&mut self, value: &[u8]) {
        if core::str::from_utf8(value).is_ok() {
            self.string(value);
        } else {
            self.out.write(b"{\"bytes_hex\":\"");
            for &b in value {
                self.out.write(&[hex_digit(b >> 4), hex_digit(b & 0xf)]);
            }
            self.out.write(b"\"}");
        }
    }

    fn value_number(&mut self, mut value: u64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        loop {
            at -= 1;
            digits[at] = b'0' + (value % 10) as u8;
            value /= 10;
            if value == 0 {
                break;
            }
        }
        self.out.write(&digits[at..]);
    }

    /// A JSON string of UTF-8 `text`, escaped as serde_json does.
    fn string(&mut self, text: &[u8]) {
        self.out.write(b"\"");
        let mut start = 0;
        for (i, &b) in text.iter().enumerate() {
            let short = match b {
                b'"' => b'"',
                b'\\' => b'\\',
                b'\n' => b'n',
                b'\r' => b'r',
                b'\t' => b't',
                0x08 => b'b',
                0x0c => b'f',
                0..=0x1f => 0,
                _ => continue,
            };
            self.out.write(&text[start..i]);
            start = i + 1;
            if short == 0 {
                self.out.write(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    hex_digit(b >> 4),
                    hex_digit(b & 0xf),
                ]);
            } else {
                self.out.write(&[b'\\', short]);
            }
        }
        self.out.write(&text[start..]);
        self.out.write(b"\"");
    }
}

fn hex_digit(nibble: u8) -> u8 {
    if nibble < 10 {
        b'0' + nibble
    } else {
        b'a' + nibble - 10
    }
}

impl Line<'_> {
    /// `"key":"A.B.C.D"`, or `"key":null`.
    pub fn key_ip(&mut self, key: &str, ip: Option<[u8; 4]>) -> &mut Self {
        let Some(octets) = ip else {
            return self.null(key);
        };
        self.key(key);
        self.out.write(b"\"");
        for (i, octet) in octets.iter().enumerate() {
            if i > 0 {
                self.out.write(b".");
            }
            self.value_number(u64::from(*octet));
        }
        self.out.write(b"\"");
        self
    }
}
