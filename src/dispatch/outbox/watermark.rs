//! How far a lane without a journal has finished its notes, as a watermark:
//! every note numbered up to [`Watermark::upto`] is finished. Notes finish
//! out of order when an alarm delivers several at once (`concurrency`), so
//! the ones finished ahead of the oldest unfinished one wait in a window of
//! flags; a note that will never finish (dropped on a full queue) stops the
//! watermark for good, and nothing after it is tracked.

use std::collections::VecDeque;

/// The finished-notes watermark of one lane.
#[derive(Debug, Default)]
pub(super) struct Watermark {
    /// Every note numbered up to this is finished.
    base: u64,
    /// Notes `base + 1`, `base + 2`, …: whether each is finished.
    window: VecDeque<bool>,
    /// The first note that will never finish.
    blocked: Option<u64>,
}

impl Watermark {
    /// A watermark whose notes up to `base` are finished.
    pub(super) fn new(base: u64) -> Self {
        Watermark {
            base,
            ..Watermark::default()
        }
    }

    /// Note `seq`, the next after those already tracked, will finish.
    pub(super) fn track(&mut self, seq: u64) {
        if self.blocked.is_none() && seq == self.base + self.window.len() as u64 + 1 {
            self.window.push_back(false);
        }
    }

    /// Note `seq` will never finish.
    pub(super) fn never(&mut self, seq: u64) {
        self.blocked.get_or_insert(seq);
    }

    /// Note `seq` finished.
    pub(super) fn finish(&mut self, seq: u64) {
        let Some(i) = seq.checked_sub(self.base + 1) else {
            return;
        };
        if let Some(flag) = usize::try_from(i).ok().and_then(|i| self.window.get_mut(i)) {
            *flag = true;
        }
        while self.window.front() == Some(&true) {
            self.window.pop_front();
            self.base += 1;
        }
    }

    /// Every note numbered up to this is finished.
    pub(super) fn upto(&self) -> u64 {
        match self.blocked {
            Some(b) => self.base.min(b - 1),
            None => self.base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_order_finishes_wait_for_the_oldest_and_a_drop_stops_it() {
        let mut w = Watermark::new(0);
        for seq in 1..=4 {
            w.track(seq);
        }
        w.finish(2);
        w.finish(3);
        assert_eq!(w.upto(), 0);
        w.finish(1);
        assert_eq!(w.upto(), 3);
        w.never(5);
        w.track(6);
        w.finish(4);
        w.finish(6);
        assert_eq!(w.upto(), 4, "never past the dropped note 5");
    }
}
