"""`make run`: the whole app on one machine with nothing but Python.

Prepares what a first run needs and reuses it afterwards (kept out of git): under var/demo/ a Vonage-like key
pair, the signature secret and the admin login; the default database (db.sqlite3 beside manage.py), migrated,
with the sample roster. Then it
starts the web app, the escalation worker and the local Vonage emulator, configured against each other,
and stops all three cleanly on Ctrl-C. Standard library only: it runs before Django is configured.
"""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STATE_DIR = BASE_DIR / "var" / "demo"
DEMO_CONFIG = BASE_DIR / "escalation" / "fixtures" / "demo_config.json"
PYTHON = sys.executable


def ensure_keys() -> tuple[Path, Path]:
    private_path, public_path = STATE_DIR / "private.key", STATE_DIR / "public.pem"
    if not private_path.exists():
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        private_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        private_path.chmod(0o600)
        public_path.write_bytes(key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def remembered(name: str, make) -> str:
    """A value generated on the first run and reused on every later one."""
    path = STATE_DIR / name
    if not path.exists():
        path.write_text(make())
        path.chmod(0o600)
    return path.read_text().strip()


def demo_environment(web_port: int, emulator_port: int) -> dict[str, str]:
    private_path, public_path = ensure_keys()
    env = dict(os.environ)
    env.setdefault("DEBUG", "true")
    env.setdefault("SECRET_KEY", remembered("secret_key", lambda: secrets.token_urlsafe(50)))
    # No DATABASE_URL of its own: the demo uses the database a plain `manage.py` finds (db.sqlite3 beside it, or
    # .env's), so the README's `manage.py escalate ...` works beside it as written.
    env.setdefault("ESCALATION_API", "dispatch")
    env.update({
        "VONAGE_APPLICATION_ID": remembered("application_id", lambda: "demo-" + secrets.token_hex(8)),
        "VONAGE_PRIVATE_KEY_PATH": str(private_path),
        "VONAGE_API_URL": f"http://127.0.0.1:{emulator_port}",
        "VONAGE_SIGNATURE_SECRET": remembered("signature_secret", lambda: secrets.token_hex(32)),
        "SITE_URL": f"http://127.0.0.1:{web_port}",
        "DEMO_PHONES_URL": f"http://127.0.0.1:{emulator_port}/phones/",
        "PYTHONUNBUFFERED": "1",
    })
    env["DEMO_PUBLIC_KEY_PATH"] = str(public_path)
    return env


def write_phone_names() -> Path:
    """The emulator's phones page shows the sample people by name; it cannot know them otherwise."""
    users = json.loads(DEMO_CONFIG.read_text())["USERS"]
    path = STATE_DIR / "phone_names.json"
    path.write_text(json.dumps({user["name"]: [c["id_num"] for c in user["channels"]] for user in users}))
    return path


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=BASE_DIR, env=env, check=True)


def wait_until_up(url: str, processes: list[subprocess.Popen], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(p.poll() is not None for p in processes):
            raise SystemExit("A demo process stopped during start-up; see its output above.")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s.")


def main() -> None:
    web_port = int(os.environ.get("DEMO_PORT", "8000"))
    emulator_port = int(os.environ.get("DEMO_EMULATOR_PORT", "8025"))
    STATE_DIR.mkdir(parents=True, exist_ok=True)
    env = demo_environment(web_port, emulator_port)
    manage(env, "migrate", "--verbosity", "0")
    manage(env, "demo_setup", "--config", str(DEMO_CONFIG), "--credentials-file", str(STATE_DIR / "admin_login"))
    commands = {
        "emulator": [PYTHON, "-m", "emulator", "--port", str(emulator_port),
                     "--webhook-base", f"http://127.0.0.1:{web_port}",
                     "--public-key", env["DEMO_PUBLIC_KEY_PATH"],
                     "--signature-secret", env["VONAGE_SIGNATURE_SECRET"],
                     "--application-id", env["VONAGE_APPLICATION_ID"], "--phone-names", str(write_phone_names())],
        "web": [PYTHON, "manage.py", "runserver", "--noreload", f"127.0.0.1:{web_port}"],
        "worker": [PYTHON, "manage.py", "run_escalations"],
    }
    processes = [subprocess.Popen(cmd, cwd=BASE_DIR, env=env, start_new_session=True) for cmd in commands.values()]

    def stop(*_args) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    signal.signal(signal.SIGTERM, lambda *a: (stop(), sys.exit(0)))
    # A shell that starts us in the background hands SIGINT down as ignored, and Python then leaves it so:
    # Ctrl-C must stop the demo however it was started.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        wait_until_up(f"http://127.0.0.1:{web_port}/admin/login/", processes)
        wait_until_up(env["DEMO_PHONES_URL"], processes)  # every URL printed below answers
        user, password = (STATE_DIR / "admin_login").read_text().split(":", 1)
        print(f"\nOn-call escalation demo is running.\n"
              f"  Open:   http://127.0.0.1:{web_port}/admin/   (login: {user} / {password.strip()})\n"
              f"  Phones: {env['DEMO_PHONES_URL']}\n"
              f"Press Ctrl-C to stop.\n", flush=True)
        while all(p.poll() is None for p in processes):
            time.sleep(0.5)
        print("A demo process stopped; shutting the others down.", flush=True)
    except KeyboardInterrupt:
        print("\nStopping.", flush=True)
    finally:
        stop()


if __name__ == "__main__":
    main()
