"""Administration of the server, framework-free: used by the admin API (and the CLI)."""

from __future__ import annotations

from oauth_server.admin.service import ADMIN_REALM, Actor, Admin, Page, client_metadata_field

__all__ = ["ADMIN_REALM", "Actor", "Admin", "Page", "client_metadata_field"]
