//! Sign-in through an identity provider: JWT bearer tokens (RS256, ES256, EdDSA) verified
//! (`jsonwebtoken`) against the provider's key set (JWKS), fetched from its URL and cached.
//! A token naming a key the cache lacks fetches the set again (at most once per
//! `JWKS_REFETCH_MIN_SECONDS`), so the provider can rotate its keys without a restart.
//! Time claims are checked against the server's `Clock`, not the system's.

use std::collections::BTreeMap;

use bytes::Bytes;
use ferry_model::Timestamp;
use http_body_util::{BodyExt as _, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};

use crate::auth::USER_NAME_BYTES_MAX;

/// Seconds a fetched key set is trusted before it is fetched again.
pub const JWKS_REFRESH_SECONDS: i64 = 600;
/// The least time between two fetches of the key set, in seconds: tokens naming unknown keys
/// cannot make the server fetch more often than this.
pub const JWKS_REFETCH_MIN_SECONDS: i64 = 10;
/// The largest key set read, in bytes.
pub const JWKS_BYTES_MAX: usize = 1024 * 1024;
/// How long a fetch of the key set may take, in milliseconds.
pub const JWKS_FETCH_TIMEOUT_MS: u64 = 10_000;
/// The largest identity token accepted, in bytes.
pub const IDENTITY_TOKEN_BYTES_MAX: usize = 16 * 1024;
/// Seconds of clock difference allowed between the provider and the server for `exp`/`nbf`.
pub const IDENTITY_CLOCK_LEEWAY_SECONDS: i64 = 60;

/// An identity provider the server trusts for sign-in.
#[derive(Clone, Debug)]
pub struct IdentityProvider {
    /// Where the provider publishes its key set (`https://`, or `http://` on loopback only).
    pub jwks_url: String,
    /// The `iss` every token must carry.
    pub issuer: String,
    /// An `aud` every token must carry.
    pub audience: String,
    /// The claim that names the user (`sub` unless set).
    pub user_claim: String,
    /// The claim that lists the user's roles (`roles` unless set): an array of names, or one
    /// string of names separated by spaces or commas. Names that are not roles of the model
    /// are ignored.
    pub roles_claim: String,
    /// Certificate authorities (PEM) trusted for the key set's URL beside the system's.
    pub authorities: Option<Vec<u8>>,
}

impl IdentityProvider {
    /// A provider with the usual claims: `sub` names the user, `roles` lists the roles.
    pub fn new(jwks_url: &str, issuer: &str, audience: &str) -> IdentityProvider {
        IdentityProvider {
            jwks_url: jwks_url.to_owned(),
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            user_claim: "sub".to_owned(),
            roles_claim: "roles".to_owned(),
            authorities: None,
        }
    }
}

/// Why an identity token was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TokenRefusal {
    #[error("the identity token is not a signed JWT: {0}")]
    Malformed(String),
    #[error("the identity token is signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the identity token's signature does not verify")]
    BadSignature,
    #[error("the identity token has expired: sign in to the provider again")]
    Expired,
    #[error("the identity token is not valid yet")]
    NotYet,
    #[error("the identity token is from another issuer")]
    WrongIssuer,
    #[error("the identity token is for another audience")]
    WrongAudience,
    #[error("the identity token's `{0}` claim does not name a user")]
    NoUser(String),
    /// The key set could not be fetched: not the token's fault.
    #[error("the identity provider's keys could not be fetched: {0}")]
    Unreachable(String),
}

/// What a verified token says.
#[derive(Debug)]
pub(crate) struct Claimed {
    pub(crate) name: String,
    /// Every role name the token lists, model roles or not.
    pub(crate) roles: Vec<String>,
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// A usable key of the set, with the one algorithm it verifies.
#[derive(Clone)]
struct Key {
    decoding: DecodingKey,
    algorithm: Algorithm,
}

#[derive(Default)]
struct Cache {
    keys: BTreeMap<String, Key>,
    fetched_at: Option<Timestamp>,
}

/// The provider, its HTTP client and its cached keys.
pub(crate) struct Identity {
    provider: IdentityProvider,
    url: hyper::Uri,
    client: HttpsClient,
    cache: tokio::sync::Mutex<Cache>,
}

impl Identity {
    pub(crate) fn new(provider: IdentityProvider) -> Result<Identity, String> {
        let bad =
            |reason: &str| format!("identity provider key set `{}`: {reason}", provider.jwks_url);
        let url: hyper::Uri = provider.jwks_url.parse().map_err(|_| bad("not a URL"))?;
        let loopback = url.host().is_some_and(is_loopback);
        match url.scheme_str() {
            Some("https") => {}
            Some("http") if loopback => {}
            Some("http") => return Err(bad("plain http is allowed on loopback only: use https")),
            _ => return Err(bad("not an http(s) URL")),
        }
        let client = crate::tls_client::https_client(provider.authorities.as_deref())
            .map_err(|reason| bad(&reason))?;
        Ok(Identity { provider, url, client, cache: tokio::sync::Mutex::default() })
    }

    pub(crate) fn issuer(&self) -> &str {
        &self.provider.issuer
    }

    /// The user a token names, once its signature, issuer, audience and times check out.
    pub(crate) async fn verify(
        &self,
        token: &str,
        now: Timestamp,
    ) -> Result<Claimed, TokenRefusal> {
        if token.len() > IDENTITY_TOKEN_BYTES_MAX {
            return Err(TokenRefusal::Malformed("longer than the limit".to_owned()));
        }
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| TokenRefusal::Malformed(e.to_string()))?;
        let kid = header.kid.ok_or_else(|| TokenRefusal::Malformed("no `kid`".to_owned()))?;
        let key = self.key(&kid, now).await?;
        // The key decides the algorithm: a token cannot pick a weaker one.
        if header.alg != key.algorithm {
            return Err(TokenRefusal::BadSignature);
        }
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&self.provider.issuer]);
        validation.set_audience(&[&self.provider.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        // Checked below against the server's clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .map_err(refusal)?;
        let claims = data.claims;
        check_times(&claims, now)?;
        let name = claims
            .get(&self.provider.user_claim)
            .and_then(serde_json::Value::as_str)
            .filter(|n| {
                !n.is_empty() && n.len() <= USER_NAME_BYTES_MAX && !n.chars().any(char::is_control)
            })
            .ok_or_else(|| TokenRefusal::NoUser(self.provider.user_claim.clone()))?;
        let roles = roles_of(claims.get(&self.provider.roles_claim));
        Ok(Claimed { name: name.to_owned(), roles })
    }

    /// The key `kid`, from the cache while it is fresh, else from a new fetch of the set.
    async fn key(&self, kid: &str, now: Timestamp) -> Result<Key, TokenRefusal> {
        let mut cache = self.cache.lock().await;
        let age = |cache: &Cache| {
            cache.fetched_at.map(|at| (now.unix_micros() - at.unix_micros()) / 1_000_000)
        };
        let fresh = age(&cache).is_some_and(|seconds| seconds < JWKS_REFRESH_SECONDS);
        if let Some(key) = cache.keys.get(kid).filter(|_| fresh) {
            return Ok(key.clone());
        }
        let may_fetch = age(&cache).is_none_or(|seconds| seconds >= JWKS_REFETCH_MIN_SECONDS);
        if may_fetch {
            match self.fetch().await {
                Ok(keys) => *cache = Cache { keys, fetched_at: Some(now) },
                // A provider briefly away leaves the keys it published last in use.
                Err(reason) if cache.keys.contains_key(kid) => drop(reason),
                Err(reason) => return Err(TokenRefusal::Unreachable(reason)),
            }
        }
        cache.keys.get(kid).cloned().ok_or(TokenRefusal::UnknownKey)
    }

    /// The usable keys of the provider's set, by `kid`.
    async fn fetch(&self) -> Result<BTreeMap<String, Key>, String> {
        let request = hyper::Request::get(self.url.clone())
            .header(hyper::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| e.to_string())?;
        let timeout = std::time::Duration::from_millis(JWKS_FETCH_TIMEOUT_MS);
        let answer = async {
            let response =
                self.client.request(request).await.map_err(|e| crate::effects::error_chain(&e))?;
            if !response.status().is_success() {
                return Err(format!("the provider answered {}", response.status()));
            }
            let body = Limited::new(response.into_body(), JWKS_BYTES_MAX);
            let bytes = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| format!("no answer within {JWKS_FETCH_TIMEOUT_MS} ms"))??;
        let set: JwkSet =
            serde_json::from_slice(&bytes).map_err(|e| format!("not a key set: {e}"))?;
        Ok(set.keys.iter().filter_map(usable).collect())
    }
}

/// A signing key of a kind Ferry verifies, by its `kid`: RSA (RS256), P-256 (ES256) or
/// Ed25519 (EdDSA); a key marked for encryption, or for another algorithm, is left out.
fn usable(jwk: &Jwk) -> Option<(String, Key)> {
    let kid = jwk.common.key_id.clone()?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let algorithm = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        _ => return None,
    };
    let stated = jwk.common.key_algorithm;
    if stated.is_some_and(|stated| stated != jsonwebtoken::jwk::KeyAlgorithm::from(algorithm)) {
        return None;
    }
    let decoding = DecodingKey::from_jwk(jwk).ok()?;
    Some((kid, Key { decoding, algorithm }))
}

fn refusal(error: jsonwebtoken::errors::Error) -> TokenRefusal {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::InvalidIssuer => TokenRefusal::WrongIssuer,
        ErrorKind::InvalidAudience => TokenRefusal::WrongAudience,
        ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => TokenRefusal::BadSignature,
        ErrorKind::ExpiredSignature => TokenRefusal::Expired,
        ErrorKind::ImmatureSignature => TokenRefusal::NotYet,
        _ => TokenRefusal::Malformed(error.to_string()),
    }
}

/// `exp` (required) and `nbf` (when present) against the server's clock.
fn check_times(claims: &serde_json::Value, now: Timestamp) -> Result<(), TokenRefusal> {
    let now = now.unix_micros() / 1_000_000;
    let seconds =
        |name: &str| claims.get(name).map(|v| v.as_i64().or(v.as_f64().map(|f| f as i64)));
    match seconds("exp") {
        Some(Some(exp)) if exp + IDENTITY_CLOCK_LEEWAY_SECONDS > now => {}
        Some(Some(_)) => return Err(TokenRefusal::Expired),
        _ => return Err(TokenRefusal::Malformed("`exp` is not a time".to_owned())),
    }
    match seconds("nbf") {
        None => Ok(()),
        Some(Some(nbf)) if nbf - IDENTITY_CLOCK_LEEWAY_SECONDS <= now => Ok(()),
        Some(Some(_)) => Err(TokenRefusal::NotYet),
        Some(None) => Err(TokenRefusal::Malformed("`nbf` is not a time".to_owned())),
    }
}

/// The role names of a roles claim: an array of strings, or one string of names.
fn roles_of(claim: Option<&serde_json::Value>) -> Vec<String> {
    let names: Vec<&str> = match claim {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|v| v.as_str()).collect(),
        Some(serde_json::Value::String(text)) => {
            text.split([' ', ',']).filter(|n| !n.is_empty()).collect()
        }
        _ => Vec::new(),
    };
    names.into_iter().map(str::to_owned).collect()
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_come_from_arrays_or_strings() {
        let array = serde_json::json!(["Technician", 3, "Planner"]);
        assert_eq!(roles_of(Some(&array)), ["Technician", "Planner"]);
        let text = serde_json::json!("Technician Planner,Admin");
        assert_eq!(roles_of(Some(&text)), ["Technician", "Planner", "Admin"]);
        assert!(roles_of(None).is_empty());
    }

    #[test]
    fn times_allow_the_leeway_and_no_more() {
        let now = Timestamp::from_unix_micros(1_000_000 * 1_000_000).expect("in range");
        let at = |exp: i64| serde_json::json!({ "exp": 1_000_000 + exp });
        assert!(check_times(&at(10), now).is_ok());
        assert!(check_times(&at(-IDENTITY_CLOCK_LEEWAY_SECONDS + 1), now).is_ok());
        assert!(matches!(
            check_times(&at(-IDENTITY_CLOCK_LEEWAY_SECONDS), now),
            Err(TokenRefusal::Expired)
        ));
        let early = serde_json::json!({ "exp": 1_000_100, "nbf": 1_000_000 + 2 * IDENTITY_CLOCK_LEEWAY_SECONDS });
        assert!(matches!(check_times(&early, now), Err(TokenRefusal::NotYet)));
        let no_exp = serde_json::json!({});
        assert!(matches!(check_times(&no_exp, now), Err(TokenRefusal::Malformed(_))));
    }

    #[test]
    fn key_set_urls_are_https_or_loopback() {
        let make = |url: &str| Identity::new(IdentityProvider::new(url, "iss", "aud")).map(drop);
        assert!(make("https://idp.example.com/jwks").is_ok());
        assert!(make("http://127.0.0.1:9/jwks").is_ok());
        assert!(make("http://idp.example.com/jwks").unwrap_err().contains("loopback only"));
        assert!(make("ftp://idp.example.com/jwks").is_err());
    }
}
