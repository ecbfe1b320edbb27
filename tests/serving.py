"""Real servers on loopback for the tests that need processes rather than Django's test client: gunicorn
as production runs it, and nginx from docs/deploy/nginx.conf."""

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from ipaddress import IPv4Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ROOT = Path(__file__).resolve().parent.parent
NGINX_SITE = ROOT / "docs" / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url(database: dict) -> str:
    """The DATABASE_URL of a Django database's settings (the test database), for a child process."""
    if database["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{database['NAME']}"
    credentials = database["USER"] + (f":{database['PASSWORD']}" if database["PASSWORD"] else "")
    return f"postgres://{credentials}@{database['HOST']}:{database['PORT'] or 5432}/{database['NAME']}"


def wait_for_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} stopped during start-up:\n{log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)  # polling a port that is not open yet; nothing to wait on instead
    raise RuntimeError(f"nothing listens on {port} after {timeout:.0f} s:\n{log.read_text()}")


@contextmanager
def running(command: list[str], port: int, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    with open(log, "w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, log)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def gunicorn(port: int, folder: Path, env: dict[str, str], workers: int = 2) -> Iterator[str]:
    """gunicorn as the README's production recipe runs it (sync workers), on 127.0.0.1:port."""
    command = [str(Path(sys.executable).with_name("gunicorn")), "oncall.wsgi", "-w", str(workers),
               "-k", "sync", "-b", f"127.0.0.1:{port}"]
    with running(command, port, folder / "gunicorn.log", env):
        yield f"http://127.0.0.1:{port}"


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, so the proxy's HTTPS server runs as shipped."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False)
                   .sign(key, hashes.SHA256()))
    certificate_path, key_path = folder / "cert.pem", folder / "cert.key"
    certificate_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return certificate_path, key_path


def render_site(*, http_port: int, https_port: int, upstream_port: int, certificate: Path, key: Path,
                static: Path) -> str:
    """docs/deploy/nginx.conf with its ports and paths replaced, and nothing else: each value must be there
    exactly as shipped, so a change to the file cannot leave the test running something else."""
    site = NGINX_SITE.read_text()
    for shipped, local in [("listen 80;", f"listen 127.0.0.1:{http_port};"),
                           ("listen 443 ssl;", f"listen 127.0.0.1:{https_port} ssl;"),
                           ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
                           ("/etc/ssl/oncall/fullchain.pem", str(certificate)),
                           ("/etc/ssl/oncall/privkey.pem", str(key)),
                           ("/srv/oncall/staticfiles/", f"{static}/")]:
        assert site.count(shipped) == 1, f"{NGINX_SITE} no longer has {shipped!r} exactly once"
        site = site.replace(shipped, local)
    return site


@contextmanager
def nginx(folder: Path, *, upstream_port: int) -> Iterator[str]:
    """nginx in the foreground, as the invoking user, with every file it writes under `folder` (no root
    paths): the shipped site inside a minimal main configuration like Debian's. Yields the HTTPS base URL;
    its certificate is `folder / "cert.pem"`."""
    assert NGINX is not None
    certificate, key = self_signed_certificate(folder)
    (folder / "static").mkdir()
    http_port, https_port = free_port(), free_port()
    (folder / "oncall.conf").write_text(render_site(
        http_port=http_port, https_port=https_port, upstream_port=upstream_port, certificate=certificate, key=key,
        static=folder / "static"))
    temp = "\n".join(f"    {kind}_temp_path {folder / kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                          "uwsgi", "scgi"))
    (folder / "nginx.conf").write_text(f"""daemon off;
master_process off;
pid {folder / "nginx.pid"};
error_log {folder / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
    include {folder / "oncall.conf"};
}}
""")
    command = [NGINX, "-e", str(folder / "error.log"), "-p", str(folder), "-c", str(folder / "nginx.conf")]
    with running(command, https_port, folder / "nginx.log"):
        yield f"https://127.0.0.1:{https_port}"
