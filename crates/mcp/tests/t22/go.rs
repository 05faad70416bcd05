//! A decoder that reads a message the way a Go MCP server on `encoding/json` (v1) does:
//! object keys match struct fields exactly or under Go's `foldName` (ASCII letters to
//! upper case, other characters to the smallest member of their `unicode.SimpleFold`
//! orbit), and of several matching keys the last one wins. The orbit table and the
//! expected answers were recorded with go1.19.8 (`testdata/go/README.md`).
use std::{collections::HashMap, fmt, sync::OnceLock};

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

const ORBITS: &str = include_str!("../../testdata/go1.19-simplefold-orbits.txt");
const VECTORS: &str = include_str!("../../testdata/go1.19-decode-vectors.jsonl");

/// Each `unicode.SimpleFold` orbit of go1.19.8, as lists of characters.
pub fn orbits() -> Vec<Vec<char>> {
    ORBITS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            l.split(' ')
                .map(|hex| char::from_u32(u32::from_str_radix(hex, 16).unwrap()).unwrap())
                .collect()
        })
        .collect()
}

/// Go's `foldRune`: the smallest character of the orbit.
fn fold_rune(c: char) -> char {
    static SMALLEST: OnceLock<HashMap<char, char>> = OnceLock::new();
    let table = SMALLEST.get_or_init(|| {
        let mut table = HashMap::new();
        for orbit in orbits() {
            let min = *orbit.iter().min().unwrap();
            for c in orbit {
                table.insert(c, min);
            }
        }
        table
    });
    table.get(&c).copied().unwrap_or(c)
}

/// Go's `foldName`.
pub fn fold_name(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_ascii_uppercase()
            } else {
                fold_rune(c)
            }
        })
        .collect()
}

/// Whether Go matches `key` to a struct field named `field`.
fn matches(key: &str, field: &str) -> bool {
    key == field || fold_name(key) == fold_name(field)
}

/// JSON with every key of every object kept, in order, duplicates included.
#[derive(Debug, Clone)]
pub enum Node {
    Object(Vec<(String, Node)>),
    Array(Vec<Node>),
    Leaf(Value),
}

impl Node {
    pub fn parse(bytes: &[u8]) -> Node {
        serde_json::from_slice(bytes).unwrap()
    }

    /// The value of the last key matching `field`, as Go decodes into a struct.
    fn field(&self, field: &str) -> Option<&Node> {
        match self {
            Node::Object(pairs) => pairs.iter().rev().find(|(k, _)| matches(k, field)).map(|(_, v)| v),
            _ => None,
        }
    }

    fn string(&self, field: &str) -> String {
        match self.field(field) {
            Some(Node::Leaf(Value::String(s))) => s.clone(),
            _ => String::new(),
        }
    }

    /// As Go decodes into `any`: objects are maps, a repeated key keeps its last value.
    pub fn to_value(&self) -> Value {
        match self {
            Node::Object(pairs) => {
                let mut map = Map::new();
                for (k, v) in pairs {
                    map.insert(k.clone(), v.to_value());
                }
                Value::Object(map)
            }
            Node::Array(items) => Value::Array(items.iter().map(Node::to_value).collect()),
            Node::Leaf(v) => v.clone(),
        }
    }

    /// Every object in the tree, this one included.
    pub fn objects(&self) -> Vec<&[(String, Node)]> {
        let mut out = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                Node::Object(pairs) => {
                    out.push(pairs.as_slice());
                    stack.extend(pairs.iter().map(|(_, v)| v));
                }
                Node::Array(items) => stack.extend(items),
                Node::Leaf(_) => {}
            }
        }
        out
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Leaf(Value::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Leaf(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Leaf(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Leaf(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Leaf(Value::String(v.to_owned())))
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Leaf(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut pairs = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Node>()? {
            pairs.push((k, v));
        }
        Ok(Node::Object(pairs))
    }
}

/// What a server sees of a `tools/call`: the method, the tool, its arguments, and the
/// fields `key` and `path` of the tool's input struct.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct View {
    pub method: String,
    pub name: String,
    pub arguments: Option<Value>,
    pub tool_key: String,
    pub tool_path: String,
}

impl View {
    /// The view of a Go server on `encoding/json`: the envelope with `params` kept raw,
    /// then the call params, then the tool input struct.
    pub fn go(bytes: &[u8]) -> View {
        let message = Node::parse(bytes);
        let mut view = View {
            method: message.string("method"),
            ..View::default()
        };
        if let Some(params) = message.field("params") {
            view.name = params.string("name");
            if let Some(arguments) = params.field("arguments") {
                view.arguments = Some(arguments.to_value());
                view.tool_key = arguments.string("key");
                view.tool_path = arguments.string("path");
            }
        }
        view
    }

    /// The gateway's view: what policy, attestation and audit look at.
    pub fn ours(msg: &portcullis_mcp::Message) -> View {
        let arguments = msg.params().and_then(|p| p.get("arguments")).cloned();
        let field = |name: &str| {
            arguments
                .as_ref()
                .and_then(|a| a.get(name))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        View {
            method: msg.method().unwrap_or_default().to_owned(),
            name: msg.param_str("name").unwrap_or_default().to_owned(),
            tool_key: field("key"),
            tool_path: field("path"),
            arguments,
        }
    }

    /// The part every accepted message must agree on: method, tool name, arguments.
    pub fn call(&self) -> (&str, &str, Option<&Value>) {
        (&self.method, &self.name, self.arguments.as_ref())
    }

    /// Whether the arguments have a key that Go's tool input struct reads as `key` or
    /// `path` without being spelled so (`"Path"`): the tool then reads a field the gateway
    /// sees under another name. A lone variant is user data to the gateway, not a clash.
    pub fn arguments_impersonate_tool_fields(&self) -> bool {
        let Some(Value::Object(arguments)) = &self.arguments else {
            return false;
        };
        arguments
            .keys()
            .any(|k| ["key", "path"].iter().any(|f| k != f && fold_name(k) == fold_name(f)))
    }

    fn recorded(line: &Value) -> View {
        let text = |k: &str| line.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        View {
            method: text("method"),
            name: text("name"),
            arguments: line.get("arguments").cloned(),
            tool_key: text("tool_key"),
            tool_path: text("tool_path"),
        }
    }
}

/// The recorded vectors: each input with what go1.19.8 saw of it.
pub fn vectors() -> Vec<(String, View)> {
    VECTORS
        .lines()
        .map(|line| {
            let line: Value = serde_json::from_str(line).unwrap();
            (line["input"].as_str().unwrap().to_owned(), View::recorded(&line))
        })
        .collect()
}

#[test]
fn t22_go_style_decoder_agrees_with_go_on_the_recorded_vectors() {
    let vectors = vectors();
    assert!(vectors.len() >= 20);
    for (input, go) in vectors {
        assert_eq!(View::go(input.as_bytes()), go, "{input}");
    }
}

#[test]
fn t22_go_fold_names_match_the_advisory_examples() {
    assert_eq!(fold_name("argumentſ"), fold_name("arguments"));
    assert_eq!(fold_name("\u{212A}ey"), fold_name("key"));
    assert_eq!(fold_name("Name"), fold_name("name"));
    assert_ne!(fold_name("nаme"), fold_name("name"), "Cyrillic а is not a");
    assert_ne!(fold_name("\u{130}d"), fold_name("id"), "Go does not fold İ onto i");
}
