//! Owned requests that travel from an application's handle to the task that owns the node:
//! [`Selector`], [`SendSpec`], [`QuerySpec`] and [`TagEdit`]. The core's requests borrow;
//! these own their strings and lend them to the core in one call (`with_*`).

use std::time::Duration;

use cluster_core::{
    HeldRoom, Node, Policy, ProtocolList, QueryRequest, ResolveError, Resolver, SendRequest, Sid,
    TagError, TagOp, Targets,
};

use crate::query_inbox::SidList;

/// Which services a send or query goes to: a resolver's matches plus explicit sids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    /// `resolve`/`resolver` arguments (spec 5.14, 7.3): `["web"]`, `["-match", "web*"]`.
    /// `Some(vec![])` selects every service; `None` selects by `services` only.
    pub resolver: Option<Vec<String>>,
    /// Services by sid.
    pub services: Vec<Sid>,
}

impl Selector {
    /// Every known service.
    #[must_use]
    pub fn all() -> Self {
        Self {
            resolver: Some(Vec::new()),
            services: Vec::new(),
        }
    }

    /// Nobody (a broadcast to nobody reaches everyone).
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// The services whose resolver set holds every filter (`resolve web eu`).
    #[must_use]
    pub fn resolve<S: AsRef<str>>(filters: impl IntoIterator<Item = S>) -> Self {
        Self {
            resolver: Some(filters.into_iter().map(|f| f.as_ref().to_owned()).collect()),
            services: Vec::new(),
        }
    }

    /// The services one service id names.
    #[must_use]
    pub fn service(sid: Sid) -> Self {
        Self {
            resolver: None,
            services: vec![sid],
        }
    }

    /// Lends the selector to the core as [`Targets`].
    ///
    /// # Errors
    ///
    /// [`ResolveError`] when the resolver arguments are invalid.
    pub fn with_targets<R>(&self, f: impl FnOnce(Targets<'_>) -> R) -> Result<R, ResolveError> {
        let args: Vec<&str> = self.resolver.iter().flatten().map(String::as_str).collect();
        let resolver = match &self.resolver {
            Some(_) => Some(Resolver::parse(&args)?),
            None => None,
        };
        Ok(f(Targets {
            resolver: resolver.as_ref(),
            services: &self.services,
        }))
    }

    /// The sids of the services `node` knows that this selector selects, in table order.
    ///
    /// # Errors
    ///
    /// [`ResolveError`] when the resolver arguments are invalid.
    pub fn matching<P: Policy, const S: usize, const D: usize, H: HeldRoom>(
        &self,
        node: &Node<P, S, D, H>,
    ) -> Result<Vec<Sid>, ResolveError> {
        self.with_targets(|targets| selected(node, &targets).collect())
    }

    /// [`matching`](Self::matching), one sid kept without an allocation.
    pub(crate) fn matching_list<P: Policy, const S: usize, const D: usize, H: HeldRoom>(
        &self,
        node: &Node<P, S, D, H>,
    ) -> Result<SidList, ResolveError> {
        self.with_targets(|targets| selected(node, &targets).collect())
    }
}

/// The sids of the services `node` knows that `targets` selects, in table order.
fn selected<'a, P: Policy, const S: usize, const D: usize, H: HeldRoom>(
    node: &'a Node<P, S, D, H>,
    targets: &'a Targets<'_>,
) -> impl Iterator<Item = Sid> + 'a {
    node.services()
        .filter(|s| {
            targets.services.contains(s.sid())
                || targets
                    .resolver
                    .is_some_and(|r| r.matches(&s.resolver_set()))
        })
        .map(|s| *s.sid())
}

/// An event (type 6) to send.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendSpec {
    /// Who gets it.
    pub to: Selector,
    /// The `data` text.
    pub data: Option<Vec<u8>>,
    /// The `raw` bytes.
    pub raw: Option<Vec<u8>>,
    /// The channel (0).
    pub channel: u64,
    /// `Some(true)`: one multicast frame; `Some(false)`: direct only; `None`: the
    /// reference's rule (direct to at most 3 targets).
    pub broadcast: Option<bool>,
    /// Protocols to try instead of each target's order.
    pub protocols: Option<ProtocolList>,
    /// A free-form request id.
    pub ruid: Option<String>,
}

impl SendSpec {
    /// `data` to the services `to` selects.
    #[must_use]
    pub fn new(to: Selector, data: impl Into<Vec<u8>>) -> Self {
        Self {
            to,
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// On `channel`.
    #[must_use]
    pub fn channel(mut self, channel: u64) -> Self {
        self.channel = channel;
        self
    }

    /// As one multicast frame (`true`) or direct sends only (`false`).
    #[must_use]
    pub fn broadcast(mut self, broadcast: bool) -> Self {
        self.broadcast = Some(broadcast);
        self
    }

    /// Lends the request to the core.
    ///
    /// # Errors
    ///
    /// [`ResolveError`] when the selector's resolver arguments are invalid.
    pub fn with_request<R>(
        &self,
        f: impl FnOnce(&SendRequest<'_>) -> R,
    ) -> Result<R, ResolveError> {
        self.to.with_targets(|targets| {
            f(&SendRequest {
                targets,
                broadcast: self.broadcast,
                protocols: self.protocols,
                channel: self.channel,
                ruid: self.ruid.as_deref(),
                data: self.data.as_deref(),
                raw: self.raw.as_deref(),
            })
        })
    }
}

/// A query to start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuerySpec {
    /// Who is asked.
    pub to: Selector,
    /// The query text.
    pub data: Option<Vec<u8>>,
    /// Raw query bytes.
    pub raw: Option<Vec<u8>>,
    /// How long to wait (the node's `query_timeout` by default).
    pub timeout: Option<Duration>,
    /// One multicast frame filtered to the targets instead of direct sends.
    pub broadcast: bool,
    /// The channel (0).
    pub channel: u64,
    /// Protocols to try instead of each target's order.
    pub protocols: Option<ProtocolList>,
    /// A query id; unique ids are drawn by default.
    pub id: Option<String>,
}

impl QuerySpec {
    /// A query with `data` to the services `to` selects.
    #[must_use]
    pub fn new(to: Selector, data: impl Into<Vec<u8>>) -> Self {
        Self {
            to,
            data: Some(data.into()),
            ..Self::default()
        }
    }

    /// Wait at most `timeout` for answers.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Lends the request to the core.
    ///
    /// # Errors
    ///
    /// [`ResolveError`] when the selector's resolver arguments are invalid.
    pub fn with_request<R>(
        &self,
        f: impl FnOnce(&QueryRequest<'_>) -> R,
    ) -> Result<R, ResolveError> {
        self.to.with_targets(|targets| {
            f(&QueryRequest {
                targets,
                data: self.data.as_deref(),
                raw: self.raw.as_deref(),
                id: self.id.as_deref(),
                timeout: self.timeout,
                broadcast: self.broadcast,
                channel: self.channel,
                protocols: self.protocols,
            })
        })
    }
}

/// One edit of this node's tags (spec 5.15); see [`TagOp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagEdit {
    /// Add a tag unless present.
    Append(String),
    /// Remove every occurrence.
    Remove(String),
    /// Replace `old` in place by `new`.
    Map {
        /// The tag to replace.
        old: String,
        /// Its replacement.
        new: String,
    },
    /// Remove `old`, add `new`.
    Mappend {
        /// The tag to remove.
        old: String,
        /// The tag to add.
        new: String,
    },
    /// The tags become exactly these.
    Replace(Vec<String>),
    /// The reference's argument form: `-append a b -remove c -map {old new}`.
    Args(Vec<String>),
}

/// Lends `edits` to the core as [`TagOp`]s.
///
/// # Errors
///
/// [`TagError`] when an [`TagEdit::Args`] list is invalid.
pub fn with_tag_ops<R>(
    edits: &[TagEdit],
    f: impl FnOnce(&[TagOp<'_>]) -> R,
) -> Result<R, TagError> {
    let replace_lists: Vec<Vec<&str>> = edits
        .iter()
        .map(|e| match e {
            TagEdit::Replace(tags) => tags.iter().map(String::as_str).collect(),
            TagEdit::Args(args) => args.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    let mut ops = Vec::new();
    for (edit, list) in edits.iter().zip(&replace_lists) {
        match edit {
            TagEdit::Append(t) => ops.push(TagOp::Append(t)),
            TagEdit::Remove(t) => ops.push(TagOp::Remove(t)),
            TagEdit::Map { old, new } => ops.push(TagOp::Map { old, new }),
            TagEdit::Mappend { old, new } => ops.push(TagOp::Mappend { old, new }),
            TagEdit::Replace(_) => ops.push(TagOp::Replace(list)),
            TagEdit::Args(_) => TagOp::parse_args(list, |op| ops.push(op))?,
        }
    }
    Ok(f(&ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tag_edits_become_core_ops() {
        let edits = [
            TagEdit::Append("a".into()),
            TagEdit::Replace(vec!["x".into(), "y".into()]),
            TagEdit::Args(vec!["-remove".into(), "x".into()]),
        ];
        let ops = with_tag_ops(&edits, |ops| format!("{ops:?}")).unwrap();
        assert_eq!(ops, r#"[Append("a"), Replace(["x", "y"]), Remove("x")]"#);
        let bad = [TagEdit::Args(vec!["-frobnicate".into(), "x".into()])];
        assert!(with_tag_ops(&bad, |_| ()).is_err());
    }

    #[test]
    fn selectors_lend_targets_and_refuse_bad_resolvers() {
        let all = Selector::all();
        assert!(all.with_targets(|t| t.resolver.is_some()).unwrap());
        assert!(
            Selector::none()
                .with_targets(|t| t.resolver.is_none())
                .unwrap()
        );
        let bad = Selector {
            resolver: Some(vec!["-nonsense".into()]),
            services: vec![],
        };
        assert!(bad.with_targets(|_| ()).is_err());
    }
}
