//! A parsed JSON document that keeps object members in order and rejects a member name that
//! appears twice in one object, at any depth (RFC 8259 §4 leaves the meaning open, RFC 7493
//! §2.3 forbids it): which of the two the sender meant is unknown, and two readers of the same
//! document may pick different ones. TLS-RPT reports and the `mtasts serve` API read JSON only
//! through [`parse`].
//!
//! Nesting is bounded by `serde_json`'s recursion limit (128 arrays or objects deep,
//! [`JsonError::TooDeep`]); the caller bounds the size of the input.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

/// One JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as `serde_json` reads it.
    Number(serde_json::Number),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Json>),
    /// An object: its members in document order, every name once.
    Object(Vec<(String, Json)>),
}

impl Json {
    /// What the value is, for error messages: `null`, `a string`, ….
    pub fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }
}

impl From<Json> for serde_json::Value {
    /// The same value as `serde_json` would read it (member order aside); nothing is lost,
    /// since no name repeats.
    fn from(json: Json) -> Self {
        match json {
            Json::Null => serde_json::Value::Null,
            Json::Bool(b) => serde_json::Value::Bool(b),
            Json::Number(n) => serde_json::Value::Number(n),
            Json::String(s) => serde_json::Value::String(s),
            Json::Array(items) => items.into_iter().map(serde_json::Value::from).collect(),
            Json::Object(members) => serde_json::Value::Object(
                members
                    .into_iter()
                    .map(|(name, value)| (name, value.into()))
                    .collect(),
            ),
        }
    }
}

/// Why a document was not read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// A member name appears twice in one object.
    #[error("{message}")]
    Duplicate {
        /// Where the repeated member is: member names joined by `.`, array indexes in
        /// brackets (`policies[0].policy`); a top-level member is just its name.
        path: String,
        /// For people: the name and the position (line and column) of the second one.
        message: String,
    },
    /// Arrays and objects nested deeper than the recursion limit.
    #[error("{message}")]
    TooDeep {
        /// For people, with the position.
        message: String,
    },
    /// Not JSON (syntax, encoding, trailing characters, an empty document).
    #[error("{message}")]
    Malformed {
        /// For people, with the position.
        message: String,
    },
}

/// Reads one JSON document (nothing but whitespace may follow it), refusing a member name
/// that repeats within an object at any depth.
pub fn parse(bytes: &[u8]) -> Result<Json, JsonError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let result = Seed {
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|json| deserializer.end().map(|()| json));
    result.map_err(|e| {
        let message = e.to_string();
        if let Some(mut path) = duplicate.into_inner() {
            // Collected from the inside out while the error travelled up.
            path.reverse();
            return JsonError::Duplicate {
                path: path_text(&path),
                message,
            };
        }
        if message.starts_with("recursion limit exceeded") {
            JsonError::TooDeep { message }
        } else {
            JsonError::Malformed { message }
        }
    })
}

/// One step of the path to a repeated member.
enum Step {
    Member(String),
    Index(usize),
}

fn path_text(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Member(name) if out.is_empty() => out.push_str(name),
            Step::Member(name) => {
                out.push('.');
                out.push_str(name);
            }
            Step::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Reads one value; on a repeated name, records the path to it in `duplicate` (innermost
/// step first: each enclosing array or object adds its step as the error passes through, so
/// a document without repeats pays nothing for the path).
#[derive(Clone, Copy)]
struct Seed<'a> {
    duplicate: &'a RefCell<Option<Vec<Step>>>,
}

impl Seed<'_> {
    /// Adds `step` to the path when the error being returned is a repeated name.
    fn enclose(&self, step: impl FnOnce() -> Step) {
        if let Some(path) = self.duplicate.borrow_mut().as_mut() {
            path.push(step());
        }
    }
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Json;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Json, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Json, E> {
        Ok(Json::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Json, E> {
        Ok(Json::Number(v.into()))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Json, E> {
        Ok(Json::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Json, E> {
        Ok(Json::String(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Json::Array(items)),
                Err(e) => {
                    self.enclose(|| Step::Index(items.len()));
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut members: Vec<(String, Json)> = Vec::new();
        let mut seen = HashSet::new();
        while let Some(name) = map.next_key::<String>()? {
            if !seen.insert(name.clone()) {
                let message = format!("duplicate member name {name:?}");
                *self.duplicate.borrow_mut() = Some(vec![Step::Member(name)]);
                return Err(de::Error::custom(message));
            }
            match map.next_value_seed(self) {
                Ok(value) => members.push((name, value)),
                Err(e) => {
                    self.enclose(|| Step::Member(name));
                    return Err(e);
                }
            }
        }
        Ok(Json::Object(members))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn duplicate(text: &str) -> (String, String) {
        match parse(text.as_bytes()) {
            Err(JsonError::Duplicate { path, message }) => (path, message),
            other => panic!("{text}: {other:?}"),
        }
    }

    #[test]
    fn members_keep_their_order() {
        let json = parse(br#" {"b": 1, "a": [true, null, "x", 1.5], "c": {}} "#).unwrap();
        let Json::Object(members) = &json else {
            panic!("{json:?}")
        };
        let names: Vec<&str> = members.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["b", "a", "c"]);
        assert_eq!(
            serde_json::Value::from(json),
            serde_json::json!({"a": [true, null, "x", 1.5], "b": 1, "c": {}})
        );
    }

    #[test]
    fn a_repeated_name_is_refused_with_its_path_at_any_depth() {
        let (path, message) = duplicate(r#"{"mode": "none", "mode": "enforce"}"#);
        assert_eq!(path, "mode");
        assert!(
            message.starts_with(r#"duplicate member name "mode""#),
            "{message}"
        );
        assert!(message.contains("line 1"), "{message}");
        let (path, _) = duplicate(r#"{"a": {"b": [1, {"c": 1}, {"d": 1, "d": 2}]}}"#);
        assert_eq!(path, "a.b[2].d");
        let (path, _) = duplicate(r#"[{"x": 1}, {"x": 1, "x": 1}]"#);
        assert_eq!(path, "[1].x");
        // The same name in different objects is not a repeat.
        assert!(parse(br#"{"a": {"x": 1}, "b": {"x": 1}, "x": [{"x": 1}]}"#).is_ok());
    }

    #[test]
    fn other_errors_are_not_duplicates() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(matches!(
            parse(deep.as_bytes()),
            Err(JsonError::TooDeep { .. })
        ));
        for bad in ["", "{", r#"{"a": 1} x"#, r#"{"a": 1, "a"#, "\u{feff}{}"] {
            assert!(
                matches!(parse(bad.as_bytes()), Err(JsonError::Malformed { .. })),
                "{bad:?}"
            );
        }
        // A repeat after an unrelated syntax error elsewhere cannot be reached.
        assert!(matches!(
            parse(br#"{"a": [1,, 2], "a": 1}"#),
            Err(JsonError::Malformed { .. })
        ));
    }
}
