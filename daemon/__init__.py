"""tradectl: everything that runs."""


def tradectl_version() -> str:
    """The installed distribution's version, shown by ``--version`` and ``status``."""
    # Imported here: importlib.metadata costs about 20 ms, which every command would pay at
    # start-up for a version most of them never show.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tradectl")
    except PackageNotFoundError:
        return "unknown (not installed)"
