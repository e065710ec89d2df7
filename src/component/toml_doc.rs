//! Reading a TOML document piece by piece, for errors that name their key.
//!
//! `toml::from_str` into one struct stops at the first error, and its
//! messages name neither the key path (`invalid type: string "big", expected
//! usize`) nor a duplicate key. So the document is parsed into the toml
//! crate's span-keeping [`DeTable`] first (all syntax errors at once), its
//! keys are checked against a [`Schema`] (unknown keys named, with a "did you
//! mean"), and then each section is deserialized on its own; an error's span
//! is found in the tree again to name its key path.

use super::suggest;
use super::{ConfigError, Origin};
use serde::de::DeserializeOwned;
use std::borrow::Cow;
use std::ops::Range;
use std::path::Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// The keys a table takes.
pub struct Schema {
    /// What the table is, for the list of its keys ("a `[[rule]]`").
    pub what: &'static str,
    /// Its keys, each with the schema of its own table where its value may
    /// be one (`None`: not a table, or a table of any keys).
    pub keys: &'static [(&'static str, Option<&'static Schema>)],
}

impl Schema {
    /// The key names, in the order written in the schema.
    pub fn names(&self) -> Vec<&'static str> {
        self.keys.iter().map(|(k, _)| *k).collect()
    }
}

/// The entries of a table, sorted by key: the toml crate's map order without
/// its `preserve_order` feature, which is the order alarms always had (and
/// `logalarm test` reports them in). Errors are sorted by line anyway.
pub fn entries(table: DeTable<'_>) -> Vec<(Cow<'_, str>, Spanned<DeValue<'_>>)> {
    table
        .into_iter()
        .map(|(k, v)| (k.into_inner(), v))
        .collect()
}

/// `path.key`, or `key` at the top.
pub fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// One file being read: where errors go, each with its line for sorting.
pub struct Reader<'a> {
    file: &'a Path,
    text: &'a str,
    errors: Vec<(u32, ConfigError)>,
}

impl<'a> Reader<'a> {
    /// A reader of `text`, read from `file`.
    pub fn new(file: &'a Path, text: &'a str) -> Self {
        Reader {
            file,
            text,
            errors: Vec::new(),
        }
    }

    /// The origin of a key written at byte `offset`.
    pub fn origin(&self, offset: usize, key: String) -> Origin {
        Origin::Toml {
            file: self.file.to_owned(),
            line: line_of(self.text, offset),
            key,
        }
    }

    fn push(&mut self, offset: usize, key: String, message: String) {
        let line = line_of(self.text, offset);
        let at = self.origin(offset, key);
        self.errors.push((line, ConfigError::at(&at, message)));
    }

    /// The errors found, in the order of their lines.
    pub fn finish(mut self) -> Vec<ConfigError> {
        self.errors.sort_by_key(|(line, _)| *line);
        self.errors.into_iter().map(|(_, e)| e).collect()
    }

    /// Parses the document, reporting every syntax error. `None` when one of
    /// them is more than a duplicate key: what the parser recovered of a broken
    /// document would only bring misleading errors after it.
    pub fn parse(&mut self) -> Option<DeTable<'a>> {
        let (root, syntax) = DeTable::parse_recoverable(self.text);
        let root = root.into_inner();
        let mut usable = true;
        for e in syntax {
            let span = e.span().unwrap_or(0..0);
            if e.message().trim_end() == "duplicate key" {
                self.duplicate(&root, span);
            } else {
                usable = false;
                let line = line_of(self.text, span.start);
                self.errors.push((
                    line,
                    ConfigError::line(self.file, line, e.message().trim_end()),
                ));
            }
        }
        usable.then_some(root)
    }

    /// Names a duplicate key (its span in `span`) and where it was first set:
    /// the nearest key of the same name written before it.
    fn duplicate(&mut self, root: &DeTable<'_>, span: Range<usize>) {
        let written = self.text.get(span.clone()).unwrap_or_default().trim();
        let name = written.trim_matches(|c| c == '"' || c == '\'');
        let mut keys = Vec::new();
        walk_keys("", root, &mut keys);
        let same = |path: &String| path.rsplit('.').next().is_some_and(|leaf| leaf == name);
        // A table written twice (`[alarm.a]` again) keeps the span of its
        // second header in the tree, so its first one cannot be named.
        if let Some((path, _)) = keys
            .iter()
            .find(|(p, start)| *start == span.start && same(p))
        {
            let message = format!("the table [{path}] is written twice; merge them into one");
            self.push(span.start, path.clone(), message);
            return;
        }
        let first = keys
            .into_iter()
            .filter(|(path, start)| *start < span.start && same(path))
            .max_by_key(|(_, start)| *start);
        let (key, message) = match first {
            Some((path, start)) => (
                path,
                format!(
                    "duplicate key, first set on line {}; keep one",
                    line_of(self.text, start)
                ),
            ),
            None => (name.to_owned(), "duplicate key; keep one".to_owned()),
        };
        self.push(span.start, key, message);
    }

    /// Deserializes one value; an error is reported at the key path it
    /// happened at (under `path`), and gives `None`.
    pub fn value<T: DeserializeOwned>(
        &mut self,
        path: &str,
        value: Spanned<DeValue<'_>>,
    ) -> Option<T> {
        // Kept to find the failing key's path: config files are small.
        let tree = value.clone();
        match T::deserialize(ValueDeserializer::from(value)) {
            Ok(v) => Some(v),
            Err(e) => {
                let (key, offset) = e
                    .span()
                    .and_then(|span| deepest(path, &tree, &span))
                    .unwrap_or_else(|| (path.to_owned(), tree.span().start));
                self.push(offset, key, type_message(e.message()));
                None
            }
        }
    }

    /// Checks a table's keys against `schema`, then deserializes it; `None`
    /// when a key is unknown (the rest of the table is not checked then, so
    /// that a typo is not followed by "has no regex") or a value is wrong.
    pub fn table<T: DeserializeOwned>(
        &mut self,
        path: &str,
        mut value: Spanned<DeValue<'_>>,
        schema: &Schema,
    ) -> Option<T> {
        if let DeValue::Table(t) = value.get_mut()
            && !self.known_keys(path, t, schema, false)
        {
            return None;
        }
        self.value(path, value)
    }

    /// Each table of an array of tables (`[[rule]]`) through [`Self::table`],
    /// with its 1-based place.
    pub fn items<T: DeserializeOwned>(
        &mut self,
        name: &str,
        value: Spanned<DeValue<'_>>,
        schema: &Schema,
    ) -> Vec<(usize, T)> {
        if !matches!(value.get_ref(), DeValue::Array(_)) {
            // Not a list: let serde say what it is.
            let _: Option<Vec<toml::Value>> = self.value(name, value);
            return Vec::new();
        }
        let mut out = Vec::new();
        if let DeValue::Array(items) = value.into_inner() {
            for (i, item) in items.iter().enumerate() {
                if let Some(t) = self.table(&format!("{name}[{}]", i + 1), item.clone(), schema) {
                    out.push((i + 1, t));
                }
            }
        }
        out
    }

    /// Reports and removes the keys of `table` that `schema` does not name,
    /// in its sub-tables too; with `others_allowed`, only in its sub-tables
    /// (an alarm's own other keys go to its plugin). `true` when none was found.
    pub fn known_keys(
        &mut self,
        path: &str,
        table: &mut DeTable<'_>,
        schema: &Schema,
        others_allowed: bool,
    ) -> bool {
        self.known_keys_also(path, table, schema, &[], others_allowed)
    }

    /// [`Self::known_keys`], where the keys of `also` are known too (a
    /// table whose keys come from more than one place, like the top level).
    pub fn known_keys_also(
        &mut self,
        path: &str,
        table: &mut DeTable<'_>,
        schema: &Schema,
        also: &[&'static str],
        others_allowed: bool,
    ) -> bool {
        let mut names = schema.names();
        names.extend_from_slice(also);
        let mut unknown = Vec::new();
        let mut clean = true;
        for (k, v) in table.iter_mut() {
            let key: &str = k.get_ref();
            match schema.keys.iter().find(|(n, _)| *n == key) {
                None if !others_allowed && !also.contains(&key) => {
                    unknown.push((key.to_owned(), k.span().start));
                }
                Some((_, Some(sub))) => {
                    if let DeValue::Table(t) = v.get_mut() {
                        clean &= self.known_keys(&join(path, key), t, sub, false);
                    }
                }
                _ => {}
            }
        }
        for (key, start) in unknown {
            table.remove(key.as_str());
            let fix = suggest::fix(&key, &names, schema.what);
            self.unknown(start, join(path, &key), &key, &fix);
            clean = false;
        }
        clean
    }

    /// Reports the unknown key `key` written at `offset`, with its fix.
    pub fn unknown(&mut self, offset: usize, path: String, key: &str, fix: &str) {
        self.push(offset, path, format!("unknown key `{key}`; {fix}"));
    }
}

/// Every key of the tree with its path and where it was written.
fn walk_keys(path: &str, table: &DeTable<'_>, out: &mut Vec<(String, usize)>) {
    for (k, v) in table.iter() {
        let p = join(path, k.get_ref());
        out.push((p.clone(), k.span().start));
        match v.get_ref() {
            DeValue::Table(t) => walk_keys(&p, t, out),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let DeValue::Table(t) = item.get_ref() {
                        walk_keys(&format!("{p}[{}]", i + 1), t, out);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The path of the deepest value under `value` (at `path`) whose span holds
/// `span`, and where that value starts. Children are tried even when their
/// parent's span does not hold it: a `[table]`'s span may be its header only.
fn deepest(
    path: &str,
    value: &Spanned<DeValue<'_>>,
    span: &Range<usize>,
) -> Option<(String, usize)> {
    let children: Vec<(String, &Spanned<DeValue<'_>>)> = match value.get_ref() {
        DeValue::Table(t) => t
            .iter()
            .map(|(k, v)| (join(path, k.get_ref()), v))
            .collect(),
        DeValue::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, v)| (format!("{path}[{}]", i + 1), v))
            .collect(),
        _ => Vec::new(),
    };
    for (p, child) in children {
        if let Some(found) = deepest(&p, child, span) {
            return Some(found);
        }
    }
    let own = value.span();
    (own.start <= span.start && span.end <= own.end).then(|| (path.to_owned(), own.start))
}

/// serde's type error in words: `invalid type: string "big", expected
/// usize` becomes `expected a whole number (usize), got the string "big"`.
pub fn type_message(message: &str) -> String {
    let message = message.trim_end();
    // serde's words for the config's untagged enums (src/component/de.rs,
    // src/policy/digest.rs).
    if let Some(name) = message.strip_prefix("data did not match any variant of untagged enum ") {
        match name {
            "OneOrMany" => return "expected a string or a list of strings".to_owned(),
            "NumberOrString" => return "expected a number or a string".to_owned(),
            "DigestValue" => {
                return "expected a period (\"10m\") or a table { period, max_groups, key }"
                    .to_owned();
            }
            _ => {}
        }
    }
    for prefix in ["invalid type: ", "invalid value: "] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((got, expected)) = rest.split_once(", expected ")
        {
            let expected = match expected {
                "usize" | "u64" | "u32" | "u16" | "u8" => {
                    format!("a whole number ({expected})")
                }
                "i64" | "i32" => format!("a number ({expected})"),
                "a sequence" => "a list".to_owned(),
                "a map" => "a table".to_owned(),
                other => other.to_owned(),
            };
            let got = match got.split_once(' ') {
                Some((kind, v)) => {
                    let v = v.trim_matches('`');
                    match kind {
                        "string" => format!("the string {v}"),
                        "integer" => format!("the integer {v}"),
                        "floating" => format!("the number {}", v.trim_start_matches("point ")),
                        "boolean" => format!("the boolean {v}"),
                        _ => got.to_owned(),
                    }
                }
                None => match got {
                    "sequence" => "a list".to_owned(),
                    "map" => "a table".to_owned(),
                    other => other.to_owned(),
                },
            };
            return format!("expected {expected}, got {got}");
        }
    }
    message.to_owned()
}

/// The 1-based line of a byte offset.
pub fn line_of(text: &str, offset: usize) -> u32 {
    let end = offset.min(text.len());
    let newlines = memchr::memchr_iter(b'\n', &text.as_bytes()[..end]).count();
    u32::try_from(newlines + 1).unwrap_or(u32::MAX)
}

/// The field names of a derived `Deserialize` struct, to hold a [`Schema`]
/// to its struct in tests.
#[cfg(test)]
pub fn fields<T: for<'de> serde::Deserialize<'de>>() -> Vec<&'static str> {
    test_fields::fields::<T>()
}

#[cfg(test)]
mod test_fields {
    use serde::Deserialize;
    use serde::de::{self, Deserializer, Visitor};

    /// A deserializer that only records the field names a derived
    /// `Deserialize` asks for: how the schemas are held to the structs.
    struct Fields(Option<&'static [&'static str]>);

    impl<'de> Deserializer<'de> for &mut Fields {
        type Error = de::value::Error;
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _visitor: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = Some(fields);
            Err(de::Error::custom("fields recorded"))
        }
        fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }

    pub(super) fn fields<T: for<'de> Deserialize<'de>>() -> Vec<&'static str> {
        let mut f = Fields(None);
        let _ = T::deserialize(&mut f);
        f.0.unwrap_or_default().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_in_words() {
        assert_eq!(
            type_message("invalid type: string \"big\", expected usize\n"),
            "expected a whole number (usize), got the string \"big\""
        );
        assert_eq!(
            type_message("invalid type: integer `5`, expected a string"),
            "expected a string, got the integer 5"
        );
        assert_eq!(
            type_message("missing field `within`"),
            "missing field `within`"
        );
    }
}
