//! ID tokens: a compact JWS read and its signature checked against a
//! provider's JSON Web Key Set, with ring (already the platform's TLS
//! crypto). Only asymmetric algorithms a provider signs with are taken:
//! RS256 and ES256; `none` and the HMAC ones (whose key would be the
//! client secret) are refused.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde::Deserialize;

/// A provider's published keys (`jwks_uri`).
#[derive(Debug, Deserialize)]
pub struct JwkSet {
    #[serde(default)]
    keys: Vec<Jwk>,
}

#[derive(Debug, Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    // RSA
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    // EC
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// A verification key, decoded.
#[derive(Debug, Clone)]
enum Key {
    Rsa { n: Vec<u8>, e: Vec<u8> },
    P256 { point: Vec<u8> },
}

impl Key {
    fn alg(&self) -> &'static str {
        match self {
            Key::Rsa { .. } => "RS256",
            Key::P256 { .. } => "ES256",
        }
    }

    fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Key::Rsa { n, e } => RsaPublicKeyComponents { n, e }
                .verify(&signature::RSA_PKCS1_2048_8192_SHA256, message, sig)
                .is_ok(),
            Key::P256 { point } => {
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }
}

/// The keys of a set this module can use, by `kid` (`""` for none).
#[derive(Debug, Default)]
pub struct KeySet {
    keys: Vec<(String, Key)>,
}

fn b64(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

impl KeySet {
    pub fn from_jwks(set: &JwkSet) -> KeySet {
        let keys = set
            .keys
            .iter()
            .filter(|k| k.use_.as_deref().is_none_or(|u| u == "sig"))
            .filter_map(|k| {
                let key = match k.kty.as_str() {
                    "RSA" => {
                        let mut n = b64(k.n.as_deref()?)?;
                        // A modulus with leading zeros is the same number.
                        let first = n.iter().position(|b| *b != 0).unwrap_or(n.len());
                        n.drain(..first);
                        Key::Rsa {
                            n,
                            e: b64(k.e.as_deref()?)?,
                        }
                    }
                    "EC" if k.crv.as_deref() == Some("P-256") => {
                        let (x, y) = (b64(k.x.as_deref()?)?, b64(k.y.as_deref()?)?);
                        if x.len() != 32 || y.len() != 32 {
                            return None;
                        }
                        let mut point = vec![0x04];
                        point.extend(x);
                        point.extend(y);
                        Key::P256 { point }
                    }
                    _ => return None,
                };
                if k.alg.as_deref().is_some_and(|a| a != key.alg()) {
                    return None;
                }
                Some((k.kid.clone().unwrap_or_default(), key))
            })
            .collect();
        KeySet { keys }
    }

    /// Whether a key of this id is known (any key, for a token naming none).
    pub fn has(&self, kid: Option<&str>) -> bool {
        match kid {
            Some(kid) => self.keys.iter().any(|(k, _)| k == kid),
            None => !self.keys.is_empty(),
        }
    }
}

#[derive(Debug, Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

/// A compact JWS, split and its header read; its claims are trusted only
/// through [`Token::verified`].
pub struct Token {
    header: Header,
    signed: String,
    payload: Vec<u8>,
    signature: Vec<u8>,
}

impl Token {
    pub fn parse(token: &str) -> Result<Token, String> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err("it is not a signed JWT of three parts".to_owned());
        };
        let header_bytes = b64(h).ok_or("its header is not base64url")?;
        let header: Header = serde_json::from_slice(&header_bytes)
            .map_err(|_| "its header is not a JOSE header".to_owned())?;
        if header.crit.is_some() {
            return Err("its header has critical extensions".to_owned());
        }
        Ok(Token {
            header,
            signed: format!("{h}.{p}"),
            payload: b64(p).ok_or("its payload is not base64url")?,
            signature: b64(s).ok_or("its signature is not base64url")?,
        })
    }

    pub fn kid(&self) -> Option<&str> {
        self.header.kid.as_deref()
    }

    /// The claims, once a key of the set of the header's algorithm (and
    /// `kid`, when it names one) verifies the signature.
    pub fn verified(&self, keys: &KeySet) -> Result<Claims, String> {
        let alg = self.header.alg.as_str();
        if !matches!(alg, "RS256" | "ES256") {
            return Err(format!(
                "it is signed with {alg:?}; RS256 or ES256 is needed"
            ));
        }
        let candidates: Vec<&Key> = keys
            .keys
            .iter()
            .filter(|(kid, key)| {
                key.alg() == alg && self.header.kid.as_deref().is_none_or(|k| k == kid)
            })
            .map(|(_, key)| key)
            .collect();
        if candidates.is_empty() {
            return Err("the provider publishes no key it names".to_owned());
        }
        if !candidates
            .iter()
            .any(|k| k.verify(self.signed.as_bytes(), &self.signature))
        {
            return Err("its signature does not verify".to_owned());
        }
        serde_json::from_slice(&self.payload).map_err(|e| format!("its claims cannot be read: {e}"))
    }
}

/// One audience or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

fn audiences<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    Ok(match Audience::deserialize(d)? {
        Audience::One(a) => vec![a],
        Audience::Many(v) => v,
    })
}

/// The claims of an ID token this platform reads.
#[derive(Debug, Clone, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    #[serde(deserialize_with = "audiences")]
    pub aud: Vec<String>,
    #[serde(default)]
    pub azp: Option<String>,
    pub exp: i64,
    #[serde(default)]
    pub iat: Option<i64>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    email_verified: Option<serde_json::Value>,
    #[serde(default)]
    pub preferred_username: Option<String>,
    /// Every other claim (a roles claim among them).
    #[serde(flatten)]
    other: HashMap<String, serde_json::Value>,
}

impl Claims {
    /// `email_verified` as a boolean; some providers send `"true"`.
    pub fn email_verified(&self) -> bool {
        match &self.email_verified {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        }
    }

    /// A claim's string values: a string, or the strings of a list.
    pub fn strings(&self, claim: &str) -> Vec<String> {
        match self.other.get(claim) {
            Some(serde_json::Value::String(s)) => vec![s.clone()],
            Some(serde_json::Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_without_an_asymmetric_signature_are_refused() {
        let enc = |s: &str| URL_SAFE_NO_PAD.encode(s);
        let claims = enc(r#"{"iss":"i","sub":"s","aud":"a","exp":1}"#);
        let keys = KeySet::default();
        for alg in ["none", "HS256"] {
            let t = format!("{}.{claims}.", enc(&format!(r#"{{"alg":"{alg}"}}"#)));
            let err = Token::parse(&t).unwrap().verified(&keys).unwrap_err();
            assert!(err.contains("RS256"), "{err}");
        }
        assert!(Token::parse("a.b").is_err());
        assert!(Token::parse("a.b.c.d").is_err());
        let t = format!("{}.{claims}.AAAA", enc(r#"{"alg":"RS256","kid":"k"}"#));
        assert!(Token::parse(&t).unwrap().verified(&keys).is_err());
    }

    #[test]
    fn claims_read_one_audience_or_many_and_lenient_booleans() {
        let c: Claims = serde_json::from_str(
            r#"{"iss":"i","sub":"s","aud":["a","b"],"exp":1,"email_verified":"true","groups":["x","y"],"role":"z"}"#,
        )
        .unwrap();
        assert_eq!(c.aud, ["a", "b"]);
        assert!(c.email_verified());
        assert_eq!(c.strings("groups"), ["x", "y"]);
        assert_eq!(c.strings("role"), ["z"]);
        assert!(c.strings("none").is_empty());
        let c: Claims = serde_json::from_str(r#"{"iss":"i","sub":"s","aud":"a","exp":1}"#).unwrap();
        assert_eq!(c.aud, ["a"]);
        assert!(!c.email_verified());
    }
}
