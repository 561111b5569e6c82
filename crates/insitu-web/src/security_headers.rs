//! Headers on every response that keep the platform's pages to themselves:
//! a Content-Security-Policy allowing only the platform's own scripts and
//! styles (no inline code: the little JavaScript the pages use is
//! `/static/insitu.js`), forms posting only to the platform or the lab
//! proxy (where *Open* leads), and no framing by any site
//! (`frame-ancestors 'none'`, `X-Frame-Options: DENY`), so no other page,
//! a lab's included, can overlay or frame the platform's buttons.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

/// The policy, with the lab proxy's origin (`{lab}` becoming `*`) as a
/// form target.
pub fn content_security_policy(proxy_url: &str) -> String {
    let proxy = proxy_source(proxy_url).map_or(String::new(), |p| format!(" {p}"));
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'{proxy}; frame-ancestors 'none'; \
         base-uri 'none'"
    )
}

/// `scheme://host[:port]` of the proxy's URL as a CSP source, or `None`
/// when it is not a plain http(s) URL.
fn proxy_source(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if !matches!(scheme, "http" | "https") {
        return None;
    }
    let host = rest.split('/').next()?.replace("{lab}", "*");
    let plain = host
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '*' | '[' | ']'));
    (plain && !host.is_empty()).then(|| format!("{scheme}://{host}"))
}

/// Adds the headers to a response that does not set them itself.
pub async fn add(State(csp): State<HeaderValue>, req: Request, next: Next) -> Response {
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert(csp);
    h.entry(header::X_FRAME_OPTIONS)
        .or_insert(HeaderValue::from_static("DENY"));
    h.entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_may_post_to_the_lab_proxy_and_nothing_else() {
        let csp = content_security_policy("https://{lab}.labs.example.org");
        assert!(
            csp.contains("form-action 'self' https://*.labs.example.org;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        let csp = content_security_policy("http://127.0.0.1:8081");
        assert!(
            csp.contains("form-action 'self' http://127.0.0.1:8081;"),
            "{csp}"
        );
        for odd in [
            "javascript:alert(1)",
            "http://a b",
            "http://x;script-src *",
            "",
        ] {
            assert!(
                content_security_policy(odd).contains("form-action 'self';"),
                "{odd}"
            );
        }
    }
}
