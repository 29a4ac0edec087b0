//! The HTTP side: `/metrics`, `/` (fleet), `/site/SITE` (site page, `?sensor=S&call=ID` charts
//! one call). hyper over tokio; optional TLS (rustls) and HTTP basic auth.

use super::ingest::Noc;
use super::url::decode;
use super::{fleet, site};
use anyhow::{Context, Result};
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// `[http]` in noc.toml.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    pub listen: SocketAddr,
    /// PEM certificate chain and key: serve HTTPS.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Basic auth: user name, and a file holding the password (first line).
    pub username: Option<String>,
    pub password_file: Option<PathBuf>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 9108)),
            tls_cert: None,
            tls_key: None,
            username: None,
            password_file: None,
        }
    }
}

fn tls_acceptor(cert: &PathBuf, key: &PathBuf) -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| anyhow::anyhow!("http.tls_cert {}: {e}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("http.tls_key {}: {e}", key.display()))?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .context("http.tls_cert and http.tls_key do not make a usable certificate")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

/// The expected `Authorization` header value, when basic auth is configured.
fn expected_auth(s: &HttpSettings) -> Result<Option<String>> {
    let Some(user) = &s.username else {
        return Ok(None);
    };
    let password = match &s.password_file {
        Some(p) => std::fs::read_to_string(p)
            .with_context(|| format!("cannot read http.password_file {}", p.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        None => anyhow::bail!("http.username needs http.password_file"),
    };
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    Ok(Some(format!("Basic {token}")))
}

/// Binds now (so a port in use is an error at start), then serves until the process ends.
pub async fn serve(s: HttpSettings, noc: Arc<Mutex<Noc>>) -> Result<()> {
    let tls = match (&s.tls_cert, &s.tls_key) {
        (Some(c), Some(k)) => Some(tls_acceptor(c, k)?),
        (None, None) => None,
        _ => anyhow::bail!("http.tls_cert and http.tls_key go together"),
    };
    let auth = Arc::new(expected_auth(&s)?);
    let listener = tokio::net::TcpListener::bind(s.listen)
        .await
        .with_context(|| format!("cannot listen on http.listen = {}", s.listen))?;
    log::info!(
        "noc: serving {}://{}/metrics",
        if tls.is_some() { "https" } else { "http" },
        listener.local_addr()?
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                log::warn!("noc: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let noc = noc.clone();
        let auth = auth.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let r = respond(&req, &noc, auth.as_deref());
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let http = hyper::server::conn::http1::Builder::new();
            let res = match tls {
                Some(acc) => match acc.accept(stream).await {
                    Ok(s) => http.serve_connection(TokioIo::new(s), svc).await,
                    Err(e) => {
                        log::debug!("noc: TLS handshake: {e}");
                        return;
                    }
                },
                None => http.serve_connection(TokioIo::new(stream), svc).await,
            };
            if let Err(e) = res {
                log::debug!("noc: HTTP connection: {e}");
            }
        });
    }
}

fn reply(code: StatusCode, ctype: &str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = code;
    if let Ok(v) = ctype.parse() {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

/// One request → one response (no I/O here: the state is read under the lock).
pub fn respond<B>(req: &Request<B>, noc: &Mutex<Noc>, auth: Option<&str>) -> Response<Full<Bytes>> {
    if let Some(want) = auth {
        let got = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if got != Some(want) {
            let mut r = reply(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "authentication required\n".into(),
            );
            if let Ok(v) = "Basic realm=\"voipsensor noc\"".parse() {
                r.headers_mut().insert(hyper::header::WWW_AUTHENTICATE, v);
            }
            return r;
        }
    }
    let Ok(noc) = noc.lock() else {
        return reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/plain",
            "state poisoned\n".into(),
        );
    };
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or("");
    let html = "text/html; charset=utf-8";
    match path {
        "/metrics" => reply(
            StatusCode::OK,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            noc.metrics.encode(),
        ),
        "/" => reply(
            StatusCode::OK,
            html,
            fleet::page(&noc, super::subscribe::wall_s()),
        ),
        _ => match path.strip_prefix("/site/").map(decode) {
            Some(site_name) if noc.sensors().any(|s| s.site == site_name) => {
                let q = |k: &str| {
                    query
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .find(|(key, _)| *key == k)
                        .map(|(_, v)| decode(v))
                };
                let body = site::page(
                    &noc,
                    &site_name,
                    q("sensor").as_deref(),
                    q("call").as_deref(),
                );
                reply(StatusCode::OK, html, body)
            }
            _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noc::state::Limits;

    fn req(path: &str, auth: Option<&str>) -> Request<()> {
        let mut b = Request::builder().uri(path);
        if let Some(a) = auth {
            b = b.header(hyper::header::AUTHORIZATION, a);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn basic_auth_guards_every_route_and_unknown_paths_are_404() {
        let dir = std::env::temp_dir().join(format!("vs-noc-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pw = dir.join("pw");
        std::fs::write(&pw, "s3cret\n").unwrap();
        let want = expected_auth(&HttpSettings {
            username: Some("prom".into()),
            password_file: Some(pw),
            ..HttpSettings::default()
        })
        .unwrap();
        std::fs::remove_dir_all(&dir).ok();
        // "prom:s3cret" in base64.
        assert_eq!(want.as_deref(), Some("Basic cHJvbTpzM2NyZXQ="));
        let noc = Mutex::new(Noc::new(Limits::default()));
        for path in ["/metrics", "/", "/site/x"] {
            let r = respond(&req(path, None), &noc, want.as_deref());
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
            assert!(r.headers().contains_key(hyper::header::WWW_AUTHENTICATE));
            let r = respond(
                &req(path, Some("Basic cHJvbTp3cm9uZw==")),
                &noc,
                want.as_deref(),
            );
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
        }
        let ok = |p| respond(&req(p, want.as_deref()), &noc, want.as_deref()).status();
        assert_eq!(ok("/metrics"), StatusCode::OK);
        assert_eq!(ok("/"), StatusCode::OK);
        assert_eq!(ok("/site/unknown"), StatusCode::NOT_FOUND);
        assert_eq!(ok("/nothing"), StatusCode::NOT_FOUND);
        assert!(
            expected_auth(&HttpSettings {
                username: Some("prom".into()),
                ..HttpSettings::default()
            })
            .is_err(),
            "a user without a password file is refused"
        );
    }
}
