//! The config of multiline records: a rule's TOML `multiline` key, a preset
//! name or a table (it has no INI form: uWSGI's `log-alarm` value has no room
//! for it). Compiled by [`super::Spec::compile`].

use crate::component::Origin;
use crate::component::de::Period;
use crate::component::toml_doc::Schema;
use serde::Deserialize;
use std::time::Duration;

/// A rule's `multiline` key as written: a preset name (`multiline = "python"`),
/// or a table of regexes and caps, optionally over a preset
/// (`multiline = { preset = "java", max_lines = 200 }`). Checked and compiled
/// by [`crate::record::Spec::compile`]; `None` takes the preset's value or the
/// default.
#[derive(Clone, Debug)]
pub struct MultilineDef {
    /// The preset it starts from (`python`, `java`, `go`, `ruby`).
    pub preset: Option<String>,
    /// The regex of a record's first line.
    pub start: Option<String>,
    /// The regex of the lines that continue a record.
    pub continue_: Option<String>,
    /// The regex of the line that ends a record (and belongs to it).
    pub end: Option<String>,
    /// Most lines in a record.
    pub max_lines: Option<usize>,
    /// Most bytes in a record's message.
    pub max_bytes: Option<usize>,
    /// A record with no new line from its input for this long is closed.
    pub timeout: Option<Duration>,
    /// Where the `multiline` key was written.
    pub origin: Origin,
}

impl MultilineDef {
    /// A def that sets nothing yet, written at `origin`.
    pub fn new(origin: Origin) -> Self {
        MultilineDef {
            preset: None,
            start: None,
            continue_: None,
            end: None,
            max_lines: None,
            max_bytes: None,
            timeout: None,
            origin,
        }
    }
}

/// The keys of a `multiline` table.
pub static TABLE: Schema = Schema {
    what: "a multiline table",
    keys: &[
        ("preset", None),
        ("start", None),
        ("continue", None),
        ("end", None),
        ("max_lines", None),
        ("max_bytes", None),
        ("timeout", None),
    ],
};

/// A rule's `multiline` table (its string form names a preset).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Multiline {
    preset: Option<String>,
    start: Option<String>,
    #[serde(rename = "continue")]
    continue_: Option<String>,
    end: Option<String>,
    max_lines: Option<usize>,
    max_bytes: Option<usize>,
    timeout: Option<Period>,
}

/// Reads a rule's `multiline` value: a preset name or a `multiline` table.
///
/// # Errors
/// Neither a string nor a table, or a table of the wrong shape.
pub fn from_toml(value: toml::Value, at: Origin) -> Result<MultilineDef, String> {
    match value {
        toml::Value::String(preset) => Ok(MultilineDef {
            preset: Some(preset),
            ..MultilineDef::new(at)
        }),
        toml::Value::Table(table) => {
            let m: Multiline = toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| crate::component::toml_doc::type_message(e.message()))?;
            Ok(MultilineDef {
                preset: m.preset,
                start: m.start,
                continue_: m.continue_,
                end: m.end,
                max_lines: m.max_lines,
                max_bytes: m.max_bytes,
                timeout: m.timeout.map(|p| p.0),
                origin: at,
            })
        }
        _ => Err(
            "must be a preset name (\"python\", \"java\", \"go\", \"ruby\") or a table, e.g. { start = \"^BEGIN\", continue = '^\\s' }"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_names_the_fields_of_the_table() {
        let fields = crate::component::toml_doc::fields::<Multiline>();
        assert_eq!(TABLE.names(), fields);
    }
}
