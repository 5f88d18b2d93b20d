//! Protocol props carried in `data`: `t {port 41241} u {path /run/app/x.sock}` (spec 3.5).

#[cfg(feature = "node-data")]
use super::data::{self, DataSeen};
use super::registry::Registry;
use crate::protocol::{Protocol, ProtocolList};
use crate::service::UnixPath;
use crate::text::{parse_u16, push_decimal};
use crate::wire::tcl_list::{self, ListWriter, Sink, Unsized};

/// This node's own props: what it advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct OwnProps {
    pub(crate) tcp_port: Option<u16>,
    /// Kept only with the feature `unix`: without it the node has no unix-socket transport
    /// to advertise (the firmware), and the 105 bytes are not spent.
    #[cfg(feature = "unix")]
    pub(crate) unix_path: Option<UnixPath>,
}

impl OwnProps {
    /// No port, no path.
    pub(crate) const NONE: Self = Self {
        tcp_port: None,
        #[cfg(feature = "unix")]
        unix_path: None,
    };

    /// The unix-socket path advertised (never one without the feature `unix`).
    pub(crate) fn unix_path(&self) -> Option<&UnixPath> {
        #[cfg(feature = "unix")]
        return self.unix_path.as_ref();
        #[cfg(not(feature = "unix"))]
        None
    }
}

/// The most bytes the props text takes: `t {port 65535} u {path {<104 bytes escaped>}}`;
/// without the feature `unix`, which advertises no path, `t {port 65535}` (the node keeps
/// its rendered props in a buffer of this size: 16 bytes instead of 256 in the firmware).
pub(crate) const PROPS_TEXT_LEN: usize = if cfg!(feature = "unix") {
    256
} else {
    TCP_PROPS_LEN
};

/// The longest props text of `t` alone.
const TCP_PROPS_LEN: usize = "t {port 65535}".len();

/// The props dict as text, in the node's protocol priority order; protocols with no props
/// (`c`) are left out (spec 3.5).
pub(crate) fn write_props(
    props: &OwnProps,
    order: ProtocolList,
    out: &mut heapless::String<PROPS_TEXT_LEN>,
) -> core::fmt::Result {
    out.clear();
    let mut out = Unsized(out.as_mut_view());
    let mut list = ListWriter::new(Sink(&mut out));
    // Each protocol's props are written as a nested list into `inner`, then pushed as one
    // element (quoted as needed), without `core::fmt`'s formatting machinery.
    let mut inner = heapless::String::<PROPS_TEXT_LEN>::new();
    for protocol in order.iter() {
        inner.clear();
        let mut inner_view = Unsized(inner.as_mut_view());
        let mut nested = ListWriter::new(Sink(&mut inner_view));
        match protocol {
            Protocol::Tcp => {
                let Some(port) = props.tcp_port else {
                    continue;
                };
                let mut digits = heapless::String::<5>::new();
                push_decimal(&mut digits, u64::from(port)).map_err(|_| core::fmt::Error)?;
                nested.push_dict_pair("port", &digits)?;
                list.push("t")?;
            }
            Protocol::Unix => {
                let Some(path) = props.unix_path().and_then(UnixPath::as_str) else {
                    continue;
                };
                nested.push_dict_pair("path", path)?;
                list.push("u")?;
            }
            Protocol::Multicast => continue,
        }
        list.push(&inner)?;
    }
    Ok(())
}

/// Props read from a received `data` dict, for the protocols this project uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ReceivedProps {
    /// `Some(value)` when the dict names `t`: the port, when its props carry a valid one.
    pub(crate) tcp: Option<Option<u16>>,
    /// `Some(value)` when the dict names `u`.
    pub(crate) unix: Option<Option<UnixPath>>,
    /// What the dict says of the sender's data (`meta` or `metav`, see [`data`]).
    #[cfg(feature = "node-data")]
    pub(crate) data: Option<DataSeen>,
}

/// Reads a props dict. Unknown protocols are ignored; an invalid dict is an error (the frame
/// is then dropped, spec 7.3).
pub(crate) fn read_props(data: &str) -> Result<ReceivedProps, tcl_list::TclError> {
    let mut props = ReceivedProps::default();
    for pair in tcl_list::dict_pairs(data) {
        let (key, value) = pair?;
        let mut inner = heapless::String::<160>::new();
        // A value that does not fit is treated as props we cannot use.
        let value_text = match value.as_str() {
            Some(text) => Some(text),
            None => value
                .write_to(inner.as_mut_view())
                .ok()
                .map(|()| inner.as_str()),
        };
        if key.eq_str("t") {
            let mut digits = heapless::String::<8>::new();
            let port = entry_text(value_text, "port", digits.as_mut_view()).and_then(parse_u16);
            props.tcp = Some(port);
        } else if key.eq_str("u") {
            let mut text = heapless::String::<104>::new();
            let path = entry_text(value_text, "path", text.as_mut_view()).and_then(UnixPath::new);
            props.unix = Some(path);
        } else {
            // Without `node-data` the data entry and digest are unknown keys, ignored.
            #[cfg(feature = "node-data")]
            props.note_data(&key, &value, value_text);
        }
    }
    Ok(props)
}

/// The value of `key` in the dict `dict`, substituted into `buf`; `None` when there is no
/// dict or no such key, when the dict is malformed, or when the value does not fit `buf`.
fn entry_text<'b>(
    dict: Option<&str>,
    key: &str,
    buf: &'b mut heapless::string::StringView,
) -> Option<&'b [u8]> {
    let value = tcl_list::dict_get(dict?, key).ok().flatten()?;
    value.write_to(buf).ok()?;
    Some(buf.as_bytes())
}

#[cfg(feature = "node-data")]
impl ReceivedProps {
    /// Notes the data entry (`meta`) or the digest (`metav`) when `key` names one; the full
    /// entry wins over a digest.
    fn note_data(
        &mut self,
        key: &tcl_list::Element<'_>,
        value: &tcl_list::Element<'_>,
        value_text: Option<&str>,
    ) {
        if key.eq_str(data::META) {
            let version = value_text
                .and_then(|v| tcl_list::dict_get(v, "version").ok().flatten())
                .and_then(|v| data::element_version(&v));
            self.data = version.map(DataSeen::Full).or(self.data);
        } else if key.eq_str(data::DIGEST) {
            self.data = self
                .data
                .or(data::element_version(value).map(DataSeen::Digest));
        }
    }
}

impl ReceivedProps {
    /// Applies the props to the service at `index`: a shallow merge for types 1 and 2 (a
    /// protocol named here is replaced as a whole, the others are kept), a replacement of all
    /// props for type 7 (flush). False when a unix path could not be stored.
    pub(crate) fn apply<const N: usize>(
        self,
        registry: &mut Registry<N>,
        index: usize,
        replace: bool,
    ) -> bool {
        let Some(service) = registry.at_mut(index) else {
            return true;
        };
        let sid = service.sid;
        if replace || self.tcp.is_some() {
            service.tcp_port = self.tcp.flatten();
        }
        if replace || self.unix.is_some() {
            return registry.set_unix_path(&sid, self.unix.flatten());
        }
        true
    }
}

/// The `data` of a failed report: `protocols t` or `protocols {t u}`.
pub(crate) fn write_failed(
    protocols: impl Iterator<Item = Protocol>,
    out: &mut heapless::String<32>,
) -> core::fmt::Result {
    let mut inner = heapless::String::<16>::new();
    let mut inner_view = Unsized(inner.as_mut_view());
    let mut list = ListWriter::new(Sink(&mut inner_view));
    for protocol in protocols {
        list.push(protocol.letter())?;
    }
    out.clear();
    let mut out = Unsized(out.as_mut_view());
    let mut outer = ListWriter::new(Sink(&mut out));
    outer.push_dict_pair("protocols", &inner)
}

/// The protocols named by a failed report's `data` (`protocols <list>`).
pub(crate) fn read_failed(data: &str) -> Result<ProtocolList, tcl_list::TclError> {
    let mut list = ProtocolList::EMPTY;
    if let Some(value) = tcl_list::dict_get(data, "protocols")? {
        let mut text = heapless::String::<32>::new();
        if value.write_to(text.as_mut_view()).is_ok() {
            for element in tcl_list::elements(&text).flatten() {
                let mut letter = heapless::String::<4>::new();
                if element.write_to(letter.as_mut_view()).is_ok()
                    && let Some(p) = Protocol::from_letter(letter.as_bytes())
                {
                    list.push(p);
                }
            }
        }
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn own(port: Option<u16>, path: Option<&str>) -> OwnProps {
        #[cfg(not(feature = "unix"))]
        assert!(path.is_none(), "paths are kept only with the feature unix");
        OwnProps {
            tcp_port: port,
            #[cfg(feature = "unix")]
            unix_path: path.and_then(|p| UnixPath::new(p.as_bytes())),
        }
    }

    #[test]
    fn without_a_path_only_the_port_is_written() {
        let mut out = heapless::String::new();
        let tcu = ProtocolList::new(&[Protocol::Tcp, Protocol::Multicast, Protocol::Unix]);
        write_props(&own(Some(41241), None), tcu, &mut out).unwrap();
        assert_eq!(out, "t {port 41241}");
        write_props(&own(Some(u16::MAX), None), tcu, &mut out).unwrap();
        assert_eq!(out, "t {port 65535}", "the longest fits the buffer");
        write_props(&own(None, None), tcu, &mut out).unwrap();
        assert_eq!(out, "");
    }

    #[cfg(feature = "unix")]
    #[test]
    fn props_are_written_as_the_reference_writes_them() {
        let mut out = heapless::String::new();
        let tcu = ProtocolList::new(&[Protocol::Tcp, Protocol::Multicast, Protocol::Unix]);
        write_props(
            &own(Some(41241), Some("/run/app/x-Zbdc22e7.sock")),
            tcu,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, "t {port 41241} u {path /run/app/x-Zbdc22e7.sock}");
        write_props(
            &own(Some(41241), Some("/run/my app/x-Zbdc22e7.sock")),
            tcu,
            &mut out,
        )
        .unwrap();
        assert_eq!(out, "t {port 41241} u {path {/run/my app/x-Zbdc22e7.sock}}");
    }

    #[test]
    fn props_read_back() {
        let props = read_props("t {port 41241} u {path {/run/my app/x.sock}}").unwrap();
        assert_eq!(props.tcp, Some(Some(41241)));
        assert_eq!(props.unix.unwrap().unwrap(), "/run/my app/x.sock");
        assert_eq!(read_props("").unwrap(), ReceivedProps::default());
        assert!(read_props("t").is_err());
        assert_eq!(read_props("x {y z}").unwrap(), ReceivedProps::default());
    }

    #[test]
    fn failed_reports_round_trip() {
        let mut out = heapless::String::new();
        write_failed([Protocol::Tcp].into_iter(), &mut out).unwrap();
        assert_eq!(out, "protocols t");
        write_failed([Protocol::Tcp, Protocol::Unix].into_iter(), &mut out).unwrap();
        assert_eq!(out, "protocols {t u}");
        let list = read_failed("protocols {t u}").unwrap();
        assert_eq!(list.letters().as_slice(), ["t", "u"]);
    }
}
