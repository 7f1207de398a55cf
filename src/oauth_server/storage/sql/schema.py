"""Table definitions (SQLAlchemy Core). Alembic migrations are the source of truth for the
database; this module mirrors the latest revision for queries, and a test checks they agree."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    true,
)

__all__ = [
    "audit_events",
    "authorization_codes",
    "browser_sessions",
    "changes",
    "client_registrations",
    "client_revocations",
    "clients",
    "consents",
    "initial_access_tokens",
    "interactions",
    "issued_tokens",
    "metadata",
    "opaque_tokens",
    "refresh_families",
    "refresh_tokens",
    "restaurants",
    "revoked_tokens",
    "server_meta",
    "signing_keys",
    "users",
]

metadata = MetaData()

# Integer Unix seconds everywhere: portable, compact, cheap to compare and index.
Timestamp = BigInteger

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(255), primary_key=True),
    Column("secret_hash", String(255), nullable=True),
    Column("name", String(255), nullable=False, server_default=""),
    Column("grant_types", Text, nullable=False),
    Column("scopes", Text, nullable=False),
    Column("default_scopes", Text, nullable=False),
    Column("token_format", String(16), nullable=False),
    Column("resources", Text, nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Column("introspect", Text, nullable=False, server_default=""),
    # Migration 0007: rows registered before client types are confidential clients that may
    # use either secret method, as they could then.
    Column("client_type", String(16), nullable=False, server_default="confidential"),
    Column(
        "auth_methods",
        Text,
        nullable=False,
        server_default="client_secret_basic client_secret_post",
    ),
    # Space-separated, in registration order: a valid redirect URI has no whitespace.
    Column("redirect_uris", Text, nullable=False, server_default=""),
    Column("post_logout_redirect_uris", Text, nullable=False, server_default=""),
    Column("require_consent", Boolean, nullable=False, server_default=true()),
    Column("require_pkce", Boolean, nullable=False, server_default=true()),
)

opaque_tokens = Table(
    "opaque_tokens",
    metadata,
    # Time-ordered: inserts append to the index (see oauth_server.crypto.SplitToken).
    Column("selector", LargeBinary(12), primary_key=True),
    Column("verifier_hash", LargeBinary(32), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("scope", Text, nullable=False),
    Column("audience", Text, nullable=False),
    Column("issued_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    Index("ix_opaque_tokens_expires_at", "expires_at"),
    # The primary key is the table: no separate rowid tree to update on every insert.
    sqlite_with_rowid=False,
)

restaurants = Table(
    "restaurants",
    metadata,
    Column("restaurant_id", String(24), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("address", String(500), nullable=False),
    Column("open", String(32), nullable=False, server_default=""),
    Column("close", String(32), nullable=False, server_default=""),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    # Unique: of several instances racing to create the next key, exactly one succeeds.
    Column("generation", Integer, nullable=False, unique=True),
    Column("alg", String(16), nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("private_key", LargeBinary, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("activates_at", Timestamp, nullable=False),
    Column("removed_at", Timestamp, nullable=True),
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("client_id", String(255), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=False),
    Index("ix_revoked_tokens_expires_at", "expires_at"),
)

client_revocations = Table(
    "client_revocations",
    metadata,
    # Tokens issued to the client at or before revoked_at are void (deleted, or revoke-tokens).
    Column("client_id", String(255), primary_key=True),
    Column("revoked_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Index("ix_client_revocations_expires_at", "expires_at"),
)

server_meta = Table(
    "server_meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

changes = Table(
    "changes",
    metadata,
    Column(
        "change_id",
        Integer().with_variant(BigInteger, "postgresql"),
        primary_key=True,
        autoincrement=True,
    ),
    Column("kind", String(32), nullable=False),
    Column("key", String(255), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_changes_created_at", "created_at"),
    # Ids must never be reused after a purge: readers keep a high-water mark.
    sqlite_autoincrement=True,
)

audit_events = Table(
    "audit_events",
    metadata,
    # One chain per writing process: instances never touch each other's rows or sequences.
    Column("chain_id", String(32), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("kind", String(64), nullable=False),
    Column("data", Text, nullable=False),
    Column("digest", LargeBinary(32), nullable=False),
    # Copies of the event's client_id and user_id fields, for queries (migration 0015).
    Column("client_id", String(256), nullable=True),
    Column("user_id", String(256), nullable=True),
    PrimaryKeyConstraint("chain_id", "seq", name="pk_audit_events"),
    Index("ix_audit_events_at_ms", "at_ms"),
    Index("ix_audit_events_kind_at_ms", "kind", "at_ms"),
    Index("ix_audit_events_client_id_at_ms", "client_id", "at_ms"),
    Index("ix_audit_events_user_id_at_ms", "user_id", "at_ms"),
)

users = Table(
    "users",
    metadata,
    # Random and never reused: the OIDC `sub`, independent of the (renamable) username.
    Column("user_id", String(64), primary_key=True),
    # Normalized (lower-case) by oauth_server.accounts, so uniqueness is case-insensitive.
    Column("username", String(64), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("name", String(255), nullable=False, server_default=""),
    Column("given_name", String(255), nullable=False, server_default=""),
    Column("family_name", String(255), nullable=False, server_default=""),
    Column("preferred_username", String(255), nullable=False, server_default=""),
    Column("email", String(254), nullable=False, server_default=""),
    Column("email_verified", Boolean, nullable=False, server_default=false()),
    Column("disabled", Boolean, nullable=False, server_default=false()),
    # May sign in to the admin console and be granted the `admin` scope (migration 0010).
    Column("is_admin", Boolean, nullable=False, server_default=false()),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    UniqueConstraint("username", name="uq_users_username"),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("selector", LargeBinary(12), primary_key=True),
    Column("verifier_hash", LargeBinary(32), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(16), nullable=False),
    Column("resource", Text, nullable=False),
    Column("nonce", Text, nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("auth_time", Timestamp, nullable=False),
    Column("issued_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("used_at", Timestamp, nullable=True),
    Column("replayed_at", Timestamp, nullable=True),
    Column("refresh_family_id", String(64), nullable=True),
    Index("ix_authorization_codes_expires_at", "expires_at"),
)

refresh_families = Table(
    "refresh_families",
    metadata,
    Column("family_id", String(64), primary_key=True),
    Column("client_id", String(255), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    Index("ix_refresh_families_user_id", "user_id"),
    Index("ix_refresh_families_expires_at", "expires_at"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("selector", LargeBinary(12), primary_key=True),
    Column("verifier_hash", LargeBinary(32), nullable=False),
    Column("family_id", String(64), nullable=False),
    Column("parent", LargeBinary(12), nullable=True),
    Column("client_id", String(255), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("scope", Text, nullable=False),
    Column("resource", Text, nullable=False),
    Column("issued_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("rotated_at", Timestamp, nullable=True),
    Column("revoked_at", Timestamp, nullable=True),
    # Set by the one grace-window retry a rotated token is allowed.
    Column("grace_used", Boolean, nullable=False, server_default=false()),
    # The sign-in the family continues (0009): the ID token of a refresh keeps its auth_time.
    Column("auth_time", Timestamp, nullable=False, server_default="0"),
    Column("session_id", String(64), nullable=False, server_default=""),
    Index("ix_refresh_tokens_family_id", "family_id"),
    Index("ix_refresh_tokens_expires_at", "expires_at"),
    # A rotated token's successor(s): the reuse check looks them up by parent.
    Index("ix_refresh_tokens_parent", "parent"),
    # Logout revokes the families of the ended browser session (0013).
    Index("ix_refresh_tokens_session_id", "session_id"),
)

issued_tokens = Table(
    "issued_tokens",
    metadata,
    # Access tokens issued from a code or a refresh family, voided if that code is replayed
    # or that family revoked.
    Column("token_id", String(64), primary_key=True),
    Column("token_format", String(16), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("code_selector", LargeBinary(12), nullable=True),
    Column("family_id", String(64), nullable=True),
    Index("ix_issued_tokens_code_selector", "code_selector"),
    Index("ix_issued_tokens_family_id", "family_id"),
    Index("ix_issued_tokens_expires_at", "expires_at"),
)

browser_sessions = Table(
    "browser_sessions",
    metadata,
    Column("selector", LargeBinary(12), primary_key=True),
    Column("verifier_hash", LargeBinary(32), nullable=False),
    Column("session_id", String(64), nullable=False),
    Column("user_id", String(64), nullable=False),
    Column("auth_time", Timestamp, nullable=False),
    Column("amr", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("last_seen", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("ended_at", Timestamp, nullable=True),
    # Migration 0012: what the account page shows about a session ("" when unknown).
    Column("user_agent", String(256), nullable=False, server_default=""),
    Column("address", String(64), nullable=False, server_default=""),
    UniqueConstraint("session_id", name="uq_browser_sessions_session_id"),
    Index("ix_browser_sessions_user_id", "user_id"),
    Index("ix_browser_sessions_expires_at", "expires_at"),
)

consents = Table(
    "consents",
    metadata,
    Column("user_id", String(64), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    PrimaryKeyConstraint("user_id", "client_id", name="pk_consents"),
)

interactions = Table(
    "interactions",
    metadata,
    Column("selector", LargeBinary(12), primary_key=True),
    Column("verifier_hash", LargeBinary(32), nullable=False),
    Column("browser_hash", LargeBinary(32), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("params", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("user_id", String(64), nullable=True),
    Column("auth_time", Timestamp, nullable=True),
    Column("amr", Text, nullable=False, server_default=""),
    Column("session_id", String(64), nullable=True),
    Column("consented", Text, nullable=True),
    Column("completed_at", Timestamp, nullable=True),
    Index("ix_interactions_expires_at", "expires_at"),
)

# Dynamic client registration (0011). Secrets as SHA-256 of the split token's secret part.
initial_access_tokens = Table(
    "initial_access_tokens",
    metadata,
    Column("selector", LargeBinary(12), primary_key=True),
    Column("verifier_hash", LargeBinary(32), nullable=False),
    Column("description", String(255), nullable=False, server_default=""),
    Column("max_clients", Integer, nullable=False),
    Column("clients_registered", Integer, nullable=False, server_default="0"),
    Column("created_at", Timestamp, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
)

client_registrations = Table(
    "client_registrations",
    metadata,
    # Deleted with the client, in the client's deletion transaction (no foreign keys here).
    Column("client_id", String(255), primary_key=True),
    Column("token_selector", LargeBinary(12), nullable=False),
    Column("token_hash", LargeBinary(32), nullable=False),
    Column("initial_token", LargeBinary(12), nullable=True),
    Column("metadata", Text, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    Index("ix_client_registrations_initial_token", "initial_token"),
)
