//! Lexer and parser: constraint text to a syntax tree with spans. Nothing here knows the model.
//! The grammar is XPath-style:
//!
//! ```text
//! constraint := group+                      several groups are joined with `and`
//! group      := '[' or ']'
//! or         := and ('or' and)*
//! and        := unary ('and' unary)*
//! unary      := 'not' '(' or ')' | '(' or ')' | 'true' '(' ')' | 'false' '(' ')'
//!             | function '(' path ',' literal ')' | operand (op operand)?
//! operand    := path | literal
//! path       := step ('/' step)*            step := name ('[' or ']')?
//! literal    := 'text' | "text" | number | 'empty' | '[%Lexeme%]'
//! ```

use std::fmt;

use crate::{
    CONSTRAINT_BYTES_MAX, CONSTRAINT_DEPTH_MAX, CONSTRAINT_PATH_STEPS_MAX, ConstraintError,
    ConstraintErrorKind,
};

/// A byte range in the constraint text.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    fn to(self, other: Span) -> Span {
        Span { start: self.start, end: other.end }
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.start, self.end)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// The operator with its operands swapped: `5 < Amount` is `Amount > 5`.
    pub fn flipped(self) -> CompareOp {
        match self {
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
            other => other,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Eq => "=",
            CompareOp::Ne => "!=",
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
        }
    }
}

impl fmt::Display for CompareOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
}

#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Expr {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Bool(bool),
    Compare {
        left: Operand,
        op: CompareOp,
        op_span: Span,
        right: Operand,
    },
    Call {
        name: String,
        name_span: Span,
        path: Path,
        needle: Operand,
    },
    /// A path or literal standing alone: an existence test or a role token.
    Alone(Operand),
}

#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Operand {
    Path(Path),
    Literal(Literal, Span),
}

#[derive(Clone, PartialEq, Debug)]
pub(crate) enum Literal {
    Text(String),
    Number(String),
    Empty,
    Bool(bool),
    /// `[%Name%]`, quoted or not.
    Token(String),
    /// `$Name`: a parameter of the action the constraint belongs to.
    Parameter(String),
}

#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Path {
    pub(crate) steps: Vec<Step>,
}

#[derive(Clone, PartialEq, Debug)]
pub(crate) struct Step {
    pub(crate) name: String,
    pub(crate) span: Span,
    pub(crate) filter: Option<Box<Expr>>,
}

#[derive(Clone, PartialEq, Debug)]
enum Lexeme {
    LBracket,
    RBracket,
    LParen,
    RParen,
    Slash,
    Comma,
    Op(CompareOp),
    Name(String),
    Text(String),
    Number(String),
    Token(String),
    Parameter(String),
    End,
}

impl fmt::Display for Lexeme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lexeme::LBracket => f.write_str("`[`"),
            Lexeme::RBracket => f.write_str("`]`"),
            Lexeme::LParen => f.write_str("`(`"),
            Lexeme::RParen => f.write_str("`)`"),
            Lexeme::Slash => f.write_str("`/`"),
            Lexeme::Comma => f.write_str("`,`"),
            Lexeme::Op(op) => write!(f, "`{op}`"),
            Lexeme::Name(name) => write!(f, "`{name}`"),
            Lexeme::Text(text) => write!(f, "'{text}'"),
            Lexeme::Number(number) => write!(f, "{number}"),
            Lexeme::Token(name) => write!(f, "[%{name}%]"),
            Lexeme::Parameter(name) => write!(f, "${name}"),
            Lexeme::End => f.write_str("the end"),
        }
    }
}

fn lex(text: &str) -> Result<Vec<(Lexeme, Span)>, ConstraintError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let start = at;
        let byte = bytes[at];
        let token = match byte {
            b' ' | b'\t' | b'\n' | b'\r' => {
                at += 1;
                continue;
            }
            b'[' if bytes.get(at + 1) == Some(&b'%') => {
                let Some(close) = text[at + 2..].find("%]") else {
                    return Err(error(
                        start,
                        text.len(),
                        ConstraintErrorKind::Unterminated { what: "token" },
                    ));
                };
                at += 2 + close + 2;
                Lexeme::Token(text[start + 2..at - 2].to_owned())
            }
            b'$' => {
                at += 1;
                while at < bytes.len() && (bytes[at].is_ascii_alphanumeric() || bytes[at] == b'_') {
                    at += 1;
                }
                if at == start + 1 {
                    return Err(error(start, at, ConstraintErrorKind::ParameterName));
                }
                Lexeme::Parameter(text[start + 1..at].to_owned())
            }
            b'[' => single(&mut at, Lexeme::LBracket),
            b']' => single(&mut at, Lexeme::RBracket),
            b'(' => single(&mut at, Lexeme::LParen),
            b')' => single(&mut at, Lexeme::RParen),
            b'/' => single(&mut at, Lexeme::Slash),
            b',' => single(&mut at, Lexeme::Comma),
            b'=' => single(&mut at, Lexeme::Op(CompareOp::Eq)),
            b'!' if bytes.get(at + 1) == Some(&b'=') => {
                at += 2;
                Lexeme::Op(CompareOp::Ne)
            }
            b'<' | b'>' => {
                let equal = bytes.get(at + 1) == Some(&b'=');
                at += 1 + usize::from(equal);
                Lexeme::Op(match (byte, equal) {
                    (b'<', false) => CompareOp::Lt,
                    (b'<', true) => CompareOp::Le,
                    (_, false) => CompareOp::Gt,
                    (_, true) => CompareOp::Ge,
                })
            }
            b'\'' | b'"' => {
                let mut value = String::new();
                at += 1;
                loop {
                    let Some(offset) = text[at..].find(byte as char) else {
                        return Err(error(
                            start,
                            text.len(),
                            ConstraintErrorKind::Unterminated { what: "string" },
                        ));
                    };
                    value.push_str(&text[at..at + offset]);
                    at += offset + 1;
                    if bytes.get(at) == Some(&byte) {
                        value.push(byte as char);
                        at += 1;
                    } else {
                        break;
                    }
                }
                match value.strip_prefix("[%").and_then(|v| v.strip_suffix("%]")) {
                    Some(name) if !name.contains('%') => Lexeme::Token(name.to_owned()),
                    _ => Lexeme::Text(value),
                }
            }
            b'0'..=b'9' | b'-' | b'.' => {
                at += 1;
                while at < bytes.len() && (bytes[at].is_ascii_digit() || bytes[at] == b'.') {
                    at += 1;
                }
                let number = &text[start..at];
                let digits = number.trim_start_matches('-');
                let valid = !digits.is_empty()
                    && digits.bytes().filter(|&b| b == b'.').count() <= 1
                    && digits.bytes().any(|b| b.is_ascii_digit())
                    && !digits.starts_with('.')
                    && !digits.ends_with('.');
                if !valid {
                    return Err(error(
                        start,
                        at,
                        ConstraintErrorKind::BadNumber { text: number.to_owned() },
                    ));
                }
                Lexeme::Number(number.to_owned())
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                while at < bytes.len()
                    && (bytes[at].is_ascii_alphanumeric()
                        || matches!(bytes[at], b'_' | b'.' | b'-'))
                {
                    at += 1;
                }
                Lexeme::Name(text[start..at].to_owned())
            }
            _ => {
                let found = text[at..].chars().next().expect("at is inside the text");
                return Err(error(
                    start,
                    start + found.len_utf8(),
                    ConstraintErrorKind::UnexpectedChar { found },
                ));
            }
        };
        tokens.push((token, Span { start, end: at }));
    }
    tokens.push((Lexeme::End, Span { start: text.len(), end: text.len() }));
    Ok(tokens)
}

fn single(at: &mut usize, token: Lexeme) -> Lexeme {
    *at += 1;
    token
}

fn error(start: usize, end: usize, kind: ConstraintErrorKind) -> ConstraintError {
    ConstraintError { span: Span { start, end }, kind }
}

/// Parses a whole constraint: one or more bracketed groups.
pub(crate) fn parse(text: &str) -> Result<Expr, ConstraintError> {
    if text.len() > CONSTRAINT_BYTES_MAX {
        return Err(error(
            0,
            text.len(),
            ConstraintErrorKind::TooLong { max: CONSTRAINT_BYTES_MAX },
        ));
    }
    let tokens = lex(text)?;
    let mut parser = Parser { tokens, at: 0, depth: 0 };
    let mut groups = Vec::new();
    loop {
        parser.expect(&Lexeme::LBracket, "`[`")?;
        groups.push(parser.or()?);
        parser.expect(&Lexeme::RBracket, "`]` or an operator")?;
        if parser.peek() == &Lexeme::End {
            break;
        }
    }
    Ok(if groups.len() == 1 { groups.pop().expect("one group") } else { Expr::And(groups) })
}

struct Parser {
    tokens: Vec<(Lexeme, Span)>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> &Lexeme {
        &self.tokens[self.at].0
    }

    fn peek_at(&self, offset: usize) -> &Lexeme {
        &self.tokens[(self.at + offset).min(self.tokens.len() - 1)].0
    }

    fn span(&self) -> Span {
        self.tokens[self.at].1
    }

    fn next(&mut self) -> (Lexeme, Span) {
        let token = self.tokens[self.at].clone();
        if token.0 != Lexeme::End {
            self.at += 1;
        }
        token
    }

    fn unexpected(&self, expected: &'static str) -> ConstraintError {
        let span = self.span();
        let found = self.peek().to_string();
        ConstraintError { span, kind: ConstraintErrorKind::Expected { expected, found } }
    }

    fn expect(&mut self, token: &Lexeme, expected: &'static str) -> Result<Span, ConstraintError> {
        if self.peek() == token { Ok(self.next().1) } else { Err(self.unexpected(expected)) }
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Lexeme::Name(name) if name == keyword)
    }

    fn nested<T>(
        &mut self,
        parse: impl FnOnce(&mut Self) -> Result<T, ConstraintError>,
    ) -> Result<T, ConstraintError> {
        self.deeper()?;
        let result = parse(self);
        self.depth -= 1;
        result
    }

    /// One level deeper, refused past [`CONSTRAINT_DEPTH_MAX`].
    fn deeper(&mut self) -> Result<(), ConstraintError> {
        self.depth += 1;
        if self.depth > CONSTRAINT_DEPTH_MAX {
            return Err(ConstraintError {
                span: self.span(),
                kind: ConstraintErrorKind::TooDeep { max: CONSTRAINT_DEPTH_MAX },
            });
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ConstraintError> {
        self.nested(|p| {
            let mut terms = vec![p.and()?];
            while p.is_keyword("or") {
                p.next();
                terms.push(p.and()?);
            }
            Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::Or(terms) })
        })
    }

    fn and(&mut self) -> Result<Expr, ConstraintError> {
        let mut terms = vec![self.unary()?];
        while self.is_keyword("and") {
            self.next();
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::And(terms) })
    }

    fn unary(&mut self) -> Result<Expr, ConstraintError> {
        if self.peek() == &Lexeme::LParen {
            self.next();
            let inner = self.or()?;
            self.expect(&Lexeme::RParen, "`)`")?;
            return Ok(inner);
        }
        if let Lexeme::Name(name) = self.peek().clone()
            && self.peek_at(1) == &Lexeme::LParen
        {
            let name_span = self.span();
            self.next();
            self.next();
            return match name.as_str() {
                "not" => {
                    let inner = self.or()?;
                    self.expect(&Lexeme::RParen, "`)`")?;
                    Ok(Expr::Not(Box::new(inner)))
                }
                "true" | "false" => {
                    self.expect(&Lexeme::RParen, "`)`")?;
                    let value = name == "true";
                    if let Lexeme::Op(_) = self.peek() {
                        return self.comparison(Operand::Literal(Literal::Bool(value), name_span));
                    }
                    Ok(Expr::Bool(value))
                }
                "contains" | "starts-with" | "ends-with" => {
                    let path = self.path()?;
                    self.expect(&Lexeme::Comma, "`,`")?;
                    let needle = self.operand()?;
                    self.expect(&Lexeme::RParen, "`)`")?;
                    Ok(Expr::Call { name, name_span, path, needle })
                }
                _ => Err(ConstraintError {
                    span: name_span,
                    kind: ConstraintErrorKind::UnknownFunction { name },
                }),
            };
        }
        let left = self.operand()?;
        if let Lexeme::Op(_) = self.peek() {
            return self.comparison(left);
        }
        Ok(Expr::Alone(left))
    }

    fn comparison(&mut self, left: Operand) -> Result<Expr, ConstraintError> {
        let (Lexeme::Op(op), op_span) = self.next() else {
            unreachable!("comparison is only called before an operator")
        };
        let right = self.operand()?;
        Ok(Expr::Compare { left, op, op_span, right })
    }

    fn operand(&mut self) -> Result<Operand, ConstraintError> {
        let span = self.span();
        let literal = match self.peek().clone() {
            Lexeme::Text(text) => Literal::Text(text),
            Lexeme::Number(number) => Literal::Number(number),
            Lexeme::Token(name) => Literal::Token(name),
            Lexeme::Parameter(name) => Literal::Parameter(name),
            Lexeme::Name(name) if name == "empty" => Literal::Empty,
            Lexeme::Name(name)
                if (name == "true" || name == "false") && self.peek_at(1) == &Lexeme::LParen =>
            {
                self.next();
                self.next();
                let close = self.expect(&Lexeme::RParen, "`)`")?;
                return Ok(Operand::Literal(Literal::Bool(name == "true"), span.to(close)));
            }
            Lexeme::Name(_) => return Ok(Operand::Path(self.path()?)),
            _ => return Err(self.unexpected("a member, a path or a value")),
        };
        self.next();
        Ok(Operand::Literal(literal, span))
    }

    fn path(&mut self) -> Result<Path, ConstraintError> {
        let depth = self.depth;
        let path = self.steps();
        self.depth = depth;
        path
    }

    /// The steps of a path; each one after the first nests a level deeper.
    fn steps(&mut self) -> Result<Path, ConstraintError> {
        let mut steps: Vec<Step> = Vec::new();
        loop {
            if steps.len() == CONSTRAINT_PATH_STEPS_MAX {
                return Err(ConstraintError {
                    span: self.span(),
                    kind: ConstraintErrorKind::PathTooLong { max: CONSTRAINT_PATH_STEPS_MAX },
                });
            }
            if !steps.is_empty() {
                self.deeper()?;
            }
            let (token, span) = self.next();
            let Lexeme::Name(name) = token else {
                self.at -= usize::from(token != Lexeme::End);
                return Err(self.unexpected("a member or association name"));
            };
            let filter = if self.peek() == &Lexeme::LBracket {
                self.next();
                let inner = self.or()?;
                self.expect(&Lexeme::RBracket, "`]`")?;
                Some(Box::new(inner))
            } else {
                None
            };
            steps.push(Step { name, span, filter });
            if self.peek() != &Lexeme::Slash {
                return Ok(Path { steps });
            }
            self.next();
        }
    }
}
