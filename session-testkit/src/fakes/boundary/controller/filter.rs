//! The subset of go-bexpr that Boundary's `filter=` needs in tests
//! (`boundary.md` §1.5): `<selector> == <value>`, `!=`, `contains`, joined
//! with `and` / `or`, `not` and parentheses. Selectors are JSON pointers in
//! double quotes (`"/item/status"`) or dotted paths (`item.status`); values
//! are double-quoted strings or bare words. A selector that does not exist
//! in an item makes that match false (Boundary counts it as no match).

use serde_json::Value;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Match {
        pointer: String,
        op: Op,
        value: String,
    },
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Quoted(String),
    Word(String),
    Eq,
    Ne,
    Open,
    Close,
}

fn lex(input: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                out.push(if c == '(' { Tok::Open } else { Tok::Close });
            }
            '=' | '!' => {
                chars.next();
                if chars.next() != Some('=') {
                    return Err(format!("unexpected {c:?}"));
                }
                out.push(if c == '=' { Tok::Eq } else { Tok::Ne });
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e) => s.push(e),
                            None => return Err("unterminated string".into()),
                        },
                        Some(ch) => s.push(ch),
                        None => return Err("unterminated string".into()),
                    }
                }
                out.push(Tok::Quoted(s));
            }
            _ => {
                let mut s = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_whitespace() || matches!(ch, '(' | ')' | '=' | '!' | '"') {
                        break;
                    }
                    s.push(ch);
                    chars.next();
                }
                out.push(Tok::Word(s));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek_word(&self, word: &str) -> bool {
        matches!(self.toks.get(self.at), Some(Tok::Word(w)) if w == word)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.peek_word("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.peek_word("not") {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        match self.next() {
            Some(Tok::Open) => {
                let e = self.or()?;
                match self.next() {
                    Some(Tok::Close) => Ok(e),
                    _ => Err("missing )".into()),
                }
            }
            Some(Tok::Quoted(s)) if s.starts_with('/') => self.comparison(s),
            Some(Tok::Word(w)) if !matches!(w.as_str(), "and" | "or" | "not") => {
                self.comparison(format!("/{}", w.replace('.', "/")))
            }
            other => Err(format!("expected a selector, found {other:?}")),
        }
    }

    fn comparison(&mut self, pointer: String) -> Result<Expr, String> {
        let op = match self.next() {
            Some(Tok::Eq) => Op::Eq,
            Some(Tok::Ne) => Op::Ne,
            Some(Tok::Word(w)) if w == "contains" => Op::Contains,
            other => return Err(format!("expected an operator, found {other:?}")),
        };
        let value = match self.next() {
            Some(Tok::Quoted(s)) | Some(Tok::Word(s)) => s,
            other => return Err(format!("expected a value, found {other:?}")),
        };
        Ok(Expr::Match { pointer, op, value })
    }
}

/// Parses a filter; the error text goes into the 400's field description.
pub(crate) fn parse(input: &str) -> Result<Expr, String> {
    let mut parser = Parser {
        toks: lex(input)?,
        at: 0,
    };
    let expr = parser.or()?;
    if parser.at < parser.toks.len() {
        return Err("unexpected text after the expression".into());
    }
    Ok(expr)
}

fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Expr {
    /// Whether `doc` (`{"item": …}`) matches.
    pub(crate) fn matches(&self, doc: &Value) -> bool {
        match self {
            Expr::And(a, b) => a.matches(doc) && b.matches(doc),
            Expr::Or(a, b) => a.matches(doc) || b.matches(doc),
            Expr::Not(e) => !e.matches(doc),
            Expr::Match { pointer, op, value } => {
                let Some(found) = doc.pointer(pointer) else {
                    return false;
                };
                match op {
                    Op::Eq => as_text(found).as_deref() == Some(value),
                    Op::Ne => as_text(found).is_some_and(|f| &f != value),
                    Op::Contains => match found {
                        Value::Array(items) => {
                            items.iter().any(|i| as_text(i).as_deref() == Some(value))
                        }
                        Value::String(s) => s.contains(value.as_str()),
                        _ => false,
                    },
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn documented_examples_match() {
        let doc =
            json!({"item": {"status": "active", "target_id": "ttcp_1234567890", "version": 2}});
        let m = |f: &str| parse(f).unwrap().matches(&doc);
        assert!(m(r#""/item/status" == "active""#));
        assert!(m(r#""/item/target_id" == "ttcp_1234567890""#));
        assert!(!m(r#""/item/status" != "active""#));
        assert!(m(r#""/item/status" == "active" and "/item/version" == 2"#));
        assert!(m(r#""/item/status" == "pending" or item.version == "2""#));
        assert!(m(r#"not ("/item/status" == "pending")"#));
        assert!(!m(r#""/item/missing" == "x""#));
        assert!(!m(r#""/item/missing" != "x""#));
    }

    #[test]
    fn broken_filters_do_not_parse() {
        for bad in [
            r#""/item/status" = "active""#,
            r#""/item/status" =="#,
            r#""/item/status" == "active"#,
            r#"("/item/status" == "a""#,
            r#""/item/status" == "a" "b""#,
            "and",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
