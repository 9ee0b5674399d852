//! Certificates for TLS tests, made fresh in a temp dir by each test.
//!
//! announce and clusterctl must reach an etcd that wants TLS with client
//! certificates, as production clusters do. No certificate is checked in:
//! [`TlsFiles::generate`] makes a CA, a server certificate for 127.0.0.1 and
//! localhost, and a client certificate, all signed by that CA, and writes them
//! as PEM files that both etcd and the tools read; [`TlsFiles::server`] and
//! [`TlsFiles::client`] sign more (a lab's members at their own addresses,
//! one client per machine).

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

/// A CA, a server pair and a client pair as PEM files; removed on drop.
pub struct TlsFiles {
    dir: TempDir,
    /// The CA certificate: etcd's `--trusted-ca-file`, the tools' `--cacert`.
    pub ca: PathBuf,
    /// The server certificate, valid for 127.0.0.1, ::1 and localhost.
    pub server_cert: PathBuf,
    /// The server's private key.
    pub server_key: PathBuf,
    /// The client certificate (common name [`TlsFiles::CLIENT_NAME`]).
    pub client_cert: PathBuf,
    /// The client's private key.
    pub client_key: PathBuf,
    /// The CA, to sign more client certificates.
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles").field("dir", &self.dir.path()).finish_non_exhaustive()
    }
}

/// A server pair valid for `names` and `ips` (what a client dials).
fn server_pair(
    issuer: &Issuer<'static, KeyPair>,
    names: &[&str],
    ips: &[IpAddr],
) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("server key");
    let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>())
        .expect("server params");
    params.subject_alt_names.extend(ips.iter().map(|ip| SanType::IpAddress(*ip)));
    params.distinguished_name.push(DnType::CommonName, names.first().copied().unwrap_or("etcd"));
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages =
        vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).expect("sign a server cert");
    (cert, key)
}

fn client_pair(issuer: &Issuer<'static, KeyPair>, name: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().expect("client key");
    let mut params = CertificateParams::new(Vec::new()).expect("client params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).expect("sign a client cert");
    (cert, key)
}

impl TlsFiles {
    /// The client certificate's common name (etcd takes it as the user name
    /// when auth is on and no password is given).
    pub const CLIENT_NAME: &'static str = "fleetkit-test-client";

    /// Generates the CA and both pairs.
    ///
    /// # Panics
    /// When key generation or writing the files fails: the test cannot run.
    #[must_use]
    pub fn generate() -> Self {
        let dir = tempfile::Builder::new().prefix("fk-tls").tempdir().expect("temp dir for certificates");

        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::new()).expect("CA params");
        ca_params.distinguished_name.push(DnType::CommonName, "fleetkit test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let ca_cert = ca_params.self_signed(&ca_key).expect("self-sign the CA");
        let issuer = Issuer::new(ca_params, ca_key);

        let (server_cert, server_key) =
            server_pair(&issuer, &["localhost"], &[Ipv4Addr::LOCALHOST.into(), Ipv6Addr::LOCALHOST.into()]);

        let (client_cert, client_key) = client_pair(&issuer, Self::CLIENT_NAME);

        let write = |name: &str, pem: String| -> PathBuf {
            let path = dir.path().join(name);
            fs::write(&path, pem).expect("write a PEM file");
            path
        };
        Self {
            ca: write("ca.pem", ca_cert.pem()),
            server_cert: write("server.pem", server_cert.pem()),
            server_key: write("server-key.pem", server_key.serialize_pem()),
            client_cert: write("client.pem", client_cert.pem()),
            client_key: write("client-key.pem", client_key.serialize_pem()),
            dir,
            issuer,
        }
    }

    /// A client certificate and key with common name `name` (etcd's user
    /// when it logs in without a password), written next to the others.
    ///
    /// # Panics
    /// When signing or writing fails.
    #[must_use]
    pub fn client(&self, name: &str) -> (PathBuf, PathBuf) {
        let (cert, key) = client_pair(&self.issuer, name);
        self.write_pair(name, &cert, &key)
    }

    /// A server certificate and key for a server at `ips` (an etcd member
    /// elsewhere than on loopback), as `name.pem` and `name-key.pem` next to
    /// the others.
    ///
    /// # Panics
    /// When signing or writing fails.
    #[must_use]
    pub fn server(&self, name: &str, ips: &[IpAddr]) -> (PathBuf, PathBuf) {
        let (cert, key) = server_pair(&self.issuer, &[name], ips);
        self.write_pair(name, &cert, &key)
    }

    fn write_pair(&self, name: &str, cert: &rcgen::Certificate, key: &KeyPair) -> (PathBuf, PathBuf) {
        let cert_path = self.dir.path().join(format!("{name}.pem"));
        let key_path = self.dir.path().join(format!("{name}-key.pem"));
        fs::write(&cert_path, cert.pem()).expect("write a PEM file");
        fs::write(&key_path, key.serialize_pem()).expect("write a PEM file");
        (cert_path, key_path)
    }

    /// The directory holding the files.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// openssl, not the code that made them, says the chain is sound.
    #[test]
    fn openssl_verifies_both_certificates() {
        let t = TlsFiles::generate();
        for (cert, purpose) in [(&t.server_cert, "sslserver"), (&t.client_cert, "sslclient")] {
            let out = std::process::Command::new("openssl")
                .args(["verify", "-purpose", purpose, "-CAfile"])
                .arg(&t.ca)
                .arg(cert)
                .output()
                .expect("run openssl");
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        }
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&t.server_cert)
            .output()
            .expect("run openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("IP Address:127.0.0.1") && text.contains("DNS:localhost"), "{text}");
    }

    #[test]
    fn a_server_certificate_for_other_addresses_names_them() {
        let t = TlsFiles::generate();
        let (cert, _key) = t.server("etcd1", &[Ipv4Addr::new(10, 213, 7, 11).into()]);
        let out = std::process::Command::new("openssl")
            .args(["verify", "-purpose", "sslserver", "-CAfile"])
            .arg(&t.ca)
            .arg(&cert)
            .output()
            .expect("run openssl");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let out = std::process::Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(&cert)
            .output()
            .expect("run openssl");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("IP Address:10.213.7.11") && !text.contains("127.0.0.1"), "{text}");
    }
}
