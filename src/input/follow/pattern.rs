//! The configured paths and globs: which paths are followed, and which
//! directories are watched for change events to find them.
//!
//! Paths are made absolute at start, so that they compare with the paths
//! change events carry; a glob's `*` never matches `/`, as in the directory
//! walk of [`glob::glob`].

use super::Core;
use super::config::StartAt;
use notify::{RecursiveMode, Watcher};
use std::path::{Path, PathBuf};

/// One configured path or glob.
pub(super) struct Pattern {
    pub(super) text: String,
    pub(super) glob: glob::Pattern,
    /// The directory to watch, and whether below it.
    pub(super) watch: (PathBuf, RecursiveMode),
    pub(super) from: StartAt,
}

pub(super) fn pattern(text: &str, from: StartAt) -> Result<Pattern, String> {
    let glob =
        glob::Pattern::new(text).map_err(|e| format!("follow {text:?}: not a valid glob: {e}"))?;
    let path = Path::new(text);
    let magic =
        |c: &std::path::Component<'_>| c.as_os_str().to_string_lossy().contains(['*', '?', '[']);
    let comps: Vec<_> = path.components().collect();
    let first_magic = comps.iter().position(magic);
    let watch = match first_magic {
        // A plain path, or a glob in its last component: its directory.
        None => (parent_of(path), RecursiveMode::NonRecursive),
        Some(i) if i + 1 == comps.len() => (parent_of(path), RecursiveMode::NonRecursive),
        // A glob in a directory component: everything below the fixed part.
        Some(i) => (comps[..i].iter().collect(), RecursiveMode::Recursive),
    };
    Ok(Pattern {
        text: text.to_owned(),
        glob,
        watch,
        from,
    })
}

/// `text` joined to the working directory when relative: change events carry
/// absolute paths (`notify` watches the absolute directory), which must compare
/// equal to the paths the glob walk finds. Left relative when the working
/// directory holds glob characters (its files are then found by polling only).
pub(super) fn absolute(text: &str) -> String {
    if Path::new(text).is_absolute() {
        return text.to_owned();
    }
    let cwd = std::env::current_dir().ok();
    match cwd.as_deref().and_then(Path::to_str) {
        Some(cwd) if !cwd.contains(['*', '?', '[', ']']) => {
            let rel = text.trim_start_matches("./");
            format!("{}/{rel}", cwd.trim_end_matches('/'))
        }
        _ => text.to_owned(),
    }
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

impl Core {
    /// Adds a watch on each pattern's directory that exists and is not yet watched.
    pub(super) fn update_watches(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        for p in &self.patterns {
            let (dir, mode) = &p.watch;
            if self.watched.contains(dir) || !dir.is_dir() {
                continue;
            }
            match watcher.watch(dir, *mode) {
                Ok(()) => {
                    self.watched.insert(dir.clone());
                }
                Err(e) => {
                    if self.reported.insert(dir.clone()) {
                        tracing::warn!(
                            "cannot watch {} ({e}); polling it every {:?}",
                            dir.display(),
                            self.poll_interval
                        );
                    }
                }
            }
        }
    }

    /// Whether a path from a change event is one to follow. A glob's `*` does
    /// not match `/` here, as in the directory walk of [`glob::glob`] (a
    /// recursive watch reports files at every depth).
    pub(super) fn matches(&self, path: &Path) -> Option<StartAt> {
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: false,
        };
        self.patterns
            .iter()
            .find(|p| p.glob.matches_path_with(path, options) || Path::new(&p.text) == path)
            .map(|p| p.from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watches_the_fixed_part_of_a_glob() {
        let p = pattern("/var/log/app/*.log", StartAt::End).unwrap();
        assert_eq!(
            p.watch,
            (PathBuf::from("/var/log/app"), RecursiveMode::NonRecursive)
        );
        let p = pattern("/var/log/*/x.log", StartAt::End).unwrap();
        assert_eq!(
            p.watch,
            (PathBuf::from("/var/log"), RecursiveMode::Recursive)
        );
        let p = pattern("app.log", StartAt::End).unwrap();
        assert_eq!(p.watch, (PathBuf::from("."), RecursiveMode::NonRecursive));
        assert!(pattern("/a/[", StartAt::End).is_err());
    }
}
