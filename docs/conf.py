"""Sphinx configuration for the scs_django documentation.

Only built-in Sphinx features and the default theme are used, so the docs
build offline with nothing installed beyond Sphinx itself.
"""

import re
from pathlib import Path

# Read the version from the package source instead of importing it: the docs
# must build without Django configured.
_init = (
    Path(__file__).resolve().parent.parent / "scs_django" / "__init__.py"
).read_text()
release = re.search(r'^__version__ = "([^"]+)"', _init, re.MULTILINE).group(1)
version = ".".join(release.split(".")[:2])

project = "scs_django"
author = "the scs_django developers"
copyright = "2026, the scs_django developers"

extensions = []
root_doc = "index"
exclude_patterns = ["_build"]
nitpicky = False
highlight_language = "python"
pygments_style = "sphinx"

html_theme = "alabaster"
html_title = f"scs_django {release}"
html_theme_options = {
    "description": "Secure sessions for Django",
    "fixed_sidebar": False,
}
