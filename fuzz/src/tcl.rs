//! Body of the `tcl_list` target.
//!
//! The whole input, read as UTF-8 (invalid sequences replaced), is parsed as a list and as a
//! dict. The input split at `ff` bytes (never part of UTF-8) is a list of elements to write
//! with [`ListWriter`] and read back.

use core::fmt::Write as _;

use cluster_core::wire::tcl_list::{
    self, Element, LenCounter, ListWriter, dict_get, dict_pairs, element_len, elements,
    validate_dict, validate_list, write_element,
};

/// See [`crate::tcl_list`].
pub fn run(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    read_any(&text, 2);
    let items: Vec<String> = data
        .split(|b| *b == 0xFF)
        .map(|part| String::from_utf8_lossy(part).into_owned())
        .collect();
    write_then_read(&items);
}

/// Reads `text` as a list and a dict: never panics, ends, and the ways of reading agree.
/// Nested lists are read `depth` levels deep.
fn read_any(text: &str, depth: u32) {
    let mut count = 0usize;
    let mut valid = Ok(0usize);
    for item in elements(text) {
        count += 1;
        assert!(
            count <= text.len() + 1,
            "more elements than bytes in {text:?}"
        );
        match item {
            Ok(element) => {
                check_element(&element, depth);
                if let Ok(n) = &mut valid {
                    *n += 1;
                }
            }
            Err(e) => {
                if valid.is_ok() {
                    valid = Err(e);
                }
            }
        }
    }
    assert_eq!(
        validate_list(text),
        valid,
        "validate_list agrees with elements"
    );

    let mut pairs = 0usize;
    let mut last = None;
    let mut dict_valid = Ok(0usize);
    for pair in dict_pairs(text) {
        pairs += 1;
        assert!(pairs <= text.len() + 1);
        match pair {
            Ok((key, value)) => {
                if let Ok(n) = &mut dict_valid {
                    *n += 1;
                }
                last = Some((substituted(&key), substituted(&value)));
            }
            Err(e) => {
                if dict_valid.is_ok() {
                    dict_valid = Err(e);
                }
            }
        }
    }
    assert_eq!(validate_dict(text), dict_valid);
    match (dict_valid, last) {
        (Ok(_), Some((key, value))) => {
            // The last pair's value is what its key maps to.
            let found = dict_get(text, &key).expect("a valid dict is read");
            assert_eq!(found.map(|v| substituted(&v)).as_deref(), Some(&*value));
        }
        (Err(e), _) => assert_eq!(dict_get(text, "k").err(), Some(e)),
        (Ok(_), None) => assert_eq!(dict_get(text, "k"), Ok(None)),
    }
}

/// The ways of reading one element's value agree.
fn check_element(element: &Element<'_>, depth: u32) {
    let raw = element.raw();
    let value = substituted(element);
    let chars: String = element.chars().collect();
    assert_eq!(value, chars, "write_to and chars agree");
    assert_eq!(element.to_string(), value, "Display agrees");
    assert_eq!(element.len_substituted(), value.len());
    assert!(element.eq_str(&value));
    assert!(element.eq(element), "an element equals itself");
    assert!(value.chars().count() <= raw.chars().count().max(1));
    match element.as_str() {
        Some(s) => {
            assert!(!element.needs_substitution());
            assert_eq!(s, value);
        }
        None => assert!(element.needs_substitution()),
    }
    assert_eq!(element.is_empty(), raw.is_empty());
    if depth > 0 {
        if let Some(nested) = element.elements() {
            // Nested elements are views of the same text.
            let count = nested.take(raw.len() + 2).count();
            assert!(count <= raw.len() + 1);
        }
        read_any(&value, depth - 1);
    }
}

fn substituted(element: &Element<'_>) -> String {
    let mut out = String::new();
    element.write_to(&mut out).expect("a String takes any text");
    out
}

/// Writing elements then reading them back gives the same elements, also nested one level
/// and as a dict.
fn write_then_read(items: &[String]) {
    let mut text = String::new();
    let mut list = ListWriter::new(&mut text);
    for item in items {
        list.push(item).expect("a String takes any text");
    }
    assert_eq!(list.is_empty(), items.is_empty());
    let mut counter = LenCounter::new();
    let mut counted = ListWriter::new(&mut counter);
    for item in items {
        counted.push(item).expect("counting never fails");
    }
    assert_eq!(
        counter.len(),
        text.len(),
        "LenCounter sizes the list exactly"
    );
    assert_reads_as(&text, items);

    // Each element alone, first or not.
    for item in items {
        for first in [true, false] {
            let mut one = String::new();
            write_element(&mut one, item, first).expect("a String takes any text");
            assert_eq!(
                one.len(),
                element_len(item, first),
                "element_len of {item:?}"
            );
        }
    }

    // The list nested as one element between two others.
    let mut outer = String::new();
    let mut list = ListWriter::new(&mut outer);
    list.push("head").expect("write");
    list.push_list(|nested| items.iter().try_for_each(|item| nested.push(item)))
        .expect("write");
    list.push_display(&items.len()).expect("write");
    let read: Vec<Element<'_>> = elements(&outer)
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("written list {outer:?} does not read: {e:?}"));
    assert_eq!(read.len(), 3, "{outer:?}");
    assert!(read[0].eq_str("head"));
    assert!(read[2].eq_str(&items.len().to_string()));
    let nested = substituted(&read[1]);
    assert_eq!(nested, text, "a nested list reads back as written");
    assert_reads_as(&nested, items);

    // As a dict: the last value of each key wins.
    if items.len().is_multiple_of(2) {
        let mut dict = String::new();
        let mut writer = ListWriter::new(&mut dict);
        for pair in items.chunks(2) {
            writer.push_dict_pair(&pair[0], &pair[1]).expect("write");
        }
        assert_eq!(validate_dict(&dict), Ok(items.len() / 2));
        // Each lookup reads the whole dict: look up a few keys only.
        for pair in items.chunks(2).take(8) {
            let last = items
                .chunks(2)
                .rfind(|p| p[0] == pair[0])
                .map(|p| p[1].as_str());
            let found = dict_get(&dict, &pair[0]).expect("a written dict reads");
            assert_eq!(found.map(|v| substituted(&v)).as_deref(), last);
        }
    }
}

fn assert_reads_as(text: &str, items: &[String]) {
    let read: Vec<String> = elements(text)
        .map(|e| {
            e.map(|e| substituted(&e))
                .unwrap_or_else(|err| panic!("written list {text:?} does not read: {err:?}"))
        })
        .collect();
    assert_eq!(read, items, "list {text:?} reads back differently");
    assert_eq!(validate_list(text), Ok(items.len()));
    let _ = tcl_list::validate_dict(text);
    let mut check = String::new();
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            check.push(' ');
        }
        write!(check, "{}", Quoted(item, index == 0)).expect("write");
    }
    assert_eq!(
        check, text,
        "ListWriter writes elements separated by single spaces"
    );
}

/// `write_element` as a `Display`.
struct Quoted<'a>(&'a str, bool);

impl core::fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write_element(f, self.0, self.1)
    }
}
