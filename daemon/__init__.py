"""tradectl: everything that runs."""

from importlib.metadata import PackageNotFoundError, version


def tradectl_version() -> str:
    """The installed distribution's version, shown by ``--version`` and ``status``."""
    try:
        return version("tradectl")
    except PackageNotFoundError:
        return "unknown (not installed)"
