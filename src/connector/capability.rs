//! How a connector says what it can do: the [`Capable`] accessors, each
//! `None` unless the connector declares that capability, the
//! [`capabilities!`](crate::capabilities) macro that declares them once (and
//! with them the actions `ferry connectors` prints), the "connector X cannot
//! Y" error worded once ([`able`]), and [`Shared`], a capability owned by a
//! task that outlives a borrow.

use anyhow::Result;

use super::{
    Action, ChangeFeed, Connector, GroupSink, ProfileSink, RecordLookup, RecordSink, RecordSource,
    RecordStore,
};
use crate::error::unsupported;

/// The capability accessors of a [`Connector`]; [`capabilities!`](crate::capabilities) writes
/// them, so a connector never does by hand.
pub trait Capable {
    /// `get`.
    fn lookup(&self) -> Option<&(dyn RecordLookup + 'static)> {
        None
    }
    /// `get`, `insert`, `patch`, `delete`.
    fn records(&self) -> Option<&(dyn RecordStore + 'static)> {
        None
    }
    /// `getupdates`.
    fn updates(&self) -> Option<&(dyn ChangeFeed + 'static)> {
        None
    }
    /// Import's source side: pages of records.
    fn source(&self) -> Option<&(dyn RecordSource + 'static)> {
        None
    }
    /// Import's destination side: batches of upserts.
    fn sink(&self) -> Option<&(dyn RecordSink + 'static)> {
        None
    }
    /// Export's destination side: profiles.
    fn profiles(&self) -> Option<&(dyn ProfileSink + 'static)> {
        None
    }
    /// Export's group memberships (lists, tags, segments).
    fn groups(&self) -> Option<&(dyn GroupSink + 'static)> {
        None
    }
}

/// One capability a connector may declare with [`capabilities!`](crate::capabilities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// [`RecordLookup`]: `get` only.
    Lookup,
    /// [`RecordStore`] (and so [`RecordLookup`]).
    Records,
    /// [`ChangeFeed`].
    Updates,
    /// [`RecordSource`].
    Source,
    /// [`RecordSink`].
    Sink,
    /// [`ProfileSink`].
    Profiles,
    /// [`GroupSink`].
    Groups,
}

impl Capability {
    /// The actions this capability gives, as `ferry connectors` names them.
    pub fn actions(self) -> &'static [Action] {
        match self {
            Capability::Lookup => &[Action::Get],
            Capability::Records => &[Action::Get, Action::Insert, Action::Patch, Action::Delete],
            Capability::Updates => &[Action::GetUpdates],
            Capability::Source => &[Action::ReadPage],
            Capability::Sink => &[Action::UpsertBatch],
            Capability::Profiles => &[Action::ExportProfiles],
            Capability::Groups => &[Action::Groups],
        }
    }
}

/// A capability as declared: `always`, or only when the opened connector
/// says so (a manifest that describes the actions it needs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    pub capability: Capability,
    pub always: bool,
}

/// The actions `capabilities` give, in [`Action`]'s order: `check` (every
/// connector answers it), then those of every capability declared `always`.
pub fn actions_of(capabilities: &[Declared]) -> Vec<Action> {
    let mut actions = vec![Action::Check];
    for d in capabilities.iter().filter(|d| d.always) {
        for a in d.capability.actions() {
            if !actions.contains(a) {
                actions.push(*a);
            }
        }
    }
    actions.sort_by_key(|a| *a as usize);
    actions
}

/// The actions an opened connector has, read from its accessors.
pub fn actions(connector: &dyn Connector) -> Vec<Action> {
    let has = [
        (connector.lookup().is_some(), Capability::Lookup),
        (connector.records().is_some(), Capability::Records),
        (connector.updates().is_some(), Capability::Updates),
        (connector.source().is_some(), Capability::Source),
        (connector.sink().is_some(), Capability::Sink),
        (connector.profiles().is_some(), Capability::Profiles),
        (connector.groups().is_some(), Capability::Groups),
    ];
    let declared: Vec<Declared> = has
        .into_iter()
        .filter(|(yes, _)| *yes)
        .map(|(_, capability)| Declared {
            capability,
            always: true,
        })
        .collect();
    actions_of(&declared)
}

/// `capability`, or the "connector X cannot `action`" error, where
/// `action` is what the user asked for ("insert", "read pages").
pub fn able<'a, T: ?Sized>(
    connector: &dyn Connector,
    capability: Option<&'a T>,
    action: &str,
) -> Result<&'a T> {
    capability.ok_or_else(|| {
        let code = connector.spec().code;
        let mut err = unsupported(code, action);
        if let Some(hint) = connector.cannot_hint(action) {
            err = err.hint(hint);
        }
        err.into()
    })
}

/// Declare a connector's capabilities, once: this writes its [`Capable`]
/// accessors and `CAPABILITIES`, the list its spec shows as actions.
///
/// ```text
/// capabilities!(Sqlite: Records, Updates, Source, Sink, Profiles, Groups);
/// capabilities!([F: Format] FileConnector<F>: Records, Source, Sink);
/// // Only when the opened connector's method says so:
/// capabilities!(HttpConnector: Records, Profiles if can_export);
/// ```
#[macro_export]
macro_rules! capabilities {
    ([$($g:tt)*] $t:ty : $($cap:ident $(if $when:ident)?),+ $(,)?) => {
        impl<$($g)*> $crate::connector::Capable for $t {
            $( $crate::capabilities!(@accessor $cap $(if $when)?); )+
        }
        impl<$($g)*> $t {
            /// What this connector can do: the one declaration its
            /// accessors and its spec's actions both come from.
            // A test's fake connector borrows another's spec, not this.
            #[allow(dead_code)]
            pub const CAPABILITIES: &'static [$crate::connector::Declared] = &[$(
                $crate::connector::Declared {
                    capability: $crate::connector::Capability::$cap,
                    always: $crate::capabilities!(@always $($when)?),
                }
            ),+];
        }
    };
    ($t:ty : $($rest:tt)+) => {
        $crate::capabilities!([] $t : $($rest)+);
    };
    (@always) => { true };
    (@always $when:ident) => { false };
    (@accessor Lookup $(if $when:ident)?) => {
        $crate::capabilities!(@one lookup RecordLookup $($when)?);
    };
    (@accessor Records $(if $when:ident)?) => {
        $crate::capabilities!(@one lookup RecordLookup $($when)?);
        $crate::capabilities!(@one records RecordStore $($when)?);
    };
    (@accessor Updates $(if $when:ident)?) => {
        $crate::capabilities!(@one updates ChangeFeed $($when)?);
    };
    (@accessor Source $(if $when:ident)?) => {
        $crate::capabilities!(@one source RecordSource $($when)?);
    };
    (@accessor Sink $(if $when:ident)?) => {
        $crate::capabilities!(@one sink RecordSink $($when)?);
    };
    (@accessor Profiles $(if $when:ident)?) => {
        $crate::capabilities!(@one profiles ProfileSink $($when)?);
    };
    (@accessor Groups $(if $when:ident)?) => {
        $crate::capabilities!(@one groups GroupSink $($when)?);
    };
    (@one $name:ident $trait:ident) => {
        fn $name(&self) -> Option<&(dyn $crate::connector::$trait + 'static)> {
            Some(self)
        }
    };
    (@one $name:ident $trait:ident $when:ident) => {
        fn $name(&self) -> Option<&(dyn $crate::connector::$trait + 'static)> {
            if self.$when() {
                Some(self)
            } else {
                None
            }
        }
    };
}

/// A capability of a shared connector, owned, for a task that outlives a
/// borrow (an import's writers and read-ahead): checked once when made,
/// then used as the capability itself.
pub struct Shared<T: ?Sized + 'static> {
    connector: std::sync::Arc<dyn Connector>,
    get: fn(&dyn Connector) -> Option<&T>,
}

impl<T: ?Sized + 'static> Shared<T> {
    /// `get` of `connector` (`Capable::sink`…), or the "cannot `action`" error.
    pub fn new(
        connector: std::sync::Arc<dyn Connector>,
        get: fn(&dyn Connector) -> Option<&T>,
        action: &str,
    ) -> Result<Shared<T>> {
        able(connector.as_ref(), get(connector.as_ref()), action)?;
        Ok(Shared { connector, get })
    }
}

impl<T: ?Sized + 'static> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared {
            connector: self.connector.clone(),
            get: self.get,
        }
    }
}

impl<T: ?Sized + 'static> std::ops::Deref for Shared<T> {
    type Target = T;

    fn deref(&self) -> &T {
        // An accessor answers the same for the connector's whole life.
        (self.get)(self.connector.as_ref()).expect("a capability checked when shared")
    }
}
