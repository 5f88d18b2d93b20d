//! Per-node data on hosts: the key/value pairs each service publishes
//! (`cluster_core::Node::set_data`), kept by the engine for [`ServiceInfo`](crate::ServiceInfo)
//! (`services()`, `cluster services --json`), published with
//! [`Handle::set_data`](crate::Handle::set_data), and matched by selectors.
//!
//! # Selecting by data
//!
//! In a `resolve` list, a filter `data:KEY` selects the services that publish `KEY`, and
//! `data:KEY=VALUE` those whose `KEY` is `VALUE` (bytes compared exactly). Such filters combine
//! with the others: every filter must match, as in `resolve` (`cluster query --resolve web
//! --resolve data:region=eu`).
//!
//! In a `resolver` expression (arguments starting with `-`), each pair a service publishes
//! adds two members to its resolver set: `data:KEY` and `data:KEY=VALUE` (the value's bytes as
//! they are). Every operation and comparison then applies to them as to tags:
//! `-match {data:region=eu*}` selects the services whose region starts with `eu`,
//! `-not {data:draining}` those that do not publish `draining`, and `-some {data:role=db
//! data:role=cache}` either role. `-exact` compares tags only, so data never counts there.

use std::collections::{BTreeMap, HashMap};

use cluster_core::wire::tcl_list;
use cluster_core::{ResolverMembers, ResolverSet, Sid, Tag};

/// The pairs a service publishes: text keys, byte values.
pub type DataMap = BTreeMap<String, Vec<u8>>;

/// The prefix of a data filter in a `resolve` list.
pub const DATA_FILTER: &str = "data:";

/// The pairs of a data entry as `cluster_core::Event::DataChanged` carries it
/// (`version V data {k v ...} hex {k hex ...}`); `None` when it is not one.
#[must_use]
pub fn parse_entry(text: &str) -> Option<DataMap> {
    let mut map = DataMap::new();
    if let Some(pairs) = tcl_list::dict_get(text, "data").ok()? {
        for pair in tcl_list::dict_pairs(&pairs.to_string()) {
            let (key, value) = pair.ok()?;
            map.insert(key.to_string(), value.to_string().into_bytes());
        }
    }
    if let Some(pairs) = tcl_list::dict_get(text, "hex").ok()? {
        for pair in tcl_list::dict_pairs(&pairs.to_string()) {
            let (key, value) = pair.ok()?;
            map.insert(key.to_string(), unhex(&value.to_string())?);
        }
    }
    Some(map)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What every service published, as last reported.
#[derive(Debug, Default)]
pub(crate) struct DataTable {
    by_sid: HashMap<Sid, (u16, DataMap)>,
}

impl DataTable {
    pub(crate) fn set(&mut self, sid: Sid, version: u16, data: DataMap) {
        self.by_sid.insert(sid, (version, data));
    }

    pub(crate) fn remove(&mut self, sid: &Sid) {
        self.by_sid.remove(sid);
    }

    /// The version and pairs of `sid` (0 and none when it published nothing).
    pub(crate) fn get(&self, sid: &Sid) -> (u16, DataMap) {
        self.by_sid.get(sid).cloned().unwrap_or_default()
    }

    /// The members `sid`'s data adds to its resolver set in a `resolver` expression:
    /// `data:KEY` and `data:KEY=VALUE` for each pair.
    pub(crate) fn members(&self, sid: &Sid) -> Vec<Vec<u8>> {
        let Some((_, data)) = self.by_sid.get(sid) else {
            return Vec::new();
        };
        let mut members = Vec::with_capacity(2 * data.len());
        for (key, value) in data {
            let mut member = format!("{DATA_FILTER}{key}").into_bytes();
            members.push(member.clone());
            member.push(b'=');
            member.extend_from_slice(value);
            members.push(member);
        }
        members
    }

    /// True when `sid`'s data passes every filter.
    pub(crate) fn matches(&self, sid: &Sid, filters: &[DataFilter]) -> bool {
        let data = self.by_sid.get(sid).map(|(_, d)| d);
        filters.iter().all(|f| {
            let value = data.and_then(|d| d.get(&f.key));
            match (&f.value, value) {
                (None, Some(_)) => true,
                (Some(want), Some(have)) => want == have,
                (_, None) => false,
            }
        })
    }
}

/// A service's resolver set with the members its data adds ([`DataTable::members`]).
pub(crate) struct WithData<'a> {
    pub(crate) set: ResolverSet<'a>,
    pub(crate) data: &'a [Vec<u8>],
}

impl ResolverMembers for WithData<'_> {
    fn tags(&self) -> &[Tag] {
        self.set.tags
    }

    fn any_member(&self, mut pred: impl FnMut(&[u8]) -> bool) -> bool {
        ResolverMembers::any_member(&self.set, &mut pred)
            || self.data.iter().any(|member| pred(member))
    }
}

/// A `data:KEY[=VALUE]` filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFilter {
    /// The key the service must publish.
    pub key: String,
    /// The value it must have, when given.
    pub value: Option<Vec<u8>>,
}

impl DataFilter {
    /// The filter `text` states, when it starts with `data:`.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let rest = text.strip_prefix(DATA_FILTER)?;
        Some(match rest.split_once('=') {
            Some((key, value)) => Self {
                key: key.to_owned(),
                value: Some(value.as_bytes().to_vec()),
            },
            None => Self {
                key: rest.to_owned(),
                value: None,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_reads_back_as_its_pairs() {
        let map = parse_entry("version 3 data {region {eu west} rack 7} hex {blob 00ff}").unwrap();
        assert_eq!(map["region"], b"eu west");
        assert_eq!(map["rack"], b"7");
        assert_eq!(map["blob"], [0x00, 0xff]);
        assert_eq!(parse_entry("version 1 data {}").unwrap().len(), 0);
        assert!(parse_entry("version 1 hex {blob 0g}").is_none());
        assert!(parse_entry("version {").is_none());
    }

    #[test]
    fn data_filters_match_keys_and_values() {
        let sid = Sid::new(b"AbCd1234").unwrap();
        let mut table = DataTable::default();
        table.set(sid, 1, parse_entry("version 1 data {region eu}").unwrap());
        let f = |t: &str| DataFilter::parse(t).unwrap();
        assert!(table.matches(&sid, &[f("data:region")]));
        assert!(table.matches(&sid, &[f("data:region=eu")]));
        assert!(!table.matches(&sid, &[f("data:region=us")]));
        assert!(!table.matches(&sid, &[f("data:rack")]));
        assert!(DataFilter::parse("web").is_none());
        let other = Sid::new(b"Other123").unwrap();
        assert!(!table.matches(&other, &[f("data:region")]));
        assert!(table.matches(&other, &[]));
    }

    #[test]
    fn resolver_expressions_see_data_as_members() {
        use cluster_core::Resolver;
        let sid = Sid::new(b"AbCd1234").unwrap();
        let tags = [Tag::new(b"web").unwrap()];
        let mut table = DataTable::default();
        table.set(
            sid,
            1,
            parse_entry("version 1 data {region eu-west role db} hex {blob 00ff}").unwrap(),
        );
        let members = table.members(&sid);
        let service = WithData {
            set: ResolverSet {
                tags: &tags,
                hid: b"02:fc:00:00:00:01",
                sid: sid.as_bytes(),
                ip: None,
                local: false,
            },
            data: &members,
        };
        let selects = |args: &[&str]| Resolver::parse(args).unwrap().matches_members(&service);
        assert!(selects(&["-match", "data:region=eu*"]));
        assert!(!selects(&["-match", "data:region=us*"]));
        assert!(selects(&["-has", "web data:role"]));
        assert!(selects(&["-has", "data:role=db"]));
        assert!(!selects(&["-not", "data:role=db"]));
        assert!(selects(&["-not", "data:draining"]));
        assert!(selects(&["-some", "data:role=cache data:role=db"]));
        assert!(selects(&["-exact", "web"]), "-exact compares tags only");
        assert!(!selects(&["-exact", "web data:role"]));
        // A value's bytes as they are: the hex pair is matched on its bytes, not its text.
        assert!(!selects(&["-equal", "-has", "data:blob=00ff"]));
        assert!(selects(&["-has", "data:blob"]));
        // A service without data has no such members.
        let bare = WithData {
            set: service.set,
            data: &[],
        };
        assert!(
            !Resolver::parse(&["-has", "data:role"])
                .unwrap()
                .matches_members(&bare)
        );
    }
}
