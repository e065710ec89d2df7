//! The INI options and command-line flags of the inputs, the wrapped process
//! and `alarm-fd`: each component owns its own ([`crate::input::component`],
//! [`crate::input::child::config`], [`crate::input::fd::config`]); this is
//! where the config sources reach them. TOML has its own tables, see
//! [`super::toml`].

use super::{Config, Origin};
use crate::input::child::config as run;
use crate::input::component;
use crate::input::fd::config as alarm_fd;

impl Config {
    /// The options [`Config::add_input_option`] takes, for "did you mean"
    /// suggestions.
    pub fn input_options() -> impl Iterator<Item = &'static str> {
        component::options()
            .chain(run::OPTIONS)
            .chain([alarm_fd::OPTION])
    }

    /// Adds an input, wrapped-process or `alarm-fd` option written in INI or on
    /// the command line (`follow`, `socket-stream`, `alarm-segfault`, …: see
    /// [`Config::input_options`]) and returns `Ok(true)`; `Ok(false)` for any
    /// other option.
    ///
    /// `follow-from`, `socket-mode` and `socket-allow-uid` apply to the inputs
    /// defined before them in the same source.
    ///
    /// # Errors
    /// A malformed value, with the expected form.
    pub fn add_input_option(
        &mut self,
        option: &str,
        value: &str,
        origin: &Origin,
    ) -> Result<bool, String> {
        if option == alarm_fd::OPTION {
            self.alarm_fds
                .push(alarm_fd::alarm_fd_value(value, origin)?);
            return Ok(true);
        }
        if self.run.add_option(option, value, origin)? {
            return Ok(true);
        }
        component::add_option(&mut self.inputs, option, value, origin)
    }
}
