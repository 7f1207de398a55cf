"""Regenerate the generated sections of README.md (the configuration and self-check tables)."""

from __future__ import annotations

import re
from pathlib import Path

from oauth_server.config import settings_table
from oauth_server.selfcheck import rules_table

README = Path(__file__).resolve().parents[1] / "README.md"
PATTERN = re.compile(r"(<!-- config-table:[^>]*-->\n).*?(\n<!-- /config-table -->)", re.S)
SELFCHECK = re.compile(r"(<!-- selfcheck-table:[^>]*-->\n).*?(\n<!-- /selfcheck-table -->)", re.S)


def main() -> None:
    text = README.read_text()
    updated = PATTERN.sub(lambda m: m.group(1) + settings_table() + m.group(2), text)
    updated = SELFCHECK.sub(lambda m: m.group(1) + rules_table() + m.group(2), updated)
    README.write_text(updated)


if __name__ == "__main__":
    main()
