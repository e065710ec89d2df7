//! The options of the one uWSGI-style table ([`super::options`]) given on the
//! command line (`--alarm`, `--log-alarm`, `--follow`, `--alarm-threshold`,
//! …); they add to the config file's, after them, in command-line order.

use super::{Config, ConfigError, Origin};

/// One alarm or rule option as written on the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CliEntry {
    /// The option without dashes, one of [`Config::options`].
    pub option: &'static str,
    /// Its value.
    pub value: String,
}

/// Builds alarms and rules from command-line entries given in command-line order.
///
/// # Errors
/// A malformed value, naming the option and its occurrence.
pub fn build(entries: &[CliEntry]) -> Result<Config, Vec<ConfigError>> {
    load(entries).into_result()
}

/// Builds alarms and rules from command-line entries, keeping what loaded
/// beside the errors ([`Config::errors`]).
pub fn load(entries: &[CliEntry]) -> Config {
    let mut config = Config::default();
    let mut errors = Vec::new();
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for entry in entries {
        let nth = match seen.iter_mut().find(|(o, _)| *o == entry.option) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                seen.push((entry.option, 1));
                1
            }
        };
        let origin = Origin::Cli {
            flag: format!("--{}", entry.option),
            nth,
        };
        let added = config.add_option(entry.option, &entry.value, &origin);
        if let Err(message) = added {
            errors.push(ConfigError::at(&origin, message));
        }
    }
    config.errors = errors;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_counts_occurrences() {
        let e = |option, value: &str| CliEntry {
            option,
            value: value.into(),
        };
        let c = build(&[
            e("alarm", "a log:"),
            e("log-alarm", "a X"),
            e("not-alarm-log", "a Y"),
            e("log-alarm", "a Z"),
        ])
        .unwrap();
        let rules: Vec<_> = c
            .rules
            .iter()
            .map(|r| (r.regex.as_str(), r.negate))
            .collect();
        assert_eq!(rules, [("X", false), ("Y", true), ("Z", false)]);
        assert_eq!(
            c.rules[2].origin.to_string(),
            "command line: --log-alarm (occurrence 2)"
        );
        let errs = build(&[e("log-alarm", "a")]).unwrap_err();
        assert!(errs[0].message().contains("rule without regex"));
    }
}
