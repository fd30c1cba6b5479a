//! The registry's files as text, read from a directory or from a git tree.
//!
//! Everything downstream works on this in-memory copy, so the current tree
//! and the tree at `--against REF` go through the same code.
use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The registry files: path relative to the registry directory
/// (`/`-separated, `auth/user.created.v1.json`) to text. Holds every
/// `*.json` file, `tidings.toml` and `registry.lock`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// Relative path to contents.
    pub files: BTreeMap<String, String>,
    /// Registry files that are not UTF-8 (reported as invalid JSON).
    pub not_utf8: Vec<String>,
}

/// Why the registry at a git ref could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be run.
    #[error("cannot run git: {0}")]
    Spawn(#[source] io::Error),
    /// The directory is not inside a git work tree.
    #[error("{path} is not inside a git repository: {1}", path = .0.display())]
    NotARepo(PathBuf, String),
    /// The ref does not name a commit.
    #[error("unknown git ref {0:?}: {1}")]
    BadRef(String, String),
    /// Any other git failure.
    #[error("git {0} failed: {1}")]
    Failed(String, String),
}

/// Whether a registry-relative path is one of the files the registry reads.
fn wanted(rel: &str) -> bool {
    rel.ends_with(".json") || rel == super::config::CONFIG_FILE || rel == super::lock::LOCK_FILE
}

impl Source {
    /// Reads every registry file under `dir`.
    ///
    /// # Errors
    /// The directory (or a file in it) cannot be read.
    pub fn from_dir(dir: &Path) -> io::Result<Source> {
        let mut files = BTreeMap::new();
        let mut not_utf8 = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d)? {
                let entry = entry?;
                let path = entry.path();
                let ft = entry.file_type()?;
                if ft.is_dir() {
                    stack.push(path);
                } else if ft.is_file() {
                    let rel = rel_path(dir, &path);
                    if wanted(&rel) {
                        match String::from_utf8(std::fs::read(&path)?) {
                            Ok(text) => {
                                files.insert(rel, text);
                            }
                            Err(_) => not_utf8.push(rel),
                        }
                    }
                }
            }
        }
        not_utf8.sort();
        Ok(Source { files, not_utf8 })
    }

    /// Reads every registry file under `dir` as it was at git revision `rev`
    /// (`git ls-tree` + `git cat-file --batch`). `dir` must be inside the
    /// work tree; it need not exist at `rev` (an empty registry results).
    ///
    /// # Errors
    /// Not a repository, unknown ref, git failure.
    pub fn from_git(dir: &Path, rev: &str) -> Result<Source, GitError> {
        let dir_for_git = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let prefix = git(dir_for_git, &["rev-parse", "--show-prefix"])
            .map_err(|e| match e {
                GitError::Failed(_, m) => GitError::NotARepo(dir.to_path_buf(), m),
                other => other,
            })?
            .trim()
            .to_string();
        let commit = git(dir_for_git, &["rev-parse", "--verify", "--quiet", &format!("{rev}^{{commit}}")])
            .map_err(|e| match e {
                GitError::Failed(_, m) => GitError::BadRef(
                    rev.to_string(),
                    if m.trim().is_empty() {
                        "it does not name a commit (fetch it first? in CI use a checkout with enough history, e.g. fetch-depth: 0)".to_string()
                    } else {
                        m
                    },
                ),
                other => other,
            })?
            .trim()
            .to_string();
        // Paths are listed relative to the current directory (`dir`).
        let listing = git(
            dir_for_git,
            &["ls-tree", "-r", "-z", "--name-only", &commit, "--", "."],
        )?;
        let paths: Vec<&str> = listing
            .split('\0')
            .filter(|p| !p.is_empty() && wanted(p))
            .collect();
        let mut files = BTreeMap::new();
        let mut not_utf8 = Vec::new();
        if paths.is_empty() {
            return Ok(Source::default());
        }
        let mut child = Command::new("git")
            .args(["cat-file", "--batch"])
            .current_dir(dir_for_git)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(GitError::Spawn)?;
        let mut request = String::new();
        for p in &paths {
            request.push_str(&format!("{commit}:{prefix}{p}\n"));
        }
        let mut stdin = child
            .stdin
            .take()
            .ok_or_else(|| GitError::Failed("cat-file".into(), "no stdin".into()))?;
        let writer = std::thread::spawn(move || stdin.write_all(request.as_bytes()));
        let mut out = Vec::new();
        if let Some(mut stdout) = child.stdout.take() {
            stdout.read_to_end(&mut out).map_err(GitError::Spawn)?;
        }
        let _ = writer.join();
        let status = child.wait().map_err(GitError::Spawn)?;
        if !status.success() {
            return Err(GitError::Failed(
                "cat-file".into(),
                format!("exit status {status}"),
            ));
        }
        // Each answer: "<sha> blob <size>\n<contents>\n".
        let mut pos = 0;
        for p in paths {
            let header_end = out
                .get(pos..)
                .unwrap_or_default()
                .iter()
                .position(|b| *b == b'\n')
                .map(|i| pos + i)
                .ok_or_else(|| GitError::Failed("cat-file".into(), "truncated output".into()))?;
            let header =
                String::from_utf8_lossy(out.get(pos..header_end).unwrap_or_default()).to_string();
            let size: usize = header
                .rsplit(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| {
                    GitError::Failed("cat-file".into(), format!("unexpected header {header:?}"))
                })?;
            let start = header_end + 1;
            let body = out
                .get(start..start.saturating_add(size))
                .ok_or_else(|| GitError::Failed("cat-file".into(), "truncated output".into()))?;
            match std::str::from_utf8(body) {
                Ok(text) => {
                    files.insert(p.to_string(), text.to_string());
                }
                Err(_) => not_utf8.push(p.to_string()),
            }
            pos = start.saturating_add(size).saturating_add(1);
        }
        Ok(Source { files, not_utf8 })
    }

    /// The text of a registry-relative path.
    pub fn get(&self, rel: &str) -> Option<&str> {
        self.files.get(rel).map(String::as_str)
    }
}

/// `path` relative to `dir`, `/`-separated.
fn rel_path(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Runs git in `dir` and returns stdout.
fn git(dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(GitError::Spawn)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).to_string())
    } else {
        Err(GitError::Failed(
            args.first().copied().unwrap_or_default().to_string(),
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}
