//! Parsing of request paths and of the auth endpoint's query.

use std::borrow::Cow;

/// Longest lab id accepted.
pub(crate) const MAX_LAB_ID_LEN: usize = 64;

/// What a request path addresses.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// `/labs/<id>` without the trailing slash.
    LabRoot(&'a str),
    /// `/labs/<id>/<rest>`; `rest` starts with `/`.
    Lab { id: &'a str, rest: &'a str },
    /// Anything else.
    Invalid,
}

pub(crate) fn is_lab_id(id: &str) -> bool {
    (1..=MAX_LAB_ID_LEN).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

pub(crate) fn parse(path: &str) -> Target<'_> {
    let Some(after) = path.strip_prefix("/labs/") else {
        return Target::Invalid;
    };
    let (id, rest) = match after.find('/') {
        Some(slash) => after.split_at(slash),
        None => (after, ""),
    };
    if !is_lab_id(id) {
        Target::Invalid
    } else if rest.is_empty() {
        Target::LabRoot(id)
    } else {
        Target::Lab { id, rest }
    }
}

/// The first value of `name` in an `application/x-www-form-urlencoded` query.
pub(crate) fn query_param<'a>(query: &'a str, name: &str) -> Option<Cow<'a, str>> {
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(key).as_deref() == Some(name))
            .then(|| percent_decode(value))
            .flatten()
    })
}

/// Decodes `%XX` and `+`; `None` when the result is not UTF-8.
fn percent_decode(text: &str) -> Option<Cow<'_, str>> {
    if !text.bytes().any(|b| b == b'%' || b == b'+') {
        return Some(Cow::Borrowed(text));
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = |c: u8| char::from(c).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(hi), Some(lo)) => {
                        out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'?'));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

/// Whether `next` is a safe place to send the browser after signing in to
/// lab `id`: a plain path under `/labs/<id>/`, printable ASCII only, with no
/// `..` segment, backslash or empty segment (so it cannot leave the lab or
/// the origin).
pub(crate) fn is_safe_next(next: &str, id: &str) -> bool {
    let Some(rest) = next
        .strip_prefix("/labs/")
        .and_then(|r| r.strip_prefix(id))
        .and_then(|r| r.strip_prefix('/'))
    else {
        return false;
    };
    let path = rest.split(['?', '#']).next().unwrap_or("");
    next.bytes().all(|b| b.is_ascii_graphic())
        && !next.contains('\\')
        && !path.starts_with('/')
        && !path.contains("//")
        && !path
            .split('/')
            .any(|segment| segment == ".." || segment == "." || is_encoded_dots(segment))
}

/// `%2e%2e`, `.%2E` and friends.
fn is_encoded_dots(segment: &str) -> bool {
    segment.contains('%') && {
        let lower = segment.to_ascii_lowercase().replace("%2e", ".");
        lower == "." || lower == ".."
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lab_paths() {
        assert_eq!(
            parse("/labs/abc-1/lab/tree"),
            Target::Lab {
                id: "abc-1",
                rest: "/lab/tree"
            }
        );
        assert_eq!(
            parse("/labs/abc/"),
            Target::Lab {
                id: "abc",
                rest: "/"
            }
        );
        assert_eq!(parse("/labs/abc"), Target::LabRoot("abc"));
        assert_eq!(parse("/labs/"), Target::Invalid);
        assert_eq!(parse("/labs//x"), Target::Invalid);
        assert_eq!(parse("/labs/ABC/"), Target::Invalid);
        assert_eq!(parse("/labs/a_b/"), Target::Invalid);
        assert_eq!(parse("/labs/%61/"), Target::Invalid);
        assert_eq!(parse("/"), Target::Invalid);
        assert_eq!(parse("/other/abc/"), Target::Invalid);
        let long = "a".repeat(65);
        assert_eq!(parse(&format!("/labs/{long}/")), Target::Invalid);
        let max = "a".repeat(64);
        assert!(matches!(
            parse(&format!("/labs/{max}/")),
            Target::Lab { .. }
        ));
    }

    #[test]
    fn decodes_query_parameters() {
        let q = "ticket=abc&next=%2Flabs%2Fx%2Flab%3Fa%3D1+2&empty";
        assert_eq!(query_param(q, "ticket").as_deref(), Some("abc"));
        assert_eq!(query_param(q, "next").as_deref(), Some("/labs/x/lab?a=1 2"));
        assert_eq!(query_param(q, "empty").as_deref(), Some(""));
        assert_eq!(query_param(q, "missing"), None);
        assert_eq!(query_param("a=%", "a").as_deref(), Some("%"));
        assert_eq!(query_param("a=%4", "a").as_deref(), Some("%4"));
        assert_eq!(query_param("a=%zz", "a").as_deref(), Some("%zz"));
        assert_eq!(query_param("a=%ff", "a"), None);
    }

    #[test]
    fn only_paths_inside_the_lab_are_safe_redirects() {
        assert!(is_safe_next("/labs/x/", "x"));
        assert!(is_safe_next("/labs/x/lab/tree/a.ipynb?reset#top", "x"));
        for bad in [
            "/labs/x",
            "/labs/xy/",
            "/labs/y/",
            "https://evil.example/",
            "//evil.example/labs/x/",
            "/labs/x//evil.example",
            "/labs/x/../y/",
            "/labs/x/%2e%2e/y/",
            "/labs/x/a\\b",
            "/labs/x/a b",
            "/labs/x/\r\nSet-Cookie:a=b",
            "/labs/x/é",
            "",
        ] {
            assert!(!is_safe_next(bad, "x"), "{bad:?} accepted");
        }
    }
}
