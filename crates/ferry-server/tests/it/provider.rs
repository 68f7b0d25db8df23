//! A test identity provider: keys made at run time (RSA, P-256, Ed25519), tokens signed with
//! them, and the key set served on 127.0.0.1. Shared by the server's tests and the command
//! line's.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::Value as Json;

pub(crate) const ISSUER: &str = "https://idp.test";
pub(crate) const AUDIENCE: &str = "ferry-field-app";

/// A key of the provider, with which the test signs tokens.
pub(crate) struct Signer {
    pub(crate) kid: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) key: EncodingKey,
    pub(crate) jwk: Jwk,
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0; N];
    getrandom_sys::fill(&mut bytes).unwrap();
    bytes
}

impl Signer {
    pub(crate) fn new(kid: &str, algorithm: Algorithm) -> Signer {
        let key = match algorithm {
            Algorithm::RS256 => {
                use rsa::pkcs1::EncodeRsaPrivateKey as _;
                let private = rsa::PrivateKey::new(&mut getrandom_sys::SysRng, 2048).unwrap();
                EncodingKey::from_rsa_der(private.to_pkcs1_der().unwrap().as_bytes())
            }
            Algorithm::ES256 => {
                use p256::pkcs8::EncodePrivateKey as _;
                let secret = p256::SecretKey::from_slice(&random::<32>()).unwrap();
                EncodingKey::from_ec_der(secret.to_pkcs8_der().unwrap().as_bytes())
            }
            Algorithm::EdDSA => {
                use ed25519_dalek::pkcs8::EncodePrivateKey as _;
                // The version 1 form (no public key) that jsonwebtoken takes.
                let pair = ed25519_dalek::ed25519::pkcs8::KeypairBytes {
                    secret_key: random::<32>(),
                    public_key: None,
                };
                EncodingKey::from_ed_der(pair.to_pkcs8_der().unwrap().as_bytes())
            }
            other => panic!("no test key for {other:?}"),
        };
        let mut jwk = Jwk::from_encoding_key(&key, algorithm).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        Signer { kid: kid.to_owned(), algorithm, key, jwk }
    }

    pub(crate) fn sign(&self, claims: &Json) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.key).unwrap()
    }
}

/// The provider's key set endpoint: the keys it publishes now, and how often it was asked.
#[derive(Clone, Default)]
pub(crate) struct KeySet {
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

impl KeySet {
    pub(crate) async fn serve(&self) -> String {
        let set = self.clone();
        let router = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let set = set.clone();
                async move {
                    set.fetches.fetch_add(1, Ordering::SeqCst);
                    let keys = set.keys.lock().unwrap().clone();
                    axum::Json(JwkSet { keys })
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        format!("http://{address}/jwks")
    }

    pub(crate) fn publish(&self, signers: &[&Signer]) {
        *self.keys.lock().unwrap() = signers.iter().map(|s| s.jwk.clone()).collect();
    }

    pub(crate) fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}
