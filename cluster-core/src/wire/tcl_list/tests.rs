use std::string::{String, ToString};
use std::vec::Vec;
use std::{format, vec};

use proptest::prelude::*;

use super::*;

/// Reads `text` into owned, substituted elements.
fn read(text: &str) -> Result<Vec<String>, TclError> {
    elements(text)
        .map(|element| element.map(|e| e.chars().collect()))
        .collect()
}

/// Writes `items` as a list.
fn write_list<S: AsRef<str>>(items: &[S]) -> String {
    let mut out = String::new();
    let mut list = ListWriter::new(&mut out);
    for item in items {
        list.push(item.as_ref()).unwrap();
    }
    out
}

/// Writes one element as `first` says.
fn written(element: &str, first: bool) -> String {
    let mut out = String::new();
    write_element(&mut out, element, first).unwrap();
    out
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Lists and what Tcl 8.6.13 reads from them (`llength` / `foreach`, captured with `tclsh`).
/// The one difference is marked: `\U` above U+FFFF.
const READ_CASES: &[(&str, Result<&[&str], TclError>)] = &[
    ("t {port 41241}", Ok(&["t", "port 41241"])),
    (
        "t {port 41241} u {path {/run/my app/x-Zbdc22e7.sock}}",
        Ok(&["t", "port 41241", "u", "path {/run/my app/x-Zbdc22e7.sock}"]),
    ),
    ("protocols t", Ok(&["protocols", "t"])),
    ("protocols {t u}", Ok(&["protocols", "t u"])),
    ("Zz998877 Yy112233", Ok(&["Zz998877", "Yy112233"])),
    ("", Ok(&[])),
    ("{}", Ok(&[""])),
    ("\"\"", Ok(&[""])),
    ("{} {}", Ok(&["", ""])),
    ("  \t\n ", Ok(&[])),
    (" a  b\t\tc\n", Ok(&["a", "b", "c"])),
    ("a\u{b}b\u{c}c\rd", Ok(&["a", "b", "c", "d"])),
    ("a\u{a0}b", Ok(&["a\u{a0}b"])),
    ("{a {b c} d}", Ok(&["a {b c} d"])),
    ("{{}}", Ok(&["{}"])),
    ("{a\\{b}", Ok(&["a\\{b"])),
    ("{a\\}b}", Ok(&["a\\}b"])),
    ("{a\\\\}", Ok(&["a\\\\"])),
    ("{a \\n b}", Ok(&["a \\n b"])),
    ("{a\\\n  b}", Ok(&["a\\\n  b"])),
    ("\"a b\" c", Ok(&["a b", "c"])),
    ("\"a\\\"b\"", Ok(&["a\"b"])),
    ("\"{\"", Ok(&["{"])),
    ("\"a\\nb\"", Ok(&["a\nb"])),
    ("a\\ b", Ok(&["a b"])),
    ("a\\nb", Ok(&["a\nb"])),
    ("a\\tb\\r\\v\\f", Ok(&["a\tb\r\u{b}\u{c}"])),
    ("\\a\\b", Ok(&["\u{7}\u{8}"])),
    ("a\\\\b", Ok(&["a\\b"])),
    ("\\{\\}\\\"\\[\\]\\$\\;", Ok(&["{}\"[]$;"])),
    ("a\\\n   b c", Ok(&["a b", "c"])),
    ("a\\\n\n b", Ok(&["a ", "b"])),
    ("a\\\n", Ok(&["a "])),
    ("a\\", Ok(&["a\\"])),
    ("\\x41\\x4g\\x\\x123", Ok(&["A\u{4}gx\u{12}3"])),
    ("\\u00e9\\u12345\\u", Ok(&["\u{e9}\u{1234}5u"])),
    ("\\ud800", Ok(&["\u{fffd}"])),
    // Tcl 8.6 (BMP-only build) gives U+FFFD for the first and third escape; Tcl 9 and this
    // module give the chars.
    ("\\U1F600\\U\\U110000", Ok(&["\u{1f600}U\u{11000}0"])),
    ("\\101\\400\\777\\8\\38\\0", Ok(&["A 0?78\u{3}8\u{0}"])),
    ("\\q\\\u{e9}", Ok(&["q\u{e9}"])),
    ("a{b c}d", Ok(&["a{b", "c}d"])),
    ("a\"b", Ok(&["a\"b"])),
    ("x{", Ok(&["x{"])),
    ("{a}\t{b}", Ok(&["a", "b"])),
    ("\"a\"\n\"b\"", Ok(&["a", "b"])),
    ("\\#a", Ok(&["#a"])),
    ("\\\\\\\\", Ok(&["\\\\"])),
    ("{a", Err(TclError::UnbalancedBraces)),
    ("{a}b", Err(TclError::ExtraAfterBrace)),
    ("\"a", Err(TclError::UnterminatedQuote)),
    ("\"a\"b", Err(TclError::ExtraAfterQuote)),
    ("{a\\}", Err(TclError::UnbalancedBraces)),
    ("{a} {b", Err(TclError::UnbalancedBraces)),
    ("a {b}c", Err(TclError::ExtraAfterBrace)),
    ("\"a\\\"", Err(TclError::UnterminatedQuote)),
    ("{{}", Err(TclError::UnbalancedBraces)),
    ("a \"b", Err(TclError::UnterminatedQuote)),
    ("{a}{b}", Err(TclError::ExtraAfterBrace)),
    ("\"a\"\"b\"", Err(TclError::ExtraAfterQuote)),
];

#[test]
fn every_read_case_gives_what_tcl_reads() {
    for (text, expected) in READ_CASES {
        let expected = expected.map(|items| items.iter().map(|s| s.to_string()).collect());
        assert_eq!(read(text), expected, "reading {text:?}");
    }
}

#[test]
fn the_iterator_ends_after_an_error() {
    let mut items = elements("a b {c d");
    assert_eq!(items.next().map(|e| e.unwrap().raw()), Some("a"));
    assert_eq!(items.next().map(|e| e.unwrap().raw()), Some("b"));
    assert_eq!(items.next(), Some(Err(TclError::UnbalancedBraces)));
    assert_eq!(items.next(), None);
    assert_eq!(items.next(), None);

    let mut pairs = dict_pairs("a 1 b");
    assert!(pairs.next().unwrap().is_ok());
    assert_eq!(pairs.next(), Some(Err(TclError::OddDictLength)));
    assert_eq!(pairs.next(), None);
}

#[test]
fn braced_elements_borrow_the_input_verbatim() {
    let text = "t {port 41241} u {path {/run/my app/x.sock}}";
    let items: Vec<Element<'_>> = elements(text).map(Result::unwrap).collect();
    assert_eq!(items.len(), 4);
    let props = items[3];
    assert_eq!(props.kind(), ElementKind::Braced);
    assert_eq!(props.as_str(), Some("path {/run/my app/x.sock}"));
    assert!(!props.needs_substitution());
    // Zero-copy: the slice points into `text`.
    let offset = props.raw().as_ptr() as usize - text.as_ptr() as usize;
    assert_eq!(&text[offset..offset + props.raw().len()], props.raw());
    let nested: Vec<String> = props
        .elements()
        .unwrap()
        .map(|e| e.unwrap().to_string())
        .collect();
    assert_eq!(nested, ["path", "/run/my app/x.sock"]);
}

#[test]
fn element_kinds_and_substitution_are_reported() {
    let items: Vec<Element<'_>> = elements(r#"{a\nb} "a\nb" a\nb "ab" ab"#)
        .map(Result::unwrap)
        .collect();
    let kinds: Vec<_> = items.iter().map(Element::kind).collect();
    assert_eq!(
        kinds,
        [
            ElementKind::Braced,
            ElementKind::Quoted,
            ElementKind::Bare,
            ElementKind::Quoted,
            ElementKind::Bare
        ]
    );
    assert_eq!(items[0].as_str(), Some(r"a\nb"));
    assert_eq!(items[1].as_str(), None);
    assert_eq!(items[2].as_str(), None);
    assert_eq!(items[3].as_str(), Some("ab"));
    assert_eq!(items[4].as_str(), Some("ab"));
    assert_eq!(items[1].raw(), r"a\nb");
    assert_eq!(items[1].len_substituted(), 3);
    assert_eq!(items[0].len_substituted(), 4);
    assert_eq!(items[1].to_string(), "a\nb");
    assert!(items[2].eq_str("a\nb"));
    assert!(!items[2].eq_str(r"a\nb"));
    assert!(items[0].eq_str(r"a\nb"));
}

#[test]
fn elements_compare_by_value_not_by_spelling() {
    let items: Vec<Element<'_>> = elements(r#"{a b} "a b" a\ b {a  b}"#)
        .map(Result::unwrap)
        .collect();
    assert_eq!(items[0], items[1]);
    assert_eq!(items[1], items[2]);
    assert_ne!(items[0], items[3]);
    assert_eq!(items[2], "a b");
    assert!(items[2] == *"a b");
}

#[test]
fn empty_elements_are_empty() {
    let items: Vec<Element<'_>> = elements(r#"{} "" x"#).map(Result::unwrap).collect();
    assert!(items[0].is_empty());
    assert!(items[1].is_empty());
    assert!(!items[2].is_empty());
    assert_eq!(items[0].as_str(), Some(""));
    assert_eq!(items[0].chars().count(), 0);
}

#[test]
fn write_to_and_chars_agree_with_substitution() {
    let text = r"a\x41\u00e9\ \{\}\\\n\101\U1F600z";
    let element = elements(text).next().unwrap().unwrap();
    let mut out = String::new();
    element.write_to(&mut out).unwrap();
    assert_eq!(out, "aA\u{e9} {}\\\nA\u{1f600}z");
    assert_eq!(element.chars().collect::<String>(), out);
    assert_eq!(element.len_substituted(), out.len());
}

#[test]
fn validate_list_counts_elements() {
    assert_eq!(validate_list(""), Ok(0));
    assert_eq!(validate_list("Zz998877 Yy112233"), Ok(2));
    assert_eq!(validate_list("{} {}"), Ok(2));
    assert_eq!(validate_list("a {b"), Err(TclError::UnbalancedBraces));
}

// ---------------------------------------------------------------------------------------------
// Dicts
// ---------------------------------------------------------------------------------------------

#[test]
fn dict_get_reads_the_spec_examples() {
    let data = "t {port 41241} u {path {/run/my app/x-Zbdc22e7.sock}}";
    let t = dict_get(data, "t").unwrap().unwrap();
    assert_eq!(t.as_str(), Some("port 41241"));
    let port = dict_get(t.as_str().unwrap(), "port").unwrap().unwrap();
    assert!(port.eq_str("41241"));
    let u = dict_get(data, "u").unwrap().unwrap().as_str().unwrap();
    let path = dict_get(u, "path").unwrap().unwrap();
    assert_eq!(path.as_str(), Some("/run/my app/x-Zbdc22e7.sock"));
    assert_eq!(dict_get(data, "c"), Ok(None));
    assert_eq!(validate_dict(data), Ok(2));

    let failed = dict_get("protocols {t u}", "protocols").unwrap().unwrap();
    let protocols: Vec<String> = failed
        .elements()
        .unwrap()
        .map(|e| e.unwrap().to_string())
        .collect();
    assert_eq!(protocols, ["t", "u"]);
    let single = dict_get("protocols t", "protocols").unwrap().unwrap();
    assert_eq!(single.as_str(), Some("t"));
}

#[test]
fn dict_get_takes_the_last_duplicate_and_compares_substituted_keys() {
    let data = r"a 1 b 2 a 3 {x y} 4 x\ y 5";
    assert!(dict_get(data, "a").unwrap().unwrap().eq_str("3"));
    assert!(dict_get(data, "b").unwrap().unwrap().eq_str("2"));
    assert!(dict_get(data, "x y").unwrap().unwrap().eq_str("5"));
    assert_eq!(validate_dict(data), Ok(5));
}

#[test]
fn dict_get_validates_the_whole_dict() {
    assert_eq!(dict_get("a 1 b", "a"), Err(TclError::OddDictLength));
    assert_eq!(dict_get("a 1 b {2", "a"), Err(TclError::UnbalancedBraces));
    assert_eq!(dict_get("a", "b"), Err(TclError::OddDictLength));
    assert_eq!(validate_dict("a 1 b"), Err(TclError::OddDictLength));
    assert_eq!(validate_dict(""), Ok(0));
    assert_eq!(validate_dict("   "), Ok(0));
    assert_eq!(dict_get("", "a"), Ok(None));
}

#[test]
fn dict_pairs_yields_pairs_in_order() {
    let pairs: Vec<(String, String)> = dict_pairs("t {port 1} u {path /x}")
        .map(|pair| {
            let (k, v) = pair.unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    assert_eq!(
        pairs,
        [
            ("t".to_string(), "port 1".to_string()),
            ("u".to_string(), "path /x".to_string())
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// `(element, written as the first element, written as a later element)`, as Tcl 8.6.13's
/// `list` writes them (captured with `tclsh`).
const WRITE_CASES: &[(&str, &str, &str)] = &[
    ("", "{}", "{}"),
    ("a", "a", "a"),
    ("port 41241", "{port 41241}", "{port 41241}"),
    (
        "/run/my app/x-Zbdc22e7.sock",
        "{/run/my app/x-Zbdc22e7.sock}",
        "{/run/my app/x-Zbdc22e7.sock}",
    ),
    ("a]b", "a\\]b", "a\\]b"),
    ("a\"b", "a\\\"b", "a\\\"b"),
    ("x{a\"b}", "x{a\\\"b}", "x{a\\\"b}"),
    ("a\\{b", "{a\\{b}", "{a\\{b}"),
    ("a\\\nb", "a\\\\\\nb", "a\\\\\\nb"),
    ("a\\", "a\\\\", "a\\\\"),
    ("#a", "{#a}", "#a"),
    ("a#", "a#", "a#"),
    ("a}b", "a\\}b", "a\\}b"),
    ("{", "\\{", "\\{"),
    ("}", "\\}", "\\}"),
    ("a b", "{a b}", "{a b}"),
    ("a[b", "{a[b}", "{a[b}"),
    ("a$b", "{a$b}", "{a$b}"),
    ("a;b", "{a;b}", "{a;b}"),
    ("a\tb", "{a\tb}", "{a\tb}"),
    ("a]{b}", "a\\]{b}", "a\\]{b}"),
    ("a]b c", "{a]b c}", "{a]b c}"),
    ("\"ab", "{\"ab}", "{\"ab}"),
    ("{ab", "\\{ab", "\\{ab"),
    ("a\\}", "{a\\}}", "{a\\}}"),
    ("\\{}", "\\\\\\{\\}", "\\\\\\{\\}"),
    ("#a]", "{#a]}", "#a\\]"),
    ("#a b", "{#a b}", "{#a b}"),
    ("#{", "\\#\\{", "#\\{"),
    ("#", "{#}", "#"),
    ("a]}", "a\\]\\}", "a\\]\\}"),
    ("}{", "\\}\\{", "\\}\\{"),
    ("{}", "{{}}", "{{}}"),
    ("{a} b", "{{a} b}", "{{a} b}"),
    ("\n{", "\\n\\{", "\\n\\{"),
    ("{\n", "\\{\\n", "\\{\\n"),
    ("a\\b", "{a\\b}", "{a\\b}"),
    ("\\", "\\\\", "\\\\"),
    ("\\\\", "{\\\\}", "{\\\\}"),
    ("\\\\{", "\\\\\\\\\\{", "\\\\\\\\\\{"),
    ("\u{e9}t\u{e9}", "\u{e9}t\u{e9}", "\u{e9}t\u{e9}"),
    ("\u{e9} t", "{\u{e9} t}", "{\u{e9} t}"),
    ("a\u{b}b\u{c}", "{a\u{b}b\u{c}}", "{a\u{b}b\u{c}}"),
    ("\r", "{\r}", "{\r}"),
    ("{{}", "\\{\\{\\}", "\\{\\{\\}"),
    ("\\n", "{\\n}", "{\\n}"),
    ("]", "\\]", "\\]"),
    ("\"", "{\"}", "{\"}"),
    ("\"]", "{\"]}", "{\"]}"),
    ("$", "{$}", "{$}"),
    (";", "{;}", "{;}"),
    ("[]", "{[]}", "{[]}"),
    ("a\\}{", "a\\\\\\}\\{", "a\\\\\\}\\{"),
    ("\\\n", "\\\\\\n", "\\\\\\n"),
    ("a\u{0}b", "a\u{0}b", "a\u{0}b"),
    ("a\u{a0}b", "a\u{a0}b", "a\u{a0}b"),
    (
        "\t\n\r\u{b}\u{c}}",
        "\\t\\n\\r\\v\\f\\}",
        "\\t\\n\\r\\v\\f\\}",
    ),
];

#[test]
fn every_write_case_matches_tcl() {
    for &(element, first, later) in WRITE_CASES {
        assert_eq!(
            written(element, true),
            first,
            "{element:?} as first element"
        );
        assert_eq!(
            written(element, false),
            later,
            "{element:?} as later element"
        );
        assert_eq!(element_len(element, true), first.len(), "{element:?}");
        assert_eq!(element_len(element, false), later.len(), "{element:?}");
        assert_eq!(read(first), Ok(vec![element.to_string()]), "{first:?}");
        assert_eq!(
            read(&format!("x {later}")).unwrap()[1],
            element,
            "{later:?}"
        );
    }
}

#[test]
fn the_spec_examples_are_written_canonically() {
    assert_eq!(write_list(&["t", "port 41241"]), "t {port 41241}");
    assert_eq!(
        write_list(&["t", "port 41241", "u", "path {/run/my app/x-Zbdc22e7.sock}"]),
        "t {port 41241} u {path {/run/my app/x-Zbdc22e7.sock}}"
    );
    assert_eq!(write_list(&["protocols", "t"]), "protocols t");
    assert_eq!(write_list(&["protocols", "t u"]), "protocols {t u}");
    assert_eq!(write_list(&["Zz998877", "Yy112233"]), "Zz998877 Yy112233");
    assert_eq!(write_list(&[""]), "{}");
    assert_eq!(write_list::<&str>(&[]), "");
    // Tcl: [dict create #a b c {} a\] d]
    assert_eq!(
        write_list(&["#a", "b", "c", "", "a]", "d"]),
        "{#a} b c {} a\\] d"
    );
}

#[test]
fn a_hash_needs_quoting_only_at_the_start_of_the_first_element() {
    assert_eq!(write_list(&["#x", "#y"]), "{#x} #y");
    assert_eq!(write_list(&["x#", "#y"]), "x# #y");
    assert_eq!(write_list(&["#{", "#{"]), "\\#\\{ #\\{");
    assert_eq!(read("{#x} #y"), Ok(vec!["#x".into(), "#y".into()]));
    assert_eq!(read("\\#\\{ #\\{"), Ok(vec!["#{".into(), "#{".into()]));
}

#[test]
fn list_writer_nests_without_a_buffer() {
    let mut out = String::new();
    let mut list = ListWriter::new(&mut out);
    assert!(list.is_empty());
    list.push("t").unwrap();
    assert!(!list.is_empty());
    list.push_list(|props| {
        props.push("port")?;
        props.push_display(&41241)
    })
    .unwrap();
    list.push("u").unwrap();
    list.push_list(|props| {
        props.push("path")?;
        props.push("/run/my app/x-Zbdc22e7.sock")
    })
    .unwrap();
    list.push_list(|_| Ok(())).unwrap();
    list.push_list(|inner| inner.push_list(|deeper| deeper.push_dict_pair("#a", "}")))
        .unwrap();
    assert_eq!(
        out,
        "t {port 41241} u {path {/run/my app/x-Zbdc22e7.sock}} {} {{{#a} \\}}}"
    );
    assert_eq!(
        read(&out).unwrap(),
        [
            "t",
            "port 41241",
            "u",
            "path {/run/my app/x-Zbdc22e7.sock}",
            "",
            "{{#a} \\}}"
        ]
    );
}

#[test]
fn push_display_quotes_like_push() {
    let mut out = String::new();
    let mut list = ListWriter::new(&mut out);
    list.push_display(&format_args!("#{} {}", 1, "}")).unwrap();
    list.push_display("").unwrap();
    list.push_display(&'#').unwrap();
    assert_eq!(out, write_list(&["#1 }", "", "#"]));
}

#[test]
fn len_counter_sizes_a_list_exactly() {
    let write = |out: &mut dyn fmt::Write| {
        let mut list = ListWriter::new(out);
        list.push_dict_pair("t", "port 41241")?;
        list.push_dict_pair("#", "a\\")?;
        list.push_list(|l| l.push_dict_pair("x", "{"))
    };
    let mut counter = LenCounter::new();
    assert!(counter.is_empty());
    write(&mut counter).unwrap();
    let mut out = String::new();
    write(&mut out).unwrap();
    assert_eq!(counter.len(), out.len());
    // Tcl: [list t {port 41241} # a\\ [list x "\{"]]
    assert_eq!(out, "t {port 41241} # a\\\\ {x \\{}");
}

#[test]
fn list_writer_hands_back_its_writer() {
    let mut list = ListWriter::new(String::new());
    list.push_dict_pair("protocols", "t u").unwrap();
    assert_eq!(list.get_ref(), "protocols {t u}");
    assert_eq!(list.into_inner(), "protocols {t u}");
}

#[test]
fn writer_errors_are_passed_on() {
    /// Accepts `room` bytes, then fails.
    struct Tight {
        room: usize,
    }
    impl fmt::Write for Tight {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.room = self.room.checked_sub(s.len()).ok_or(fmt::Error)?;
            Ok(())
        }
    }
    let full = "t {port 41241} {a b}";
    for room in 0..full.len() {
        let mut list = ListWriter::new(Tight { room });
        let result = list
            .push("t")
            .and_then(|()| list.push_list(|l| l.push_dict_pair("port", "41241")))
            .and_then(|()| list.push("a b"));
        assert_eq!(result, Err(fmt::Error), "room {room}");
    }
    let mut list = ListWriter::new(Tight { room: full.len() });
    list.push("t").unwrap();
    list.push_list(|l| l.push_dict_pair("port", "41241"))
        .unwrap();
    list.push("a b").unwrap();
}

#[test]
fn errors_display_a_message() {
    for error in [
        TclError::UnbalancedBraces,
        TclError::UnterminatedQuote,
        TclError::ExtraAfterBrace,
        TclError::ExtraAfterQuote,
        TclError::OddDictLength,
    ] {
        assert!(!error.to_string().is_empty());
        let _: &dyn core::error::Error = &error;
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

/// Characters that matter to the syntax, plus a few plain ones.
const SPECIALS: &[char] = &[
    '{',
    '}',
    '[',
    ']',
    '$',
    ';',
    '"',
    '\\',
    '#',
    ' ',
    '\t',
    '\n',
    '\r',
    '\u{b}',
    '\u{c}',
    'a',
    'x',
    'u',
    'U',
    '0',
    '7',
    'f',
    'n',
    '\u{0}',
    '\u{a0}',
    '\u{e9}',
    '\u{1f600}',
];

/// Strings made mostly of syntax characters, sometimes of any char.
fn tricky_string() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            4 => prop::sample::select(SPECIALS),
            1 => any::<char>(),
        ],
        0..24,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// Tricky strings and arbitrary ones.
fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![3 => tricky_string(), 1 => any::<String>()]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn a_written_list_reads_back_as_the_same_elements(
        items in prop::collection::vec(any_string(), 0..8)
    ) {
        let text = write_list(&items);
        prop_assert_eq!(read(&text), Ok(items.clone()));
        prop_assert_eq!(validate_list(&text), Ok(items.len()));
    }

    #[test]
    fn element_len_is_the_written_length(element in any_string(), first in any::<bool>()) {
        let out = written(&element, first);
        prop_assert_eq!(element_len(&element, first), out.len());
        let mut counter = LenCounter::new();
        write_element(&mut counter, &element, first).unwrap();
        prop_assert_eq!(counter.len(), out.len());
    }

    #[test]
    fn push_display_writes_what_push_writes(items in prop::collection::vec(any_string(), 0..6)) {
        let mut out = String::new();
        let mut list = ListWriter::new(&mut out);
        for item in &items {
            list.push_display(item.as_str()).unwrap();
        }
        prop_assert_eq!(out, write_list(&items));
    }

    #[test]
    fn rewriting_a_read_list_is_stable(items in prop::collection::vec(any_string(), 0..8)) {
        let text = write_list(&items);
        let again = write_list(&read(&text).unwrap());
        prop_assert_eq!(again, text);
    }

    #[test]
    fn a_written_dict_reads_back_last_duplicate_winning(
        pairs in prop::collection::vec(
            (prop::sample::select(&["t", "u", "#c", "a b", "", "{"][..]), any_string()),
            0..6,
        )
    ) {
        let mut text = String::new();
        let mut list = ListWriter::new(&mut text);
        for (key, value) in &pairs {
            list.push_dict_pair(key, value).unwrap();
        }
        prop_assert_eq!(validate_dict(&text), Ok(pairs.len()));
        let read_pairs: Vec<(String, String)> = dict_pairs(&text)
            .map(|pair| pair.map(|(k, v)| (k.to_string(), v.to_string())))
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), v.clone()))
            .collect();
        prop_assert_eq!(read_pairs, expected);
        for key in ["t", "u", "#c", "a b", "", "{", "missing"] {
            let model = pairs.iter().rev().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
            let got = dict_get(&text, key).unwrap().map(|v| v.to_string());
            prop_assert_eq!(got, model);
        }
    }

    #[test]
    fn reading_any_text_terminates_without_panicking(text in any_string()) {
        let mut count = 0usize;
        for item in elements(&text) {
            count += 1;
            prop_assert!(count <= text.len(), "more elements than bytes");
            let Ok(element) = item else { continue };
            let value: String = element.chars().collect();
            prop_assert!(element.chars().count() <= element.raw().len());
            prop_assert_eq!(element.len_substituted(), value.len());
            prop_assert!(element.eq_str(&value));
            prop_assert_eq!(element.is_empty(), value.is_empty());
            let mut out = String::new();
            element.write_to(&mut out).unwrap();
            prop_assert_eq!(&out, &value);
            if let Some(s) = element.as_str() {
                prop_assert_eq!(s, value.as_str());
            }
        }
        let _ = validate_dict(&text);
        let _ = dict_get(&text, "t");
    }

    #[test]
    fn any_read_list_reads_back_after_rewriting(text in any_string()) {
        if let Ok(items) = read(&text) {
            prop_assert_eq!(read(&write_list(&items)), Ok(items));
        }
    }
}

/// The backslash decoder as first written (a `match` arm for every escape), the model the
/// table-driven one must equal.
fn backslash_model(after: &str) -> (char, usize) {
    let Some(c) = after.chars().next() else {
        return ('\\', 0);
    };
    let digits = after.get(1..).unwrap_or("");
    let simple = |c: char| (c, 1);
    match c {
        'a' => simple('\u{7}'),
        'b' => simple('\u{8}'),
        'f' => simple('\u{c}'),
        'n' => simple('\n'),
        'r' => simple('\r'),
        't' => simple('\t'),
        'v' => simple('\u{b}'),
        'x' => match hex(digits, 2) {
            (_, 0) => simple('x'),
            (value, n) => (byte_char(value), n + 1),
        },
        'u' => match hex(digits, 4) {
            (_, 0) => simple('u'),
            (value, n) => (code_point(value), n + 1),
        },
        'U' => match hex(digits, 8) {
            (_, 0) => simple('U'),
            (value, n) => (code_point(value), n + 1),
        },
        '\n' => {
            let run = digits
                .bytes()
                .take_while(|b| matches!(b, b' ' | b'\t'))
                .count();
            (' ', run + 1)
        }
        '0'..='7' => {
            let mut value = octal_digit(c);
            let mut used = 1;
            let mut more = digits.chars();
            if let Some(d) = more.next().filter(|d| matches!(d, '0'..='7')) {
                value = (value * 8) | octal_digit(d);
                used = 2;
                if value < 0o40
                    && let Some(d) = more.next().filter(|d| matches!(d, '0'..='7'))
                {
                    value = (value * 8) | octal_digit(d);
                    used = 3;
                }
            }
            (byte_char(value), used)
        }
        other => (other, other.len_utf8()),
    }
}

#[test]
fn every_backslash_sequence_decodes_as_the_model_does() {
    let tails = [
        "",
        "0",
        "41",
        "7fz",
        "D800",
        "1F600",
        "110000",
        "ffffffffff",
        "  \tx",
        "g",
    ];
    let leads = (0u32..0x80)
        .chain([0xe9, 0x3bb, 0x1f600])
        .filter_map(char::from_u32);
    for lead in leads {
        for tail in tails {
            let after = format!("{lead}{tail}");
            assert_eq!(backslash(&after), backslash_model(&after), "{after:?}");
        }
    }
    assert_eq!(backslash(""), backslash_model(""));
}

proptest! {
    #[test]
    fn any_backslash_sequence_decodes_as_the_model_does(after in any_string()) {
        prop_assert_eq!(backslash(&after), backslash_model(&after));
    }
}
