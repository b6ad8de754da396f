"""Secrets at rest: salted scrypt hashes, constant-time comparison, unguessable keys and ids."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

# scrypt cost: n=2**14, r=8, p=1 needs 16 MiB and ~40 ms. Passwords are low-entropy, so this matters for them;
# API keys carry 256 random bits, but we hash them the same way so a leaked table reveals nothing useful.
_N, _R, _P, _DKLEN = 2**14, 8, 1, 32
_SCHEME = "scrypt"


def hash_secret(secret: str) -> str:
    """``scrypt$n$r$p$salt$hash`` (base64url); the only form in which passwords and API keys are stored."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=_DKLEN)
    return "$".join([_SCHEME, str(_N), str(_R), str(_P), _b64(salt), _b64(digest)])


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != _SCHEME:
            return False
        expected = _unb64(digest)
        actual = hashlib.scrypt(
            secret.encode("utf-8"), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A stored-form hash of nothing anyone knows: verified when there is no real hash to check (an unknown user
    or key id), so the refusal costs the same scrypt as a wrong secret. Built on first use, not at import."""
    return hash_secret("qbsync-dummy-secret-" + secrets.token_hex(8))


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def new_id(prefix: str = "") -> str:
    """A random, URL-safe identifier (128 bits)."""
    return prefix + secrets.token_hex(16)


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def fingerprint(secret: str) -> str:
    """A non-reversible short digest, safe to use as an in-memory cache key (never stored)."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
