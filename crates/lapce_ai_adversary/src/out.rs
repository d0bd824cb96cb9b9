//! One JSON object per line on stdout: what the tests parse.

use std::fmt::Write as _;
use std::io::Write as _;

/// A JSON object under construction. Keys are ours (plain ASCII); string values are escaped.
#[derive(Debug, Default)]
pub struct Line {
    buf: String,
}

fn escape(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl Line {
    /// A line whose `type` is `kind`.
    pub fn new(kind: &str) -> Self {
        let mut l = Line { buf: String::new() };
        l.key("type");
        escape(kind, &mut l.buf);
        l
    }

    fn key(&mut self, k: &str) {
        self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
        escape(k, &mut self.buf);
        self.buf.push(':');
    }

    /// Adds a string field.
    pub fn s(mut self, k: &str, v: &str) -> Self {
        self.key(k);
        escape(v, &mut self.buf);
        self
    }

    /// Adds a number field.
    pub fn n(mut self, k: &str, v: impl Into<f64>) -> Self {
        self.key(k);
        let v: f64 = v.into();
        if v.is_finite() {
            let _ = write!(self.buf, "{v}");
        } else {
            self.buf.push_str("null");
        }
        self
    }

    /// Adds a boolean field.
    pub fn b(mut self, k: &str, v: bool) -> Self {
        self.key(k);
        self.buf.push_str(if v { "true" } else { "false" });
        self
    }

    /// Adds a string field when `v` is `Some`.
    pub fn opt(self, k: &str, v: Option<&str>) -> Self {
        match v {
            Some(v) => self.s(k, v),
            None => self,
        }
    }

    /// Appends the fields of `other` (a line built with [`Line::default`] or [`Line::new`]).
    pub fn merge(mut self, other: Line) -> Self {
        if let Some(rest) = other.buf.strip_prefix('{') {
            self.buf.push(if self.buf.is_empty() { '{' } else { ',' });
            self.buf.push_str(rest);
        }
        self
    }

    /// Whether the encoded fields contain `s` (for reading back our own `"ok":true`).
    pub fn contains(&self, s: &str) -> bool {
        self.buf.contains(s)
    }

    /// Writes the line to stdout and flushes it (the test may kill us at any moment).
    pub fn print(mut self) {
        self.buf.push_str("}\n");
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(self.buf.as_bytes());
        let _ = out.flush();
    }
}
