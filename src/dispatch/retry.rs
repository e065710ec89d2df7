//! When a failed delivery is tried again: an alarm's retry policy.
//!
//! A notification is tried at most `attempts` times; between attempts the
//! worker waits an exponentially growing delay with jitter (the `backon`
//! crate's exponential backoff: `delay`, doubled after each attempt up to
//! `max_delay`, each wait plus a random part of up to the same again, so that
//! many alarms that failed together do not retry together). A receiver that
//! asks for a delay (HTTP `Retry-After`, [`ActionError::RetryAfter`]) is waited
//! for at least that long. No attempt starts later than `deadline` after the
//! notification was made; a permanent failure is never retried.
//!
//! [`ActionError::RetryAfter`]: logalarm_plugin_api::ActionError::RetryAfter

use backon::{BackoffBuilder, ExponentialBuilder};
use std::time::Duration;

/// How an alarm retries failed deliveries (TOML `retry = { attempts,
/// deadline, delay, max_delay }`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per notification, the first included; 1 = never retried.
    pub attempts: u32,
    /// No attempt starts later than this after the notification was made (its
    /// line arrived, or it was handed over by another alarm).
    pub deadline: Duration,
    /// The wait before the first retry; doubled after each retry.
    pub delay: Duration,
    /// The longest wait between two attempts, before jitter.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The default of network actions (`http`, `smtp`, `xmpp`): 10 attempts
    /// within 5 minutes, waits from 1 s doubling up to 60 s (plus jitter), so
    /// that an outage of a few minutes loses nothing.
    pub const NETWORK: RetryPolicy = RetryPolicy {
        attempts: 10,
        deadline: Duration::from_secs(300),
        delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(60),
    };

    /// The default of local actions (`cmd`, `signal`, `log`): one attempt, as
    /// in uWSGI (a command that failed would most likely fail again, and one
    /// that timed out may have done part of its work).
    pub const LOCAL: RetryPolicy = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::NETWORK
    };

    /// The waits before the 2nd, 3rd, … attempt: `attempts - 1` of them.
    pub fn waits(&self) -> impl Iterator<Item = Duration> + use<> {
        ExponentialBuilder::new()
            .with_min_delay(self.delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
    }

    /// Checks the values (as TOML `retry` gives them).
    ///
    /// # Errors
    /// What is wrong, naming the key.
    pub fn check(&self) -> Result<(), String> {
        if self.attempts == 0 {
            return Err("attempts must be at least 1 (1 = no retries)".into());
        }
        if self.deadline.is_zero() {
            return Err("deadline must be more than 0".into());
        }
        if self.delay.is_zero() {
            return Err("delay must be more than 0".into());
        }
        if self.max_delay < self.delay {
            return Err(format!(
                "max_delay ({}) is shorter than delay ({})",
                humantime::format_duration(self.max_delay),
                humantime::format_duration(self.delay)
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_cap_with_jitter() {
        let policy = RetryPolicy {
            attempts: 6,
            deadline: Duration::from_secs(60),
            delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(400),
        };
        let waits: Vec<Duration> = policy.waits().collect();
        assert_eq!(waits.len(), 5);
        let bases = [100, 200, 400, 400, 400].map(Duration::from_millis);
        for (wait, base) in waits.iter().zip(bases) {
            assert!(
                *wait >= base && *wait < base * 2,
                "{wait:?} not in [{base:?}, 2×{base:?})"
            );
        }
        assert_eq!(RetryPolicy::LOCAL.waits().count(), 0);
    }

    #[test]
    fn checks_name_the_key() {
        let bad = RetryPolicy {
            attempts: 0,
            ..RetryPolicy::NETWORK
        };
        assert!(bad.check().unwrap_err().starts_with("attempts"));
        let bad = RetryPolicy {
            max_delay: Duration::from_millis(10),
            ..RetryPolicy::NETWORK
        };
        assert_eq!(
            bad.check().unwrap_err(),
            "max_delay (10ms) is shorter than delay (1s)"
        );
        assert_eq!(RetryPolicy::NETWORK.check(), Ok(()));
    }
}
