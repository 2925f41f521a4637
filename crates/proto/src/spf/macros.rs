//! SPF macro strings (RFC 7208 §7): their syntax, the `domain-spec` rule (§4.6.1, §12), and the
//! one expansion a checker can do without a message: `%{d}` (the domain being evaluated).

/// A macro letter a checker can expand: only `d`; the others describe the message being
/// checked (sender, client address, HELO name), which a record check does not have.
const EXPANDABLE: &[char] = &['d'];

#[derive(Clone, Debug, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// `%{<letter><digits><r><delimiters>}`.
    Expand {
        letter: char,
        keep: Option<usize>,
        reverse: bool,
        delimiters: String,
    },
}

/// A syntactically valid macro string, with its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacroString {
    text: String,
    tokens: Vec<Token>,
}

impl MacroString {
    /// Parses `text`; the letters `c`, `r`, `t` are allowed only in `exp` text (§7.2), which
    /// `in_exp` says this is.
    pub fn parse(text: &str, in_exp: bool) -> Result<MacroString, String> {
        let mut tokens = Vec::new();
        let mut literal = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                if !(c.is_ascii_graphic()) {
                    return Err(format!("{c:?} is not allowed in a macro string"));
                }
                literal.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => literal.push('%'),
                Some('_') => literal.push(' '),
                Some('-') => literal.push_str("%20"),
                Some('{') => {
                    let mut body = String::new();
                    loop {
                        match chars.next() {
                            Some('}') => break,
                            Some(c) => body.push(c),
                            None => return Err("a %{ macro is not closed by }".to_owned()),
                        }
                    }
                    if !literal.is_empty() {
                        tokens.push(Token::Literal(std::mem::take(&mut literal)));
                    }
                    tokens.push(parse_expand(&body, in_exp)?);
                }
                other => {
                    return Err(format!(
                        "\"%{}\" is not a macro: write %% for a percent sign",
                        other.map(String::from).unwrap_or_default()
                    ));
                }
            }
        }
        if !literal.is_empty() {
            tokens.push(Token::Literal(literal));
        }
        Ok(MacroString {
            text: text.to_owned(),
            tokens,
        })
    }

    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the string has `%{…}` macros (and so depends on the message when not only `%{d}`).
    pub fn has_macros(&self) -> bool {
        self.tokens
            .iter()
            .any(|t| matches!(t, Token::Expand { .. }))
    }

    /// The string with `%{d…}` expanded for `domain`, or `None` when it uses a letter only a
    /// message provides (§7.3 transformers applied: keep the rightmost parts, reverse, split on
    /// the delimiters, join with dots).
    pub fn expand(&self, domain: &str) -> Option<String> {
        let mut out = String::new();
        for token in &self.tokens {
            match token {
                Token::Literal(s) => out.push_str(s),
                Token::Expand {
                    letter,
                    keep,
                    reverse,
                    delimiters,
                } => {
                    if !EXPANDABLE.contains(letter) {
                        return None;
                    }
                    let delims: Vec<char> = if delimiters.is_empty() {
                        vec!['.']
                    } else {
                        delimiters.chars().collect()
                    };
                    let mut parts: Vec<&str> = domain.split(&delims[..]).collect();
                    if *reverse {
                        parts.reverse();
                    }
                    if let Some(n) = keep
                        && *n < parts.len()
                    {
                        parts.drain(..parts.len() - n);
                    }
                    out.push_str(&parts.join("."));
                }
            }
        }
        Some(out)
    }
}

fn parse_expand(body: &str, in_exp: bool) -> Result<Token, String> {
    let mut chars = body.chars();
    let letter = chars
        .next()
        .ok_or_else(|| "an empty %{} macro".to_owned())?;
    let lower = letter.to_ascii_lowercase();
    if !"slodiphcrtv".contains(lower) || !letter.is_ascii_alphabetic() {
        return Err(format!("%{{{letter}…}} is not a macro letter"));
    }
    if !in_exp && "crt".contains(lower) {
        return Err(format!(
            "the macro letter {letter:?} is allowed only in exp text (RFC 7208 §7.2)"
        ));
    }
    let rest: String = chars.collect();
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let mut tail = &rest[digits.len()..];
    let keep = if digits.is_empty() {
        None
    } else {
        match digits.parse::<usize>() {
            Ok(n) if n > 0 && n <= 128 => Some(n),
            _ => {
                return Err(format!(
                    "%{{{body}}}: the digit transformer must be 1 to 128"
                ));
            }
        }
    };
    let reverse = if let Some(t) = tail.strip_prefix(['r', 'R']) {
        tail = t;
        true
    } else {
        false
    };
    if let Some(bad) = tail.chars().find(|c| !".-+,/_=".contains(*c)) {
        return Err(format!("%{{{body}}}: {bad:?} is not a delimiter"));
    }
    Ok(Token::Expand {
        letter: lower,
        keep,
        reverse,
        delimiters: tail.to_owned(),
    })
}

/// Parses a `domain-spec` (§12: `macro-string domain-end`): it must end in a macro or in
/// `"." toplabel ["."]`; without macros it must also be a usable domain name (§4.3).
pub fn domain_spec(text: &str) -> Result<MacroString, String> {
    if text.is_empty() {
        return Err("the domain is empty".to_owned());
    }
    let spec = MacroString::parse(text, false)?;
    if text.ends_with('}') && spec.has_macros() {
        return Ok(spec);
    }
    let tail_start = text.rfind('}').map_or(0, |i| i + 1);
    let tail = text[tail_start..]
        .strip_suffix('.')
        .unwrap_or(&text[tail_start..]);
    let Some((_, top)) = tail.rsplit_once('.') else {
        return Err(format!(
            "{text:?} does not end in a domain name with a dot before its last label"
        ));
    };
    if !is_toplabel(top) {
        return Err(format!("{top:?} is not a valid top-level label"));
    }
    if !spec.has_macros() {
        let name = text.strip_suffix('.').unwrap_or(text);
        if name.len() > 253 {
            return Err("the domain is longer than 253 characters".to_owned());
        }
        if let Some(label) = name.split('.').find(|l| l.is_empty() || l.len() > 63) {
            return Err(format!(
                "the label {label:?} is empty or longer than 63 characters"
            ));
        }
    }
    Ok(spec)
}

fn is_toplabel(label: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let plain = label.chars().all(alnum) && label.chars().any(|c| c.is_ascii_alphabetic());
    let hyphenated = label.contains('-')
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label.chars().all(|c| alnum(c) || c == '-');
    plain || hyphenated
}
