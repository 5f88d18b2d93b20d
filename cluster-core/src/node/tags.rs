//! Tag edits (spec 5.15).
//!
//! A node's tags change through a sequence of [`TagOp`]s applied atomically: either every
//! operation applies, or the tags are left as they were and a [`TagError`] says why.
//! [`TagOp::parse_args`] reads the reference's argument form
//! (`-append a b -remove c -map {old new} -replace {x y}`).

use core::fmt;

use crate::compact::compact;
use crate::identity::{MAX_TAGS, Tag, TagList};
use crate::wire::tcl_list::{self, Element, TclError};

/// One edit of a tag list (spec 5.15).
///
/// Rules common to every operation: a tag that would be stored must not start with `-`
/// ([`TagError::LeadingDash`]; in the reference such an argument is taken as an action, so it
/// can never be added) and must fit in [`Tag::MAX_LEN`] bytes ([`TagError::TooLong`]); the list
/// holds at most [`MAX_TAGS`] tags ([`TagError::TooMany`]). These checks apply to an
/// operation's operands whether or not the operation would change anything. A tag that is
/// only looked for (`Remove`, the `old` of `Map` and `Mappend`) is never an error: one that
/// cannot be stored is simply absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagOp<'a> {
    /// `-append TAG` (also `-lappend`): adds the tag at the end unless it is empty or already
    /// present.
    Append(&'a str),
    /// `-remove TAG`: removes every occurrence of the tag.
    Remove(&'a str),
    /// `-map {old new}`: if `new` is not empty and `old` is present, the first occurrence of
    /// `old` becomes `new`, in place. As in the reference, this may leave `new` twice in the
    /// list when it was already present. (The reference finds `old` with a glob search; here it
    /// is compared exactly.)
    Map {
        /// The tag to replace.
        old: &'a str,
        /// Its replacement.
        new: &'a str,
    },
    /// `-mappend {old new}`: removes every occurrence of `old`, then adds `new` at the end
    /// unless it is empty or already present.
    Mappend {
        /// The tag to remove.
        old: &'a str,
        /// The tag to add.
        new: &'a str,
    },
    /// `-replace LIST`: the tag list becomes exactly these tags, in this order (duplicates and
    /// empty tags included, as the reference keeps them).
    Replace(&'a [&'a str]),
    /// [`TagOp::Replace`] with the tags given as one Tcl list (spec 3.6), as
    /// [`TagOp::parse_args`] produces it: `"web {my db}"` stands for `["web", "my db"]`.
    /// A list that is not valid Tcl syntax is [`TagError::BadList`].
    ReplaceList(&'a str),
    /// [`TagOp::Map`] with `old` and `new` given as one two-element Tcl list, as
    /// [`TagOp::parse_args`] produces it. Any other number of elements is
    /// [`TagError::MissingPair`].
    MapList(&'a str),
    /// [`TagOp::Mappend`] with `old` and `new` given as one two-element Tcl list, as
    /// [`TagOp::parse_args`] produces it. Any other number of elements is
    /// [`TagError::MissingPair`].
    MappendList(&'a str),
}

/// Why a tag edit was refused. On every error the tags are left exactly as they were.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagError {
    /// The edit would leave more than [`MAX_TAGS`] tags. The tags are unchanged.
    TooMany,
    /// A tag to store is longer than [`Tag::MAX_LEN`] bytes. The tags are unchanged.
    TooLong,
    /// A tag to store starts with `-`. The tags are unchanged.
    LeadingDash,
    /// The argument at `index` starts with `-` but names no action (the reference ignored the
    /// arguments after it silently; spec 7.2 Q20). The tags are unchanged.
    UnknownAction {
        /// Position of the offending argument in the argument slice.
        index: usize,
    },
    /// A `-map` or `-mappend` list does not have exactly two elements (`{old new}`). The tags
    /// are unchanged.
    MissingPair,
    /// A list argument is not a valid Tcl list (spec 3.6). The tags are unchanged.
    BadList(TclError),
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooMany => write!(f, "more than {MAX_TAGS} tags"),
            Self::TooLong => write!(f, "a tag is longer than {} bytes", Tag::MAX_LEN),
            Self::LeadingDash => f.write_str("a tag cannot start with '-'"),
            Self::UnknownAction { index } => {
                write!(f, "unknown tag action at argument {index}")
            }
            Self::MissingPair => f.write_str("a map needs exactly two tags: {old new}"),
            Self::BadList(error) => write!(f, "tag list is not a valid list: {error}"),
        }
    }
}

impl core::error::Error for TagError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Self::BadList(error) => Some(error),
            Self::TooMany
            | Self::TooLong
            | Self::LeadingDash
            | Self::UnknownAction { .. }
            | Self::MissingPair => None,
        }
    }
}

/// The action that non-option arguments are handed to while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Append,
    Remove,
    Map,
    Mappend,
    Replace,
}

impl<'a> TagOp<'a> {
    /// Reads the reference's `tags ARGS` form and hands each operation to `each`, in order.
    ///
    /// Arguments are read left to right, starting with the action `append`. An argument
    /// starting with `-` sets the action: `-append` or `-lappend`, `-remove`, `-map`,
    /// `-mappend`, `-replace` (any number of leading dashes, as in the reference). Every other
    /// argument is handled by the current action: [`TagOp::Append`] or [`TagOp::Remove`] take
    /// it as one tag (an empty one included), `-map` and `-mappend` as a two-element Tcl list
    /// ([`TagOp::MapList`], [`TagOp::MappendList`]), and `-replace` as a Tcl list
    /// ([`TagOp::ReplaceList`]), after which the action is `append` again.
    ///
    /// All arguments are checked before `each` is first called, so on an error `each` is
    /// never called. Operands are not checked against the tag rules here (length, leading
    /// dash): applying the operations does that.
    ///
    /// ```
    /// use cluster_core::TagOp;
    ///
    /// let mut ops = Vec::new();
    /// TagOp::parse_args(&["a", "-map", "a b", "-replace", "x y", "z"], |op| ops.push(op))?;
    /// assert_eq!(
    ///     ops,
    ///     [
    ///         TagOp::Append("a"),
    ///         TagOp::MapList("a b"),
    ///         TagOp::ReplaceList("x y"),
    ///         TagOp::Append("z"),
    ///     ]
    /// );
    /// # Ok::<(), cluster_core::TagError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// * [`TagError::UnknownAction`] for a `-word` that names no action (spec 7.2 Q20);
    /// * [`TagError::BadList`] for a `-map`, `-mappend` or `-replace` argument that is not a
    ///   valid Tcl list;
    /// * [`TagError::MissingPair`] for a `-map` or `-mappend` argument whose list does not have
    ///   exactly two elements.
    pub fn parse_args(args: &'a [&'a str], each: impl FnMut(Self)) -> Result<(), TagError> {
        for op in ParsedArgs::new(args) {
            let op = op?;
            match op {
                Self::ReplaceList(list) => {
                    tcl_list::validate_list(list).map_err(TagError::BadList)?;
                }
                Self::MapList(list) | Self::MappendList(list) => {
                    pair(list)?;
                }
                Self::Append(_)
                | Self::Remove(_)
                | Self::Map { .. }
                | Self::Mappend { .. }
                | Self::Replace(_) => {}
            }
        }
        ParsedArgs::new(args).map_while(Result::ok).for_each(each);
        Ok(())
    }
}

/// The operations of an argument list, before their lists are checked.
#[derive(Debug, Clone)]
struct ParsedArgs<'a> {
    args: core::iter::Enumerate<core::slice::Iter<'a, &'a str>>,
    action: Action,
}

impl<'a> ParsedArgs<'a> {
    fn new(args: &'a [&'a str]) -> Self {
        Self {
            args: args.iter().enumerate(),
            action: Action::Append,
        }
    }
}

impl<'a> Iterator for ParsedArgs<'a> {
    type Item = Result<TagOp<'a>, TagError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (index, &arg) = self.args.next()?;
            if let Some(action) = arg.strip_prefix('-') {
                self.action = match action.trim_start_matches('-') {
                    "append" | "lappend" => Action::Append,
                    "remove" => Action::Remove,
                    "map" => Action::Map,
                    "mappend" => Action::Mappend,
                    "replace" => Action::Replace,
                    _ => {
                        // Fused: nothing after an error.
                        self.args = <&[&str]>::default().iter().enumerate();
                        return Some(Err(TagError::UnknownAction { index }));
                    }
                };
                continue;
            }
            return Some(Ok(match self.action {
                Action::Append => TagOp::Append(arg),
                Action::Remove => TagOp::Remove(arg),
                Action::Map => TagOp::MapList(arg),
                Action::Mappend => TagOp::MappendList(arg),
                Action::Replace => {
                    self.action = Action::Append;
                    TagOp::ReplaceList(arg)
                }
            }));
        }
    }
}

/// The two elements of a `{old new}` list.
fn pair(list: &str) -> Result<(Element<'_>, Element<'_>), TagError> {
    let mut elements = tcl_list::elements(list);
    let mut next = || elements.next().transpose().map_err(TagError::BadList);
    match (next()?, next()?, next()?) {
        (Some(old), Some(new), None) => Ok((old, new)),
        _ => Err(TagError::MissingPair),
    }
}

/// A tag operand: plain text, or a Tcl list element still to be substituted.
#[derive(Debug, Clone, Copy)]
enum Operand<'a> {
    Text(&'a str),
    Element(Element<'a>),
}

impl Operand<'_> {
    fn is_empty(&self) -> bool {
        match self {
            Self::Text(text) => text.is_empty(),
            Self::Element(element) => element.is_empty(),
        }
    }

    /// The operand as a tag, or `None` when it cannot be one (too long).
    fn to_tag(self) -> Option<Tag> {
        match self {
            Self::Text(text) => Tag::new(text.as_bytes()),
            Self::Element(element) => match element.as_str() {
                Some(text) => Tag::new(text.as_bytes()),
                None => {
                    let mut buf = heapless::String::<{ Tag::MAX_LEN }>::new();
                    element.write_to(buf.as_mut_view()).ok()?;
                    Tag::new(buf.as_bytes())
                }
            },
        }
    }

    /// The operand as a tag that may be stored.
    fn to_new_tag(self) -> Result<Tag, TagError> {
        let tag = self.to_tag().ok_or(TagError::TooLong)?;
        // The first byte of the zero-padded array (0 for an empty tag), as `Config::validate`.
        if tag.padded()[0] == b'-' {
            return Err(TagError::LeadingDash);
        }
        Ok(tag)
    }
}

/// Applies `ops` in order to `tags`, atomically, and returns whether the tags changed (as a
/// list: same tags in the same order means unchanged, even if operations ran).
///
/// # Errors
///
/// The first operation that fails; `tags` is then left exactly as it was. See [`TagOp`] for
/// the rules and [`TagError`] for the cases.
pub(crate) fn apply(tags: &mut TagList, ops: &[TagOp<'_>]) -> Result<bool, TagError> {
    let mut work = tags.clone();
    for op in ops {
        apply_one(&mut work, *op)?;
    }
    if work == *tags {
        return Ok(false);
    }
    *tags = work;
    Ok(true)
}

/// Applies one operation to the working copy.
fn apply_one(tags: &mut TagList, op: TagOp<'_>) -> Result<(), TagError> {
    // `map` and `mappend`, in both forms, take their operands here and run at one place each.
    let (old, new) = match op {
        TagOp::Append(tag) => return append(tags, Operand::Text(tag)),
        TagOp::Remove(tag) => {
            remove(tags, Operand::Text(tag));
            return Ok(());
        }
        TagOp::Replace(list) => {
            return replace(tags, &mut list.iter().map(|&tag| Ok(Operand::Text(tag))));
        }
        TagOp::ReplaceList(list) => {
            return replace(
                tags,
                &mut tcl_list::elements(list)
                    .map(|element| element.map(Operand::Element).map_err(TagError::BadList)),
            );
        }
        TagOp::Map { old, new } | TagOp::Mappend { old, new } => {
            (Operand::Text(old), Operand::Text(new))
        }
        TagOp::MapList(list) | TagOp::MappendList(list) => {
            let (old, new) = pair(list)?;
            (Operand::Element(old), Operand::Element(new))
        }
    };
    if matches!(op, TagOp::Map { .. } | TagOp::MapList(_)) {
        map(tags, old, new)
    } else {
        mappend(tags, old, new)
    }
}

/// `append`: adds `tag` unless empty or present.
fn append(tags: &mut TagList, tag: Operand<'_>) -> Result<(), TagError> {
    if tag.is_empty() {
        return Ok(());
    }
    let tag = tag.to_new_tag()?;
    if !tags.contains(&tag) {
        tags.push(tag).map_err(|_| TagError::TooMany)?;
    }
    Ok(())
}

/// `remove`: removes every occurrence of `tag`.
fn remove(tags: &mut TagList, tag: Operand<'_>) {
    if let Some(tag) = tag.to_tag() {
        let kept = compact(tags, |t| *t != tag);
        tags.truncate(kept);
    }
}

/// `map`: the first `old` becomes `new`, if `new` is not empty.
fn map(tags: &mut TagList, old: Operand<'_>, new: Operand<'_>) -> Result<(), TagError> {
    if new.is_empty() {
        return Ok(());
    }
    let new = new.to_new_tag()?;
    if let Some(old) = old.to_tag()
        && let Some(slot) = tags.iter_mut().find(|t| **t == old)
    {
        *slot = new;
    }
    Ok(())
}

/// `mappend`: removes `old`, then appends `new`.
fn mappend(tags: &mut TagList, old: Operand<'_>, new: Operand<'_>) -> Result<(), TagError> {
    // Check `new` before touching the list, so that the error does not depend on the tags.
    if !new.is_empty() {
        new.to_new_tag()?;
    }
    remove(tags, old);
    append(tags, new)
}

/// `replace`: the list becomes exactly `items`.
/// `items` is a trait object: one copy of the loop for both forms of the operation.
fn replace<'a>(
    tags: &mut TagList,
    items: &mut dyn Iterator<Item = Result<Operand<'a>, TagError>>,
) -> Result<(), TagError> {
    let mut out = TagList::new();
    for item in items {
        out.push(item?.to_new_tag()?)
            .map_err(|_| TagError::TooMany)?;
    }
    *tags = out;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::string::{String, ToString};
    use std::vec;
    use std::vec::Vec;

    use proptest::prelude::*;

    use super::*;

    fn list(names: &[&str]) -> TagList {
        names
            .iter()
            .map(|n| Tag::new(n.as_bytes()).unwrap())
            .collect()
    }

    fn names(tags: &TagList) -> Vec<String> {
        tags.iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    }

    /// Applies `ops` to `start`; returns the result, the tags after and whether they changed.
    fn run(start: &[&str], ops: &[TagOp<'_>]) -> (Result<bool, TagError>, Vec<String>) {
        let mut tags = list(start);
        let result = apply(&mut tags, ops);
        (result, names(&tags))
    }

    #[test]
    fn append_adds_non_empty_absent_tags_at_the_end() {
        assert_eq!(
            run(
                &["a"],
                &[TagOp::Append("b"), TagOp::Append("a"), TagOp::Append("")]
            ),
            (Ok(true), vec!["a".into(), "b".into()])
        );
        assert_eq!(
            run(&["a"], &[TagOp::Append("a")]),
            (Ok(false), vec!["a".into()])
        );
    }

    #[test]
    fn remove_removes_every_occurrence() {
        assert_eq!(
            run(&["a", "b", "a"], &[TagOp::Remove("a")]),
            (Ok(true), vec!["b".into()])
        );
        assert_eq!(
            run(&["b"], &[TagOp::Remove("a")]),
            (Ok(false), vec!["b".into()])
        );
        // Something that can never be a tag is simply absent.
        let long = "x".repeat(40);
        assert_eq!(run(&["b"], &[TagOp::Remove(&long)]).0, Ok(false));
        assert_eq!(run(&["b"], &[TagOp::Remove("-b")]).0, Ok(false));
    }

    #[test]
    fn map_replaces_the_first_old_in_place() {
        assert_eq!(
            run(&["a", "b", "c"], &[TagOp::Map { old: "b", new: "x" }]),
            (Ok(true), vec!["a".into(), "x".into(), "c".into()])
        );
        assert_eq!(
            run(&["a"], &[TagOp::Map { old: "b", new: "x" }]),
            (Ok(false), vec!["a".into()])
        );
        assert_eq!(
            run(&["a"], &[TagOp::Map { old: "a", new: "" }]),
            (Ok(false), vec!["a".into()])
        );
        // As in the reference, no de-duplication.
        assert_eq!(
            run(&["a", "b"], &[TagOp::Map { old: "a", new: "b" }]),
            (Ok(true), vec!["b".into(), "b".into()])
        );
    }

    #[test]
    fn mappend_removes_old_then_appends_new() {
        assert_eq!(
            run(&["a", "b", "a"], &[TagOp::Mappend { old: "a", new: "c" }]),
            (Ok(true), vec!["b".into(), "c".into()])
        );
        assert_eq!(
            run(&["b"], &[TagOp::Mappend { old: "a", new: "c" }]),
            (Ok(true), vec!["b".into(), "c".into()])
        );
        assert_eq!(
            run(&["a", "b"], &[TagOp::Mappend { old: "a", new: "" }]),
            (Ok(true), vec!["b".into()])
        );
        assert_eq!(
            run(&["a", "b"], &[TagOp::Mappend { old: "a", new: "b" }]),
            (Ok(true), vec!["b".into()])
        );
    }

    #[test]
    fn replace_sets_the_whole_list() {
        assert_eq!(
            run(&["a", "b"], &[TagOp::Replace(&["x", "y", "x", ""])]),
            (
                Ok(true),
                vec!["x".into(), "y".into(), "x".into(), String::new()]
            )
        );
        assert_eq!(
            run(&["a", "b"], &[TagOp::Replace(&["a", "b"])]).0,
            Ok(false)
        );
        assert_eq!(run(&["a"], &[TagOp::Replace(&[])]), (Ok(true), vec![]));
        assert_eq!(
            run(&[], &[TagOp::ReplaceList(r"web {my db} a\ b")]),
            (Ok(true), vec!["web".into(), "my db".into(), "a b".into()])
        );
    }

    #[test]
    fn list_forms_of_map_and_mappend() {
        assert_eq!(
            run(&["a", "b"], &[TagOp::MapList("a {x y}")]),
            (Ok(true), vec!["x y".into(), "b".into()])
        );
        assert_eq!(
            run(&["a b", "c"], &[TagOp::MappendList(r"a\ b d")]),
            (Ok(true), vec!["c".into(), "d".into()])
        );
        assert_eq!(
            run(&["a"], &[TagOp::MapList("a")]).0,
            Err(TagError::MissingPair)
        );
        assert_eq!(
            run(&["a"], &[TagOp::MapList("a b c")]).0,
            Err(TagError::MissingPair)
        );
        assert_eq!(
            run(&["a"], &[TagOp::MappendList("a {b")]).0,
            Err(TagError::BadList(TclError::UnbalancedBraces))
        );
    }

    #[test]
    fn the_readme_example() {
        // $cluster tags -append tag0 tag1 -map {tag1 tag2} -remove tag2 -append tag3 tag4
        let args = [
            "-append",
            "tag0",
            "tag1",
            "-map",
            "tag1 tag2",
            "-remove",
            "tag2",
            "-append",
            "tag3",
            "tag4",
        ];
        let mut ops = Vec::new();
        TagOp::parse_args(&args, |op| ops.push(op)).unwrap();
        assert_eq!(
            run(&[], &ops),
            (Ok(true), vec!["tag0".into(), "tag3".into(), "tag4".into()])
        );
    }

    #[test]
    fn errors_leave_the_tags_unchanged() {
        let start = ["a", "b"];
        let long = "x".repeat(Tag::MAX_LEN + 1);
        let full: Vec<String> = (0..MAX_TAGS).map(|i| i.to_string()).collect();
        let full: Vec<&str> = full.iter().map(String::as_str).collect();
        let cases: [(&[TagOp<'_>], TagError); 7] = [
            (
                &[TagOp::Remove("a"), TagOp::Append(&long)],
                TagError::TooLong,
            ),
            (
                &[TagOp::Remove("a"), TagOp::Append("-x")],
                TagError::LeadingDash,
            ),
            (
                &[
                    TagOp::Remove("a"),
                    TagOp::Map {
                        old: "zz",
                        new: "-x",
                    },
                ],
                TagError::LeadingDash,
            ),
            (
                &[
                    TagOp::Append("c"),
                    TagOp::Mappend {
                        old: "a",
                        new: &long,
                    },
                ],
                TagError::TooLong,
            ),
            (
                &[
                    TagOp::Remove("b"),
                    TagOp::Replace(&full),
                    TagOp::Append("z"),
                ],
                TagError::TooMany,
            ),
            (&[TagOp::Replace(&["a", "-b"])], TagError::LeadingDash),
            (
                &[TagOp::Append("c"), TagOp::MapList("x")],
                TagError::MissingPair,
            ),
        ];
        for (ops, error) in cases {
            assert_eq!(
                run(&start, ops),
                (Err(error), vec!["a".into(), "b".into()]),
                "{ops:?}"
            );
        }
        let mut nine = full.clone();
        nine.push("extra");
        assert_eq!(run(&[], &[TagOp::Replace(&nine)]).0, Err(TagError::TooMany));
        assert_eq!(run(&[], &[TagOp::Replace(&full)]).0, Ok(true));
    }

    #[test]
    fn a_sequence_that_restores_the_tags_is_no_change() {
        assert_eq!(
            run(&["a"], &[TagOp::Append("b"), TagOp::Remove("b")]),
            (Ok(false), vec!["a".into()])
        );
        assert_eq!(run(&["a"], &[]), (Ok(false), vec!["a".into()]));
        // Order matters: a reordering is a change.
        assert_eq!(run(&["a", "b"], &[TagOp::Replace(&["b", "a"])]).0, Ok(true));
    }

    fn parse<'a>(args: &'a [&'a str]) -> Result<Vec<TagOp<'a>>, TagError> {
        let mut ops = Vec::new();
        TagOp::parse_args(args, |op| ops.push(op)).map(|()| ops)
    }

    #[test]
    fn parse_args_starts_with_append_and_switches_actions() {
        assert_eq!(
            parse(&[
                "a",
                "b",
                "-remove",
                "c",
                "-lappend",
                "d",
                "--mappend",
                "x y",
                "p q"
            ]),
            Ok(vec![
                TagOp::Append("a"),
                TagOp::Append("b"),
                TagOp::Remove("c"),
                TagOp::Append("d"),
                TagOp::MappendList("x y"),
                TagOp::MappendList("p q"),
            ])
        );
        assert_eq!(
            parse(&["-replace", "x y", "z", "-map", "a b"]),
            Ok(vec![
                TagOp::ReplaceList("x y"),
                TagOp::Append("z"),
                TagOp::MapList("a b"),
            ])
        );
        assert_eq!(
            parse(&["-replace", "", "-remove", ""]),
            Ok(vec![TagOp::ReplaceList(""), TagOp::Remove("")])
        );
        assert_eq!(parse(&[]), Ok(vec![]));
        assert_eq!(parse(&["-remove"]), Ok(vec![]));
    }

    #[test]
    fn parse_args_reports_errors_before_any_operation() {
        let mut calls = 0;
        let result = TagOp::parse_args(&["a", "-bogus", "b"], |_| calls += 1);
        assert_eq!(result, Err(TagError::UnknownAction { index: 1 }));
        assert_eq!(calls, 0);
        assert_eq!(parse(&["-"]), Err(TagError::UnknownAction { index: 0 }));
        assert_eq!(parse(&["-map", "a"]), Err(TagError::MissingPair));
        assert_eq!(
            parse(&["-replace", "{a"]),
            Err(TagError::BadList(TclError::UnbalancedBraces))
        );
    }

    #[test]
    fn errors_display_and_chain() {
        use core::error::Error as _;
        assert!(
            TagError::UnknownAction { index: 4 }
                .to_string()
                .contains('4')
        );
        assert!(TagError::TooMany.to_string().contains('8'));
        assert!(
            TagError::BadList(TclError::UnbalancedBraces)
                .source()
                .is_some()
        );
        assert!(TagError::LeadingDash.source().is_none());
    }

    // --- model ---------------------------------------------------------------------------

    /// The operations on plain vectors, as spec 5.15 describes them.
    fn model(tags: &mut Vec<String>, op: &ModelOp) -> Result<(), TagError> {
        let check = |t: &str| {
            if t.len() > Tag::MAX_LEN {
                Err(TagError::TooLong)
            } else if t.starts_with('-') {
                Err(TagError::LeadingDash)
            } else {
                Ok(())
            }
        };
        let mut next = tags.clone();
        match op {
            ModelOp::Append(t) => {
                if !t.is_empty() {
                    check(t)?;
                    if !next.contains(t) {
                        next.push(t.clone());
                    }
                }
            }
            ModelOp::Remove(t) => next.retain(|x| x != t),
            ModelOp::Map(old, new) => {
                if !new.is_empty() {
                    check(new)?;
                    if let Some(slot) = next.iter_mut().find(|x| *x == old) {
                        slot.clone_from(new);
                    }
                }
            }
            ModelOp::Mappend(old, new) => {
                if !new.is_empty() {
                    check(new)?;
                }
                next.retain(|x| x != old);
                if !new.is_empty() && !next.contains(new) {
                    next.push(new.clone());
                }
            }
            ModelOp::Replace(items) => {
                next.clear();
                for t in items {
                    check(t)?;
                    next.push(t.clone());
                    if next.len() > MAX_TAGS {
                        return Err(TagError::TooMany);
                    }
                }
            }
        }
        if next.len() > MAX_TAGS {
            return Err(TagError::TooMany);
        }
        *tags = next;
        Ok(())
    }

    #[derive(Debug, Clone)]
    enum ModelOp {
        Append(String),
        Remove(String),
        Map(String, String),
        Mappend(String, String),
        Replace(Vec<String>),
    }

    fn tag_name() -> impl Strategy<Value = String> {
        prop_oneof![
            8 => "[abcd]{0,2}",
            1 => Just("-x".to_string()),
            1 => Just("y".repeat(Tag::MAX_LEN + 1)),
            1 => Just("z".repeat(Tag::MAX_LEN)),
        ]
    }

    fn model_op() -> impl Strategy<Value = ModelOp> {
        prop_oneof![
            4 => tag_name().prop_map(ModelOp::Append),
            2 => tag_name().prop_map(ModelOp::Remove),
            2 => (tag_name(), tag_name()).prop_map(|(o, n)| ModelOp::Map(o, n)),
            2 => (tag_name(), tag_name()).prop_map(|(o, n)| ModelOp::Mappend(o, n)),
            1 => proptest::collection::vec(tag_name(), 0..10).prop_map(ModelOp::Replace),
        ]
    }

    proptest! {
        #[test]
        fn apply_agrees_with_a_vec_model(
            start in proptest::collection::vec("[abcd]{1,2}", 0..=MAX_TAGS),
            ops in proptest::collection::vec(model_op(), 0..8),
        ) {
            let replace_lists: Vec<Vec<&str>> = ops
                .iter()
                .map(|op| match op {
                    ModelOp::Replace(items) => items.iter().map(String::as_str).collect(),
                    _ => Vec::new(),
                })
                .collect();
            let tag_ops: Vec<TagOp<'_>> = ops
                .iter()
                .zip(&replace_lists)
                .map(|(op, items)| match op {
                    ModelOp::Append(t) => TagOp::Append(t),
                    ModelOp::Remove(t) => TagOp::Remove(t),
                    ModelOp::Map(old, new) => TagOp::Map { old, new },
                    ModelOp::Mappend(old, new) => TagOp::Mappend { old, new },
                    ModelOp::Replace(_) => TagOp::Replace(items),
                })
                .collect();

            let mut expected: Vec<String> = start.clone();
            let expected_result = ops
                .iter()
                .try_for_each(|op| model(&mut expected, op))
                .map(|()| expected != start);
            if expected_result.is_err() {
                expected.clone_from(&start);
            }

            let starts: Vec<&str> = start.iter().map(String::as_str).collect();
            let mut tags = list(&starts);
            let result = apply(&mut tags, &tag_ops);
            prop_assert_eq!(result, expected_result);
            prop_assert_eq!(names(&tags), expected);
        }

        #[test]
        fn parse_and_apply_never_panic(
            args in proptest::collection::vec("[-a-z{}\"\\\\ ]{0,8}", 0..6),
        ) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let mut ops = Vec::new();
            if TagOp::parse_args(&args, |op| ops.push(op)).is_ok() {
                let mut tags = TagList::new();
                let _ = apply(&mut tags, &ops);
            }
        }
    }
}
