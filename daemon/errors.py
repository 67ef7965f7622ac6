"""Whether retrying helps: the two kinds of failure at the broker boundary (after kopf's
``TemporaryError`` / ``PermanentError`` split).

A temporary error (the gateway is down, the handshake timed out) may go away by itself: the
daemon retries it with its backoff, or after ``delay`` seconds when the error knows better. A
permanent one (the gateway does not manage the account, a live account without ``live: true``,
a journal bound to another account) stays until the user changes something: retrying it would
only spin, so the daemon reports it and waits for a rules change or SIGTERM.

This module imports nothing, so that every layer may raise these.
"""

from __future__ import annotations


class TemporaryError(Exception):
    """A failure that retrying may fix; ``delay`` (seconds) overrides the caller's backoff."""

    # A class default too: a subclass that also derives from another exception (the adapter's
    # GatewayUnreachable) is built by that exception's __init__, which never sets it.
    delay: float | None = None

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(Exception):
    """A failure no retry fixes; the message says what the user must change."""
