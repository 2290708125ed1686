//! Query errors: a message, the span it is about, and a hint. `render` draws the caret excerpt.

use crate::span::line_col;
use crate::Span;

/// What went wrong with a query, and where.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub kind: ErrorKind,
    pub message: String,
    pub span: Span,
    /// What to do about it, e.g. "did you mean `FROM`?".
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text does not follow the grammar.
    Syntax,
    /// The text parses but asks for something that cannot work (unknown function, bad argument).
    Check,
    /// Too long or too deeply nested.
    Limit,
}

impl QueryError {
    pub fn new(kind: ErrorKind, message: impl Into<String>, span: Span) -> Self {
        Self {
            kind,
            message: message.into(),
            span,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Hints at the candidate closest to `word` ("did you mean `x`?"), or, when none is close,
    /// lists them all after `label` ("retrievers: a, b").
    pub fn suggesting<'a>(
        self,
        word: &str,
        candidates: impl IntoIterator<Item = &'a str>,
        label: &str,
    ) -> Self {
        let candidates: Vec<&str> = candidates.into_iter().collect();
        match did_you_mean(word, candidates.iter().copied()) {
            Some(s) => self.with_hint(format!("did you mean `{s}`?")),
            None => self.with_hint(format!("{label}: {}", candidates.join(", "))),
        }
    }

    /// `line:col: message (hint: ...)` on one line.
    pub fn one_line(&self, text: &str) -> String {
        let (l, c) = line_col(text, self.span.start);
        match &self.hint {
            Some(h) => format!("{l}:{c}: {} (hint: {h})", self.message),
            None => format!("{l}:{c}: {}", self.message),
        }
    }

    /// The message, the line of the query with a caret under the span, and the hint.
    pub fn render(&self, text: &str) -> String {
        let (line, col) = line_col(text, self.span.start);
        let source_line = text.lines().nth(line - 1).unwrap_or("");
        let width = {
            let end = self.span.end.max(self.span.start);
            let (end_line, end_col) = line_col(text, end);
            if end_line == line && end_col > col {
                end_col - col
            } else {
                1
            }
        };
        let gutter = line.to_string().len();
        let mut out = format!("error: {}\n{:>gutter$}--> {line}:{col}\n", self.message, "");
        out.push_str(&format!("{:>gutter$} |\n", ""));
        out.push_str(&format!("{line} | {source_line}\n"));
        out.push_str(&format!(
            "{:>gutter$} | {}{}\n",
            "",
            " ".repeat(col - 1),
            "^".repeat(width)
        ));
        if let Some(h) = &self.hint {
            out.push_str(&format!("{:>gutter$} = hint: {h}\n", ""));
        }
        out
    }
}

/// The closest candidate to `word`, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::normalized_damerau_levenshtein(&lower, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(score, _)| *score >= 0.5)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}
