//! A notification as the journal keeps it: every field of
//! [`Notification`], its id included (so a delivery after a restart carries
//! the same `Idempotency-Key` and `Message-ID`), and the wall-clock time it
//! first arrived (its retry deadline counts from there, across restarts).

use logalarm_plugin_api::{Aggregate, Captures, Kind, NoteId, Notification, Source, Syslog};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashSet;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

/// The journal's form of a notification. Borrowed when written, owned when read.
#[derive(Serialize, Deserialize)]
pub(super) struct Stored<'a> {
    id: NoteId,
    /// When it first arrived (wall clock).
    since: SystemTime,
    alarm: Cow<'a, str>,
    rule: Cow<'a, str>,
    message: Cow<'a, [u8]>,
    truncated_from: Option<usize>,
    suppressed: u64,
    source_kind: Cow<'a, str>,
    source_name: Cow<'a, [u8]>,
    source_sender: Option<Cow<'a, str>>,
    syslog: Option<Cow<'a, Syslog>>,
    time: SystemTime,
    kind: Kind,
    caps: Option<Cow<'a, Captures>>,
    key: Option<Cow<'a, str>>,
    aggregate: Option<Cow<'a, Aggregate>>,
}

impl<'a> Stored<'a> {
    /// The stored form of `note`, first arrived at `since`.
    pub(super) fn of(note: &'a Notification, since: SystemTime) -> Self {
        Stored {
            id: note.id,
            since,
            alarm: Cow::Borrowed(&note.alarm),
            rule: Cow::Borrowed(&note.rule),
            message: Cow::Borrowed(&note.message),
            truncated_from: note.truncated_from,
            suppressed: note.suppressed,
            source_kind: Cow::Borrowed(note.source.kind()),
            source_name: Cow::Borrowed(note.source.name().as_bytes()),
            source_sender: note.source.sender().map(Cow::Borrowed),
            syslog: note.syslog.as_deref().map(Cow::Borrowed),
            time: note.time,
            kind: note.kind,
            caps: note.caps.as_deref().map(Cow::Borrowed),
            key: note.key.as_deref().map(Cow::Borrowed),
            aggregate: note.aggregate.as_deref().map(Cow::Borrowed),
        }
    }

    /// The notification, and when it first arrived.
    pub(super) fn into_note(self) -> (Notification, SystemTime) {
        let mut source = Source::new(
            intern(&self.source_kind),
            OsStr::from_bytes(&self.source_name),
        );
        if let Some(sender) = self.source_sender {
            source = source.with_sender(sender.into_owned());
        }
        let note = Notification {
            id: self.id,
            alarm: Arc::from(self.alarm.into_owned()),
            rule: Arc::from(self.rule.into_owned()),
            message: self.message.into_owned(),
            truncated_from: self.truncated_from,
            suppressed: self.suppressed,
            source,
            syslog: self.syslog.map(|s| Arc::new(s.into_owned())),
            time: self.time,
            kind: self.kind,
            caps: self.caps.map(|c| Arc::new(c.into_owned())),
            key: self.key.map(|k| Arc::from(k.into_owned())),
            aggregate: self.aggregate.map(|a| Arc::new(a.into_owned())),
        };
        (note, self.since)
    }
}

/// An input kind as the `&'static str` [`Source`] holds: each distinct kind
/// read back from a journal is kept once for the life of the process (there
/// are a handful: `stdin`, `file`, `socket`, …).
fn intern(kind: &str) -> &'static str {
    static KINDS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut kinds = KINDS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(k) = kinds.get(kind) {
        return k;
    }
    let leaked: &'static str = Box::leak(kind.to_owned().into_boxed_str());
    kinds.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use logalarm_plugin_api::Group;
    use std::time::Duration;

    #[test]
    fn a_notification_comes_back_whole() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let note = Notification {
            id: NoteId {
                run: 0xfeed,
                alarm: 2,
                seq: 9,
            },
            truncated_from: Some(100_000),
            suppressed: 4,
            syslog: Some(Arc::new(Syslog {
                host: Some("web3".into()),
                severity: Some(3),
                ..Syslog::default()
            })),
            kind: Kind::Digest,
            caps: Some(Arc::new(Captures {
                groups: vec![Some("x".into()), None],
                names: vec![("ip".into(), 1)],
            })),
            key: Some("k".into()),
            aggregate: Some(Arc::new(Aggregate {
                count: 3,
                ungrouped: 0,
                first_seen: at,
                last_seen: at,
                period: Duration::from_secs(60),
                sources: vec![("stdin".into(), 3)],
                groups: vec![Group {
                    key: "g".into(),
                    count: 3,
                    first_seen: at,
                    last_seen: at,
                    sources: vec![],
                    example: b"\xff raw".to_vec(),
                }],
            })),
            ..Notification::new(
                "mail".into(),
                "ERR".into(),
                b"ERR \x1b bytes".to_vec(),
                Source::new("socket", OsStr::new("/run/l.sock")).with_sender("pid 1, uid 0"),
                at,
            )
        };
        let bytes = postcard::to_allocvec(&Stored::of(&note, at)).unwrap();
        let back: Stored<'static> = postcard::from_bytes(&bytes).unwrap();
        let (got, since) = back.into_note();
        assert_eq!(since, at);
        assert_eq!(format!("{got:?}"), format!("{note:?}"));
    }
}
