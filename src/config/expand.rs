//! uWSGI's config-time expansion, applied to INI files as uWSGI 2.0 applies
//! it (its documentation: "Configuration logic", "Magic variables";
//! its source: `magic_sub` and `uwsgi_apply_config_pass` in core/utils.c,
//! `config_magic_table_fill` in core/uwsgi.c), so that a real uwsgi.ini means
//! the same to logalarm as to uWSGI.
//!
//! In order:
//!
//! 1. **Magic variables**, over the whole file as read ([`MagicTable::sub`]):
//!    `%` and one character. `%%` is `%`; `%(` stays for step 4; `%p` the
//!    file's absolute path, `%d` its directory (with a trailing `/`), `%s`
//!    its name, `%n` its name without extension, `%e` the extension, `%c`
//!    the directory's name, `%0`…`%9` the directory's components, `%o` the
//!    path as given, `%j` a hex hash of `%p` (djb33x), `%i` its inode, `%x`
//!    the section named with `FILE:SECTION` (here always empty), the upper
//!    case letters `%O %P %S %N %E %C %D %X %I %J` the same for the first
//!    file read (an `include`d file keeps them); `%v` the working directory,
//!    `%h` the host name, `%k` the CPU count, `%u`/`%U` the user id/name,
//!    `%g`/`%G` the group id/name, `%t` the Unix time in seconds, `%T` in
//!    microseconds, `%V` the version (logalarm's, where uWSGI puts its own),
//!    `%b` the binary's path. Any other `%X` becomes nothing, as in uWSGI.
//!    One difference: a `%` ending a line stays (uWSGI would join the lines).
//! 2. **`$(VAR)`**, in option values: the environment variable;
//!    `$(VAR:-DEFAULT)` when it is unset or empty, `$(VAR-DEFAULT)` when it is
//!    unset. An unset variable without default leaves `$(VAR)` as written.
//! 3. **`@(FILE)`**: the file's content, one trailing line break dropped.
//! 4. **`%(NAME)`**: the value of option `NAME` in the read sections (the
//!    first one, as uWSGI takes it; `set-placeholder = NAME=VALUE`, `set-ph`
//!    and `set` define more), with uWSGI's arithmetic: `%(a b)` concatenates,
//!    `%(a + 2)`, `-`, `*`, `/` compute on integers, `++` and `--` add or take
//!    one. An unknown name leaves `%(NAME)` as written.
//!
//! Each step rescans what it substituted (as uWSGI does), at most
//! [`MAX_SUBSTITUTIONS`] times per value, so a variable holding itself
//! cannot loop forever.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Most substitutions of one pass in one value (uWSGI has no limit and loops
/// on a self-referencing value).
pub const MAX_SUBSTITUTIONS: usize = 1000;

/// The values of the `%X` magic variables for one file.
#[derive(Clone, Debug)]
pub struct MagicTable {
    vars: HashMap<u8, String>,
}

/// uWSGI's djb33x hash (core/hash.c), over bytes read as C's signed `char`.
fn djb33x(bytes: &[u8]) -> u32 {
    bytes.iter().fold(5381u32, |hash, &b| {
        (hash << 5).wrapping_add(hash) ^ (i32::from(b as i8) as u32)
    })
}

/// The host name, as uWSGI's `%h` has it (`gethostname`).
fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_default()
}

impl MagicTable {
    /// The variables for the config file `file` (as given on the command
    /// line or in an `include`); `first` is the table of the first file
    /// read, whose values the upper-case variables keep (`None` for the
    /// first file itself).
    pub fn for_file(file: &Path, first: Option<&MagicTable>) -> MagicTable {
        let mut vars: HashMap<u8, String> = HashMap::new();
        let as_given = file.display().to_string();
        let full: PathBuf = std::fs::canonicalize(file).unwrap_or_else(|_| {
            std::env::current_dir()
                .map(|cwd| cwd.join(file))
                .unwrap_or_else(|_| file.to_owned())
        });
        let p = full.display().to_string();
        let (dir, name) = match p.rfind('/') {
            Some(i) => (p[..=i].to_owned(), p[i + 1..].to_owned()),
            None => (String::new(), p.clone()),
        };
        let trimmed = dir.strip_suffix('/').unwrap_or(&dir);
        let c = trimmed.rsplit('/').next().unwrap_or_default().to_owned();
        for (i, part) in trimmed
            .split('/')
            .filter(|s| !s.is_empty())
            .take(10)
            .enumerate()
        {
            vars.insert(b'0' + i as u8, part.to_owned());
        }
        let (n, e) = match name.rfind('.') {
            Some(i) => (name[..i].to_owned(), name[i + 1..].to_owned()),
            None => (name.clone(), String::new()),
        };
        let j: String = djb33x(p.as_bytes())
            .to_le_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let inode = {
            use std::os::unix::fs::MetadataExt;
            std::fs::symlink_metadata(&full)
                .map(|m| m.ino().to_string())
                .unwrap_or_default()
        };
        for (k, v) in [
            (b'o', as_given),
            (b'p', p.clone()),
            (b's', name),
            (b'd', dir),
            (b'c', c),
            (b'n', n),
            (b'e', e),
            (b'x', String::new()),
            (b'j', j),
            (b'i', inode),
        ] {
            vars.insert(k, v);
        }
        for (upper, lower) in [
            (b'O', b'o'),
            (b'D', b'd'),
            (b'S', b's'),
            (b'P', b'p'),
            (b'C', b'c'),
            (b'E', b'e'),
            (b'N', b'n'),
            (b'X', b'x'),
            (b'I', b'i'),
            (b'J', b'j'),
        ] {
            let value = match first {
                Some(first) => first.vars.get(&upper).cloned(),
                None => vars.get(&lower).cloned(),
            };
            vars.insert(upper, value.unwrap_or_default());
        }
        let uid = nix::unistd::getuid();
        let gid = nix::unistd::getgid();
        let user = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name);
        let group = nix::unistd::Group::from_gid(gid)
            .ok()
            .flatten()
            .map_or_else(|| gid.to_string(), |g| g.name);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let cwd = std::env::current_dir()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let binary = std::env::current_exe()
            .map(|b| b.display().to_string())
            .unwrap_or_default();
        let cpus = std::thread::available_parallelism().map_or(1, usize::from);
        for (k, v) in [
            (b'v', cwd),
            (b'h', hostname()),
            (b'k', cpus.to_string()),
            (b'u', uid.to_string()),
            (b'U', user),
            (b'g', gid.to_string()),
            (b'G', group),
            (b't', now.as_secs().to_string()),
            (b'T', now.as_micros().to_string()),
            (b'V', env!("CARGO_PKG_VERSION").to_owned()),
            (b'b', binary),
        ] {
            vars.insert(k, v);
        }
        MagicTable { vars }
    }

    /// The value of `%X`, if the table has one (any other `%X` is empty).
    pub fn get(&self, var: u8) -> Option<&str> {
        self.vars.get(&var).map(String::as_str)
    }

    /// Substitutes the magic variables in `text` (a whole file).
    pub fn sub(&self, text: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(text.len());
        let mut i = 0;
        while i < text.len() {
            let b = text[i];
            match text.get(i + 1) {
                Some(&next) if b == b'%' && next != b'\n' && next != b'\r' => {
                    match next {
                        b'%' => out.push(b'%'),
                        b'(' => out.extend_from_slice(b"%("),
                        _ => out.extend_from_slice(self.get(next).unwrap_or_default().as_bytes()),
                    }
                    i += 2;
                }
                _ => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        out
    }
}

/// One pass of uWSGI's `SYMBOL(…)` expansion over `value`: each `SYMBOL(KEY)`
/// (parentheses may nest inside KEY) is replaced by `lookup(KEY)`, and the
/// value is scanned again from its start; a KEY `lookup` does not know is
/// left as written.
///
/// # Errors
/// `lookup`'s error (an `@(FILE)` that cannot be read), or more than
/// [`MAX_SUBSTITUTIONS`] substitutions.
pub fn pass(
    value: &str,
    symbol: char,
    mut lookup: impl FnMut(&str) -> Result<Option<String>, String>,
) -> Result<String, String> {
    let mut value = value.to_owned();
    let mut done = 0;
    'rescan: loop {
        let bytes = value.as_bytes();
        let mut i = 0;
        while i + 1 < bytes.len() {
            if bytes[i] == symbol as u8 && bytes[i + 1] == b'(' {
                let start = i + 2;
                let mut depth = 0;
                let mut end = None;
                for (j, &b) in bytes.iter().enumerate().skip(start) {
                    match b {
                        b'(' => depth += 1,
                        b')' if depth == 0 => {
                            end = Some(j);
                            break;
                        }
                        b')' => depth -= 1,
                        _ => {}
                    }
                }
                let Some(end) = end else { break };
                // An empty tag, `$()`, is left as written (as in uWSGI).
                if end > start
                    && let Some(found) = lookup(&value[start..end])?
                {
                    done += 1;
                    if done > MAX_SUBSTITUTIONS {
                        return Err(format!(
                            "more than {MAX_SUBSTITUTIONS} substitutions of {symbol}(…): does a value refer to itself?"
                        ));
                    }
                    value = format!("{}{found}{}", &value[..i], &value[end + 1..]);
                    continue 'rescan;
                }
                i = end + 1;
                continue;
            }
            i += 1;
        }
        return Ok(value);
    }
}

/// `$(VAR)`, `$(VAR:-DEFAULT)`, `$(VAR-DEFAULT)` (uWSGI's
/// `uwsgi_getenv_with_default`); `None` leaves the tag as written.
pub fn env_var(key: &str, getenv: impl Fn(&str) -> Option<String>) -> Option<String> {
    if let Some((var, default)) = key.split_once(":-") {
        return match getenv(var) {
            Some(v) if !v.is_empty() => Some(v),
            _ => Some(default.to_owned()),
        };
    }
    if let Some((var, default)) = key.split_once('-') {
        return Some(getenv(var).unwrap_or_else(|| default.to_owned()));
    }
    getenv(key)
}

/// `@(FILE)`: the file's content, one trailing `\n` or `\r` dropped (uWSGI's
/// `uwsgi_at_file_read`); relative paths are taken from the working directory.
///
/// # Errors
/// The file cannot be read, holds more than
/// [`MAX_FILE_BYTES`](super::MAX_FILE_BYTES), or is not UTF-8.
pub fn at_file(path: &str) -> Result<Option<String>, String> {
    let bytes = super::read_file(std::path::Path::new(path))
        .map_err(|e| format!("@({path}): cannot read the file: {e}"))?;
    let mut text = String::from_utf8(bytes)
        .map_err(|_| format!("@({path}): cannot read the file: it is not UTF-8"))?;
    if text.ends_with('\n') || text.ends_with('\r') {
        text.pop();
    }
    Ok(Some(text))
}

/// `%(NAME …)`: uWSGI's placeholder pipeline (`uwsgi_manage_placeholder`).
/// Without a space, the option's value (`None` when there is none); with
/// spaces, the tokens in turn: a number or an option's value (empty when
/// unknown) is concatenated, or, after `+ - * /`, computed with what came
/// before as integers; `++` and `--` add or take one.
pub fn placeholder(key: &str, option: impl Fn(&str) -> Option<String>) -> Option<String> {
    if !key.contains(' ') {
        return option(key);
    }
    #[derive(Clone, Copy)]
    enum Op {
        Concat,
        Sum,
        Sub,
        Mul,
        Div,
    }
    // C's strtoll: leading digits (and sign), 0 when there are none.
    let number = |s: &str| -> i64 {
        let s = s.trim_start();
        let end = s
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
            .map_or(s.len(), |(i, _)| i);
        s[..end].parse().unwrap_or(0)
    };
    let mut op = Op::Concat;
    let mut current: Option<String> = None;
    for token in key.split(' ').filter(|t| !t.is_empty()) {
        let value = match token {
            "+" => {
                op = Op::Sum;
                continue;
            }
            "-" => {
                op = Op::Sub;
                continue;
            }
            "*" => {
                op = Op::Mul;
                continue;
            }
            "/" => {
                op = Op::Div;
                continue;
            }
            "++" | "--" => {
                if let Some(c) = &current {
                    let step = if token == "++" { 1 } else { -1 };
                    current = Some(number(c).wrapping_add(step).to_string());
                }
                op = Op::Concat;
                continue;
            }
            t if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) => t.to_owned(),
            t => option(t).unwrap_or_default(),
        };
        let a = current.as_deref().map_or(0, number);
        let b = number(&value);
        current = Some(match op {
            Op::Concat => format!("{}{value}", current.as_deref().unwrap_or_default()),
            Op::Sum => a.wrapping_add(b).to_string(),
            Op::Sub => a.wrapping_sub(b).to_string(),
            Op::Mul => a.wrapping_mul(b).to_string(),
            Op::Div => a.checked_div(b).unwrap_or(0).to_string(),
        });
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn magic_variables_of_a_file() {
        let dir = std::env::temp_dir().join("logalarm-expand-test/etc/app");
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("site.ini");
        std::fs::write(&file, "").unwrap();
        let t = MagicTable::for_file(&file, None);
        let p = std::fs::canonicalize(&file).unwrap().display().to_string();
        assert_eq!(t.get(b'p'), Some(p.as_str()));
        assert_eq!(t.get(b's'), Some("site.ini"));
        assert_eq!(t.get(b'n'), Some("site"));
        assert_eq!(t.get(b'e'), Some("ini"));
        assert_eq!(t.get(b'c'), Some("app"));
        assert!(t.get(b'd').is_some_and(|d| d.ends_with("/etc/app/")));
        assert_eq!(t.get(b'P'), t.get(b'p'));
        assert_eq!(
            t.sub(b"100%% %n.log %(x) %z%\nnext"),
            b"100% site.log %(x) %\nnext".to_vec()
        );
    }

    #[test]
    fn djb33x_as_uwsgi() {
        // (5381 << 5) + 5381 = 177573; ^ 'a' (97) = 177604.
        assert_eq!(djb33x(b"a"), 177_604);
        // A byte over 0x7f is a negative C char: sign-extended.
        assert_eq!(djb33x(b"\xff"), (5381u32 * 33) ^ 0xffff_ffff);
    }

    #[test]
    fn env_pass_with_defaults() {
        let env = |k: &str| match k {
            "HOME" => Some("/root".to_owned()),
            "EMPTY" => Some(String::new()),
            _ => None,
        };
        let run = |v: &str| pass(v, '$', |k| Ok(env_var(k, env))).unwrap();
        assert_eq!(run("cmd:echo $(HOME)/x"), "cmd:echo /root/x");
        assert_eq!(run("$(UNSET) stays"), "$(UNSET) stays");
        assert_eq!(run("$(EMPTY:-dflt) $(EMPTY-dflt)"), "dflt ");
        assert_eq!(run("$(UNSET:-a) $(UNSET-b)"), "a b");
        assert_eq!(run("cost $() (x)"), "cost $() (x)");
    }

    #[test]
    fn placeholders_and_their_arithmetic() {
        let opt = |k: &str| match k {
            "processes" => Some("4".to_owned()),
            "name" => Some("web".to_owned()),
            _ => None,
        };
        let run = |v: &str| pass(v, '%', |k| Ok(placeholder(k, opt))).unwrap();
        assert_eq!(run("%(name)-%(processes)"), "web-4");
        assert_eq!(run("%(processes + 2)"), "6");
        assert_eq!(run("%(processes * processes - 1)"), "15");
        assert_eq!(run("%(processes / 0)"), "0");
        assert_eq!(run("%(processes ++)"), "5");
        assert_eq!(run("%(name name)"), "webweb");
        assert_eq!(run("%(unknown) kept"), "%(unknown) kept");
    }

    #[test]
    fn a_self_reference_stops() {
        let err = pass("$(X)", '$', |_| Ok(Some("$(X)".to_owned()))).unwrap_err();
        assert!(err.contains("refer to itself"), "{err}");
    }
}
