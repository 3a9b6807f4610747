"""The TLS certificates that authenticate a grading cluster (scheduler, workers, the grading parent).

A Dask scheduler without security runs whatever any connecting client sends (``Client.run`` executes
code as the worker's user, root for ``coursekit worker``). So the kit's clusters speak ``tls://`` only,
with mutual authentication: every party shows a certificate signed by the cluster's own CA, and
``require_encryption`` refuses plain connections. ``coursekit cluster certs FOLDER`` writes:

  ca.pem                          the cluster's CA certificate (its key is never written: nobody can
                                  issue another certificate; make a new folder to replace them all)
  scheduler.pem, scheduler.key    for ``coursekit cluster scheduler``
  worker.pem, worker.key          for every ``coursekit worker`` (copy with ca.pem to each machine)
  client.pem, client.key          for ``coursekit autograde --scheduler tls://...`` (the instructor)

Keys are owner-only (0600) in an owner-only folder (0700); a key that other users could read is refused
(in degraded mode a student kernel sees the host's files as its own uid).
"""
from __future__ import annotations

import datetime
import os
import stat
from pathlib import Path

from coursekit.course import CourseError

ROLES = ("scheduler", "worker", "client")
CA_FILE = "ca.pem"


def generate_certificates(folder: Path, days: int = 365) -> list[Path]:
    """Write a new CA certificate and a certificate and key per role into ``folder`` (never overwriting)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = Path(folder)
    targets = [folder / CA_FILE] + [folder / f"{role}.{ext}" for role in ROLES for ext in ("pem", "key")]
    existing = [str(p) for p in targets if p.exists() or p.is_symlink()]
    if existing:
        raise CourseError(f"{folder}: already holds cluster certificates ({', '.join(existing)}); "
                          "choose an empty folder")
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "coursekit grading cluster"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common)])

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(name("coursekit cluster CA")).issuer_name(name("coursekit cluster CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                       crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    _write(folder / CA_FILE, ca.public_bytes(serialization.Encoding.PEM), 0o644)
    for role in ROLES:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (x509.CertificateBuilder().subject_name(name(f"coursekit {role}")).issuer_name(ca.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        _write(folder / f"{role}.key", key.private_bytes(serialization.Encoding.PEM,
                                                         serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()), 0o600)
        _write(folder / f"{role}.pem", cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return targets


def _write(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _checked(path: Path, private: bool) -> str:
    try:
        info = os.stat(path, follow_symlinks=False)
    except OSError:
        raise CourseError(f"{path}: missing (create the cluster's certificates with `coursekit cluster certs`)") \
            from None
    if not stat.S_ISREG(info.st_mode):
        raise CourseError(f"{path}: not a regular file")
    if private and (info.st_mode & 0o077 or info.st_uid != os.geteuid()):
        raise CourseError(f"{path}: a private key must be owned by this user and readable by nobody else "
                          f"(chmod 600 {path})")
    return str(path)


def security(folder: Path | str, role: str):
    """distributed's ``Security`` for ``role`` (scheduler, worker or client): mutual TLS, encryption required.

    A worker also talks to the scheduler as a client (to read the published fingerprint) with its own
    certificate.
    """
    from distributed.security import Security

    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}")
    folder = Path(folder)
    cert, key = _checked(folder / f"{role}.pem", False), _checked(folder / f"{role}.key", True)
    files = {"tls_ca_file": _checked(folder / CA_FILE, False), f"tls_{role}_cert": cert, f"tls_{role}_key": key}
    if role != "client":
        files.update(tls_client_cert=cert, tls_client_key=key)
    return Security(require_encryption=True, **files)


def require_tls(address: str) -> str:
    """``address`` if it is a ``tls://`` address; a clear error otherwise (clusters are authenticated)."""
    if not address.startswith("tls://"):
        raise CourseError(f"scheduler address {address!r}: the kit's clusters speak TLS only (tls://HOST:PORT), "
                          "with certificates from `coursekit cluster certs`; a plain tcp:// scheduler runs code "
                          "for anyone who connects")
    return address
