//! The config of followed files: TOML `[[input]] file = PATHS`, `from`;
//! INI options and flags `follow = PATH` and `follow-from = end|beginning`.

use crate::component::de::OneOrMany;
use crate::component::toml_doc::{Reader, Schema};
use crate::component::{ConfigError, OptionDoc, Origin};
use crate::input::component::{
    self, BuildContext, Input, InputConfig, Kind, SourceFilter, StartContext, Started, Task,
};
use logalarm_plugin_api::Source;
use serde::Deserialize;
use std::any::Any;
use std::sync::Arc;
use toml::Spanned;
use toml::de::DeValue;

/// Followed files as an input kind.
pub static KIND: Kind = Kind {
    key: "file",
    table: Schema {
        what: "a file [[input]]",
        keys: &[("file", None), ("from", None)],
    },
    from_toml,
    build,
    options: &[
        OptionDoc::new(
            "follow",
            "PATH",
            "Follow a file like `tail -F` (a path or a glob; repeatable); stdin is then not read",
        ),
        OptionDoc::new(
            "follow-from",
            "end|beginning",
            "Where to start in followed files that exist at start [default: end]",
        ),
    ],
    add_option,
};

/// Where reading starts in a file that exists when logalarm starts and has no
/// saved read position.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StartAt {
    /// At its end, as `tail -F` does: only lines written from now on.
    #[default]
    End,
    /// At its beginning: the whole file is read.
    Beginning,
}

/// Parses where reading starts: `end` or `beginning`.
///
/// # Errors
/// Any other word.
pub fn start_value(value: &str) -> Result<StartAt, String> {
    match value.trim() {
        "end" => Ok(StartAt::End),
        "beginning" | "start" => Ok(StartAt::Beginning),
        other => Err(format!(
            "{other:?} is not a start position; write \"end\" or \"beginning\""
        )),
    }
}

/// Files to follow, by path or glob, like `tail -F`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileConfig {
    /// Paths and glob patterns (`/var/log/app/*.log`).
    pub paths: Vec<String>,
    /// Where reading starts in files that exist at start.
    pub from: StartAt,
    /// Where it was configured.
    pub origin: Origin,
}

/// `[[input]] file = …` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    file: OneOrMany,
    from: Option<String>,
}

fn from_toml(
    reader: &mut Reader<'_>,
    path: &str,
    table: Spanned<DeValue<'_>>,
    errors: &mut Vec<ConfigError>,
) -> Option<Box<dyn InputConfig>> {
    let origin = reader.origin(table.span().start, path.to_owned());
    let t: Table = reader.value(path, table)?;
    let paths = t.file.into_vec();
    if paths.is_empty() || paths.iter().any(|p| p.trim().is_empty()) {
        errors.push(ConfigError::new(
            &origin,
            "`file` needs a path or glob",
            "e.g. file = \"/var/log/app/*.log\"",
        ));
        return None;
    }
    let from = match t.from.as_deref().map(start_value).transpose() {
        Ok(from) => from.unwrap_or_default(),
        Err(e) => {
            errors.push(ConfigError::at(&origin, e));
            return None;
        }
    };
    Some(Box::new(FileConfig {
        paths,
        from,
        origin,
    }))
}

/// Every followed file, by one follower.
struct Files {
    inputs: Vec<(Vec<String>, StartAt)>,
    settings: super::FollowSettings,
}

fn build(configs: &[&dyn InputConfig], cx: &BuildContext) -> Result<Vec<Box<dyn Input>>, String> {
    let inputs = configs
        .iter()
        .filter_map(|c| c.as_any().downcast_ref::<FileConfig>())
        .map(|f| (f.paths.clone(), f.from))
        .collect();
    Ok(vec![Box::new(Files {
        inputs,
        settings: cx.follow.clone(),
    })])
}

impl Input for Files {
    fn start(self: Box<Self>, cx: StartContext) -> Task<Result<Started, String>> {
        Box::pin(async move {
            let mut follower =
                super::start(&self.inputs, &self.settings, cx.events, cx.commits, cx.stop)?;
            follower.ready().await;
            Ok(Started {
                stats: vec![("files".into(), follower.stats())],
                // The follower's thread stops by itself; `finish` joins it.
                stopped: Box::pin(async {}),
                finish: Some(Box::pin(follower.finish())),
            })
        })
    }
}

fn add_option(
    inputs: &mut Vec<Box<dyn InputConfig>>,
    option: &str,
    value: &str,
    origin: &Origin,
) -> Result<bool, String> {
    match option {
        "follow" => inputs.push(Box::new(FileConfig {
            paths: vec![component::nonempty(value, "a path or glob")?],
            from: StartAt::End,
            origin: origin.clone(),
        })),
        "follow-from" => {
            let start = start_value(value)?;
            for file in component::of_kind::<FileConfig>(inputs) {
                file.from = start;
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

impl InputConfig for FileConfig {
    fn kind(&self) -> &'static Kind {
        &KIND
    }
    fn origin(&self) -> &Origin {
        &self.origin
    }
    fn name(&self) -> String {
        format!("file:{}", self.paths.join(","))
    }
    fn describe(&self) -> String {
        let from = match self.from {
            StartAt::End => "end",
            StartAt::Beginning => "beginning",
        };
        format!("{} (from {from})", self.paths.join(", "))
    }
    fn sources(&self) -> Result<SourceFilter, String> {
        let cwd = std::env::current_dir().unwrap_or_default();
        let mut patterns = Vec::new();
        for p in &self.paths {
            // Followed paths are made absolute; so are these, to compare.
            let absolute = cwd.join(p);
            let pattern = glob::Pattern::new(&absolute.to_string_lossy())
                .map_err(|e| format!("{p:?} is not a valid glob: {e}"))?;
            patterns.push(pattern);
        }
        let literal = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        Ok(Arc::new(move |source: &Source| {
            source.kind() == KIND.key
                && patterns
                    .iter()
                    .any(|p| p.matches_path_with(source.path(), literal))
        }))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
    fn clone_box(&self) -> Box<dyn InputConfig> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_the_fields_of_the_table() {
        let fields = crate::component::toml_doc::fields::<Table>();
        assert_eq!(KIND.table.names(), fields);
    }

    #[test]
    fn follow_from_applies_to_the_files_before_it() {
        let at = Origin::Arg { name: "t".into() };
        let mut inputs = Vec::new();
        assert_eq!(add_option(&mut inputs, "follow", "/a.log", &at), Ok(true));
        assert_eq!(
            add_option(&mut inputs, "follow-from", "beginning", &at),
            Ok(true)
        );
        assert_eq!(inputs[0].describe(), "/a.log (from beginning)");
        assert_eq!(inputs[0].name(), "file:/a.log");
        assert!(add_option(&mut inputs, "follow-from", "middle", &at).is_err());
        assert_eq!(add_option(&mut inputs, "socket", "/s", &at), Ok(false));
    }
}
