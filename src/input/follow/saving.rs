//! Saving read positions: the positions whose alarms are delivered are
//! taken from [`super::commits`] and written to the state file.

use super::Core;
use super::positions::Saved;
use super::tracked::Tracked;
use crate::input::Mark;

impl Core {
    /// Takes the positions whose alarms are delivered.
    pub(super) fn commit(&mut self) {
        for Mark {
            file, offset, tail, ..
        } in self.commits.take_done()
        {
            if let Some(t) = self.files.get_mut(&file)
                && offset > t.committed
            {
                t.committed = offset;
                t.committed_tail = tail;
                self.dirty = true;
            }
        }
        self.unsaved = self.files.values().any(|t| t.committed < t.sent());
    }

    pub(super) fn save(&mut self) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        if !self.dirty {
            return;
        }
        let mut files: Vec<Saved> = self.files.values().map(Tracked::saved).collect();
        files.sort_by(|a, b| a.path.cmp(&b.path).then(a.offset.cmp(&b.offset)));
        if let Err(e) = state.save(files) {
            if self.reported.insert(state.path().to_owned()) {
                tracing::error!(
                    "cannot save read positions in {}: {e}; following goes on, but a restart may read lines again",
                    state.path().display()
                );
            }
        } else {
            self.reported.remove(state.path());
            self.dirty = false;
        }
    }
}
