"""Real servers on loopback for the tests that need processes rather than Django's test client."""

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
