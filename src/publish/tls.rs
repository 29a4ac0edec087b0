//! TLS to the broker: rustls with the ring provider chosen explicitly (no process-wide
//! default needed), the CA file or the system roots, and an optional client certificate.

use crate::publish::settings::Connect;
use anyhow::{Context, anyhow, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::sync::Arc;

/// rustls client configuration with the ring provider chosen explicitly (no process-wide
/// default needed), the CA file or the system roots, and an optional client certificate.
pub fn tls_config(c: &Connect) -> anyhow::Result<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(ca) = &c.ca_file {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(ca)
            .and_then(|it| it.collect::<Result<_, _>>())
            .map_err(|e| {
                anyhow!(
                    "mqtt.ca_file {}: cannot read PEM certificates: {e}",
                    ca.display()
                )
            })?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            bail!(
                "mqtt.ca_file {}: no usable CA certificate in it",
                ca.display()
            );
        }
    } else {
        let found = rustls_native_certs::load_native_certs();
        roots.add_parsable_certificates(found.certs);
        if roots.is_empty() {
            bail!(
                "mqtts:// without mqtt.ca_file and no system CA certificates found: set mqtt.ca_file"
            );
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots);
    match (&c.client_cert, &c.client_key) {
        (Some(cert), Some(key)) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
                .and_then(|it| it.collect::<Result<_, _>>())
                .map_err(|e| {
                    anyhow!(
                        "mqtt.client_cert {}: cannot read PEM certificates: {e}",
                        cert.display()
                    )
                })?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                anyhow!(
                    "mqtt.client_key {}: cannot read a PEM private key: {e}",
                    key.display()
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .context("mqtt.client_cert/client_key do not form a usable pair")
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}
