//! The HTTPS client every AWS call goes through (`aws::https_client`:
//! rustls on ring, the system's roots) against a real TLS server: a
//! certificate the system trusts is accepted and the call goes through; one
//! it does not trust is refused before a single request is sent.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::moto::moto_python;
use super::support::*;

/// The server of tls_server.py, stopped when dropped.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> TlsServer {
        let script = dir.join("tls_server.py");
        std::fs::write(&script, include_str!("tls_server.py")).unwrap();
        let mut child = Command::new(moto_python())
            .arg(&script)
            .arg(dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python of moto's venv runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("tls_server.py prints its port");
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `amiaudit scan` against the server, with `trust` as the only root, or
/// the machine's own roots.
fn scan(server: &TlsServer, out: &Path, trust: Option<&Path>) -> std::process::Output {
    let mut command = assert_cmd::Command::cargo_bin("amiaudit").unwrap();
    match trust {
        Some(file) => command.env("SSL_CERT_FILE", file),
        None => command.env_remove("SSL_CERT_FILE"),
    };
    command
        // One attempt: the SDK retries a refused handshake like any other
        // connection error.
        .args(["scan", "--region", "us-east-1", "--max-attempts", "1"])
        .args(["--out", path(out)])
        .args([
            "--endpoint-url",
            &format!("https://localhost:{}", server.port),
        ])
        .env_remove("SSL_CERT_DIR")
        .env("AWS_ACCESS_KEY_ID", "AKIDTLSTEST")
        .env("AWS_SECRET_ACCESS_KEY", "tls-test")
        .env_remove("AWS_PROFILE")
        .env("NO_PROXY", "localhost")
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap()
}

#[test]
fn https_calls_verify_the_server_against_the_system_roots() {
    let dir = tempfile::tempdir().unwrap();
    let server = TlsServer::start(dir.path());
    let requests = dir.path().join("requests.log");

    // Not trusted: the machine's own roots do not include the server's CA.
    let untrusted = scan(&server, &dir.path().join("untrusted"), None);
    assert_eq!(untrusted.status.code(), Some(2), "{}", stderr(&untrusted));
    assert!(
        stderr(&untrusted).contains("invalid peer certificate"),
        "{}",
        stderr(&untrusted)
    );
    assert!(
        !requests.exists(),
        "no request crosses an untrusted connection: {:?}",
        std::fs::read_to_string(&requests)
    );

    // Trusted: the handshake completes and STS answers who the caller is.
    let ca = dir.path().join("ca.pem");
    let trusted = scan(&server, &dir.path().join("trusted"), Some(&ca));
    assert_eq!(trusted.status.code(), Some(0), "{}", stderr(&trusted));
    assert!(
        stdout(&trusted).starts_with("scanned 1 accounts"),
        "{}",
        stdout(&trusted)
    );
    let log = std::fs::read_to_string(&requests).unwrap();
    assert_eq!(log.lines().next(), Some("GetCallerIdentity"), "{log}");
}
