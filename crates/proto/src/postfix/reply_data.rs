//! Reading policy table data back into a level and attributes, the way Postfix's smtp(8) does
//! (`smtp_tls_policy_maps` parsing: tokens separated by whitespace or commas, `{ … }` grouping
//! with balanced braces, `name=value` attributes).

use thiserror::Error;

/// Policy table data split into its level and attributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplyData {
    /// The first token: the security level keyword, as written.
    pub level: String,
    /// `name=value` attributes in order; braced ones (`{ name = value }`) with the braces
    /// removed and whitespace around name and value trimmed.
    pub attributes: Vec<(String, String)>,
}

impl ReplyData {
    /// The first value of attribute `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of attribute `name`, in order (`match`, `mx_host_pattern` and
    /// `policy_string` are repeatable).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.attributes
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// Why policy table data cannot be read.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplyDataError {
    /// Nothing but separators.
    #[error("the policy data is empty")]
    Empty,
    /// A `{` without its `}`, or a `}` without its `{`.
    #[error("unbalanced braces in the policy data")]
    UnbalancedBraces,
    /// The first token is braced or contains `=`: there is no level.
    #[error("the policy data does not start with a security level")]
    MissingLevel,
    /// An attribute without `=`, or with an empty name.
    #[error("{0:?} is not a name=value attribute")]
    NotAttribute(String),
}

/// Splits policy table data (the part after `OK `) into a level and `name=value` attributes,
/// honouring `{ name = value }` groups whose value may contain spaces and commas. Does not
/// check attribute names or values against a Postfix version; tests use it to check rendered
/// answers.
pub fn parse_reply_data(data: &str) -> Result<ReplyData, ReplyDataError> {
    let tokens = tokenize(data)?;
    let mut tokens = tokens.into_iter();
    let level = match tokens.next() {
        None => return Err(ReplyDataError::Empty),
        Some(first) if first.starts_with('{') || first.contains('=') => {
            return Err(ReplyDataError::MissingLevel);
        }
        Some(first) => first.to_owned(),
    };
    let attributes = tokens
        .map(|token| {
            let inner = match token.strip_prefix('{') {
                // `tokenize` only ends a braced token at its matching `}`.
                Some(rest) => rest.strip_suffix('}').unwrap_or(rest).trim(),
                None => token,
            };
            match inner.split_once('=') {
                Some((name, value)) if !name.trim().is_empty() => {
                    Ok((name.trim().to_owned(), value.trim().to_owned()))
                }
                _ => Err(ReplyDataError::NotAttribute(token.to_owned())),
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(ReplyData { level, attributes })
}

/// Splits on whitespace and commas outside braces.
fn tokenize(data: &str) -> Result<Vec<&str>, ReplyDataError> {
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut start = None;
    for (i, c) in data.char_indices() {
        match c {
            '{' => {
                depth += 1;
                start.get_or_insert(i);
            }
            '}' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or(ReplyDataError::UnbalancedBraces)?;
                let s = *start.get_or_insert(i);
                // A group that opened the token ends it: `{ a = b }{ c = d }` is two tokens.
                if depth == 0 && data[s..].starts_with('{') {
                    tokens.push(&data[s..=i]);
                    start = None;
                }
            }
            c if depth == 0 && (c.is_whitespace() || c == ',') => {
                if let Some(s) = start.take() {
                    tokens.push(&data[s..i]);
                }
            }
            _ => {
                start.get_or_insert(i);
            }
        }
    }
    if depth != 0 {
        return Err(ReplyDataError::UnbalancedBraces);
    }
    if let Some(s) = start {
        tokens.push(&data[s..]);
    }
    Ok(tokens)
}
