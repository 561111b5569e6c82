//! The proxy's own error pages: small, self-contained HTML, rendered once at
//! start-up, each carrying a stable code.

use bytes::Bytes;
use http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, RETRY_AFTER,
    X_CONTENT_TYPE_OPTIONS,
};
use http::{HeaderMap, HeaderValue, StatusCode};

/// Seconds a client should wait before retrying a starting lab.
const RETRY_AFTER_SECS: &str = "2";

/// The stable codes of the proxy's error pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// 404: the path is not `/labs/<lab-id>/…`, or is reserved by the proxy.
    NotFound,
    /// 401: no valid proxy session cookie for this lab.
    LabAuthRequired,
    /// 401: the ticket is unknown, already used, expired or for another lab.
    LabTicketInvalid,
    /// 403: the session's user may not use this lab.
    LabForbidden,
    /// 404: the lab is stopped or does not exist.
    LabNotRunning,
    /// 503: the lab is starting.
    LabStarting,
    /// 502: the lab's server did not answer.
    LabUpstreamUnreachable,
    /// 421: with an origin per lab, the request's host is not this lab's.
    LabWrongHost,
    /// 403: the request comes from a page of another origin, or is a
    /// WebSocket upgrade without the lab's `Origin`.
    LabOriginForbidden,
    /// 503: the platform's session table could not be read.
    LabSessionsUnavailable,
    /// 503: too many open connections (overall or from this address).
    TooManyConnections,
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 11] = [
        ErrorCode::NotFound,
        ErrorCode::LabAuthRequired,
        ErrorCode::LabTicketInvalid,
        ErrorCode::LabForbidden,
        ErrorCode::LabNotRunning,
        ErrorCode::LabStarting,
        ErrorCode::LabUpstreamUnreachable,
        ErrorCode::LabWrongHost,
        ErrorCode::LabOriginForbidden,
        ErrorCode::LabSessionsUnavailable,
        ErrorCode::TooManyConnections,
    ];

    /// The snake_case code shown on the page.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::LabAuthRequired => "lab_auth_required",
            ErrorCode::LabTicketInvalid => "lab_ticket_invalid",
            ErrorCode::LabForbidden => "lab_forbidden",
            ErrorCode::LabNotRunning => "lab_not_running",
            ErrorCode::LabStarting => "lab_starting",
            ErrorCode::LabUpstreamUnreachable => "lab_upstream_unreachable",
            ErrorCode::LabWrongHost => "lab_wrong_host",
            ErrorCode::LabOriginForbidden => "lab_origin_forbidden",
            ErrorCode::LabSessionsUnavailable => "lab_sessions_unavailable",
            ErrorCode::TooManyConnections => "too_many_connections",
        }
    }

    /// The HTTP status the page is served with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::NotFound | ErrorCode::LabNotRunning => StatusCode::NOT_FOUND,
            ErrorCode::LabAuthRequired | ErrorCode::LabTicketInvalid => StatusCode::UNAUTHORIZED,
            ErrorCode::LabForbidden | ErrorCode::LabOriginForbidden => StatusCode::FORBIDDEN,
            ErrorCode::LabStarting
            | ErrorCode::LabSessionsUnavailable
            | ErrorCode::TooManyConnections => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::LabUpstreamUnreachable => StatusCode::BAD_GATEWAY,
            ErrorCode::LabWrongHost => StatusCode::MISDIRECTED_REQUEST,
        }
    }

    fn title(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "Not found",
            ErrorCode::LabAuthRequired => "Open this lab from the platform",
            ErrorCode::LabTicketInvalid => "This link has expired",
            ErrorCode::LabForbidden => "This lab belongs to someone else",
            ErrorCode::LabNotRunning => "This lab is stopped or does not exist",
            ErrorCode::LabStarting => "This lab is starting",
            ErrorCode::LabUpstreamUnreachable => "This lab is not answering",
            ErrorCode::LabWrongHost => "This lab lives at another address",
            ErrorCode::LabOriginForbidden => "Request from another site refused",
            ErrorCode::LabSessionsUnavailable => "Lab sessions are unavailable",
            ErrorCode::TooManyConnections => "Too many connections",
        }
    }

    fn message(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "There is nothing at this address.",
            ErrorCode::LabAuthRequired => {
                "Your browser has no session for this lab. Open this lab from the platform to continue."
            }
            ErrorCode::LabTicketInvalid => {
                "The sign-in link for this lab was already used, has expired or is for another lab. Open this lab again from the platform."
            }
            ErrorCode::LabForbidden => "You are signed in as a user who may not use this lab.",
            ErrorCode::LabNotRunning => {
                "This lab is stopped or does not exist. You can start it again from the platform."
            }
            ErrorCode::LabStarting => {
                "The lab is still starting. This page reloads by itself in a few seconds."
            }
            ErrorCode::LabUpstreamUnreachable => {
                "The lab is running but its server did not answer. It may still be starting or may have crashed; try again shortly, or restart it from the platform."
            }
            ErrorCode::LabWrongHost => {
                "Every lab is served only at its own address, and this is not it. Open the lab from the platform."
            }
            ErrorCode::LabOriginForbidden => {
                "This request was sent by a page of another site, which may not use this lab."
            }
            ErrorCode::LabSessionsUnavailable => {
                "The platform could not check your session for this lab. Try again in a few seconds."
            }
            ErrorCode::TooManyConnections => {
                "The lab proxy has too many open connections. Try again in a few seconds."
            }
        }
    }

    fn link_text(self) -> &'static str {
        match self {
            ErrorCode::LabAuthRequired | ErrorCode::LabTicketInvalid | ErrorCode::LabWrongHost => {
                "Open the platform"
            }
            _ => "Back to the platform",
        }
    }

    fn retry_after(self) -> Option<&'static str> {
        match self {
            ErrorCode::LabStarting => Some(RETRY_AFTER_SECS),
            ErrorCode::LabSessionsUnavailable | ErrorCode::TooManyConnections => Some("5"),
            _ => None,
        }
    }
}

/// Rendered pages, indexed by code.
pub(crate) struct Pages {
    bodies: [Bytes; ErrorCode::ALL.len()],
    /// The whole `too_many_connections` response, written straight to a
    /// socket the proxy will not serve.
    refusal: Bytes,
}

impl Pages {
    pub(crate) fn new(platform_url: &str) -> Self {
        let link = escape_html(platform_url);
        let bodies = ErrorCode::ALL.map(|code| Bytes::from(render(code, &link)));
        let refusal = raw_response(
            ErrorCode::TooManyConnections,
            &bodies[ErrorCode::TooManyConnections as usize],
        );
        Self { bodies, refusal }
    }

    /// Body and headers of the page for `code`.
    pub(crate) fn get(&self, code: ErrorCode, headers: &mut HeaderMap) -> Bytes {
        for (name, value) in page_headers() {
            headers.insert(name, value);
        }
        if let Some(seconds) = code.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        // `ALL` lists the variants in declaration order.
        self.bodies[code as usize].clone()
    }

    /// `HTTP/1.1 503` with the `too_many_connections` page and `Connection: close`.
    pub(crate) fn refusal(&self) -> &[u8] {
        &self.refusal
    }
}

fn page_headers() -> [(http::HeaderName, HeaderValue); 5] {
    [
        (
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        ),
        (CACHE_CONTROL, HeaderValue::from_static("no-store")),
        (X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        (
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        ),
    ]
}

fn raw_response(code: ErrorCode, body: &[u8]) -> Bytes {
    let status = code.status();
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nconnection: close\r\ncontent-length: {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    );
    for (name, value) in page_headers() {
        head.push_str(name.as_str());
        head.push_str(": ");
        head.push_str(value.to_str().unwrap_or(""));
        head.push_str("\r\n");
    }
    if let Some(seconds) = code.retry_after() {
        head.push_str("retry-after: ");
        head.push_str(seconds);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    Bytes::from(bytes)
}

fn render(code: ErrorCode, link: &str) -> String {
    let refresh = if code == ErrorCode::LabStarting {
        format!(r#"<meta http-equiv="refresh" content="{RETRY_AFTER_SECS}">"#)
    } else {
        String::new()
    };
    format!(
        concat!(
            r#"<!doctype html><html lang="en"><head><meta charset="utf-8">"#,
            r#"<meta name="viewport" content="width=device-width,initial-scale=1">{refresh}"#,
            "<title>{title}</title><style>",
            "body{{font-family:system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}}",
            "code{{color:#666}}</style></head><body><h1>{title}</h1><p>{message}</p>",
            r#"<p><a href="{link}">{link_text}</a></p><p><small>Error code: <code>{code}</code></small></p>"#,
            "</body></html>\n"
        ),
        refresh = refresh,
        title = code.title(),
        message = code.message(),
        link = link,
        link_text = code.link_text(),
        code = code.as_str(),
    )
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_their_code_and_an_escaped_platform_link() {
        let pages = Pages::new("https://insitu.example/?a=1&b=\"2\"");
        for code in ErrorCode::ALL {
            let mut headers = HeaderMap::new();
            let body = pages.get(code, &mut headers);
            let body = std::str::from_utf8(&body).unwrap();
            assert!(body.contains(code.as_str()));
            assert!(body.contains("https://insitu.example/?a=1&amp;b=&quot;2&quot;"));
            assert_eq!(
                headers.contains_key(RETRY_AFTER),
                code.retry_after().is_some()
            );
        }
    }

    #[test]
    fn codes_are_listed_in_declaration_order_and_unique() {
        for (i, code) in ErrorCode::ALL.iter().enumerate() {
            assert_eq!(*code as usize, i);
        }
        let names: std::collections::HashSet<_> =
            ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }

    #[test]
    fn the_refusal_is_a_complete_response() {
        let pages = Pages::new("/");
        let text = std::str::from_utf8(pages.refusal()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"));
        assert!(head.contains("\r\nconnection: close\r\n"));
        assert!(head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())));
        assert!(body.contains("<code>too_many_connections</code>"));
    }
}
