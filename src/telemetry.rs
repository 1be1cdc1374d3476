//! Logging: text logs on standard error in which untrusted text cannot forge lines.
//!
//! Log fields carry tag values, group names and AWS errors, which anyone who can tag a
//! resource writes. In text logs, a newline in such a value would start a forged log line,
//! and terminal escape sequences would act on the reader's terminal. [`SafeStderr`] writes
//! each formatted event as one line with every control character inside it shown as an
//! escape (`\n`, `\u{1b}`); colours are off for that reason. JSON logs are escaped by
//! their encoder already.

use std::io::Write;

use tracing_subscriber::fmt::MakeWriter;

/// Makes a [`SafeWriter`] per event.
#[derive(Debug, Clone, Copy, Default)]
pub struct SafeStderr;

impl<'a> MakeWriter<'a> for SafeStderr {
    type Writer = SafeWriter;

    fn make_writer(&'a self) -> Self::Writer {
        SafeWriter(Vec::with_capacity(256))
    }
}

/// Collects one event and writes it, escaped, to standard error when dropped.
#[derive(Debug)]
pub struct SafeWriter(Vec<u8>);

impl Write for SafeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SafeWriter {
    fn drop(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let line = escape_line(&String::from_utf8_lossy(&self.0));
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

/// One event as one line: control characters inside it escaped, the final newline kept.
#[must_use]
pub fn escape_line(event: &str) -> String {
    let body = event.strip_suffix('\n').unwrap_or(event);
    let mut out = String::with_capacity(body.len() + 1);
    for c in body.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push(' '),
            c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_stays_one_line_whatever_its_fields_hold() {
        let forged = "WARN group=web error=unknown schedule `x\n2026-11-30T00:00:00Z  INFO all good`\x1b[2J\r\n";
        let line = escape_line(forged);
        assert_eq!(line.matches('\n').count(), 1, "{line:?}");
        assert!(line.ends_with('\n'));
        assert!(
            line.contains("`x\\n2026-11-30T00:00:00Z  INFO all good`\\u{1b}[2J\\r"),
            "{line:?}"
        );
        assert_eq!(escape_line("plain\n"), "plain\n");
    }
}
