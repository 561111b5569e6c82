//! SPDX licence expressions (`MIT`, `GPL-3.0-or-later`, `Apache-2.0 OR MIT`,
//! `GPL-2.0-or-later WITH Classpath-exception-2.0`, `LicenseRef-acme`).
//!
//! Identifiers are checked against the licences research software commonly
//! carries; `LicenseRef-…` names a licence the catalogue does not know.

const LICENSES: &[&str] = &[
    "0BSD",
    "AFL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-1.0",
    "Artistic-2.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSD-3-Clause-LBNL",
    "BSD-4-Clause",
    "BSL-1.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "CC-BY-NC-4.0",
    "CC-BY-NC-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CDDL-1.1",
    "CECILL-2.1",
    "CECILL-B",
    "CECILL-C",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.1",
    "EUPL-1.2",
    "GFDL-1.3-only",
    "GFDL-1.3-or-later",
    "GPL-1.0-or-later",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "HPND",
    "ISC",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "LPPL-1.3c",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "MS-PL",
    "NCSA",
    "ODbL-1.0",
    "OFL-1.1",
    "OpenSSL",
    "PDDL-1.0",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Qhull",
    "Ruby",
    "TCL",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "Vim",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "ZPL-2.1",
    // Deprecated ids still seen in the wild.
    "GPL-2.0",
    "GPL-2.0+",
    "GPL-3.0",
    "GPL-3.0+",
    "LGPL-2.1",
    "LGPL-2.1+",
    "LGPL-3.0",
    "LGPL-3.0+",
    "AGPL-3.0",
];

const EXCEPTIONS: &[&str] = &[
    "Classpath-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Font-exception-2.0",
    "OpenJDK-assembly-exception-1.0",
];

#[derive(Debug, PartialEq)]
enum Token<'a> {
    Id(&'a str),
    And,
    Or,
    With,
    Open,
    Close,
}

fn tokens(s: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let spaced = s.char_indices();
    let mut start = None;
    let bytes = s.as_bytes();
    for (i, c) in spaced {
        let boundary = c.is_whitespace() || c == '(' || c == ')';
        if boundary {
            if let Some(st) = start.take() {
                out.push(word(&s[st..i]));
            }
            if c == '(' {
                out.push(Token::Open);
            } else if c == ')' {
                out.push(Token::Close);
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(st) = start {
        out.push(word(&s[st..bytes.len()]));
    }
    out
}

fn word(w: &str) -> Token<'_> {
    match w {
        "AND" => Token::And,
        "OR" => Token::Or,
        "WITH" => Token::With,
        id => Token::Id(id),
    }
}

fn known_license(id: &str) -> bool {
    if let Some(r) = id.strip_prefix("LicenseRef-") {
        return !r.is_empty()
            && r.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    }
    let base = id.strip_suffix('+').unwrap_or(id);
    LICENSES.contains(&id) || LICENSES.contains(&base)
}

/// What is wrong with a licence expression.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LicenseError {
    #[error("must be an SPDX licence expression such as \"MIT\" or \"Apache-2.0\"")]
    Empty,
    /// `token` is the offending token as the parser names it.
    #[error("unexpected {token} in licence expression {expr:?}")]
    Trailing { token: String, expr: String },
    #[error("unexpected {0} in licence expression")]
    Unexpected(String),
    #[error("unbalanced parenthesis in licence expression")]
    Unbalanced,
    #[error("{0:?} is not a known SPDX licence identifier (use LicenseRef-<name> for others)")]
    UnknownLicense(String),
    #[error("{0:?} is not a known SPDX licence exception")]
    UnknownException(String),
    #[error("WITH must be followed by a licence exception")]
    MissingException,
    #[error("licence expression ends too early")]
    EndsEarly,
}

/// Checks an SPDX licence expression; the error says what is wrong.
pub fn check_expression(expr: &str) -> Result<(), LicenseError> {
    let toks = tokens(expr);
    if toks.is_empty() {
        return Err(LicenseError::Empty);
    }
    let mut pos = 0;
    parse_or(&toks, &mut pos)?;
    if pos != toks.len() {
        return Err(LicenseError::Trailing {
            token: format!("{:?}", toks[pos]),
            expr: expr.to_owned(),
        });
    }
    Ok(())
}

fn parse_or(t: &[Token<'_>], pos: &mut usize) -> Result<(), LicenseError> {
    parse_and(t, pos)?;
    while t.get(*pos) == Some(&Token::Or) {
        *pos += 1;
        parse_and(t, pos)?;
    }
    Ok(())
}

fn parse_and(t: &[Token<'_>], pos: &mut usize) -> Result<(), LicenseError> {
    parse_atom(t, pos)?;
    while t.get(*pos) == Some(&Token::And) {
        *pos += 1;
        parse_atom(t, pos)?;
    }
    Ok(())
}

fn parse_atom(t: &[Token<'_>], pos: &mut usize) -> Result<(), LicenseError> {
    match t.get(*pos) {
        Some(Token::Open) => {
            *pos += 1;
            parse_or(t, pos)?;
            if t.get(*pos) != Some(&Token::Close) {
                return Err(LicenseError::Unbalanced);
            }
            *pos += 1;
            Ok(())
        }
        Some(Token::Id(id)) => {
            if !known_license(id) {
                return Err(LicenseError::UnknownLicense((*id).to_owned()));
            }
            *pos += 1;
            if t.get(*pos) == Some(&Token::With) {
                *pos += 1;
                match t.get(*pos) {
                    Some(Token::Id(ex)) if EXCEPTIONS.contains(ex) => *pos += 1,
                    Some(Token::Id(ex)) => {
                        return Err(LicenseError::UnknownException((*ex).to_owned()));
                    }
                    _ => return Err(LicenseError::MissingException),
                }
            }
            Ok(())
        }
        Some(other) => Err(LicenseError::Unexpected(format!("{other:?}"))),
        None => Err(LicenseError::EndsEarly),
    }
}

#[cfg(test)]
mod tests {
    use super::check_expression;

    #[test]
    fn accepts_real_expressions() {
        for ok in [
            "MIT",
            "Apache-2.0 OR MIT",
            "(MIT AND BSD-3-Clause) OR GPL-3.0-or-later",
            "GPL-2.0-or-later WITH Classpath-exception-2.0",
            "LicenseRef-esa-community",
            "GPL-2.0+",
        ] {
            assert_eq!(check_expression(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn refuses_nonsense() {
        for bad in [
            "",
            "MIT OR",
            "(MIT",
            "Foo-1.0",
            "MIT WITH Nothing",
            "MIT MIT",
            "AND",
        ] {
            assert!(check_expression(bad).is_err(), "{bad}");
        }
    }
}
