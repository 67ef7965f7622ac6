"""Suite-wide test settings."""

import os

from hypothesis import settings

# CI explores the same examples on every run, so a submission is judged on its own change and
# not on the luck of a new random draw; developers' runs keep drawing fresh examples (and keep
# the failures they find in .hypothesis/), which is where new bugs are found.
settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
