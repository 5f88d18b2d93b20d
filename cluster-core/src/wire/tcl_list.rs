//! Tcl list and dict syntax inside `data` (spec 3.6).
//!
//! Several message kinds carry a Tcl list or dict in their `data` string: protocol props such
//! as `t {port 41241}`, the sids of a ping such as `Zz998877 Yy112233`, and failed reports such
//! as `protocols {t u}`. This module reads and writes that syntax without allocating.
//!
//! # Reading
//!
//! [`elements`] walks a list and yields each [`Element`] as a borrowed view of the input;
//! [`dict_pairs`], [`dict_get`] and [`validate_dict`] read a dict on top of it. The grammar is
//! the one of spec 3.6, which is what Tcl's own list parser accepts:
//!
//! ```text
//! list    = ws* [ element *( ws+ element ) ] ws*
//! ws      = " " | "\t" | "\n" | "\r" | "\v" | "\f"
//! element = braced | quoted | bare
//! ```
//!
//! * A **braced** element `{…}` is taken verbatim: nested braces are counted, a brace right
//!   after a backslash is not, and the closing brace must be followed by whitespace or the end
//!   ([`TclError::ExtraAfterBrace`]). A missing closing brace is
//!   [`TclError::UnbalancedBraces`].
//! * A **quoted** element `"…"` ends at the next `"` not preceded by a backslash, which must be
//!   followed by whitespace or the end ([`TclError::ExtraAfterQuote`]). A missing closing quote
//!   is [`TclError::UnterminatedQuote`]. Braces inside quotes are ordinary characters.
//! * A **bare** element runs to the next whitespace that is not escaped by a backslash.
//!
//! Quoted and bare elements go through backslash substitution, exactly as Tcl's list parser
//! (`TclParseBackslash`, Tcl 8.6 and 9.0) does it:
//!
//! | sequence | gives |
//! |---|---|
//! | `\a \b \f \n \r \t \v` | U+0007, U+0008, U+000C, U+000A, U+000D, U+0009, U+000B |
//! | `\<newline>` and the spaces and tabs after it | one space |
//! | `\x` and 1–2 hex digits | that byte value as a char (U+0000–U+00FF) |
//! | `\u` and 1–4 hex digits | that char; a surrogate gives U+FFFD |
//! | `\U` and 1–8 hex digits (stopping before the value would exceed U+10FFFF) | that char; a surrogate gives U+FFFD |
//! | `\` and 1–3 octal digits (a third digit only while the value stays below `\400`) | that byte value as a char |
//! | `\` and any other char (`\\ \{ \} \" \[ \] \$ \; \<space>`, `\x` without digits, …) | that char |
//! | `\` at the very end of a bare element | a backslash |
//!
//! Tcl stops a `\<newline>` run at spaces and tabs only (not at the other whitespace of the
//! list grammar), so this module does too. The numeric escapes are never produced by the
//! reference in these fields; they are decoded the way Tcl decodes them rather than guessed.
//! (Tcl 8.6 builds limited to the BMP turn `\U` values above U+FFFF into U+FFFD; this module
//! gives the char itself, as Tcl 9 does.)
//!
//! Nothing is copied: [`Element::as_str`] returns the element's text when it needs no
//! substitution (always for braced elements, the form the reference uses for nested values),
//! and [`Element::chars`] / [`Element::write_to`] produce the substituted text otherwise.
//!
//! # Writing
//!
//! [`write_element`] and [`ListWriter`] write the canonical form that Tcl's list code
//! (`TclScanElement` / `TclConvertElement`, the same in Tcl 8.6 and 9.0) produces, so frames are
//! byte-identical to the reference's. For every value the reference produces this is spec 3.6
//! rules 1–4:
//!
//! 1. the empty string is written `{}`;
//! 2. an element without special characters (whitespace, `{ } [ ] $ ; " \`, and `#` at the
//!    start of the first element of a list) is written as is;
//! 3. otherwise, if its braces are balanced and it does not end with a backslash, it is
//!    wrapped in braces: `{port 41241}`;
//! 4. otherwise every special character is backslash-escaped (`\{`, `\ `, `\n`, …), and a
//!    leading `#` of a first element becomes `\#`.
//!
//! Tcl refines rules 3 and 4 in three corner cases, and this module follows Tcl:
//!
//! * "balanced" means the brace depth never drops below zero and ends at zero, where a brace
//!   right after a backslash is not counted (the reader's rule, so the output reads back);
//! * an element containing a backslash followed by a newline is escaped (rule 4), never braced;
//! * an element whose only reasons for quoting are `]` or a `"` that is not its first char
//!   (no whitespace, `[`, `$`, `;`, `\`, leading `{`, leading `"` or leading `#` of a first
//!   element) is escaped with backslashes but its braces are left alone: `a]b` is written
//!   `a\]b` and `x{a"b}` is written `x{a\"b}`, not `{a]b}`.
//!
//! [`element_len`] gives the exact length [`write_element`] writes, and [`LenCounter`] sizes a
//! whole [`ListWriter`] output.
//!
//! ```
//! use cluster_core::wire::tcl_list::{self, ListWriter};
//!
//! let data = "t {port 41241} u {path {/run/my app/x-Zbdc22e7.sock}}";
//! let t = tcl_list::dict_get(data, "t")?.and_then(|e| e.as_str()).unwrap_or_default();
//! assert_eq!(t, "port 41241");
//! assert!(tcl_list::dict_get(t, "port")?.is_some_and(|port| port.eq_str("41241")));
//!
//! let mut out = String::new();
//! let mut list = ListWriter::new(&mut out);
//! list.push("t")?;
//! list.push_list(|props| {
//!     props.push("port")?;
//!     props.push_display(&41241)
//! })?;
//! list.push("u")?;
//! list.push_list(|props| props.push_dict_pair("path", "/run/my app/x-Zbdc22e7.sock"))?;
//! assert_eq!(out, data);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::iter::FusedIterator;

/// Whether `b` is list whitespace: space, `\t`, `\n`, `\v`, `\f` or `\r`.
const fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// [`is_ws`] for chars.
const fn is_ws_char(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// Why a string is not a valid Tcl list or dict.
///
/// Reading has no side effects: the caller decides what to drop (a heartbeat, discovery or
/// flush whose `data` is not a valid dict is dropped whole, spec 7.3).
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TclError {
    /// A braced element has no matching closing brace.
    UnbalancedBraces,
    /// A quoted element has no closing quote.
    UnterminatedQuote,
    /// A braced element's closing brace is followed by something other than whitespace.
    ExtraAfterBrace,
    /// A quoted element's closing quote is followed by something other than whitespace.
    ExtraAfterQuote,
    /// A dict has an odd number of elements: the last key has no value.
    OddDictLength,
}

impl fmt::Display for TclError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnbalancedBraces => "unmatched open brace in list",
            Self::UnterminatedQuote => "unmatched open quote in list",
            Self::ExtraAfterBrace => {
                "list element in braces followed by a character other than whitespace"
            }
            Self::ExtraAfterQuote => {
                "list element in quotes followed by a character other than whitespace"
            }
            Self::OddDictLength => "missing value to go with key in dict",
        })
    }
}

impl core::error::Error for TclError {}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// How an element was written in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElementKind {
    /// `{…}`: taken verbatim.
    Braced,
    /// `"…"`: backslash substitution applies.
    Quoted,
    /// A bare word: backslash substitution applies.
    Bare,
}

/// One list element: a borrowed view of the input, substituted lazily.
///
/// Equality (`==`, [`eq_str`](Self::eq_str)) compares the substituted text, so `{a b}`,
/// `"a b"` and `a\ b` are equal.
#[derive(Debug, Clone, Copy)]
pub struct Element<'a> {
    raw: &'a str,
    kind: ElementKind,
    substitute: bool,
}

impl<'a> Element<'a> {
    /// The element as written, without its enclosing braces or quotes and before backslash
    /// substitution.
    #[must_use]
    pub const fn raw(&self) -> &'a str {
        self.raw
    }

    /// How the element was written.
    #[must_use]
    pub const fn kind(&self) -> ElementKind {
        self.kind
    }

    /// Whether the element's value differs from [`raw`](Self::raw): a quoted or bare element
    /// containing a backslash.
    #[must_use]
    pub const fn needs_substitution(&self) -> bool {
        self.substitute
    }

    /// The element's value, when it needs no substitution (braced elements, and quoted or bare
    /// ones without a backslash). `None` otherwise: use [`chars`](Self::chars) or
    /// [`write_to`](Self::write_to).
    #[must_use]
    pub const fn as_str(&self) -> Option<&'a str> {
        if self.substitute {
            None
        } else {
            Some(self.raw)
        }
    }

    /// The element's value, char by char, after backslash substitution.
    #[must_use]
    pub fn chars(&self) -> Chars<'a> {
        Chars {
            rest: self.raw,
            substitute: self.substitute,
        }
    }

    /// The length in bytes of the element's value (UTF-8), after substitution.
    #[must_use]
    pub fn len_substituted(&self) -> usize {
        match self.as_str() {
            Some(s) => s.len(),
            None => self
                .chars()
                .fold(0usize, |n, c| n.saturating_add(c.len_utf8())),
        }
    }

    /// Whether the element's value is the empty string.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty()
    }

    /// Whether the element's value, after substitution, equals `other`.
    #[must_use]
    pub fn eq_str(&self, other: &str) -> bool {
        match self.as_str() {
            Some(s) => s == other,
            None => self.chars().eq(other.chars()),
        }
    }

    /// Writes the element's value, after substitution, to `out`.
    ///
    /// # Errors
    ///
    /// Whatever `out` returns.
    pub fn write_to<W: fmt::Write + ?Sized>(&self, out: &mut W) -> fmt::Result {
        if !self.substitute {
            return out.write_str(self.raw);
        }
        // The substitution is written once, for every writer, through `dyn TextSink`.
        self.substitute_into(&mut Sink(&mut Unsized(out)))
    }

    #[inline(never)]
    fn substitute_into(&self, out: &mut Sink<'_>) -> fmt::Result {
        let mut rest = self.raw;
        // Found byte by byte (a backslash is ASCII): `str::split_once` would link `core`'s
        // char searcher and `memchr`.
        while let Some(at) = rest.bytes().position(|b| b == b'\\') {
            let literal = rest.get(..at).unwrap_or("");
            let escape = rest.get(at.saturating_add(1)..).unwrap_or("");
            fmt::Write::write_str(out, literal)?;
            let (c, used) = backslash(escape);
            fmt::Write::write_char(out, c)?;
            rest = escape.get(used..).unwrap_or("");
        }
        fmt::Write::write_str(out, rest)
    }

    /// The element's value read as a list, when it needs no substitution (see
    /// [`as_str`](Self::as_str)); this is how nested values such as `{port 41241}` are read.
    #[must_use]
    pub fn elements(&self) -> Option<Elements<'a>> {
        self.as_str().map(elements)
    }
}

/// A writer that may be unsized (`W: ?Sized`), behind a sized one that can become a
/// `dyn TextSink`. Over a `heapless::StringView`, one sink for strings of every capacity.
pub(crate) struct Unsized<'w, W: ?Sized>(pub(crate) &'w mut W);

impl<W: fmt::Write + ?Sized> fmt::Write for Unsized<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s)
    }
}

/// Where text goes, as a trait object: [`fmt::Write`] without its `write_fmt`, so that a
/// `dyn TextSink`'s vtable links none of `core::fmt`'s formatting machinery (a
/// `dyn fmt::Write`'s does, about 400 bytes of flash). Every [`fmt::Write`] is one.
pub(crate) trait TextSink {
    /// Appends `s`.
    fn put(&mut self, s: &str) -> fmt::Result;
}

impl<W: fmt::Write + ?Sized> TextSink for W {
    fn put(&mut self, s: &str) -> fmt::Result {
        self.write_str(s)
    }
}

/// A [`fmt::Write`] over a `dyn TextSink`: one instantiation of the generic writers (such as
/// [`ListWriter`]) for every sink.
pub(crate) struct Sink<'a>(pub(crate) &'a mut dyn TextSink);

impl fmt::Write for Sink<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.put(s)
    }
}

impl fmt::Display for Element<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write_to(f)
    }
}

impl PartialEq for Element<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self.as_str(), other.as_str()) {
            (Some(a), Some(b)) => a == b,
            _ => self.chars().eq(other.chars()),
        }
    }
}

impl Eq for Element<'_> {}

impl PartialEq<str> for Element<'_> {
    fn eq(&self, other: &str) -> bool {
        self.eq_str(other)
    }
}

impl PartialEq<&str> for Element<'_> {
    fn eq(&self, other: &&str) -> bool {
        self.eq_str(other)
    }
}

/// The chars of an [`Element`]'s value, after backslash substitution. See [`Element::chars`].
#[derive(Debug, Clone)]
pub struct Chars<'a> {
    rest: &'a str,
    substitute: bool,
}

impl Iterator for Chars<'_> {
    type Item = char;

    fn next(&mut self) -> Option<char> {
        let mut chars = self.rest.chars();
        let c = chars.next()?;
        self.rest = chars.as_str();
        if c == '\\' && self.substitute {
            let (c, used) = backslash(self.rest);
            self.rest = self.rest.get(used..).unwrap_or("");
            Some(c)
        } else {
            Some(c)
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // Every byte is at most one char; a backslash sequence of any length is one char.
        (usize::from(!self.rest.is_empty()), Some(self.rest.len()))
    }
}

impl FusedIterator for Chars<'_> {}

/// Decodes one backslash sequence. `after` is the text right after the backslash; returns the
/// char it stands for and how many bytes of `after` the sequence uses (as `TclParseBackslash`).
fn backslash(after: &str) -> (char, usize) {
    let Some(c) = after.chars().next() else {
        return ('\\', 0);
    };
    let digits = after.get(1..).unwrap_or("");
    let simple = |c: char| (c, 1);
    // The one-letter escapes, and the control characters they stand for.
    const LETTERS: &[u8; 7] = b"abfnrtv";
    const CONTROLS: &[u8; 7] = b"\x07\x08\x0c\n\r\t\x0b";
    let letter = LETTERS.iter().position(|&l| char::from(l) == c);
    if let Some(&control) = letter.and_then(|i| CONTROLS.get(i)) {
        return simple(char::from(control));
    }
    match c {
        'x' | 'u' | 'U' => {
            let max = match c {
                'x' => 2,
                'u' => 4,
                _ => 8,
            };
            match hex(digits, max) {
                (_, 0) => simple(c),
                // `\x` keeps the low 8 bits; `\u` and `\U` are code points.
                (value, n) if c == 'x' => (byte_char(value), n.saturating_add(1)),
                (value, n) => (code_point(value), n.saturating_add(1)),
            }
        }
        '\n' => {
            let run = digits
                .bytes()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            (' ', run.saturating_add(1))
        }
        '0'..='7' => {
            let mut value = octal_digit(c);
            let mut used = 1;
            let mut more = digits.chars();
            if let Some(d) = more.next().filter(|d| matches!(d, '0'..='7')) {
                value = value.wrapping_mul(8) | octal_digit(d);
                used = 2;
                if value < 0o40
                    && let Some(d) = more.next().filter(|d| matches!(d, '0'..='7'))
                {
                    value = value.wrapping_mul(8) | octal_digit(d);
                    used = 3;
                }
            }
            (byte_char(value), used)
        }
        other => (other, other.len_utf8()),
    }
}

/// Reads up to `max` hex digits as `TclParseHex` does: it stops before a digit that would take
/// the value past U+10FFFF. Returns the value and the number of digits used.
fn hex(digits: &str, max: usize) -> (u32, usize) {
    let mut value: u32 = 0;
    let mut used: usize = 0;
    for digit in digits.chars().take(max).map_while(|c| c.to_digit(16)) {
        if value > 0x10fff {
            break;
        }
        value = value.wrapping_mul(16) | digit;
        used = used.saturating_add(1);
    }
    (value, used)
}

/// The value of an octal digit char (`'0'..='7'`).
fn octal_digit(c: char) -> u32 {
    c.to_digit(8).unwrap_or(0)
}

/// The char of a byte value (Tcl keeps the low 8 bits of `\x` and octal escapes).
fn byte_char(value: u32) -> char {
    char::from_u32(value & 0xff).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// The char of a code point; surrogates (and anything else that is not a char) give U+FFFD.
fn code_point(value: u32) -> char {
    char::from_u32(value).unwrap_or(char::REPLACEMENT_CHARACTER)
}

/// Reads the elements of a Tcl list.
///
/// The iterator yields each element in order, or one error and then `None`. It never
/// allocates, never panics and ends after at most `text.len()` elements.
///
/// ```
/// use cluster_core::wire::tcl_list::{elements, TclError};
///
/// let sids: Vec<_> = elements("Zz998877 Yy112233").map(|e| e.map(|e| e.raw())).collect();
/// assert_eq!(sids, [Ok("Zz998877"), Ok("Yy112233")]);
/// assert_eq!(elements("{a").next(), Some(Err(TclError::UnbalancedBraces)));
/// ```
#[must_use]
pub fn elements(text: &str) -> Elements<'_> {
    Elements { rest: Some(text) }
}

/// Checks that `text` is a valid Tcl list and returns its number of elements.
///
/// # Errors
///
/// The first syntax error, as [`elements`] reports it.
pub fn validate_list(text: &str) -> Result<usize, TclError> {
    elements(text).try_fold(0usize, |n, element| element.map(|_| n.saturating_add(1)))
}

/// The elements of a Tcl list, see [`elements`].
#[derive(Debug, Clone)]
pub struct Elements<'a> {
    /// The unread text; `None` once the list ended or an error was reported.
    rest: Option<&'a str>,
}

impl<'a> Iterator for Elements<'a> {
    type Item = Result<Element<'a>, TclError>;

    fn next(&mut self) -> Option<Self::Item> {
        let text = self.rest.take()?;
        match split_element(text) {
            Ok(Some((element, rest))) => {
                self.rest = Some(rest);
                Some(Ok(element))
            }
            Ok(None) => None,
            Err(error) => Some(Err(error)),
        }
    }
}

impl FusedIterator for Elements<'_> {}

/// Reads the next element of `text`, returning it and the text after it.
fn split_element(text: &str) -> Result<Option<(Element<'_>, &str)>, TclError> {
    let text = text.trim_start_matches(is_ws_char);
    match text.as_bytes().first() {
        None => Ok(None),
        Some(b'{') => braced(text).map(Some),
        Some(b'"') => quoted(text).map(Some),
        Some(_) => Ok(Some(bare(text))),
    }
}

/// Checks that an element delimited by braces or quotes is followed by whitespace or the end.
fn check_separator(rest: &str, error: TclError) -> Result<(), TclError> {
    match rest.as_bytes().first() {
        Some(&b) if !is_ws(b) => Err(error),
        _ => Ok(()),
    }
}

/// Reads a braced element; `text` starts with `{`.
fn braced(text: &str) -> Result<(Element<'_>, &str), TclError> {
    let mut depth: usize = 0;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => escaped = true,
            b'{' => depth = depth.saturating_add(1),
            b'}' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    let (head, tail) =
                        text.split_at_checked(i).ok_or(TclError::UnbalancedBraces)?;
                    let rest = tail.get(1..).unwrap_or("");
                    check_separator(rest, TclError::ExtraAfterBrace)?;
                    let element = Element {
                        raw: head.get(1..).unwrap_or(""),
                        kind: ElementKind::Braced,
                        substitute: false,
                    };
                    return Ok((element, rest));
                }
            }
            _ => {}
        }
    }
    Err(TclError::UnbalancedBraces)
}

/// Reads a quoted element; `text` starts with `"`.
fn quoted(text: &str) -> Result<(Element<'_>, &str), TclError> {
    let body = text.get(1..).unwrap_or("");
    let mut escaped = false;
    let mut substitute = false;
    for (i, b) in body.bytes().enumerate() {
        if escaped {
            escaped = false;
            continue;
        }
        match b {
            b'\\' => {
                escaped = true;
                substitute = true;
            }
            b'"' => {
                let (raw, tail) = body
                    .split_at_checked(i)
                    .ok_or(TclError::UnterminatedQuote)?;
                let rest = tail.get(1..).unwrap_or("");
                check_separator(rest, TclError::ExtraAfterQuote)?;
                let element = Element {
                    raw,
                    kind: ElementKind::Quoted,
                    substitute,
                };
                return Ok((element, rest));
            }
            _ => {}
        }
    }
    Err(TclError::UnterminatedQuote)
}

/// Reads a bare element; `text` is not empty and starts with neither whitespace, `{` nor `"`.
fn bare(text: &str) -> (Element<'_>, &str) {
    /// Where the scan is relative to backslash sequences.
    #[derive(Clone, Copy)]
    enum State {
        Normal,
        /// The previous byte was a backslash: this byte belongs to its sequence.
        Backslash,
        /// Inside `\<newline>`: spaces and tabs still belong to the sequence.
        Continuation,
    }
    let mut state = State::Normal;
    let mut substitute = false;
    let mut end = text.len();
    for (i, b) in text.bytes().enumerate() {
        state = match state {
            State::Backslash if b == b'\n' => State::Continuation,
            State::Backslash => State::Normal,
            State::Continuation if matches!(b, b' ' | b'\t') => State::Continuation,
            State::Normal | State::Continuation => {
                if b == b'\\' {
                    substitute = true;
                    State::Backslash
                } else if is_ws(b) {
                    end = i;
                    break;
                } else {
                    State::Normal
                }
            }
        };
    }
    let (raw, rest) = text.split_at_checked(end).unwrap_or((text, ""));
    let element = Element {
        raw,
        kind: ElementKind::Bare,
        substitute,
    };
    (element, rest)
}

/// Reads a Tcl dict as its `(key, value)` pairs, in order.
///
/// Duplicate keys are yielded as they appear; in Tcl the last one wins (see [`dict_get`]).
/// An odd number of elements ends with [`TclError::OddDictLength`]. After an error the
/// iterator ends.
#[must_use]
pub fn dict_pairs(text: &str) -> DictPairs<'_> {
    DictPairs {
        elements: elements(text),
    }
}

/// The pairs of a Tcl dict, see [`dict_pairs`].
#[derive(Debug, Clone)]
pub struct DictPairs<'a> {
    elements: Elements<'a>,
}

impl<'a> Iterator for DictPairs<'a> {
    type Item = Result<(Element<'a>, Element<'a>), TclError>;

    fn next(&mut self) -> Option<Self::Item> {
        let key = match self.elements.next()? {
            Ok(key) => key,
            Err(error) => return Some(Err(error)),
        };
        Some(match self.elements.next() {
            Some(Ok(value)) => Ok((key, value)),
            Some(Err(error)) => Err(error),
            None => Err(TclError::OddDictLength),
        })
    }
}

impl FusedIterator for DictPairs<'_> {}

/// Looks up `key` in the Tcl dict `text`, comparing substituted values.
///
/// The whole dict is validated first; for a duplicate key the last value wins, as in Tcl.
///
/// # Errors
///
/// The first syntax error of the dict, or [`TclError::OddDictLength`].
pub fn dict_get<'a>(text: &'a str, key: &str) -> Result<Option<Element<'a>>, TclError> {
    let mut found = None;
    for pair in dict_pairs(text) {
        let (k, v) = pair?;
        if k.eq_str(key) {
            found = Some(v);
        }
    }
    Ok(found)
}

/// Checks that `text` is a valid Tcl dict and returns its number of pairs (duplicate keys
/// counted each time they appear).
///
/// # Errors
///
/// The first syntax error of the dict, or [`TclError::OddDictLength`].
pub fn validate_dict(text: &str) -> Result<usize, TclError> {
    dict_pairs(text).try_fold(0usize, |n, pair| pair.map(|_| n.saturating_add(1)))
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// How an element is written (Tcl's `CONVERT_*` modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `{}`.
    Empty,
    /// As is.
    Plain,
    /// Wrapped in braces.
    Braced,
    /// Special characters backslash-escaped; braces too if `braces`; a leading `#` too if
    /// `hash`.
    Escaped { braces: bool, hash: bool },
}

/// Classifies an element as `TclScanElement` does, fed in chunks.
#[derive(Debug, Clone, Default)]
struct Scan {
    /// The element is the first of its list (a leading `#` needs quoting).
    first_element: bool,
    len: usize,
    first_byte: Option<u8>,
    depth: usize,
    /// The previous byte was a backslash whose sequence is not yet classified.
    backslash: bool,
    forbid_none: bool,
    require_escape: bool,
    prefer_escape: bool,
    prefer_brace: bool,
    /// Bytes that take one extra byte when escaped, braces excluded.
    specials: usize,
    braces: usize,
}

impl Scan {
    fn new(first_element: bool) -> Self {
        Self {
            first_element,
            ..Self::default()
        }
    }

    /// Feeds the next chunk of the element.
    fn feed(&mut self, s: &str) {
        s.bytes().for_each(|b| self.byte(b));
        self.len = self.len.saturating_add(s.len());
    }

    /// Classifies one byte, as one step of `TclScanElement`'s loop.
    fn byte(&mut self, b: u8) {
        if self.first_byte.is_none() {
            self.first_byte = Some(b);
            if b == b'{' || b == b'"' {
                // A leading brace or quote would be read as a delimiter.
                self.forbid_none = true;
                self.prefer_brace = true;
            } else if b == b'#' && self.first_element {
                self.prefer_brace = true;
            }
        }
        match b {
            b'{' | b'}' => self.braces = self.braces.saturating_add(1),
            b']' | b'[' | b'$' | b';' | b'"' | b'\\' => {
                self.specials = self.specials.saturating_add(1);
            }
            _ if is_ws(b) => self.specials = self.specials.saturating_add(1),
            _ => {}
        }
        if self.backslash {
            self.backslash = false;
            if b == b'\n' {
                // Backslash-newline: brace quoting would change the value when evaluated.
                self.require_escape = true;
                return;
            }
            self.forbid_none = true;
            self.prefer_brace = true;
            if matches!(b, b'{' | b'}' | b'\\') {
                // Taken together with the backslash: not counted as a brace or a backslash.
                return;
            }
        }
        match b {
            b'{' => self.depth = self.depth.saturating_add(1),
            b'}' => match self.depth.checked_sub(1) {
                Some(depth) => self.depth = depth,
                None => self.require_escape = true,
            },
            b']' | b'"' => {
                self.forbid_none = true;
                self.prefer_escape = true;
            }
            b'[' | b'$' | b';' => {
                self.forbid_none = true;
                self.prefer_brace = true;
            }
            b'\\' => self.backslash = true,
            _ if is_ws(b) => {
                self.forbid_none = true;
                self.prefer_brace = true;
            }
            _ => {}
        }
    }

    fn form(&self) -> Form {
        let hash = self.first_element && self.first_byte == Some(b'#');
        if self.len == 0 {
            Form::Empty
        } else if self.require_escape || self.backslash || self.depth != 0 {
            // Unbalanced braces, a final backslash or a backslash-newline.
            Form::Escaped { braces: true, hash }
        } else if self.forbid_none {
            if self.prefer_escape && !self.prefer_brace {
                Form::Escaped {
                    braces: false,
                    hash: false,
                }
            } else {
                Form::Braced
            }
        } else if hash {
            Form::Braced
        } else {
            Form::Plain
        }
    }

    /// The exact number of bytes the element takes when written.
    fn written_len(&self) -> usize {
        match self.form() {
            Form::Empty => 2,
            Form::Plain => self.len,
            Form::Braced => self.len.saturating_add(2),
            Form::Escaped { braces, hash } => self
                .len
                .saturating_add(self.specials)
                .saturating_add(if braces { self.braces } else { 0 })
                .saturating_add(usize::from(hash)),
        }
    }
}

impl fmt::Write for Scan {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.feed(s);
        Ok(())
    }
}

/// Writes an element's text in a given [`Form`], fed in chunks (`TclConvertElement`).
struct Emit<'w, W: ?Sized> {
    out: &'w mut W,
    form: Form,
    at_start: bool,
}

impl<W: fmt::Write + ?Sized> fmt::Write for Emit<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let Form::Escaped { braces, hash } = self.form else {
            return match self.form {
                Form::Empty => Ok(()),
                _ => self.out.write_str(s),
            };
        };
        let mut s = s;
        if self.at_start && !s.is_empty() {
            self.at_start = false;
            if hash && let Some(after) = s.strip_prefix('#') {
                self.out.write_str("\\#")?;
                s = after;
            }
        }
        write_escaped(&mut *self.out, s, braces)
    }
}

/// Writes `s` with every special character backslash-escaped (braces only if `braces`).
fn write_escaped<W: fmt::Write + ?Sized>(out: &mut W, s: &str, braces: bool) -> fmt::Result {
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let Some(letter) = escape_letter(b).filter(|_| braces || !matches!(b, b'{' | b'}')) else {
            continue;
        };
        out.write_str(s.get(start..i).unwrap_or(""))?;
        out.write_char('\\')?;
        out.write_char(char::from(letter))?;
        start = i.saturating_add(1);
    }
    out.write_str(s.get(start..).unwrap_or(""))
}

/// The letter that follows the backslash when `b` is written escaped: the character itself,
/// or `f n r t v` for the white space that has a name; `None` for a byte written as is.
const fn escape_letter(b: u8) -> Option<u8> {
    Some(match b {
        b']' | b'[' | b'$' | b';' | b' ' | b'\\' | b'"' | b'{' | b'}' => b,
        0x0c => b'f',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x0b => b'v',
        _ => return None,
    })
}

/// Writes an element in `form`; `body` writes its text into the given writer.
fn emit<W, F>(out: &mut W, form: Form, body: F) -> fmt::Result
where
    W: fmt::Write + ?Sized,
    F: FnOnce(&mut Emit<'_, W>) -> fmt::Result,
{
    match form {
        Form::Empty => return out.write_str("{}"),
        Form::Braced => out.write_char('{')?,
        Form::Plain | Form::Escaped { .. } => {}
    }
    body(&mut Emit {
        out: &mut *out,
        form,
        at_start: true,
    })?;
    if form == Form::Braced {
        out.write_char('}')?;
    }
    Ok(())
}

/// Writes one list element in the reference's canonical form (see the [module docs](self)).
///
/// `first` says whether the element is the first of its list, where a leading `#` needs
/// quoting. Separators are the caller's business; [`ListWriter`] adds them.
///
/// ```
/// use cluster_core::wire::tcl_list::write_element;
///
/// let mut out = String::new();
/// write_element(&mut out, "port 41241", false)?;
/// write_element(&mut out, "", false)?;
/// write_element(&mut out, "#x", true)?;
/// write_element(&mut out, "a}", false)?;
/// assert_eq!(out, r"{port 41241}{}{#x}a\}");
/// # Ok::<(), core::fmt::Error>(())
/// ```
///
/// # Errors
///
/// Whatever `out` returns.
pub fn write_element<W: fmt::Write + ?Sized>(
    out: &mut W,
    element: &str,
    first: bool,
) -> fmt::Result {
    let mut scan = Scan::new(first);
    scan.feed(element);
    emit(out, scan.form(), |emit| {
        fmt::Write::write_str(emit, element)
    })
}

/// The exact number of bytes [`write_element`] writes for `element`.
#[must_use]
pub fn element_len(element: &str, first: bool) -> usize {
    let mut scan = Scan::new(first);
    scan.feed(element);
    scan.written_len()
}

/// Writes a Tcl list (or dict) element by element into a [`fmt::Write`], with single spaces
/// between elements.
///
/// Give it `&mut String`, a `heapless::String`, a [`fmt::Formatter`], or a [`LenCounter`] to
/// learn the exact length first.
///
/// ```
/// use cluster_core::wire::tcl_list::{LenCounter, ListWriter};
///
/// let write = |out: &mut dyn core::fmt::Write| {
///     let mut list = ListWriter::new(out);
///     list.push_dict_pair("protocols", "t u")
/// };
/// let mut counter = LenCounter::new();
/// write(&mut counter)?;
/// let mut out = String::new();
/// write(&mut out)?;
/// assert_eq!(out, "protocols {t u}");
/// assert_eq!(counter.len(), out.len());
/// # Ok::<(), core::fmt::Error>(())
/// ```
#[derive(Debug)]
pub struct ListWriter<W> {
    out: W,
    empty: bool,
}

impl<W: fmt::Write> ListWriter<W> {
    /// A writer that appends a list to `out`.
    #[must_use]
    pub const fn new(out: W) -> Self {
        Self { out, empty: true }
    }

    /// Whether no element has been pushed yet.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.empty
    }

    /// The underlying writer.
    #[must_use]
    pub const fn get_ref(&self) -> &W {
        &self.out
    }

    /// Returns the underlying writer.
    #[must_use]
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Writes the separator if needed and returns whether the next element is the first.
    fn start_element(&mut self) -> Result<bool, fmt::Error> {
        let first = self.empty;
        if !first {
            self.out.write_char(' ')?;
        }
        self.empty = false;
        Ok(first)
    }

    /// Appends one element.
    ///
    /// # Errors
    ///
    /// Whatever the underlying writer returns.
    pub fn push(&mut self, element: &str) -> fmt::Result {
        let first = self.start_element()?;
        write_element(&mut self.out, element, first)
    }

    /// Appends the text `value` displays as one element, without a buffer: `value` is
    /// formatted twice (once to choose the form, once to write it), so its output must be
    /// the same both times.
    ///
    /// # Errors
    ///
    /// Whatever the underlying writer or `value`'s `Display` returns.
    pub fn push_display<T: fmt::Display + ?Sized>(&mut self, value: &T) -> fmt::Result {
        let first = self.start_element()?;
        let mut scan = Scan::new(first);
        fmt::Write::write_fmt(&mut scan, format_args!("{value}"))?;
        emit(&mut self.out, scan.form(), |emit| {
            fmt::Write::write_fmt(emit, format_args!("{value}"))
        })
    }

    /// Appends a nested list as one element, without a buffer: `build` pushes the nested
    /// list's elements. It is called twice and must push the same elements both times.
    ///
    /// ```
    /// use cluster_core::wire::tcl_list::ListWriter;
    ///
    /// let mut out = String::new();
    /// let mut list = ListWriter::new(&mut out);
    /// list.push("t")?;
    /// list.push_list(|props| props.push_dict_pair("port", "41241"))?;
    /// assert_eq!(out, "t {port 41241}");
    /// # Ok::<(), core::fmt::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// Whatever the underlying writer or `build` returns.
    pub fn push_list<F>(&mut self, build: F) -> fmt::Result
    where
        F: Fn(&mut ListWriter<&mut dyn fmt::Write>) -> fmt::Result,
    {
        self.push_display(&NestedList(build))
    }

    /// Appends a dict entry: `key`, then `value`.
    ///
    /// # Errors
    ///
    /// Whatever the underlying writer returns.
    pub fn push_dict_pair(&mut self, key: &str, value: &str) -> fmt::Result {
        self.push(key)?;
        self.push(value)
    }
}

/// Displays the list a [`ListWriter::push_list`] closure builds.
struct NestedList<F>(F);

impl<F> fmt::Display for NestedList<F>
where
    F: Fn(&mut ListWriter<&mut dyn fmt::Write>) -> fmt::Result,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = ListWriter::new(f as &mut dyn fmt::Write);
        (self.0)(&mut list)
    }
}

/// A [`fmt::Write`] that only counts the bytes written, to size a buffer before writing.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LenCounter {
    len: usize,
}

impl LenCounter {
    /// A counter at zero.
    #[must_use]
    pub const fn new() -> Self {
        Self { len: 0 }
    }

    /// The number of bytes written so far.
    #[must_use]
    pub const fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written.
    #[must_use]
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl fmt::Write for LenCounter {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.len = self.len.saturating_add(s.len());
        Ok(())
    }
}

#[cfg(test)]
mod tests;
