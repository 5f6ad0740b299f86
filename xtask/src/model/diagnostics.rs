//! Problems found in `loja.toml`, each located by line and column, and the
//! [`Reporter`] that collects them while the file is resolved.

use std::fmt;
use std::ops::Range;

/// One problem in `loja.toml`, located by line and column (both from 1).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )
    }
}

/// All the problems found in one file; a model is produced only when empty.
#[derive(Debug)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        write!(
            f,
            "{} error(s) in loja.toml; nothing was written",
            self.0.len()
        )
    }
}

impl std::error::Error for Diagnostics {}

/// Collects problems with their location in the source text.
pub(super) struct Reporter<'a> {
    file: &'a str,
    text: &'a str,
    found: Vec<Diagnostic>,
}

impl<'a> Reporter<'a> {
    pub(super) fn new(file: &'a str, text: &'a str) -> Self {
        Reporter {
            file,
            text,
            found: Vec::new(),
        }
    }

    /// Records `what` at `span`, quoting the source text found there and
    /// saying what is `allowed`.
    pub(super) fn error(&mut self, span: Range<usize>, what: &str, allowed: &str) {
        let found = self.quote(span.clone());
        let message = format!("{what} (found `{found}`; {allowed})");
        self.at(span.start, message);
    }

    /// The first line of the source text at `span`, trimmed.
    pub(super) fn quote(&self, span: Range<usize>) -> &'a str {
        let found = self.text.get(span).unwrap_or("").trim();
        found.lines().next().unwrap_or("")
    }

    /// Records `message` at byte `offset`.
    pub(super) fn at(&mut self, offset: usize, message: String) {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        self.found.push(Diagnostic {
            file: self.file.to_string(),
            line,
            column,
            message,
        });
    }

    /// Every problem, sorted by position, or `Ok` when there were none.
    pub(super) fn finish(mut self) -> Result<(), Diagnostics> {
        if self.found.is_empty() {
            return Ok(());
        }
        self.found.sort();
        self.found.dedup();
        Err(Diagnostics(self.found))
    }
}
