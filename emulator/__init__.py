"""A local stand-in for Vonage's Dispatch API and Messages API v1, for tests, demos and benchmarks.

Never imported by the app (escalation/): it is a separate program that the app talks to over HTTP,
exactly as it talks to api.nexmo.com. Run it with `python -m emulator --help`.
"""

from emulator.app import Emulator, EmulatorConfig

__all__ = ["Emulator", "EmulatorConfig"]
