//! The firmware's options, read at run time from the semihosting command line, so that one
//! image serves every node of a test (`qemu/run.sh` writes them):
//!
//! ```text
//! cluster-firmware --ip 10.251.0.3/24 [--tags a,b] [--answer-hex 6f6b] [--key-file PATH]
//!                  [--query-every SECONDS] [--port N] [--heartbeat-ms MS] [--ttl-ms MS]
//! ```
//!
//! Tags are separated by commas and the answer is hex, so that neither needs quoting in a
//! command line that the host joins with spaces.

/// The longest `--answer` (bytes, once decoded).
pub const ANSWER: usize = 96;

/// What the command line asked for.
pub struct Options<'a> {
    /// The interface's address.
    pub ip: [u8; 4],
    /// Its prefix length.
    pub prefix: u8,
    /// Comma-separated tags.
    pub tags: &'a str,
    /// The reply to every query.
    pub answer: heapless::Vec<u8, ANSWER>,
    /// The key file (sealed frames), read through semihosting.
    pub key_file: Option<&'a str>,
    /// Seconds between this node's own queries of everyone (0: never).
    pub query_every: u32,
    /// The UDP port.
    pub port: u16,
    /// A fixed heartbeat interval instead of the lan-fast profile's 400-600 ms.
    pub heartbeat_ms: Option<u32>,
    /// How long a service may go unseen before it is dropped, instead of the profile's.
    pub ttl_ms: Option<u32>,
}

/// Reads the command line; the first word (the program's name) is skipped.
pub fn parse(line: &str) -> Result<Options<'_>, &'static str> {
    let mut options = Options {
        ip: [0; 4],
        prefix: 0,
        tags: "",
        answer: heapless::Vec::new(),
        key_file: None,
        query_every: 60,
        port: 23000,
        heartbeat_ms: None,
        ttl_ms: None,
    };
    let _ = options.answer.extend_from_slice(b"temperature 21.5");
    let mut have_ip = false;
    let mut words = line.split_ascii_whitespace().skip(1);
    while let Some(option) = words.next() {
        let value = words.next().ok_or("an option lacks its value")?;
        match option {
            "--ip" => {
                (options.ip, options.prefix) =
                    parse_cidr(value).ok_or("bad --ip: A.B.C.D/NN expected")?;
                have_ip = true;
            }
            "--tags" => options.tags = value,
            "--answer-hex" => options.answer = parse_hex(value).ok_or("bad --answer-hex")?,
            "--key-file" => options.key_file = Some(value),
            "--query-every" => {
                options.query_every = value.parse().map_err(|_| "bad --query-every")?;
            }
            "--port" => options.port = value.parse().map_err(|_| "bad --port")?,
            "--heartbeat-ms" => {
                options.heartbeat_ms = Some(value.parse().map_err(|_| "bad --heartbeat-ms")?);
            }
            "--ttl-ms" => options.ttl_ms = Some(value.parse().map_err(|_| "bad --ttl-ms")?),
            _ => return Err("unknown option"),
        }
    }
    if !have_ip {
        return Err("--ip is required");
    }
    Ok(options)
}

fn parse_cidr(text: &str) -> Option<([u8; 4], u8)> {
    let (addr, prefix) = text.split_once('/')?;
    let prefix: u8 = prefix.parse().ok().filter(|p| *p <= 32)?;
    let mut octets = [0u8; 4];
    let mut parts = addr.split('.');
    for octet in &mut octets {
        *octet = parts.next()?.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some((octets, prefix))
}

fn parse_hex(text: &str) -> Option<heapless::Vec<u8, ANSWER>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let mut out = heapless::Vec::new();
    for pair in digits.chunks_exact(2) {
        let byte = (nibble(pair[0])? << 4) | nibble(pair[1])?;
        out.push(byte).ok()?;
    }
    Some(out)
}

fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}
