//! A fast reader for the plain block-style YAML that nearly every manifest is written in.
//!
//! serde-saphyr reads about 17 MB/s: ~100 ms of a plan of 10,000 models, more than the rest of
//! the plan's own work. A manifest is almost always indented `key: value` lines, `- item`
//! lists, and one-line `[a, "b"]` lists and `{ k: v }` mappings of plain or simply quoted
//! scalars. This reads exactly that subset, about ten times faster, into a small tree that
//! serde deserializes the raw types from.
//!
//! It is a shortcut, never a second opinion: anything outside the subset (anchors, aliases,
//! tags, block scalars, multi-line scalars, escapes, nested flow collections, document
//! markers, tabs), a null where a string is wanted, a plain scalar YAML could type as a
//! number or a boolean where the target takes several types, and any deserialization error
//! (an unknown key, a missing one) give `None`, and the caller reads the text with
//! serde-saphyr, which also reports every problem with its place. Debug builds read every
//! manifest both ways and compare (see `yaml.rs`), so the whole test suite checks that the
//! two agree.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::value::StrDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess, Visitor,
};

/// The text as `T`, or `None` when it is outside the subset or does not deserialize.
pub(crate) fn read<'de, T: Deserialize<'de>>(text: &'de str) -> Option<T> {
    let root = parse(text)?;
    T::deserialize(&root).ok()
}

/// One YAML node of the subset.
#[derive(Debug, PartialEq)]
enum Node<'a> {
    /// An empty value (`key:` with nothing under it).
    Empty,
    /// A scalar; `plain` when unquoted (so its YAML type may not be a string).
    Scalar {
        text: Cow<'a, str>,
        plain: bool,
    },
    Seq(Vec<Node<'a>>),
    Map(Vec<(Node<'a>, Node<'a>)>),
}

/// Why the subset reader gave up; the caller reads the text with serde-saphyr instead.
#[derive(Debug)]
struct Outside;

type Parsed<T> = Result<T, Outside>;

fn parse(text: &str) -> Option<Node<'_>> {
    if !plain_characters(text) {
        return None;
    }
    let mut lines = Lines::new(text);
    let first = lines.peek()?;
    if first.indent != 0 {
        return None;
    }
    let root = parse_map(&mut lines, 0, 0).ok()?;
    // Anything left over is at an indentation the document's mapping does not accept.
    lines.peek().is_none().then_some(Node::Map(root))
}

/// Only newlines (LF or CRLF) and printable characters: no tabs, no other control characters,
/// no byte-order mark or Unicode line separators (which YAML versions treat differently).
/// One pass over the bytes (the text is UTF-8, so those four characters are exactly these
/// byte sequences): searching the text for them as characters took longer than reading it.
fn plain_characters(text: &str) -> bool {
    let bytes = text.as_bytes();
    let at = |i: usize| bytes.get(i).copied();
    let plain = |b: u8| b == b'\n' || (0x20..=0x7e).contains(&b);
    // Sixteen bytes at a time where all are printable ASCII or LF (nearly every manifest,
    // nearly everywhere); byte by byte, with what follows, where one is not.
    const CHUNK: usize = 16;
    for (n, chunk) in bytes.chunks(CHUNK).enumerate() {
        if chunk.iter().fold(true, |all, &b| all & plain(b)) {
            continue;
        }
        for (i, &b) in (n * CHUNK..).zip(chunk) {
            match b {
                b'\n' | 0x20..=0x7e => {}
                b'\r' if at(i + 1) == Some(b'\n') => {}
                // U+0085 (next line)
                0xc2 if at(i + 1) == Some(0x85) => return false,
                // U+2028, U+2029 (line and paragraph separators)
                0xe2 if at(i + 1) == Some(0x80) && matches!(at(i + 2), Some(0xa8 | 0xa9)) => {
                    return false;
                }
                // U+FEFF (byte-order mark)
                0xef if at(i + 1) == Some(0xbb) && at(i + 2) == Some(0xbf) => return false,
                0x80.. => {}
                _ => return false,
            }
        }
    }
    true
}

/// A line that holds something: its indentation and what follows it.
#[derive(Clone, Copy)]
struct Line<'a> {
    indent: usize,
    body: &'a str,
}

/// The text's lines that hold something (blank and comment-only lines skipped).
struct Lines<'a> {
    text: &'a str,
    pos: usize,
    /// The line [`Lines::peek`] found, and where the text after it starts: a line is peeked
    /// at several times before it is consumed.
    peeked: Option<(Line<'a>, usize)>,
}

impl<'a> Lines<'a> {
    fn new(text: &'a str) -> Lines<'a> {
        Lines {
            text,
            pos: 0,
            peeked: None,
        }
    }

    /// The next line that holds something, without consuming it.
    fn peek(&mut self) -> Option<Line<'a>> {
        if let Some((line, _)) = self.peeked {
            return Some(line);
        }
        loop {
            let rest = &self.text[self.pos..];
            if rest.is_empty() {
                return None;
            }
            let end = rest.find('\n').unwrap_or(rest.len());
            let after = self.pos + (end + 1).min(rest.len());
            let line = rest[..end].strip_suffix('\r').unwrap_or(&rest[..end]);
            let body = line.trim_start_matches(' ');
            if body.is_empty() || body.starts_with('#') {
                self.pos = after;
                continue;
            }
            let line = Line {
                indent: line.len() - body.len(),
                body: body.trim_end_matches(' '),
            };
            self.peeked = Some((line, after));
            return Some(line);
        }
    }

    /// Consumes the next line that holds something.
    fn advance(&mut self) {
        if self.peeked.is_none() {
            self.peek();
        }
        if let Some((_, after)) = self.peeked.take() {
            self.pos = after;
        }
    }
}

/// How deep mappings may nest here. A manifest's go four deep (top, `models`, a model,
/// `requires`); a deeper text is left to serde-saphyr, whose own limit reports it, instead of
/// being read into a tree by recursion as deep as its indentation.
const MAX_DEPTH: usize = 8;

fn is_entry(body: &str) -> bool {
    body == "-" || body.starts_with("- ")
}

/// A block mapping whose keys are at column `indent`, `depth` mappings deep.
fn parse_map<'a>(
    lines: &mut Lines<'a>,
    indent: usize,
    depth: usize,
) -> Parsed<Vec<(Node<'a>, Node<'a>)>> {
    if depth > MAX_DEPTH {
        return Err(Outside);
    }
    let mut entries = Vec::new();
    while let Some(line) = lines.peek() {
        if line.indent < indent {
            break;
        }
        // `-` (a list item where a key belongs, `---`), `...` and `%` are left to serde-saphyr.
        if line.indent > indent || line.body.starts_with(['-', '.', '%']) {
            return Err(Outside);
        }
        let (key, rest) = split_key(line.body)?;
        lines.advance();
        let value = if rest.is_empty() || rest.starts_with('#') {
            parse_block_value(lines, indent, depth)?
        } else {
            let value = parse_inline(rest)?;
            // A more indented line after `key: value` continues the value (or is an error).
            if lines.peek().is_some_and(|next| next.indent > indent) {
                return Err(Outside);
            }
            value
        };
        entries.push((key, value));
    }
    Ok(entries)
}

/// The value of a `key:` with nothing after it: the more indented block below it, a list at
/// the key's own column, or nothing.
fn parse_block_value<'a>(lines: &mut Lines<'a>, parent: usize, depth: usize) -> Parsed<Node<'a>> {
    let Some(next) = lines.peek() else {
        return Ok(Node::Empty);
    };
    if is_entry(next.body) && next.indent >= parent {
        return parse_seq(lines, next.indent).map(Node::Seq);
    }
    if next.indent > parent {
        return parse_map(lines, next.indent, depth + 1).map(Node::Map);
    }
    Ok(Node::Empty)
}

/// A block list of scalars whose `-` are at column `indent`.
fn parse_seq<'a>(lines: &mut Lines<'a>, indent: usize) -> Parsed<Vec<Node<'a>>> {
    let mut items = Vec::new();
    while let Some(line) = lines.peek() {
        if line.indent < indent || (line.indent == indent && !is_entry(line.body)) {
            break;
        }
        if line.indent > indent {
            return Err(Outside);
        }
        let rest = line.body[1..].trim_start_matches(' ');
        if rest.is_empty() || rest.starts_with('#') {
            // A nested block inside a list item.
            return Err(Outside);
        }
        lines.advance();
        items.push(parse_inline(rest)?);
        if lines.peek().is_some_and(|next| next.indent > indent) {
            return Err(Outside);
        }
    }
    Ok(items)
}

/// `key: rest` (or `key:`): the key, and what follows the `: ` with spaces trimmed.
fn split_key(body: &str) -> Parsed<(Node<'_>, &str)> {
    let (key, rest) = if body.starts_with(['"', '\'']) {
        let (key, after) = quoted(body)?;
        (key, after.strip_prefix(':').ok_or(Outside)?)
    } else {
        let colon = find_value_colon(body).ok_or(Outside)?;
        let key = &body[..colon];
        if key.ends_with(' ') || !plain_start(key) || find_pair(key, b" #").is_some() {
            return Err(Outside);
        }
        let key = Node::Scalar {
            text: Cow::Borrowed(key),
            plain: true,
        };
        (key, &body[colon + 1..])
    };
    // YAML caps implicit keys at 1,024 characters.
    if body.len() - rest.len() > 1024 || !(rest.is_empty() || rest.starts_with(' ')) {
        return Err(Outside);
    }
    Ok((key, rest.trim_start_matches(' ')))
}

/// The first `:` followed by a space or the end of the line.
fn find_value_colon(body: &str) -> Option<usize> {
    let bytes = body.as_bytes();
    (0..bytes.len()).find(|&i| bytes[i] == b':' && matches!(bytes.get(i + 1), None | Some(b' ')))
}

/// Whether a plain scalar may start this way: not with a YAML indicator, except `-`, `?` and
/// `:` followed by a character that cannot end a scalar (`-1`, `-x`).
fn plain_start(text: &str) -> bool {
    let mut chars = text.chars();
    match chars.next() {
        None => false,
        Some('-' | '?' | ':') => chars
            .next()
            .is_some_and(|c| !matches!(c, ' ' | ',' | '[' | ']' | '{' | '}')),
        Some(c) => !matches!(
            c,
            ',' | '['
                | ']'
                | '{'
                | '}'
                | '#'
                | '&'
                | '*'
                | '!'
                | '|'
                | '>'
                | '\''
                | '"'
                | '%'
                | '@'
                | '`'
                | ' '
        ),
    }
}

/// A value written on the key's (or the list item's) line.
fn parse_inline(rest: &str) -> Parsed<Node<'_>> {
    if rest.starts_with(['"', '\'']) {
        let (node, after) = quoted(rest)?;
        return end_of_line(after).map(|()| node);
    }
    if let Some(inner) = rest.strip_prefix('[') {
        return parse_flow_seq(inner);
    }
    if let Some(inner) = rest.strip_prefix('{') {
        return parse_flow_map(inner);
    }
    let text = strip_comment(rest);
    if !plain_start(text) || find_pair(text, b": ").is_some() || text.ends_with(':') {
        return Err(Outside);
    }
    Ok(Node::Scalar {
        text: Cow::Borrowed(text),
        plain: true,
    })
}

/// The plain scalar before a ` #` comment, trailing spaces trimmed.
fn strip_comment(text: &str) -> &str {
    let end = find_pair(text, b" #").unwrap_or(text.len());
    text[..end].trim_end_matches(' ')
}

/// Where the two bytes `pair` first appear in `text`. `str::find` with a two-character
/// pattern sets up a substring searcher each time: 50,000 short values per manifest.
fn find_pair(text: &str, pair: &[u8; 2]) -> Option<usize> {
    text.as_bytes().windows(2).position(|w| w == pair)
}

/// Nothing, or only a comment (after a space), after a value.
fn end_of_line(after: &str) -> Parsed<()> {
    let trimmed = after.trim_start_matches(' ');
    if trimmed.is_empty() || (trimmed.starts_with('#') && trimmed.len() < after.len()) {
        Ok(())
    } else {
        Err(Outside)
    }
}

/// A quoted scalar at the start of `text` (no escapes in double quotes, `''` in single ones)
/// and what follows the closing quote.
fn quoted(text: &str) -> Parsed<(Node<'_>, &str)> {
    let quote = text.as_bytes()[0];
    let inner = &text[1..];
    if quote == b'"' {
        let close = inner.find(['"', '\\']).ok_or(Outside)?;
        if inner.as_bytes()[close] == b'\\' {
            return Err(Outside);
        }
        let node = Node::Scalar {
            text: Cow::Borrowed(&inner[..close]),
            plain: false,
        };
        return Ok((node, &inner[close + 1..]));
    }
    let mut value = String::new();
    let mut from = 0;
    loop {
        let close = from + inner[from..].find('\'').ok_or(Outside)?;
        if inner.as_bytes().get(close + 1) == Some(&b'\'') {
            value.push_str(&inner[from..=close]);
            from = close + 2;
            continue;
        }
        let text = if from == 0 {
            Cow::Borrowed(&inner[..close])
        } else {
            value.push_str(&inner[from..close]);
            Cow::Owned(value)
        };
        return Ok((Node::Scalar { text, plain: false }, &inner[close + 1..]));
    }
}

/// A one-line flow list after its `[`: plain or quoted scalars separated by commas.
fn parse_flow_seq(rest: &str) -> Parsed<Node<'_>> {
    let mut items = Vec::new();
    let rest = flow_items(rest, ']', |rest| {
        let (item, after) = flow_scalar(rest)?;
        items.push(item);
        Ok(after)
    })?;
    end_of_line(rest)?;
    Ok(Node::Seq(items))
}

/// A one-line flow mapping after its `{`: `key: value` pairs of scalars separated by commas.
fn parse_flow_map(rest: &str) -> Parsed<Node<'_>> {
    let mut entries = Vec::new();
    let rest = flow_items(rest, '}', |rest| {
        let (key, after) = flow_scalar(rest)?;
        let after = after.strip_prefix(": ").ok_or(Outside)?;
        let (value, after) = flow_scalar(after.trim_start_matches(' '))?;
        entries.push((key, value));
        Ok(after)
    })?;
    end_of_line(rest)?;
    Ok(Node::Map(entries))
}

/// The items of a one-line flow collection up to `close`, each read by `item` (which returns
/// what follows it), and what follows `close`. Empty items (`[a, ]`) are left to serde-saphyr.
fn flow_items<'a>(
    mut rest: &'a str,
    close: char,
    mut item: impl FnMut(&'a str) -> Parsed<&'a str>,
) -> Parsed<&'a str> {
    if let Some(after) = rest.trim_start_matches(' ').strip_prefix(close) {
        return Ok(after);
    }
    loop {
        rest = item(rest.trim_start_matches(' '))?.trim_start_matches(' ');
        if let Some(after) = rest.strip_prefix(close) {
            return Ok(after);
        }
        rest = rest.strip_prefix(',').ok_or(Outside)?;
    }
}

/// A flow collection's scalar at the start of `text`, and what follows it: a quoted scalar, or
/// a plain one up to a `,`, a closing bracket or a `: `, without other flow indicators or
/// comments.
fn flow_scalar(text: &str) -> Parsed<(Node<'_>, &str)> {
    if text.starts_with(['"', '\'']) {
        return quoted(text);
    }
    let end = (0..text.len())
        .find(|&i| match text.as_bytes()[i] {
            b',' | b']' | b'}' => true,
            b':' => text.as_bytes().get(i + 1) == Some(&b' '),
            _ => false,
        })
        .ok_or(Outside)?;
    let plain = text[..end].trim_end_matches(' ');
    if !plain_start(plain) || plain.contains([':', '#', '[', '{']) {
        return Err(Outside);
    }
    let node = Node::Scalar {
        text: Cow::Borrowed(plain),
        plain: true,
    };
    Ok((node, &text[end..]))
}

/// Whether a plain scalar is YAML's null.
fn is_null(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
}

/// Whether a plain scalar could be read as something other than a string by some YAML
/// version: a null, a boolean (including YAML 1.1's `yes`/`on`...), or anything number-like.
/// Deliberately broad: such a value goes to serde-saphyr, which decides.
fn maybe_not_string(text: &str) -> bool {
    if is_null(text) {
        return true;
    }
    let lower = text.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | ".inf"
            | "-.inf"
            | "+.inf"
            | ".nan"
    ) {
        return true;
    }
    let unsigned = lower.trim_start_matches(['+', '-']);
    let Some(first) = unsigned.chars().next() else {
        return true;
    };
    if !(first.is_ascii_digit() || first == '.') {
        return false;
    }
    if let Some(digits) = unsigned
        .strip_prefix("0x")
        .or_else(|| unsigned.strip_prefix("0o"))
        .or_else(|| unsigned.strip_prefix("0b"))
    {
        return digits.chars().all(|c| c.is_ascii_hexdigit() || c == '_');
    }
    unsigned
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '_' | ':' | 'e' | '+' | '-'))
}

impl<'a> Node<'a> {
    /// The scalar's text, read into a string: serde-saphyr gives a plain scalar's text as
    /// written (`1.10`, `yes`, `0x1F` stay text), except a null.
    fn text(&self) -> Parsed<&Cow<'a, str>> {
        match self {
            Node::Scalar { text, plain } if !*plain || !is_null(text) => Ok(text),
            _ => Err(Outside),
        }
    }

    /// The scalar's text when its YAML type is certainly a string, for a target that takes
    /// several types and would be told a number or a boolean.
    fn string(&self) -> Parsed<&Cow<'a, str>> {
        match self {
            Node::Scalar { text, plain } if !*plain || !maybe_not_string(text) => Ok(text),
            _ => Err(Outside),
        }
    }
}

impl de::Error for Outside {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Outside
    }
}

impl std::fmt::Display for Outside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("outside the block-style subset")
    }
}

impl std::error::Error for Outside {}

fn visit_text<'de, V: Visitor<'de>>(text: &Cow<'de, str>, visitor: V) -> Parsed<V::Value> {
    match text {
        Cow::Borrowed(text) => visitor.visit_borrowed_str(text),
        Cow::Owned(text) => visitor.visit_str(text),
    }
}

impl<'de> Deserializer<'de> for &Node<'de> {
    type Error = Outside;

    /// Only where the target takes several shapes (a name map that may be empty, `all` or a
    /// list): a string, a list, a mapping or an empty value.
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Parsed<V::Value> {
        match self {
            Node::Empty => visitor.visit_unit(),
            Node::Scalar { text, plain: true } if is_null(text) => visitor.visit_unit(),
            Node::Scalar { .. } => visit_text(self.string()?, visitor),
            Node::Seq(_) => self.deserialize_seq(visitor),
            Node::Map(_) => self.deserialize_map(visitor),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Parsed<V::Value> {
        match self {
            Node::Empty => visitor.visit_none(),
            Node::Scalar { text, plain: true } if is_null(text) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Parsed<V::Value> {
        visit_text(self.text()?, visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Parsed<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Parsed<V::Value> {
        self.deserialize_str(visitor)
    }

    /// A plain decimal like `1`: the only number a manifest holds (`version:`).
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Parsed<V::Value> {
        match self {
            Node::Scalar { text, plain: true }
                if (1..=9).contains(&text.len())
                    && text.bytes().all(|b| b.is_ascii_digit())
                    && (text.len() == 1 || !text.starts_with('0')) =>
            {
                visitor.visit_u64(text.parse().map_err(|_| Outside)?)
            }
            _ => Err(Outside),
        }
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Parsed<V::Value> {
        match self {
            Node::Seq(items) => visitor.visit_seq(Items(items.iter())),
            _ => Err(Outside),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Parsed<V::Value> {
        match self {
            Node::Map(entries) => visitor.visit_map(Entries {
                entries: entries.iter(),
                value: None,
            }),
            _ => Err(Outside),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Parsed<V::Value> {
        self.deserialize_map(visitor)
    }

    /// Unit variants only (`layout: flat`, `link: symlink`, `preset: comfyui`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Parsed<V::Value> {
        let text: &str = self.text()?;
        let variant: StrDeserializer<'_, Outside> = text.into_deserializer();
        visitor.visit_enum(variant)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Parsed<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u64 u128 f32 f64 char bytes byte_buf unit unit_struct
        tuple tuple_struct ignored_any
    }
}

/// A list's items for serde.
struct Items<'a, 'de>(std::slice::Iter<'a, Node<'de>>);

impl<'de> SeqAccess<'de> for Items<'_, 'de> {
    type Error = Outside;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Parsed<Option<T::Value>> {
        self.0.next().map(|item| seed.deserialize(item)).transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// A mapping's entries for serde.
struct Entries<'a, 'de> {
    entries: std::slice::Iter<'a, (Node<'de>, Node<'de>)>,
    value: Option<&'a Node<'de>>,
}

impl<'de> MapAccess<'de> for Entries<'_, 'de> {
    type Error = Outside;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Parsed<Option<K::Value>> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        seed.deserialize(key).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Parsed<V::Value> {
        seed.deserialize(self.value.take().ok_or(Outside)?)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
#[path = "block_tests.rs"]
mod tests;
