"""Signing keys: generation, encryption at rest, the per-process key ring, rotation, JWKS.

Keys live in the database so every instance agrees; private keys are stored encrypted with
AES-256-GCM under a key derived (HKDF-SHA256) from ``OAUTH_SERVER_SECRET_KEY``. The associated
data is what the row says about the key — its kid, its algorithm and its public JWK
(:func:`key_binding`) — so whoever can write the table but lacks the secret cannot publish a
key of their own under a stored private key, or change a key's algorithm: the row no longer
decrypts, and the key is refused. ``keys remove`` erases the ciphertext, so clearing the
removal later brings nothing back. Rows written before the binding (the kid alone was the
associated data) are re-encrypted with it the first time a process with the secret loads them,
after checking that the public JWK and algorithm agree with the private key. Each process
parses the keys once into a :class:`KeyRing`.

A key's life is fixed by timestamps, so every instance reaches the same answer on its own:

* **published** from creation: it is in the JWKS before it signs (``key_publish_lead``);
* **active** from ``activates_at`` until the next key's ``activates_at``: it signs;
* **retired** after that: it still verifies, and stays in the JWKS, until every token it can
  have signed has expired (``access_token_ttl`` + leeway), then it leaves the JWKS;
* **removed** (``oauth-server keys remove``, for a compromised key): gone at once.

A key whose window has ended is still stored, for ``oauth-server keys list``, until the purge
(:mod:`oauth_server.maintenance`) deletes it a margin later (:func:`expired_keys`).
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import logging
import os
import warnings
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwk
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey
from joserfc.jws import JWSRegistry

from oauth_server.algorithms import SIGNING_ALGS, SigningAlg
from oauth_server.audit import NO_AUDIT, AuditRecorder
from oauth_server.background import Periodic
from oauth_server.clock import Clock
from oauth_server.errors import TemporarilyUnavailable
from oauth_server.storage.errors import log_background_failure
from oauth_server.storage.models import Change, SigningKeyRecord
from oauth_server.storage.protocols import Storage

__all__ = [
    "KEYS_CHANGE",
    "KeyEncryption",
    "KeyError_",
    "KeyManager",
    "KeyRing",
    "LoadedKey",
    "NoSigningKey",
    "expired_keys",
    "generate_private_jwk",
    "key_binding",
]

log = logging.getLogger(__name__)
# Offering EdDSA is deliberate (see SigningAlg); joserfc's deprecation notice is not news.
warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)

KEYS_CHANGE = "keys"
AnyKey = ECKey | RSAKey | OKPKey
# Tokens signed by a key may be verified this long after it stopped signing, on top of the
# token lifetime and leeway: covers instances whose clocks lag a little.
_RETIRE_MARGIN = 60
_HKDF_INFO = b"oauth-server/signing-keys/v1"
_RETRY_OVERDUE = 1.0


class KeyError_(Exception):
    """Signing keys cannot be used (undecryptable, none usable); the message says why."""


class NoSigningKey(TemporarilyUnavailable, KeyError_):
    """No usable key signs now (the active one was refused): a token request gets 503 with
    ``Retry-After``, not a 500, until an operator withdraws it and a new key takes over."""


def key_binding(*, kid: str, alg: str, public_jwk: str) -> bytes:
    """The associated data that ties an encrypted private key to its row: canonical JSON
    (sorted keys, no spaces) of the kid, the algorithm and the public JWK, so that a change of
    any of them, but not of the JWK's spelling, fails decryption."""
    try:
        public = orjson.loads(public_jwk)
    except orjson.JSONDecodeError:
        raise KeyError_(f"signing key {kid} has a malformed public JWK") from None
    return orjson.dumps(
        {"alg": alg, "kid": kid, "public_jwk": public, "v": 2}, option=orjson.OPT_SORT_KEYS
    )


class KeyEncryption:
    """AES-256-GCM under a key derived from the server secret; :func:`key_binding` is the
    associated data."""

    def __init__(self, secret: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_HKDF_INFO).derive(
            secret
        )
        self._aead = AESGCM(derived)

    def encrypt(self, plaintext: bytes, *, binding: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, binding)

    def decrypt(self, blob: bytes, *, kid: str, binding: bytes) -> bytes:
        plaintext = self._open(blob, binding)
        if plaintext is None:
            raise KeyError_(
                f"cannot decrypt signing key {kid}: OAUTH_SERVER_SECRET_KEY differs from the one "
                "the key was stored with, or the key's row was changed (its kid, alg or "
                "public_jwk no longer match the encrypted private key)"
            )
        return plaintext

    def decrypt_unbound(self, blob: bytes, *, kid: str) -> bytes | None:
        """A row written before :func:`key_binding`: the kid alone was the associated data."""
        return self._open(blob, kid.encode("utf-8"))

    def _open(self, blob: bytes, associated: bytes) -> bytes | None:
        try:
            return self._aead.decrypt(blob[:12], blob[12:], associated)
        except (InvalidTag, ValueError):
            return None


_KEY_TYPES: dict[str, type[AnyKey]] = {
    "ES256": ECKey,
    "RS256": RSAKey,
    "Ed25519": OKPKey,
    "EdDSA": OKPKey,
}


def generate_private_jwk(alg: SigningAlg) -> AnyKey:
    key: AnyKey
    if alg == "ES256":
        key = jwk.generate_key("EC", "P-256")
    elif alg == "RS256":
        key = jwk.generate_key("RSA", 2048)
    else:
        key = jwk.generate_key("OKP", "Ed25519")
    return key


@dataclass(frozen=True, slots=True)
class LoadedKey:
    """A parsed key and its place in the rotation timeline."""

    kid: str
    alg: SigningAlg
    generation: int
    activates_at: int
    key: AnyKey
    public_jwk: dict[str, Any]
    signs_until: int | None = None
    """When the next key takes over; ``None`` for the newest."""
    verifies_until: int | None = None
    """When it leaves the JWKS; ``None`` while no successor is active."""

    def sign_compact(self, header_segment: bytes, claims: bytes) -> str:
        """A JWS compact serialization (RFC 7515 §7.1) of ``claims`` under a header whose
        base64url form is ``header_segment``, signed by joserfc's implementation of our alg.

        The same bytes joserfc's ``jwt.encode`` produces, without re-serializing a constant
        header and re-resolving the algorithm for every token (about 40 µs of its 60).
        """
        signing_input = header_segment + b"." + _b64url(claims)
        signature = JWSRegistry.algorithms[self.alg].sign(signing_input, self.key)
        return (signing_input + b"." + _b64url(signature)).decode("ascii")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


class KeyRing:
    """This process's parsed keys, and the answers derived from them at a given time."""

    def __init__(self, *, token_ttl: int, leeway: int) -> None:
        self._retire_after = token_ttl + leeway + _RETIRE_MARGIN
        self._leeway = leeway
        self._keys: list[LoadedKey] = []
        self._by_kid: dict[str, LoadedKey] = {}
        self._valid_from = 0.0
        self._valid_until = -1.0
        self._signing: LoadedKey | None = None
        self._jwks = b'{"keys":[]}'

    def replace(self, keys: Sequence[LoadedKey]) -> None:
        ordered = sorted(keys, key=lambda k: (k.activates_at, k.generation))
        timeline: list[LoadedKey] = []
        for index, key in enumerate(ordered):
            successor = ordered[index + 1] if index + 1 < len(ordered) else None
            signs_until = successor.activates_at if successor else None
            verifies_until = signs_until + self._retire_after if signs_until is not None else None
            timeline.append(
                LoadedKey(
                    kid=key.kid,
                    alg=key.alg,
                    generation=key.generation,
                    activates_at=key.activates_at,
                    key=key.key,
                    public_jwk=key.public_jwk,
                    signs_until=signs_until,
                    verifies_until=verifies_until,
                )
            )
        self._keys = timeline
        self._by_kid = {key.kid: key for key in timeline}
        self._valid_until = -1.0  # recompute derived answers on next use

    @property
    def retire_after(self) -> int:
        """Seconds a key keeps verifying after its successor takes over."""
        return self._retire_after

    @property
    def timeline(self) -> list[LoadedKey]:
        """Keys in the order they sign, with their computed windows."""
        return list(self._keys)

    def _refresh(self, now: float) -> None:
        if self._valid_from <= now < self._valid_until:
            return
        signing = None
        published = []
        transitions = []
        for key in self._keys:
            if key.activates_at <= now and (key.signs_until is None or now < key.signs_until):
                signing = key
            if key.verifies_until is None or now < key.verifies_until:
                published.append(key.public_jwk)
            transitions += [
                t
                for t in (key.activates_at, key.signs_until, key.verifies_until)
                if t is not None and t > now
            ]
        self._signing = signing
        self._jwks = orjson.dumps({"keys": published})
        self._valid_from = now
        self._valid_until = min(transitions, default=float("inf"))

    def signing_key(self, now: float) -> LoadedKey:
        self._refresh(now)
        if self._signing is None:
            raise NoSigningKey("no signing key is usable", detail="no signing key is active")
        return self._signing

    def verification_key(self, kid: str, now: float) -> LoadedKey | None:
        """The key ``kid`` if tokens it signed may be accepted at ``now``."""
        key = self._by_kid.get(kid)
        if key is None or key.activates_at > now + self._leeway:
            return None
        if key.verifies_until is not None and now >= key.verifies_until:
            return None
        return key

    def jwks(self, now: float) -> bytes:
        """The JWK Set document (public keys only), as JSON bytes."""
        self._refresh(now)
        return self._jwks


def expired_keys(
    records: Sequence[SigningKeyRecord], *, now: float, retire_after: int, margin: int
) -> list[str]:
    """The kids of stored keys that nothing needs any more at ``now``.

    A key is needed while it is pending, active or retired, that is until ``verifies_until``
    (its successor's activation + ``retire_after``, as in :class:`KeyRing`); a removed key
    verifies nothing, and is kept as long for the record. Either is deletable ``margin``
    seconds after that. Keys before an expired one have expired too, so deleting them never
    moves another key's window. The newest generation is never deleted: the next key's
    generation number is derived from it.
    """
    if not records:
        return []
    newest = max(record.generation for record in records)
    live = sorted(
        (r for r in records if r.removed_at is None), key=lambda r: (r.activates_at, r.generation)
    )
    ends = {key.kid: nxt.activates_at + retire_after for key, nxt in itertools.pairwise(live)}
    ends.update({r.kid: r.removed_at + retire_after for r in records if r.removed_at is not None})
    return [
        r.kid
        for r in records
        if r.generation != newest and r.kid in ends and ends[r.kid] + margin <= now
    ]


class KeyManager:
    """Keeps the key ring in step with the database and the rotation schedule."""

    def __init__(
        self,
        storage: Storage,
        ring: KeyRing,
        *,
        encryption: KeyEncryption,
        clock: Clock,
        alg: SigningAlg = "ES256",
        rotation_interval: int = 30 * 86_400,
        publish_lead: int = 900,
        min_reload_interval: float = 1.0,
        audit: AuditRecorder = NO_AUDIT,
    ) -> None:
        self._storage = storage
        self.ring = ring
        self._encryption = encryption
        self._clock = clock
        self._alg = alg
        self._rotation_interval = rotation_interval
        self._publish_lead = publish_lead
        self._min_reload_interval = min_reload_interval
        self._audit = audit
        self._last_reload = float("-inf")
        self._records: list[SigningKeyRecord] = []
        # kid -> (the stored fields the key was parsed from, the parsed key)
        self._parsed: dict[str, tuple[tuple[str, str, bytes], LoadedKey]] = {}
        self._schedule: Periodic | None = None
        self._reload_lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self._refused: dict[str, str] = {}
        self._on_withdrawn: list[Callable[[], None]] = []

    async def load(self) -> None:
        """Read the keys and parse any not parsed before (parsing happens once per key).

        A key that fails its integrity check is refused: left out of the ring (it neither
        signs nor verifies, and is not published) and reported by a :class:`KeyError_` raised
        once the ring holds every other key."""
        self._last_reload = self._clock.now()
        records = await self._storage.keys.list()
        loaded = []
        refused: dict[str, str] = {}
        for record in records:
            if record.removed_at is not None:
                continue
            # A row whose fields changed since they were parsed is parsed (and checked) again.
            fields = (record.alg, record.public_jwk, record.private_key)
            known = self._parsed.get(record.kid)
            if known is not None and known[0] == fields:
                parsed = known[1]
            else:
                try:
                    parsed = await self._parse(record)
                except KeyError_ as exc:
                    refused[record.kid] = str(exc)
                    continue
                self._parsed[record.kid] = (fields, parsed)
            loaded.append(parsed)
        self._records = records
        self._refused = refused
        withdrawn = {key.kid for key in self.ring.timeline} - {key.kid for key in loaded}
        self.ring.replace(loaded)
        if withdrawn:
            # In the same step as the ring change: no token verified meanwhile with the old
            # ring can be left in a verifier's cache.
            for listener in self._on_withdrawn:
                listener()
        stored = {record.kid for record in records}
        self._parsed = {kid: key for kid, key in self._parsed.items() if kid in stored}
        if refused:
            for kid, reason in refused.items():
                log.error("refusing signing key %s: %s", kid, reason)
            raise KeyError_(
                "\n".join(refused.values())
                + "\nwithdraw a tampered key with `oauth-server keys remove KID`"
            )

    def on_withdrawn(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` whenever a reload leaves out a key the ring held (removed,
        purged or refused), right after the ring changes."""
        self._on_withdrawn.append(listener)

    def verification_key(self, kid: str, now: float) -> LoadedKey | None:
        return self.ring.verification_key(kid, now)

    async def reload_for_unknown_kid(self) -> bool:
        """Reload once when a token names a kid this process has not seen — another instance
        may have rotated a moment ago. Rate-limited, so unknown kids cannot drive load."""
        async with self._reload_lock:
            if self._clock.now() - self._last_reload < self._min_reload_interval:
                return False
            with suppress(KeyError_):  # logged by load(); the ring holds every key that passed
                await self.load()
            return True

    async def _parse(self, record: SigningKeyRecord) -> LoadedKey:
        kid, alg = record.kid, record.alg
        if not record.private_key:
            raise KeyError_(f"signing key {kid} was removed: its private key has been erased")
        if alg not in SIGNING_ALGS:
            raise KeyError_(f"signing key {kid} has an unsupported algorithm {alg}")
        binding = key_binding(kid=kid, alg=alg, public_jwk=record.public_jwk)
        private = self._encryption.decrypt_unbound(record.private_key, kid=kid)
        if private is None:
            private = self._encryption.decrypt(record.private_key, kid=kid, binding=binding)
            return self._loaded(record, alg, private)
        # Written before the binding: check the row against the key itself, then bind it.
        loaded = self._loaded(record, alg, private)
        upgraded = self._encryption.encrypt(private, binding=binding)
        if await self._storage.keys.replace_private_key(
            kid=kid, old=record.private_key, new=upgraded
        ):
            log.warning("re-encrypted signing key %s with its kid, alg and public JWK bound", kid)
        return loaded

    @staticmethod
    def _loaded(record: SigningKeyRecord, alg: SigningAlg, private: bytes) -> LoadedKey:
        kid = record.kid
        key = jwk.import_key(orjson.loads(private))
        public = orjson.loads(record.public_jwk)
        if not isinstance(key, _KEY_TYPES[alg]) or not isinstance(public, dict):
            raise KeyError_(f"signing key {kid}: the stored alg {alg} does not fit the key")
        expected = {**key.as_dict(private=False), "kid": kid, "alg": alg}
        if any(public.get(name) != value for name, value in expected.items()):
            raise KeyError_(f"signing key {kid}: the stored public JWK is not the key's own")
        return LoadedKey(
            kid=kid,
            alg=alg,
            generation=record.generation,
            activates_at=record.activates_at,
            key=key,
            public_jwk=public,
        )

    async def create(
        self,
        *,
        activates_at: int,
        alg: SigningAlg | None = None,
        audit: AuditRecorder | None = None,
    ) -> str | None:
        """Create the next key; ``None`` when another instance created that generation first.
        ``audit`` records the event instead of the manager's own recorder (an admin's actor)."""
        alg = alg or self._alg
        key = generate_private_jwk(alg)
        kid = key.thumbprint()
        public = {**key.as_dict(private=False), "kid": kid, "use": "sig", "alg": alg}
        public_jwk = orjson.dumps(public).decode()
        private = orjson.dumps(key.as_dict(private=True))
        generation = max((r.generation for r in self._records), default=0) + 1
        now = int(self._clock.now())
        added = await self._storage.keys.add(
            key=SigningKeyRecord(
                kid=kid,
                generation=generation,
                alg=alg,
                public_jwk=public_jwk,
                private_key=self._encryption.encrypt(
                    private, binding=key_binding(kid=kid, alg=alg, public_jwk=public_jwk)
                ),
                created_at=now,
                activates_at=activates_at,
            )
        )
        if added:
            await self._storage.changes.publish(kind=KEYS_CHANGE, key=kid, now=now)
            (audit or self._audit).record("signing_key_created", kid=kid, alg=alg)
            log.warning(
                "created signing key %s (%s), active from %d",
                kid,
                alg,
                activates_at,
                extra={
                    "fields": {
                        "event": "signing_key_created",
                        "kid": kid,
                        "alg": alg,
                        "activates_at": activates_at,
                    }
                },
            )
        await self.load()
        return kid if added else None

    async def ensure_current(self, *, audit: AuditRecorder | None = None) -> None:
        """Create the first key, or the next one when the schedule says it is due."""
        await self.load()
        now = int(self._clock.now())
        live = [r for r in self._records if r.removed_at is None]
        if not any(r.activates_at <= now for r in live):
            await self.create(activates_at=now, audit=audit)
            return
        due = self._next_due()
        if due is not None and now >= due:
            newest = max(live, key=lambda r: (r.activates_at, r.generation))
            takeover = newest.activates_at + self._rotation_interval
            await self.create(activates_at=max(takeover, now + self._publish_lead), audit=audit)

    def _next_due(self) -> float | None:
        """When the next key must be created (a publish lead before it takes over), judged on
        the keys last read; ``None`` when rotation is off. Now, if no key signs yet."""
        live = [r for r in self._records if r.removed_at is None]
        if not any(r.activates_at <= self._clock.now() for r in live):
            return self._clock.now()
        if self._rotation_interval <= 0:
            return None
        newest = max(live, key=lambda r: (r.activates_at, r.generation))
        return newest.activates_at + self._rotation_interval - self._publish_lead

    def next_rotation(self) -> float | None:
        """When the next key takes over signing, judged on the keys last read: the earliest
        key published but not yet signing, else when the schedule will make one sign; ``None``
        when nothing is scheduled (rotation off, no pending key)."""
        now = self._clock.now()
        live = [r for r in self._records if r.removed_at is None and r.kid not in self._refused]
        pending = [r.activates_at for r in live if r.activates_at > now]
        if pending:
            return float(min(pending))
        if self._rotation_interval <= 0 or not live:
            return None
        newest = max(live, key=lambda r: (r.activates_at, r.generation))
        return float(max(newest.activates_at + self._rotation_interval, now))

    def seconds_to_next_check(self, *, poll: float) -> float:
        """How long the schedule sleeps: until the next key is due, so that a key signs for
        ``rotation_interval`` and not up to a poll longer, and at most ``poll`` (another
        instance may have changed the keys). An overdue check (the last one failed) is retried
        after a second, not in a busy loop."""
        due = self._next_due()
        if due is None:
            return poll
        delay = due - self._clock.now()
        return min(poll, delay if delay > 0 else _RETRY_OVERDUE)

    async def rotate(
        self, *, immediately: bool = False, audit: AuditRecorder | None = None
    ) -> str | None:
        """Publish a new key now; it signs after the publish lead, or at once if asked."""
        await self.load()
        now = int(self._clock.now())
        activates_at = now if immediately else now + self._publish_lead
        return await self.create(activates_at=activates_at, audit=audit)

    async def remove(self, kid: str, *, audit: AuditRecorder | None = None) -> bool:
        """Withdraw a key at once; if it was the signing key, a new one takes over now."""
        now = int(self._clock.now())
        if not await self._storage.keys.remove(kid=kid, now=now):
            return False
        await self._storage.changes.publish(kind=KEYS_CHANGE, key=kid, now=now)
        (audit or self._audit).record("signing_key_removed", kid=kid)
        await self.ensure_current(audit=audit)
        return True

    async def purge_expired(self, *, margin: int) -> list[str]:
        """Delete the keys :func:`expired_keys` names, judged on a fresh read of the table
        (not on this process's ring, which may lag); returns the kids this call deleted."""
        records = await self._storage.keys.list()
        now = self._clock.now()
        doomed = expired_keys(records, now=now, retire_after=self.ring.retire_after, margin=margin)
        deleted = [kid for kid in doomed if await self._storage.keys.delete(kid=kid)]
        for kid in deleted:
            await self._storage.changes.publish(kind=KEYS_CHANGE, key=kid, now=int(now))
            self._audit.record("signing_key_purged", kid=kid)
            log.info(
                "purged signing key %s: its verification window has ended",
                kid,
                extra={"fields": {"event": "signing_key_purged", "kid": kid}},
            )
        if deleted:
            await self.load()
        return deleted

    def describe(self) -> list[dict[str, Any]]:
        """Every stored key with its state now (for operators)."""
        now = self._clock.now()
        timeline = {key.kid: key for key in self.ring.timeline}
        rows = []
        for record in self._records:
            key = timeline.get(record.kid)
            if record.removed_at is not None:
                state = "removed"
            elif record.kid in self._refused:
                state = "refused"
            elif key is None or record.activates_at > now:
                state = "pending"
            elif key.signs_until is None or now < key.signs_until:
                state = "active"
            elif key.verifies_until is not None and now < key.verifies_until:
                state = "retired"
            else:
                state = "expired"
            rows.append(
                {
                    "kid": record.kid,
                    "alg": record.alg,
                    "generation": record.generation,
                    "state": state,
                    "activates_at": record.activates_at,
                    "signs_until": key.signs_until if key else None,
                    "verifies_until": key.verifies_until if key else None,
                }
            )
        return rows

    def on_change(self, change: Change) -> None:
        """Another process changed the keys: reload in the background."""
        task = asyncio.get_running_loop().create_task(self._reload_quietly())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _reload_quietly(self) -> None:
        try:
            await self.load()
        except Exception as exc:
            log_background_failure(log, "reloading signing keys", exc)

    async def start(self, *, check_every: float = 60.0) -> None:
        await self.ensure_current()
        self._schedule = Periodic(
            "key-rotation",
            self.ensure_current,
            interval=lambda: self.seconds_to_next_check(poll=check_every),
            on_error=lambda exc: log_background_failure(log, "key rotation check", exc),
        )
        self._schedule.start()

    async def stop(self) -> None:
        if self._schedule is not None:
            await self._schedule.stop()
