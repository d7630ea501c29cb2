//! Quotes left open in a CSV file. A reader that reaches the end of the file inside a
//! quoted value takes every later line as part of that value, so three lines become one
//! row with no error: [`QuoteWatch`] follows the quoting of the bytes a CSV reader reads
//! (the rules of the `csv` crate: a quote opens a value only at its start, a doubled
//! quote or the escape character keeps it open) and says on which line an unclosed quote
//! opened. [`check_file`] runs it, with the header's names, over a file before `socle load`
//! hands it to the query engine.

use std::io::Read;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    StartRecord,
    StartField,
    InField,
    InQuoted,
    InEscape,
    QuoteInQuoted,
    InComment,
}

/// A reader that follows the quoting of what passes through it.
pub struct QuoteWatch<R> {
    inner: R,
    delimiter: u8,
    quote: u8,
    escape: Option<u8>,
    comment: Option<u8>,
    state: State,
    /// Lines read so far (the current line is `line + 1`).
    line: u64,
    /// The line of the quote that opened the current quoted value.
    opened_at: u64,
}

impl<R: Read> QuoteWatch<R> {
    /// `first_line` is the line number of the first byte read (after skipped lines).
    pub fn new(
        inner: R,
        delimiter: u8,
        quote: u8,
        escape: Option<u8>,
        comment: Option<u8>,
        first_line: u64,
    ) -> Self {
        Self {
            inner,
            delimiter,
            quote,
            escape,
            comment,
            state: State::StartRecord,
            line: first_line.saturating_sub(1),
            opened_at: 0,
        }
    }

    /// At the end of the input: the line of a quote never closed, if any.
    pub fn unclosed_quote(&self) -> Option<u64> {
        matches!(self.state, State::InQuoted | State::InEscape).then_some(self.opened_at)
    }

    fn step(&mut self, b: u8) {
        let newline = b == b'\n' || b == b'\r';
        self.state = match self.state {
            State::StartRecord if Some(b) == self.comment => State::InComment,
            State::InComment if newline => State::StartRecord,
            State::InComment => State::InComment,
            State::StartRecord | State::StartField if b == self.quote => {
                self.opened_at = self.line + 1;
                State::InQuoted
            }
            State::InQuoted if Some(b) == self.escape => State::InEscape,
            State::InQuoted if b == self.quote => State::QuoteInQuoted,
            State::InQuoted => State::InQuoted,
            State::InEscape => State::InQuoted,
            State::QuoteInQuoted if b == self.quote => State::InQuoted,
            _ if newline => State::StartRecord,
            _ if b == self.delimiter => State::StartField,
            _ => State::InField,
        };
        if b == b'\n' {
            self.line += 1;
        }
    }
}

impl<R: Read> Read for QuoteWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        for &b in &buf[..n] {
            self.step(b);
        }
        Ok(n)
    }
}

/// The error for a quote opened on `line` and never closed.
pub fn unclosed_message(line: u64) -> String {
    format!(
        "line {line}: a quote opened on this line is never closed, so every later line would \
         be read as part of one value; close the quote (a quote inside a quoted value is \
         written twice: \"\")"
    )
}

/// What is wrong with a header's names: blank names and names used twice, with their
/// column numbers (from 1).
pub fn header_problems(names: &[String]) -> Option<String> {
    let mut problems = Vec::new();
    let blank: Vec<String> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.trim().trim_start_matches('\u{feff}').is_empty())
        .map(|(i, _)| (i + 1).to_string())
        .collect();
    if !blank.is_empty() {
        problems.push(match blank.len() {
            1 => format!("column {} has no name", blank[0]),
            _ => format!("columns {} have no name", blank.join(", ")),
        });
    }
    let mut seen: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, n) in names.iter().enumerate() {
        let n = n.trim().trim_start_matches('\u{feff}');
        if n.is_empty() {
            continue;
        }
        match seen.iter_mut().find(|(s, _)| s == n) {
            Some((_, cols)) => cols.push(i + 1),
            None => seen.push((n.to_string(), vec![i + 1])),
        }
    }
    for (name, cols) in seen.iter().filter(|(_, c)| c.len() > 1) {
        let cols: Vec<String> = cols.iter().map(|c| c.to_string()).collect();
        problems.push(format!("`{name}` names columns {}", cols.join(" and ")));
    }
    (!problems.is_empty()).then(|| problems.join("; "))
}

/// Checks a delimited file before it is loaded: the header names each column once, and
/// every quote is closed. The error starts with the line (`line N: ...`).
pub fn check_file(path: &std::path::Path, delimiter: u8) -> Result<(), String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut watch = QuoteWatch::new(
        std::io::BufReader::with_capacity(1 << 20, file),
        delimiter,
        b'"',
        None,
        None,
        1,
    );
    let mut csv = ::csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(&mut watch);
    let mut header = ::csv::StringRecord::new();
    if csv.read_record(&mut header).map_err(|e| e.to_string())? {
        let names: Vec<String> = header.iter().map(str::to_string).collect();
        if let Some(p) = header_problems(&names) {
            return Err(format!(
                "line 1: the header {p}; name each column once (or load it with a `files` \
                 source, which names them column_<n> and <name>_2)"
            ));
        }
    }
    // The csv reader buffers ahead: read the rest through the watch, then ask it.
    let mut rest = csv.into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(|e| e.to_string())?;
    match watch.unclosed_quote() {
        Some(line) => Err(unclosed_message(line)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unclosed(text: &str) -> Option<u64> {
        let mut w = QuoteWatch::new(text.as_bytes(), b',', b'"', None, Some(b'#'), 1);
        std::io::copy(&mut w, &mut std::io::sink()).unwrap();
        w.unclosed_quote()
    }

    #[test]
    fn finds_the_line_of_an_unclosed_quote() {
        assert_eq!(
            unclosed("id,amount,name\n1,5,\"abc\n2,6,def\n3,7,ghi\n"),
            Some(2)
        );
        assert_eq!(unclosed("a,b\n1,\"x\"\"y\"\n2,\"multi\nline\"\n"), None);
        // A quote inside an unquoted value is a plain character.
        assert_eq!(unclosed("a,b\n1,ab\"c\n"), None);
        assert_eq!(unclosed("# it's \"quoted\na,b\n"), None);
        assert_eq!(unclosed("a\r\n\"x\r\n"), Some(2));
    }

    #[test]
    fn names_header_problems() {
        let h = |s: &[&str]| header_problems(&s.iter().map(|x| x.to_string()).collect::<Vec<_>>());
        assert_eq!(h(&["id", "name"]), None);
        assert_eq!(
            h(&["id", "", "id"]).unwrap(),
            "column 2 has no name; `id` names columns 1 and 3"
        );
    }
}
