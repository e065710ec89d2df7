//! The value shapes of the TOML syntax that several components take: a
//! period written as seconds or as a duration string, one string or a list
//! of them, a number or a string.

use super::syntax;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use std::fmt;
use std::time::Duration;

/// A period written as seconds (`3`, `0.5`) or as a duration string
/// (`"500ms"`), at most [`MAX_PERIOD`](logalarm_plugin_api::MAX_PERIOD)
/// (365 days; a longer one is an error naming its key).
#[derive(Clone, Copy, Debug)]
pub struct Period(pub Duration);

impl<'de> Deserialize<'de> for Period {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Period;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds (3, 0.5) or a duration string (\"500ms\", \"2m\")")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Period, E> {
                match u64::try_from(v) {
                    Ok(secs) => self.visit_u64(secs),
                    Err(_) => Err(E::custom("a period cannot be negative")),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Period, E> {
                // Through the same bound as every other period (365 days).
                syntax::duration(&v.to_string())
                    .map(Period)
                    .map_err(E::custom)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Period, E> {
                syntax::duration(&v.to_string())
                    .map(Period)
                    .map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Period, E> {
                syntax::duration(v).map(Period).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// One string or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// One string.
    One(String),
    /// A list.
    Many(Vec<String>),
}

impl OneOrMany {
    /// The strings, one or many.
    pub fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A number or a string (a socket mode, a descriptor).
#[derive(Deserialize)]
#[serde(untagged)]
pub enum NumberOrString {
    /// A number.
    Number(u64),
    /// A string.
    String(String),
}
