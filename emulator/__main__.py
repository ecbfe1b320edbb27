"""`python -m emulator --port 8025 --webhook-base http://127.0.0.1:8000 --public-key public.pem ...`"""

import argparse
import logging
import os
import signal
import sys
from pathlib import Path

from emulator.app import Emulator, EmulatorConfig
from emulator.phones import load_phone_names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emulator", description="A local Vonage for the on-call app.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025, help="0 picks a free port (printed on start)")
    parser.add_argument("--webhook-base", default="", help="the app's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--public-key", required=True,
                        help="PEM public key of the Vonage application (its private key works too)")
    parser.add_argument("--signature-secret", default=os.environ.get("VONAGE_SIGNATURE_SECRET", ""),
                        help="sign webhooks with this HS256 secret (default: $VONAGE_SIGNATURE_SECRET)")
    parser.add_argument("--application-id", default="", help="refuse JWTs for any other application")
    parser.add_argument("--api-key", default="emulator", help="api_key claim of webhook signatures")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="real seconds per emulated second: 0.01 makes a 600 s expiry last 6 s")
    parser.add_argument("--scenario-file", help="JSON list of scenarios, e.g. "
                        '[{"address": "447700900001", "action": "read", "after": 30}]')
    parser.add_argument("--webhook-lanes", type=int, default=8, help="concurrent webhook deliveries")
    parser.add_argument("--phone-names", help='names for the /phones/ page: JSON {"Tony": ["447700900001", ...]}')
    parser.add_argument("--no-windows", action="store_true",
                        help="deliver free-form WhatsApp/Messenger messages even outside the 24-hour window")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        phone_names = load_phone_names(args.phone_names) if args.phone_names else {}
    except ValueError as e:
        parser.error(f"--phone-names: {e}")
    config = EmulatorConfig(
        public_key=Path(args.public_key).read_bytes(), webhook_base=args.webhook_base,
        signature_secret=args.signature_secret, time_scale=args.time_scale, application_id=args.application_id,
        api_key=args.api_key, webhook_lanes=args.webhook_lanes, verbose=args.verbose, phone_names=phone_names,
        enforce_windows=not args.no_windows,
    )
    try:
        emulator = Emulator(config, host=args.host, port=args.port)
    except ValueError as e:
        parser.error(f"--public-key {args.public_key}: {e}")
    if args.scenario_file:
        emulator.load_scenario_file(args.scenario_file)
    # SIGTERM (docker stop, a test tearing down) ends serve_forever like Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"Vonage emulator listening on {emulator.url} (webhooks to {args.webhook_base or 'nowhere yet'}, "
          f"time scale {args.time_scale})", flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
