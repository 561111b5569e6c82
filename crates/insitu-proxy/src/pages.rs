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
}

impl ErrorCode {
    /// Every code, in table order.
    pub const ALL: [ErrorCode; 7] = [
        ErrorCode::NotFound,
        ErrorCode::LabAuthRequired,
        ErrorCode::LabTicketInvalid,
        ErrorCode::LabForbidden,
        ErrorCode::LabNotRunning,
        ErrorCode::LabStarting,
        ErrorCode::LabUpstreamUnreachable,
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
        }
    }

    /// The HTTP status the page is served with.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::NotFound | ErrorCode::LabNotRunning => StatusCode::NOT_FOUND,
            ErrorCode::LabAuthRequired | ErrorCode::LabTicketInvalid => StatusCode::UNAUTHORIZED,
            ErrorCode::LabForbidden => StatusCode::FORBIDDEN,
            ErrorCode::LabStarting => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::LabUpstreamUnreachable => StatusCode::BAD_GATEWAY,
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
        }
    }

    fn link_text(self) -> &'static str {
        match self {
            ErrorCode::LabAuthRequired | ErrorCode::LabTicketInvalid => "Open the platform",
            _ => "Back to the platform",
        }
    }
}

/// Rendered pages, indexed by code.
pub(crate) struct Pages {
    bodies: [Bytes; ErrorCode::ALL.len()],
}

impl Pages {
    pub(crate) fn new(platform_url: &str) -> Self {
        let link = escape_html(platform_url);
        Self {
            bodies: ErrorCode::ALL.map(|code| Bytes::from(render(code, &link))),
        }
    }

    /// Body and headers of the page for `code`.
    pub(crate) fn get(&self, code: ErrorCode, headers: &mut HeaderMap) -> Bytes {
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        headers.insert(
            CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; style-src 'unsafe-inline'"),
        );
        if code == ErrorCode::LabStarting {
            headers.insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        // `ALL` lists the variants in declaration order.
        self.bodies[code as usize].clone()
    }
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
                code == ErrorCode::LabStarting
            );
        }
    }
}
