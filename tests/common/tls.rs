//! A test certificate authority made with `openssl` in a test's folder: CA key and
//! certificate, and a broker certificate for 127.0.0.1 signed by it (2 days, RSA 2048).
//! Callers check for the tool with `need_tool("openssl", "openssl")`.

use std::path::Path;
use std::process::{Command, Stdio};

/// `openssl ARGS…` in `dir`; panics unless it succeeded.
#[track_caller]
pub fn openssl(dir: &Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "openssl {args:?}");
}

/// A self-signed CA: `NAME.key` and `NAME.pem` in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// `server.key` and `server.pem` in `dir`: CN and subjectAltName IP 127.0.0.1 (so only that
/// name verifies), signed by the CA `ca.pem`/`ca.key` that [`make_ca`] made there.
pub fn server_cert(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.pem",
        ],
    );
}
