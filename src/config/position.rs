//! Where each node of a YAML document sits: JSON pointer -> line and column.
//!
//! serde_yaml reads values but keeps no positions, so a second, event-level pass with
//! yaml-rust2 records the position of every key and value by its JSON pointer.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// Positions of one node.
#[derive(Debug, Clone, Copy, Default)]
pub struct NodePos {
    /// Where its key is, for mapping entries.
    pub key: Option<Pos>,
    /// Where its value starts.
    pub value: Option<Pos>,
    /// Whether the value is a quoted scalar (its text starts one column later).
    pub quoted: bool,
}

/// JSON pointer -> position, for one document.
#[derive(Debug, Default)]
pub struct Index {
    nodes: HashMap<String, NodePos>,
}

impl Index {
    /// Indexes `text`; a document that does not parse gives an empty index.
    #[must_use]
    pub fn build(text: &str) -> Self {
        let mut b = Builder::default();
        let mut parser = Parser::new_from_str(text);
        let _ = parser.load(&mut b, false);
        Index { nodes: b.nodes }
    }

    /// The best position for an error about `pointer`: its key if it has one, else its
    /// value, else its nearest indexed ancestor.
    #[must_use]
    pub fn key_or_value(&self, pointer: &str) -> Pos {
        self.find(pointer, |n| n.key.or(n.value))
    }

    /// The position of the value at `pointer` (or its nearest ancestor).
    #[must_use]
    pub fn value(&self, pointer: &str) -> Pos {
        self.find(pointer, |n| n.value.or(n.key))
    }

    /// The node at `pointer`, if indexed.
    #[must_use]
    pub fn node(&self, pointer: &str) -> Option<NodePos> {
        self.nodes.get(pointer).copied()
    }

    fn find(&self, pointer: &str, pick: impl Fn(&NodePos) -> Option<Pos>) -> Pos {
        let mut p = pointer;
        loop {
            if let Some(pos) = self.nodes.get(p).and_then(&pick) {
                return pos;
            }
            match p.rfind('/') {
                Some(i) => p = &p[..i],
                None => return Pos { line: 1, column: 1 },
            }
        }
    }
}

/// Where a document that serde_yaml rejected without a location goes wrong: the
/// scanner's error position, or the start of a second document.
#[must_use]
pub fn problem(text: &str) -> Pos {
    struct Docs(Vec<Marker>);
    impl MarkedEventReceiver for Docs {
        fn on_event(&mut self, ev: Event, mark: Marker) {
            if matches!(ev, Event::DocumentStart) {
                self.0.push(mark);
            }
        }
    }
    let mut docs = Docs(Vec::new());
    match Parser::new_from_str(text).load(&mut docs, true) {
        Err(e) => pos(*e.marker()),
        Ok(()) => docs.0.get(1).map_or(Pos { line: 1, column: 1 }, |m| pos(*m)),
    }
}

/// Escapes one JSON pointer segment.
#[must_use]
pub fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

#[derive(Debug)]
enum Frame {
    Map { pointer: String, key: Option<String> },
    Seq { pointer: String, next: usize },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    nodes: HashMap<String, NodePos>,
}

fn pos(m: Marker) -> Pos {
    // yaml-rust2 lines are 1-based and columns 0-based.
    Pos {
        line: m.line(),
        column: m.col() + 1,
    }
}

impl Builder {
    /// The pointer of the value now starting, or `None` if this scalar is a mapping key.
    fn value_pointer(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { key: None, .. }) => None,
            Some(Frame::Map { pointer, key }) => {
                let p = format!("{pointer}/{}", escape(key.as_deref().unwrap_or_default()));
                *key = None;
                Some(p)
            }
            Some(Frame::Seq { pointer, next }) => {
                let p = format!("{pointer}/{next}");
                *next += 1;
                Some(p)
            }
        }
    }

    fn record_value(&mut self, p: &str, m: Marker, quoted: bool) {
        let n = self.nodes.entry(p.to_string()).or_default();
        n.value = Some(pos(m));
        n.quoted = quoted;
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::Scalar(text, style, ..) => match self.value_pointer() {
                Some(p) => {
                    let quoted = matches!(style, TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted);
                    self.record_value(&p, mark, quoted);
                }
                None => {
                    if let Some(Frame::Map { pointer, key }) = self.stack.last_mut() {
                        let p = format!("{pointer}/{}", escape(&text));
                        self.nodes.entry(p).or_default().key = Some(pos(mark));
                        *key = Some(text);
                    }
                }
            },
            Event::Alias(_) => {
                if let Some(p) = self.value_pointer() {
                    self.record_value(&p, mark, false);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A collection used as a mapping key is not something the config uses;
                // index it under a placeholder key so the rest stays aligned.
                let p = self.value_pointer().unwrap_or_else(|| {
                    if let Some(Frame::Map { key, .. }) = self.stack.last_mut() {
                        *key = Some("?".into());
                    }
                    "/?".into()
                });
                self.record_value(&p, mark, false);
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { pointer: p, key: None }
                } else {
                    Frame::Seq { pointer: p, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_are_found_by_pointer() {
        let text = "tag_key: Schedule\nschedules:\n  office-hours:\n    running: [\"Mon-Fri 08:00-20:00\"]\n    mode: stop-only\n  a/b:\n    - x\n    - y\n";
        let ix = Index::build(text);
        assert_eq!(ix.key_or_value("/tag_key"), Pos { line: 1, column: 1 });
        assert_eq!(ix.value("/tag_key"), Pos { line: 1, column: 10 });
        assert_eq!(
            ix.key_or_value("/schedules/office-hours/mode"),
            Pos { line: 5, column: 5 }
        );
        let run = ix.node("/schedules/office-hours/running/0").unwrap();
        assert_eq!(run.value, Some(Pos { line: 4, column: 15 }));
        assert!(run.quoted);
        assert_eq!(ix.value("/schedules/a~1b/1"), Pos { line: 8, column: 7 });
        // An unknown pointer falls back to its nearest ancestor.
        assert_eq!(
            ix.key_or_value("/schedules/office-hours/nope"),
            Pos { line: 3, column: 3 }
        );
    }
}
