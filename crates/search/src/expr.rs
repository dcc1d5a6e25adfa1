//! The small FHIRPath subset that R4 search-parameter expressions use: paths, unions,
//! `as`/`.as()`/`.ofType()`, `.where(resolve() is T)`, `.where(field = 'literal')`, `[n]`,
//! `.first()` and `%resource`. Anything else is a parse error, and the parameter is then
//! evaluated by the general FHIRPath engine instead.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Union(Vec<Expr>),
    /// The first name of a path: a type (`Observation`) or, in a component expression, an
    /// element of the context (`code`).
    Name(String),
    /// `%resource`.
    Resource,
    Member(Box<Expr>, String),
    Index(Box<Expr>, usize),
    First(Box<Expr>),
    /// `x as T`, `x.as(T)` and `x.ofType(T)`: on the single-valued elements search
    /// parameters use, all three keep the items of type `T`.
    OfType(Box<Expr>, String),
    Where(Box<Expr>, Condition),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// `resolve() is T`: a Reference whose target type is `T`.
    ResolveIs(String),
    /// `field = 'literal'`.
    Equals(String, String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("outside the search-path subset at byte {at}: {why}")]
pub struct SubsetError {
    pub at: usize,
    pub why: &'static str,
}

pub fn parse(text: &str) -> Result<Expr, SubsetError> {
    let mut p = Parser {
        s: text.as_bytes(),
        i: 0,
    };
    let e = p.union()?;
    p.ws();
    if p.i != p.s.len() {
        return Err(p.fail("unexpected text"));
    }
    Ok(e)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn fail(&self, why: &'static str) -> SubsetError {
        SubsetError { at: self.i, why }
    }

    /// The byte at the cursor, if any.
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    /// The bytes from `start` to the cursor.
    fn since(&self, start: usize) -> &[u8] {
        self.s.get(start..self.i).unwrap_or_default()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8, why: &'static str) -> Result<(), SubsetError> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.fail(why))
        }
    }

    fn ident(&mut self) -> Option<String> {
        self.ws();
        let start = self.i;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == b'_')
        {
            self.i += 1;
        }
        if self.i == start || self.s.get(start).is_some_and(u8::is_ascii_digit) {
            self.i = start;
            return None;
        }
        Some(String::from_utf8_lossy(self.since(start)).into_owned())
    }

    /// A keyword followed by whitespace (so `as` does not match `asserter`).
    fn keyword(&mut self, word: &str) -> bool {
        self.ws();
        let end = self.i + word.len();
        if self.s.get(self.i..end) == Some(word.as_bytes())
            && self.s.get(end).is_some_and(|c| c.is_ascii_whitespace())
        {
            self.i = end;
            true
        } else {
            false
        }
    }

    fn type_name(&mut self) -> Result<String, SubsetError> {
        let name = self
            .ident()
            .ok_or_else(|| self.fail("expected a type name"))?;
        // `FHIR.Quantity` and `System.String` name the same types for our purposes.
        if (name == "FHIR" || name == "System") && self.eat(b'.') {
            return self
                .ident()
                .ok_or_else(|| self.fail("expected a type name"));
        }
        Ok(name)
    }

    fn string_literal(&mut self) -> Result<String, SubsetError> {
        self.ws();
        if self.s.get(self.i) != Some(&b'\'') {
            return Err(self.fail("expected a string literal"));
        }
        self.i += 1;
        let start = self.i;
        loop {
            match self.peek() {
                None => return Err(self.fail("unterminated string literal")),
                Some(b'\'') => break,
                Some(b'\\') => {
                    return Err(self.fail("escapes in literals are not in the subset"));
                }
                Some(_) => self.i += 1,
            }
        }
        let text = String::from_utf8_lossy(self.since(start)).into_owned();
        self.i += 1;
        Ok(text)
    }

    fn union(&mut self) -> Result<Expr, SubsetError> {
        let mut items = vec![self.type_expr()?];
        while self.eat(b'|') {
            items.push(self.type_expr()?);
        }
        Ok(if items.len() == 1 {
            items.remove(0)
        } else {
            Expr::Union(items)
        })
    }

    fn type_expr(&mut self) -> Result<Expr, SubsetError> {
        let mut e = self.postfix()?;
        while self.keyword("as") {
            let t = self.type_name()?;
            e = Expr::OfType(Box::new(e), t);
        }
        self.ws();
        if self.keyword("is") || self.keyword("and") || self.keyword("or") {
            return Err(self.fail("operators are not in the subset"));
        }
        Ok(e)
    }

    fn postfix(&mut self) -> Result<Expr, SubsetError> {
        let mut e = self.primary()?;
        loop {
            if self.eat(b'.') {
                let name = self.ident().ok_or_else(|| self.fail("expected a name"))?;
                if self.eat(b'(') {
                    e = self.function(e, &name)?;
                } else {
                    e = Expr::Member(Box::new(e), name);
                }
            } else if self.eat(b'[') {
                self.ws();
                let start = self.i;
                while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    self.i += 1;
                }
                let n = std::str::from_utf8(self.since(start))
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| self.fail("expected an index"))?;
                self.expect(b']', "expected ']'")?;
                e = Expr::Index(Box::new(e), n);
            } else {
                return Ok(e);
            }
        }
    }

    fn function(&mut self, target: Expr, name: &str) -> Result<Expr, SubsetError> {
        let e = match name {
            "as" | "ofType" => {
                let t = self.type_name()?;
                Expr::OfType(Box::new(target), t)
            }
            "first" => Expr::First(Box::new(target)),
            "where" => {
                let condition = self.condition()?;
                Expr::Where(Box::new(target), condition)
            }
            _ => return Err(self.fail("function not in the subset")),
        };
        self.expect(b')', "expected ')'")?;
        Ok(e)
    }

    fn condition(&mut self) -> Result<Condition, SubsetError> {
        let name = self
            .ident()
            .ok_or_else(|| self.fail("expected a condition"))?;
        if name == "resolve" {
            self.expect(b'(', "expected '('")?;
            self.expect(b')', "expected ')'")?;
            if !self.keyword("is") {
                return Err(self.fail("expected `is` after resolve()"));
            }
            return Ok(Condition::ResolveIs(self.type_name()?));
        }
        self.expect(b'=', "expected '='")?;
        Ok(Condition::Equals(name, self.string_literal()?))
    }

    fn primary(&mut self) -> Result<Expr, SubsetError> {
        if self.eat(b'(') {
            let e = self.union()?;
            self.expect(b')', "expected ')'")?;
            return Ok(e);
        }
        if self.eat(b'%') {
            return match self.ident().as_deref() {
                Some("resource") => Ok(Expr::Resource),
                _ => Err(self.fail("only %resource is in the subset")),
            };
        }
        self.ident()
            .map(Expr::Name)
            .ok_or_else(|| self.fail("expected a name"))
    }
}

/// Prints an expression back as FHIRPath (used to hand rewritten expressions to the
/// general engine).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Union(items) => {
                for (n, item) in items.iter().enumerate() {
                    if n > 0 {
                        f.write_str(" | ")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
            Expr::Name(n) => f.write_str(n),
            Expr::Resource => f.write_str("%resource"),
            Expr::Member(inner, name) => write!(f, "{}.{name}", Paren(inner)),
            Expr::Index(inner, n) => write!(f, "{}[{n}]", Paren(inner)),
            Expr::First(inner) => write!(f, "{}.first()", Paren(inner)),
            Expr::OfType(inner, t) => write!(f, "{}.ofType({t})", Paren(inner)),
            Expr::Where(inner, Condition::ResolveIs(t)) => {
                write!(f, "{}.where(resolve() is {t})", Paren(inner))
            }
            Expr::Where(inner, Condition::Equals(field, lit)) => {
                write!(f, "{}.where({field} = '{lit}')", Paren(inner))
            }
        }
    }
}

struct Paren<'a>(&'a Expr);

impl fmt::Display for Paren<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Expr::Union(_) => write!(f, "({})", self.0),
            other => write!(f, "{other}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(e: Expr, n: &str) -> Expr {
        Expr::Member(Box::new(e), n.to_string())
    }
    fn name(n: &str) -> Expr {
        Expr::Name(n.to_string())
    }

    #[test]
    fn parses_paths_unions_and_type_filters() {
        let e = parse("(Observation.value as Quantity) | Observation.component.code").unwrap();
        assert_eq!(
            e,
            Expr::Union(vec![
                Expr::OfType(Box::new(m(name("Observation"), "value")), "Quantity".into()),
                m(m(name("Observation"), "component"), "code"),
            ])
        );
        assert_eq!(
            parse("Condition.onset.as(Age)").unwrap(),
            parse("Condition.onset as Age").unwrap()
        );
    }

    #[test]
    fn parses_where_conditions_indexes_and_resource() {
        let e = parse("Observation.subject.where(resolve() is Patient)").unwrap();
        assert_eq!(
            e,
            Expr::Where(
                Box::new(m(name("Observation"), "subject")),
                Condition::ResolveIs("Patient".into())
            )
        );
        let e = parse("Patient.telecom.where(system='email')").unwrap();
        assert!(
            matches!(e, Expr::Where(_, Condition::Equals(ref f, ref v)) if f == "system" && v == "email")
        );
        let e = parse("Bundle.entry[0].resource").unwrap();
        assert_eq!(
            e,
            m(
                Expr::Index(Box::new(m(name("Bundle"), "entry")), 0),
                "resource"
            )
        );
        assert_eq!(
            parse("%resource.referenceSeq.chromosome").unwrap(),
            m(m(Expr::Resource, "referenceSeq"), "chromosome")
        );
    }

    #[test]
    fn names_that_start_with_keywords_are_names() {
        let e = parse("AllergyIntolerance.asserter").unwrap();
        assert_eq!(e, m(name("AllergyIntolerance"), "asserter"));
    }

    #[test]
    fn rejects_what_is_outside_the_subset() {
        for text in [
            "Patient.deceased.exists() and Patient.deceased != false",
            "Observation.value.exists()",
            "Observation.code = 'x'",
            "%context.code",
            "Observation.where(a='x\\'y')",
        ] {
            assert!(parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn prints_back_as_fhirpath() {
        for text in [
            "Observation.subject.where(resolve() is Patient)",
            "Observation.value.ofType(Quantity)",
            "Bundle.entry[0].resource",
            "Patient.telecom.where(system = 'email')",
            "(Observation | Observation.component).code",
        ] {
            assert_eq!(parse(text).unwrap().to_string(), text);
        }
    }
}
