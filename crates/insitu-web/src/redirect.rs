//! Where a page may send the browser after login or a form: only a path on
//! the platform's own origin. Browsers forgive a lot in a `Location` (they
//! drop tabs and newlines, read `\` as `/`, and treat `//host` as another
//! site), so a target is refused unless it is printable ASCII without
//! spaces, starts with exactly one `/`, holds no `\`, and still does so
//! (and holds no control character) once percent-decoded.

/// `next` when it is a safe path on this origin, else `fallback`.
pub fn safe_target(next: Option<&str>, fallback: &str) -> String {
    match next {
        Some(n) if is_local_path(n) => n.to_owned(),
        _ => fallback.to_owned(),
    }
}

fn is_local_path(target: &str) -> bool {
    let raw = target.as_bytes();
    let decoded = percent_decoded(target);
    raw.iter().all(u8::is_ascii_graphic)
        && local_path(raw)
        && local_path(&decoded)
        && !decoded.iter().any(u8::is_ascii_control)
}

/// One leading `/` not followed by `/` or `\`, and no `\` anywhere.
fn local_path(t: &[u8]) -> bool {
    t.first() == Some(&b'/') && !matches!(t.get(1), Some(b'/' | b'\\')) && !t.contains(&b'\\')
}

/// `%XX` sequences decoded (repeatedly, so `%252F` is seen as `/` too).
fn percent_decoded(s: &str) -> Vec<u8> {
    let mut current = s.as_bytes().to_vec();
    for _ in 0..4 {
        let next: Vec<u8> = percent_encoding::percent_decode(&current).collect();
        if next == current {
            break;
        }
        current = next;
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paths_on_this_origin_are_followed() {
        for ok in [
            "/datalabs",
            "/volumes?q=fits&mission=Gaia",
            "/my-labs/0a1b2c3d4e5f",
            "/datalabs/ds9#launch",
            "/volumes/deep%20fields",
        ] {
            assert_eq!(safe_target(Some(ok), "/x"), ok, "{ok:?}");
        }
        for hostile in [
            "//evil.example",
            "/\t/evil.example",
            "/\n/evil.example",
            "/\r\n/evil.example",
            "\t//evil.example",
            " /evil",
            "/ /evil",
            "/\\evil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "https://evil.example",
            "http:evil.example",
            "javascript:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "evil.example",
            "",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "%2F%2Fevil.example",
            "/%5Cevil.example",
            "/%09/evil.example",
            "/%252F/evil.example",
            "/%0d%0aSet-Cookie:x=1",
            "/\u{3000}/evil.example",
            "/\u{0}",
            "/x\u{7f}",
        ] {
            assert_eq!(
                safe_target(Some(hostile), "/fallback"),
                "/fallback",
                "{hostile:?}"
            );
        }
        assert_eq!(safe_target(None, "/fallback"), "/fallback");
    }
}
