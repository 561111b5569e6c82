//! The proxy's public URL, with or without a `{lab}` placeholder, and the
//! checks it allows: which host serves which lab, and which `Origin` may
//! use it.

use std::fmt;

use http::HeaderMap;
use http::header::{HOST, ORIGIN};

use crate::path::is_lab_id;

const PLACEHOLDER: &str = "{lab}";

/// The proxy's URL as browsers reach it: `http://labs.example.org:8081`
/// (one origin shared by every lab) or `https://{lab}.labs.example.org`
/// (an origin per lab; `{lab}` stands for the lab's id and must sit in the
/// host name). Scheme, host and port only: labs live under `/labs/<id>/`.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicUrl {
    https: bool,
    /// Lowercase host before `{lab}`, or the whole host when shared.
    host_prefix: String,
    /// Lowercase host after `{lab}`; `None` for a shared origin.
    host_suffix: Option<String>,
    /// The port when it is not the scheme's default.
    port: Option<u16>,
}

/// Why a public URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid proxy public URL {url:?}: {reason}")]
pub struct PublicUrlError {
    url: String,
    reason: &'static str,
}

impl PublicUrl {
    /// Parses `http[s]://host[:port][/]`, where the host may hold `{lab}` once.
    pub fn parse(url: &str) -> Result<PublicUrl, PublicUrlError> {
        let fail = |reason| PublicUrlError {
            url: url.to_owned(),
            reason,
        };
        let lower = url.to_ascii_lowercase();
        let (https, rest) = if let Some(rest) = lower.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = lower.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(fail("the scheme must be http:// or https://"));
        };
        let (authority, path) = rest.split_at(rest.find(['/', '?', '#']).unwrap_or(rest.len()));
        if !path.is_empty() && path != "/" {
            return Err(fail(
                "only scheme, host and port are allowed: labs are served under /labs/<id>/",
            ));
        }
        if authority.contains('@') {
            return Err(fail("user names and passwords are not allowed"));
        }
        let (host, port) = split_port(authority).ok_or_else(|| fail("the port is invalid"))?;
        let default_port = if https { 443 } else { 80 };
        let port = port.filter(|&p| p != default_port);
        if host.is_empty() {
            return Err(fail("the host is missing"));
        }
        let (host_prefix, host_suffix) = match host.split_once(PLACEHOLDER) {
            None => (host.to_owned(), None),
            Some((prefix, suffix)) => {
                if suffix.contains(PLACEHOLDER) {
                    return Err(fail("{lab} may appear only once"));
                }
                (prefix.to_owned(), Some(suffix.to_owned()))
            }
        };
        let literal_ok = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        };
        let shared_ip_literal = host_suffix.is_none()
            && host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok());
        let host_ok = shared_ip_literal
            || (literal_ok(&host_prefix) && host_suffix.as_deref().is_none_or(literal_ok));
        if !host_ok {
            return Err(fail(
                "the host may hold only letters, digits, '-', '.' and {lab}",
            ));
        }
        Ok(PublicUrl {
            https,
            host_prefix,
            host_suffix,
            port,
        })
    }

    /// Whether every lab has an origin of its own (`{lab}` in the URL).
    pub fn per_lab(&self) -> bool {
        self.host_suffix.is_some()
    }

    /// Whether browsers reach the proxy over HTTPS.
    pub fn is_https(&self) -> bool {
        self.https
    }

    /// The origin a lab is served on, as browsers write it in `Origin`:
    /// `https://<lab>.labs.example.org`, or the shared origin.
    pub fn origin(&self, lab_id: &str) -> String {
        let scheme = if self.https { "https" } else { "http" };
        let mut origin = format!("{scheme}://{}", self.host_prefix);
        if let Some(suffix) = &self.host_suffix {
            origin.push_str(lab_id);
            origin.push_str(suffix);
        }
        if let Some(port) = self.port {
            origin.push(':');
            origin.push_str(&port.to_string());
        }
        origin
    }

    /// Where the browser opens a lab: `<origin>/labs/<lab-id>/`.
    pub fn lab_url(&self, lab_id: &str) -> String {
        format!("{}/labs/{lab_id}/", self.origin(lab_id))
    }

    /// With an origin per lab: the lab whose host `authority` (a `Host`
    /// value) names, if any. Always `None` for a shared origin.
    pub(crate) fn lab_of_host<'a>(&self, authority: &'a str) -> Option<&'a str> {
        let suffix = self.host_suffix.as_deref()?;
        let (host, port) = split_port(authority)?;
        let default_port = if self.https { 443 } else { 80 };
        if port.filter(|&p| p != default_port) != self.port {
            return None;
        }
        let id = strip_prefix_ignore_case(host, &self.host_prefix)?;
        let id = strip_suffix_ignore_case(id, suffix)?;
        is_lab_id(id).then_some(id)
    }
}

impl fmt::Debug for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicUrl")
            .field(&self.origin(PLACEHOLDER))
            .finish()
    }
}

impl fmt::Display for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.origin(PLACEHOLDER))
    }
}

/// `host[:port]` → (host, port); `None` when the port is not a number.
/// IPv6 literals keep their brackets.
fn split_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let colon = match authority.rfind(':') {
        Some(colon) if !authority[colon..].contains(']') => colon,
        _ => return Some((authority, None)),
    };
    let port = &authority[colon + 1..];
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((&authority[..colon], Some(port.parse().ok()?)))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &text[prefix.len()..])
}

fn strip_suffix_ignore_case<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let start = text.len().checked_sub(suffix.len())?;
    let tail = text.get(start..)?;
    tail.eq_ignore_ascii_case(suffix).then(|| &text[..start])
}

/// The single `Host` of a request: the `Host` header, which must agree with
/// the authority of an absolute-form request target. `None` when missing,
/// repeated, not text or contradicted.
pub(crate) fn request_host<'a>(uri: &'a http::Uri, headers: &'a HeaderMap) -> Option<&'a str> {
    let mut hosts = headers.get_all(HOST).iter();
    let host = hosts.next()?.to_str().ok()?;
    if hosts.next().is_some() {
        return None;
    }
    match uri.authority() {
        Some(authority) if !authority.as_str().eq_ignore_ascii_case(host) => None,
        _ => Some(host),
    }
}

/// What the request's `Origin` says about where it comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OriginCheck {
    /// No `Origin` header.
    Absent,
    /// The lab's own origin.
    Own,
    /// Another origin, `null`, several, or unreadable.
    Foreign,
}

/// Compares the request's `Origin` with the lab's: the configured public
/// origin of the lab, or, with no public URL configured, the request's own
/// `Host` (either scheme).
pub(crate) fn check_origin(
    public: Option<&PublicUrl>,
    lab_id: &str,
    host: Option<&str>,
    headers: &HeaderMap,
) -> OriginCheck {
    let mut origins = headers.get_all(ORIGIN).iter();
    let Some(origin) = origins.next() else {
        return OriginCheck::Absent;
    };
    if origins.next().is_some() {
        return OriginCheck::Foreign;
    }
    let Ok(origin) = origin.to_str() else {
        return OriginCheck::Foreign;
    };
    let own = match public {
        Some(public) => origin.eq_ignore_ascii_case(&public.origin(lab_id)),
        None => {
            let authority = strip_prefix_ignore_case(origin, "https://")
                .or_else(|| strip_prefix_ignore_case(origin, "http://"));
            matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
    };
    if own {
        OriginCheck::Own
    } else {
        OriginCheck::Foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn parses_shared_and_per_lab_urls() {
        let shared = PublicUrl::parse("https://Labs.Example.org/").unwrap();
        assert!(!shared.per_lab());
        assert_eq!(shared.origin("x"), "https://labs.example.org");
        assert_eq!(shared.lab_url("x"), "https://labs.example.org/labs/x/");

        let per_lab = PublicUrl::parse("http://{lab}.localhost:8081").unwrap();
        assert!(per_lab.per_lab());
        assert_eq!(per_lab.origin("lab-1"), "http://lab-1.localhost:8081");
        assert_eq!(format!("{per_lab}"), "http://{lab}.localhost:8081");

        let default_port = PublicUrl::parse("https://{lab}.labs.example.org:443").unwrap();
        assert_eq!(default_port.origin("a"), "https://a.labs.example.org");
        let ip = PublicUrl::parse("http://[::1]:8081").unwrap();
        assert_eq!(ip.origin("a"), "http://[::1]:8081");

        for bad in [
            "ftp://x.org",
            "x.org",
            "http://x.org/labs",
            "http://u:p@x.org",
            "http://x.org:99999",
            "http://x.org:",
            "http://{lab}.{lab}.org",
            "http://",
            "http://x_y.org",
            "http://{lab}.[::1]",
            "http://[evil",
            "http://[::1",
        ] {
            assert!(PublicUrl::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn finds_the_lab_a_host_names() {
        let url = PublicUrl::parse("http://{lab}.localhost:8081").unwrap();
        assert_eq!(url.lab_of_host("lab-1.localhost:8081"), Some("lab-1"));
        // Browsers send host names in lowercase; lab ids are lowercase.
        assert_eq!(url.lab_of_host("lab-1.LOCALHOST:8081"), Some("lab-1"));
        assert_eq!(url.lab_of_host("LAB-1.localhost:8081"), None);
        assert_eq!(url.lab_of_host("lab-1.localhost"), None, "port differs");
        assert_eq!(url.lab_of_host("lab-1.localhost:8082"), None);
        assert_eq!(url.lab_of_host("localhost:8081"), None);
        assert_eq!(url.lab_of_host(".localhost:8081"), None);
        assert_eq!(url.lab_of_host("a.b.localhost:8081"), None);
        assert_eq!(url.lab_of_host("lab-1.localhost.:8081"), None);
        assert_eq!(url.lab_of_host("127.0.0.1:8081"), None);

        let https = PublicUrl::parse("https://{lab}.labs.example.org").unwrap();
        assert_eq!(https.lab_of_host("x.labs.example.org"), Some("x"));
        assert_eq!(https.lab_of_host("x.labs.example.org:443"), Some("x"));
        assert_eq!(https.lab_of_host("x.labs.example.org:8443"), None);

        let shared = PublicUrl::parse("http://localhost:8081").unwrap();
        assert_eq!(shared.lab_of_host("localhost:8081"), None);
    }

    fn origin_headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(ORIGIN, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn compares_origins() {
        let url = PublicUrl::parse("http://{lab}.localhost:8081").unwrap();
        let check = |values: &[&'static str]| {
            check_origin(
                Some(&url),
                "a",
                Some("a.localhost:8081"),
                &origin_headers(values),
            )
        };
        assert_eq!(check(&[]), OriginCheck::Absent);
        assert_eq!(check(&["http://a.localhost:8081"]), OriginCheck::Own);
        assert_eq!(check(&["http://b.localhost:8081"]), OriginCheck::Foreign);
        assert_eq!(check(&["https://a.localhost:8081"]), OriginCheck::Foreign);
        assert_eq!(check(&["null"]), OriginCheck::Foreign);
        assert_eq!(
            check(&["http://a.localhost:8081", "http://a.localhost:8081"]),
            OriginCheck::Foreign
        );

        // Without a configured URL the Host is the reference.
        let check =
            |host, values: &[&'static str]| check_origin(None, "a", host, &origin_headers(values));
        assert_eq!(
            check(Some("127.0.0.1:9"), &["http://127.0.0.1:9"]),
            OriginCheck::Own
        );
        assert_eq!(
            check(Some("127.0.0.1:9"), &["https://127.0.0.1:9"]),
            OriginCheck::Own
        );
        assert_eq!(
            check(Some("127.0.0.1:9"), &["http://127.0.0.1:10"]),
            OriginCheck::Foreign
        );
        assert_eq!(check(None, &["http://127.0.0.1:9"]), OriginCheck::Foreign);
    }

    #[test]
    fn reads_a_single_consistent_host() {
        let mut headers = HeaderMap::new();
        let uri: http::Uri = "/labs/a/".parse().unwrap();
        assert_eq!(request_host(&uri, &headers), None);
        headers.insert(HOST, HeaderValue::from_static("a.localhost:1"));
        assert_eq!(request_host(&uri, &headers), Some("a.localhost:1"));
        let absolute: http::Uri = "http://b.localhost:1/labs/a/".parse().unwrap();
        assert_eq!(request_host(&absolute, &headers), None);
        let same: http::Uri = "http://A.localhost:1/labs/a/".parse().unwrap();
        assert_eq!(request_host(&same, &headers), Some("a.localhost:1"));
        headers.append(HOST, HeaderValue::from_static("a.localhost:1"));
        assert_eq!(request_host(&uri, &headers), None);
    }
}
