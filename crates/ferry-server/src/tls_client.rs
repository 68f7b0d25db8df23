//! The TLS the server speaks as a client (to PostgreSQL, to an identity provider): rustls with
//! the system's certificate authorities and any the operator adds; a certificate that does not
//! verify is refused, never accepted.

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

/// A client configuration trusting the system's authorities and those of `authorities` (PEM).
pub(crate) fn client_config(authorities: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    // A system whose store cannot be read leaves only the added authorities.
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    if let Some(pem) = authorities {
        let mut added = 0;
        for certificate in CertificateDer::pem_slice_iter(pem) {
            roots.add(certificate.map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
            added += 1;
        }
        if added == 0 {
            return Err("the authority file holds no certificate".to_owned());
        }
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// An HTTP/1.1 client speaking `https` (trusting the system's authorities and those of
/// `authorities`) and plain `http`, on the tokio runtime.
pub(crate) fn https_client<B>(
    authorities: Option<&[u8]>,
) -> Result<
    hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        B,
    >,
    String,
>
where
    B: hyper::body::Body + Send,
    B::Data: Send,
{
    let tls = client_config(authorities)?;
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(connector);
    Ok(hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(connector))
}
