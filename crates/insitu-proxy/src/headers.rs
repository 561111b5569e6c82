//! Header surgery: hop-by-hop headers (RFC 9110 §7.6.1), the proxy's own
//! cookies and the platform's bearer tokens.

use bytes::Bytes;
use http::header::{
    AUTHORIZATION, CONNECTION, COOKIE, EXPECT, HeaderName, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION,
    SET_COOKIE, TE, TRANSFER_ENCODING, UPGRADE,
};
use http::{HeaderMap, HeaderValue};

/// Prefix of every cookie the platform or the proxy sets; none reaches a lab.
const INSITU_COOKIE_PREFIX: &[u8] = b"insitu_";
/// The prefixes browsers give meaning to (the platform's cookies are
/// `__Host-insitu_…` over https); browsers read them regardless of case.
const BROWSER_COOKIE_PREFIXES: [&[u8]; 2] = [b"__Host-", b"__Secure-"];
/// Prefix of the proxy's per-lab session cookie.
pub(crate) const LAB_COOKIE_PREFIX: &str = "insitu_lab_";
/// Prefix of platform API tokens (`Authorization: Bearer insitu_…`).
const PLATFORM_TOKEN_PREFIX: &[u8] = b"insitu_";

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Name of the session cookie of lab `id`: `insitu_lab_<id with - as _>`.
pub(crate) fn lab_cookie_name(id: &str) -> String {
    let mut name = String::with_capacity(LAB_COOKIE_PREFIX.len() + id.len());
    name.push_str(LAB_COOKIE_PREFIX);
    name.extend(id.chars().map(|c| if c == '-' { '_' } else { c }));
    name
}

fn is_lab_cookie_name(name: &[u8], id: &str) -> bool {
    name.strip_prefix(LAB_COOKIE_PREFIX.as_bytes())
        .is_some_and(|rest| {
            rest.len() == id.len()
                && rest
                    .iter()
                    .zip(id.bytes())
                    .all(|(&n, i)| n == if i == b'-' { b'_' } else { i })
        })
}

/// Trimmed, non-empty `name=value` pairs of every `Cookie` header.
fn cookie_pairs(headers: &HeaderMap) -> impl Iterator<Item = &[u8]> {
    headers.get_all(COOKIE).iter().flat_map(|value| {
        value
            .as_bytes()
            .split(|&b| b == b';')
            .map(<[u8]>::trim_ascii)
            .filter(|pair| !pair.is_empty())
    })
}

fn cookie_name(pair: &[u8]) -> &[u8] {
    match pair.iter().position(|&b| b == b'=') {
        Some(eq) => pair[..eq].trim_ascii(),
        None => pair,
    }
}

/// `(name, value)` of every cookie.
fn cookies(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    cookie_pairs(headers).map(|pair| match pair.iter().position(|&b| b == b'=') {
        Some(eq) => (pair[..eq].trim_ascii(), pair[eq + 1..].trim_ascii()),
        None => (pair, &[][..]),
    })
}

/// Values of lab `id`'s session cookie, in order (there may be several).
pub(crate) fn lab_cookie_values<'a>(
    headers: &'a HeaderMap,
    id: &'a str,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    cookies(headers)
        .filter(move |(name, _)| is_lab_cookie_name(name, id))
        .map(|(_, value)| value)
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    })
}

/// Whether the request asks to switch to WebSocket.
pub(crate) fn is_websocket_upgrade(headers: &HeaderMap) -> bool {
    has_token(headers, &UPGRADE, "websocket") && has_token(headers, &CONNECTION, "upgrade")
}

/// Removes hop-by-hop headers: those named in `Connection`, the ones RFC 9110
/// §7.6.1 lists (`Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`,
/// `Upgrade`) and the proxy credentials meant for this hop
/// (`Proxy-Authorization`, `Proxy-Authenticate`). With `keep_upgrade` (WebSocket handshakes) `Upgrade` is kept and
/// `Connection` becomes `upgrade`.
pub(crate) fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    match headers.get_all(CONNECTION).iter().count() {
        0 => {}
        1 => {
            if let Some(value) = headers.remove(CONNECTION) {
                remove_listed(headers, &value, keep_upgrade);
            }
        }
        _ => {
            let values: Vec<HeaderValue> = headers.get_all(CONNECTION).iter().cloned().collect();
            headers.remove(CONNECTION);
            for value in &values {
                remove_listed(headers, value, keep_upgrade);
            }
        }
    }
    for name in [
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
        &TE,
        &TRANSFER_ENCODING,
        &PROXY_AUTHENTICATE,
        &PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(UPGRADE);
    }
}

fn remove_listed(headers: &mut HeaderMap, connection: &HeaderValue, keep_upgrade: bool) {
    let Ok(list) = connection.to_str() else {
        return;
    };
    for token in list.split(',').map(str::trim) {
        if token.is_empty() || (keep_upgrade && token.eq_ignore_ascii_case("upgrade")) {
            continue;
        }
        // Unknown or invalid names are simply not found.
        headers.remove(token);
    }
}

/// Prepares request headers for the lab: drops `Expect` (the proxy answers
/// `100 Continue` itself), every `insitu_*` cookie and platform bearer tokens.
pub(crate) fn strip_platform_credentials(headers: &mut HeaderMap) {
    headers.remove(EXPECT);
    strip_insitu_cookies(headers);
    let platform_token = headers.get_all(AUTHORIZATION).iter().any(|value| {
        let value = value.as_bytes();
        value.len() > 7
            && value[..7].eq_ignore_ascii_case(b"bearer ")
            && value[7..]
                .trim_ascii_start()
                .starts_with(PLATFORM_TOKEN_PREFIX)
    });
    if platform_token {
        headers.remove(AUTHORIZATION);
    }
}

/// Whether a cookie's name is one of ours, with or without a browser's
/// prefix: over https the platform's session is `__Host-insitu_session`,
/// which a browser also sends to a lab proxy on the same host name at
/// another port (cookies know no ports).
fn is_insitu_cookie(name: &[u8]) -> bool {
    let name = BROWSER_COOKIE_PREFIXES
        .iter()
        .find_map(|prefix| strip_prefix_ignore_case(name, prefix))
        .unwrap_or(name);
    strip_prefix_ignore_case(name, INSITU_COOKIE_PREFIX).is_some()
}

fn strip_prefix_ignore_case<'a>(text: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn strip_insitu_cookies(headers: &mut HeaderMap) {
    if !cookies(headers).any(|(name, _)| is_insitu_cookie(name)) {
        return;
    }
    let mut kept = Vec::new();
    for pair in cookie_pairs(headers).filter(|pair| !is_insitu_cookie(cookie_name(pair))) {
        if !kept.is_empty() {
            kept.extend_from_slice(b"; ");
        }
        kept.extend_from_slice(pair);
    }
    headers.remove(COOKIE);
    if kept.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_maybe_shared(Bytes::from(kept)) {
        headers.insert(COOKIE, value);
    }
}

/// Drops `Set-Cookie` headers by which a lab would set an `insitu_*` cookie
/// (all labs share the proxy's origin).
pub(crate) fn strip_insitu_set_cookies(headers: &mut HeaderMap) {
    let sets_insitu = |value: &HeaderValue| is_insitu_cookie(value.as_bytes().trim_ascii_start());
    if !headers.get_all(SET_COOKIE).iter().any(sets_insitu) {
        return;
    }
    let kept: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| !sets_insitu(v))
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for value in kept {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn names_the_lab_cookie_after_the_lab() {
        assert_eq!(lab_cookie_name("a-b-1"), "insitu_lab_a_b_1");
        assert!(is_lab_cookie_name(b"insitu_lab_a_b_1", "a-b-1"));
        assert!(!is_lab_cookie_name(b"insitu_lab_a_b_12", "a-b-1"));
        assert!(!is_lab_cookie_name(b"insitu_lab_a-b-1", "a-b-1"));
    }

    #[test]
    fn finds_every_value_of_the_lab_cookie() {
        let headers = map(&[
            ("cookie", "a=1; insitu_lab_x=first"),
            ("cookie", "insitu_lab_x=second;insitu_lab_y=other"),
        ]);
        let values: Vec<&[u8]> = lab_cookie_values(&headers, "x").collect();
        assert_eq!(values, [&b"first"[..], &b"second"[..]]);
    }

    #[test]
    fn strips_hop_by_hop_headers() {
        let mut headers = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("upgrade", "h2c"),
            ("x-other", "kept"),
        ]);
        strip_hop_by_hop(&mut headers, false);
        let names: Vec<&str> = headers.keys().map(HeaderName::as_str).collect();
        assert_eq!(names, ["x-other"]);

        let mut headers = map(&[
            ("connection", "Upgrade"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "k"),
        ]);
        assert!(is_websocket_upgrade(&headers));
        strip_hop_by_hop(&mut headers, true);
        assert_eq!(headers["connection"], "upgrade");
        assert_eq!(headers["upgrade"], "websocket");
        assert_eq!(headers["sec-websocket-key"], "k");
    }

    #[test]
    fn strips_platform_credentials_only() {
        let mut headers = map(&[
            ("cookie", "insitu_session=s; theme=dark; INSITU_LAB_X=1"),
            ("cookie", "_xsrf=abc; insitu_lab_x=2"),
            ("authorization", "Bearer insitu_abc"),
            ("expect", "100-continue"),
        ]);
        strip_platform_credentials(&mut headers);
        assert_eq!(headers["cookie"], "theme=dark; _xsrf=abc");

        // The platform's cookies over https, sent along to a proxy on the
        // same host name.
        let mut headers = map(&[(
            "cookie",
            "__Host-insitu_session=s; __host-INSITU_login_csrf=c; \
             __Secure-insitu_x=1; __Host-theme=dark; insitu=kept",
        )]);
        strip_platform_credentials(&mut headers);
        assert_eq!(headers["cookie"], "__Host-theme=dark; insitu=kept");
        assert!(!headers.contains_key("authorization"));
        assert!(!headers.contains_key("expect"));

        let mut headers = map(&[
            ("cookie", "insitu_lab_x=2"),
            ("authorization", "Bearer jupyter-token"),
        ]);
        strip_platform_credentials(&mut headers);
        assert!(!headers.contains_key("cookie"));
        assert_eq!(headers["authorization"], "Bearer jupyter-token");
    }

    #[test]
    fn drops_insitu_set_cookies_from_labs() {
        let mut headers = map(&[
            ("set-cookie", "insitu_lab_y=x; Path=/labs/y/"),
            ("set-cookie", "_xsrf=1; Path=/"),
            (
                "set-cookie",
                "__Host-insitu_session=planted; Path=/; Secure",
            ),
            ("set-cookie", " __secure-insitu_lab_y=x; Secure"),
        ]);
        strip_insitu_set_cookies(&mut headers);
        let values: Vec<_> = headers.get_all("set-cookie").iter().collect();
        assert_eq!(values, ["_xsrf=1; Path=/"]);
    }
}
