"""TLS for the sandbox: a throwaway `trustme` CA and a server certificate for 127.0.0.1 and localhost.

The Azure SDKs refuse bearer tokens over plain http (Key Vault has no escape hatch at all), so the sandbox
must speak HTTPS; clients trust it through `connection_verify` or `SSL_CERT_FILE` pointing at the CA file.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class TlsMaterial:
    directory: Path
    ca_file: Path
    server_context: ssl.SSLContext

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def make_tls() -> TlsMaterial:
    """Issue a fresh CA and server certificate; the CA PEM is written to a new temporary directory."""
    ca = trustme.CA(organization_name="purview-bot sandbox")
    cert = ca.issue_cert("127.0.0.1", "localhost")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(context)
    directory = Path(tempfile.mkdtemp(prefix="purview-sandbox-"))
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return TlsMaterial(directory=directory, ca_file=ca_file, server_context=context)
