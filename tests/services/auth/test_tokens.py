"""The shared token format (`services.tokens`): what the verifier refuses, JWKS over HTTP,
and key rotation seen by a verifier in another process."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.rsa import generate_private_key
from fastapi import FastAPI

from services.auth.context import AuthContext
from services.auth.keys import KeyStore, SigningKey
from services.auth.settings import AuthSettings
from services.tokens import InvalidToken, TokenVerifier, static_jwks, url_jwks
from tests.services.auth.support import bearer, login, register, register_and_login
from tests.support.live import serve_in_thread


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    """An HS256 token by hand: PyJWT refuses to use a public key as an HMAC secret."""
    signing_input = (b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
                     + "." + b64(json.dumps(claims).encode()))
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def sign(claims: dict[str, Any], key: Any, kid: str | None, alg: str = "EdDSA") -> str:
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid} if kid else None)


def bad_tokens(good: str, key: SigningKey, settings: AuthSettings) -> dict[str, tuple[str, str]]:
    """name -> (token, what the refusal says)."""
    now = int(time.time())
    claims = {"sub": "1", "username": "ada", "roles": ["user", "admin"], "iat": now,
              "exp": now + 60, "iss": settings.issuer, "aud": settings.audience}
    header, payload, signature = good.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["roles"] = ["user", "admin"]
    public_pem = key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public_raw = key.private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    rsa = generate_private_key(public_exponent=65537, key_size=2048)
    stranger = Ed25519PrivateKey.generate()
    return {
        "expired": (sign({**claims, "iat": now - 100, "exp": now - 50}, key.private, key.kid),
                    "expired"),
        "tampered payload": (f"{header}.{b64(json.dumps(forged).encode())}.{signature}",
                             "Signature verification failed"),
        "tampered signature": (f"{header}.{payload}.{b64(b'x' * 64)}",
                               "Signature verification failed"),
        "alg none": (jwt.encode(claims, "", algorithm="none", headers={"kid": key.kid}),
                     "'none' is not accepted"),
        "hs256 with the public key as secret": (hs256(claims, public_pem, key.kid),
                                                "'HS256' is not accepted"),
        "hs256 with the raw public key": (hs256(claims, public_raw, key.kid),
                                          "'HS256' is not accepted"),
        "rs256": (sign(claims, rsa, key.kid, "RS256"), "'RS256' is not accepted"),
        "wrong key, right kid": (sign(claims, stranger, key.kid),
                                 "Signature verification failed"),
        "unknown kid": (sign(claims, stranger, "who-knows"), "unknown key"),
        "no kid": (sign(claims, key.private, None), "no key id"),
        "wrong audience": (sign({**claims, "aud": "elsewhere"}, key.private, key.kid),
                           "Audience"),
        "wrong issuer": (sign({**claims, "iss": "mallory"}, key.private, key.kid),
                         "Invalid issuer"),
        "no expiry": (sign({k: v for k, v in claims.items() if k != "exp"}, key.private,
                           key.kid), "exp"),
        "not a jwt": ("abc.def", "malformed"),
    }


async def test_the_verifier_refuses_bad_tokens(client: httpx.AsyncClient, ctx: AuthContext,
                                               auth_settings: AuthSettings) -> None:
    good = await register_and_login(client)
    jwks = (await client.get("/auth/.well-known/jwks.json")).json()
    verifier = TokenVerifier(static_jwks(jwks), auth_settings.issuer, auth_settings.audience)
    assert verifier.verify(good["access_token"]).username == "ada"
    for name, (token, reason) in bad_tokens(good["access_token"], ctx.keys.current(),
                                            auth_settings).items():
        with pytest.raises(InvalidToken) as refused:
            verifier.verify(token)
        assert reason in refused.value.reason, name
        # The service's own routes refuse it the same way.
        response = await client.get("/auth/me", headers=bearer(token))
        assert response.status_code == 401, name
        assert reason in response.json()["detail"], name


def test_jwks_entries_that_are_not_ed25519_public_keys_are_ignored(tmp_path: Any) -> None:
    store = KeyStore(tmp_path)
    key = store.current()
    public = key.public_jwk()
    private = {**public, "d": b64(key.private.private_bytes_raw())}
    hmac_key = {"kty": "oct", "kid": key.kid, "k": b64(b"secret"), "alg": "HS256"}
    token = sign({"sub": "1", "iat": int(time.time()), "exp": int(time.time()) + 60,
                  "iss": "i", "aud": "a"}, key.private, key.kid)
    for entries in ([hmac_key], [private], [{"kid": 7}, "junk"]):
        verifier = TokenVerifier(static_jwks({"keys": entries}), "i", "a")
        with pytest.raises(InvalidToken, match="unknown key"):
            verifier.verify(token)
    assert TokenVerifier(static_jwks({"keys": [public]}), "i", "a").verify(token).user_id == "1"


class JwksServer:
    """A JWKS over real HTTP that counts its downloads."""

    def __init__(self) -> None:
        self.jwks: dict[str, Any] = {"keys": []}
        self.downloads = 0
        self.app = FastAPI()

        @self.app.get("/jwks.json")
        def jwks() -> dict[str, Any]:
            self.downloads += 1
            return self.jwks


@pytest.fixture
def jwks_server() -> Iterator[tuple[JwksServer, str]]:
    server = JwksServer()
    with serve_in_thread(server.app) as url:
        yield server, f"{url}/jwks.json"


def token_for(key: SigningKey, user: str = "1") -> str:
    now = int(time.time())
    return sign({"sub": user, "username": f"user{user}", "iat": now, "exp": now + 60,
                 "iss": "parley-auth", "aud": "parley"}, key.private, key.kid)


def test_url_jwks_is_cached_and_refetched_for_a_new_kid(tmp_path: Any,
                                                        jwks_server: tuple[JwksServer, str]
                                                        ) -> None:
    server, url = jwks_server
    store = KeyStore(tmp_path)
    first = store.current()
    server.jwks = store.jwks()
    verifier = TokenVerifier(url_jwks(url, min_refresh_interval=0), "parley-auth", "parley")
    for _ in range(3):
        assert verifier.verify(token_for(first)).user_id == "1"
    assert server.downloads == 1
    second = store.rotate()
    server.jwks = store.jwks()
    assert verifier.verify(token_for(second, "2")).user_id == "2"  # unknown kid: refetched
    assert server.downloads == 2
    assert verifier.verify(token_for(first)).user_id == "1"
    assert server.downloads == 2


def test_forged_kids_cannot_force_a_download_per_request(
        tmp_path: Any, jwks_server: tuple[JwksServer, str]) -> None:
    server, url = jwks_server
    store = KeyStore(tmp_path)
    store.current()
    server.jwks = store.jwks()
    verifier = TokenVerifier(url_jwks(url, min_refresh_interval=3600), "parley-auth", "parley")
    stranger = SigningKey("forged", Ed25519PrivateKey.generate(), 0)
    for _ in range(5):
        with pytest.raises(InvalidToken, match="unknown key"):
            verifier.verify(token_for(stranger))
    assert server.downloads == 1


def test_a_key_dropped_from_the_jwks_stops_verifying_and_an_outage_keeps_the_last_set(
        tmp_path: Any) -> None:
    server = JwksServer()
    store = KeyStore(tmp_path)
    old = store.current()
    new = store.rotate()
    with serve_in_thread(server.app) as base:
        server.jwks = store.jwks()
        fetch = url_jwks(f"{base}/jwks.json", ttl=0, min_refresh_interval=0)
        verifier = TokenVerifier(fetch, "parley-auth", "parley")
        assert verifier.verify(token_for(old)).user_id == "1"
        store.retire(older_than_seconds=0)
        server.jwks = store.jwks()
        with pytest.raises(InvalidToken, match="unknown key"):
            verifier.verify(token_for(old))
    # The JWKS server is gone: the verifier keeps the last set it had.
    assert verifier.verify(token_for(new, "2")).user_id == "2"
    with pytest.raises(httpx.ConnectError):  # but never had one: nothing to trust
        TokenVerifier(url_jwks(f"{base}/jwks.json"), "parley-auth", "parley").verify(
            token_for(new))


async def test_key_rotation_keeps_old_tokens_valid(auth_settings: AuthSettings) -> None:
    """The auth service under uvicorn; a verifier elsewhere reads its JWKS over HTTP."""
    from services.auth.app import create_app
    from services.auth.keys import rotate_keys

    app = create_app(auth_settings)
    with serve_in_thread(app) as url:
        remote = TokenVerifier(url_jwks(f"{url}/auth/.well-known/jwks.json",
                                        min_refresh_interval=0),
                               auth_settings.issuer, auth_settings.audience)
        async with httpx.AsyncClient(base_url=url) as client:
            old = await register_and_login(client, "ada")
            old_kid = jwt.get_unverified_header(old["access_token"])["kid"]
            assert remote.verify(old["access_token"]).username == "ada"
            new_key = rotate_keys(auth_settings.keys_dir,
                                  token_ttl_seconds=auth_settings.access_ttl_seconds)
            new = await login(client, "ada")
            assert jwt.get_unverified_header(new["access_token"])["kid"] == new_key.kid != old_kid
            jwks = (await client.get("/auth/.well-known/jwks.json")).json()
            assert [k["kid"] for k in jwks["keys"]] == [old_kid, new_key.kid]
            for tokens in (old, new):
                assert (await client.get("/auth/me", headers=bearer(tokens))).status_code == 200
                assert remote.verify(tokens["access_token"]).username == "ada"
            # Once the old key is retired (its tokens would have expired), they stop working.
            ctx: AuthContext = app.state.auth
            assert ctx.keys.retire(older_than_seconds=0) == 1
            refused = await client.get("/auth/me", headers=bearer(old))
            assert refused.status_code == 401 and "unknown key" in refused.text
            await register(client, "grace")
            assert (await login(client, "grace"))["access_token"]


def test_would_fetch_says_when_verifying_needs_the_network(
        tmp_path: Any, jwks_server: tuple[JwksServer, str]) -> None:
    server, url = jwks_server
    store = KeyStore(tmp_path)
    first = store.current()
    server.jwks = store.jwks()
    verifier = TokenVerifier(url_jwks(url, min_refresh_interval=3600), "parley-auth", "parley")
    assert verifier.would_fetch(token_for(first))  # nothing fetched yet
    verifier.verify(token_for(first))
    assert not verifier.would_fetch(token_for(first))
    assert not verifier.would_fetch("not a token")
    stranger = SigningKey("unknown", Ed25519PrivateKey.generate(), 0)
    assert not verifier.would_fetch(token_for(stranger))  # a refetch was too recent
    eager = TokenVerifier(url_jwks(url, min_refresh_interval=0), "parley-auth", "parley")
    eager.verify(token_for(first))
    assert eager.would_fetch(token_for(stranger))
    assert not TokenVerifier(static_jwks(store.jwks()), "i", "a").would_fetch(
        token_for(first))
    assert server.downloads == 2


def test_a_verified_token_is_remembered_until_it_expires(tmp_path: Any,
                                                         monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    key = KeyStore(tmp_path).current()
    expires = int(time.time()) + 1
    token = sign({"sub": "1", "iat": expires - 1, "exp": expires, "iss": "i", "aud": "a"},
                 key.private, key.kid)
    verifier = TokenVerifier(static_jwks({"keys": [key.public_jwk()]}), "i", "a", leeway=0)
    checks = 0
    real_decode = jwt.decode

    def counting_decode(*args: Any, **kwargs: Any) -> Any:
        nonlocal checks
        checks += 1
        return real_decode(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counting_decode)
    assert [verifier.verify(token).user_id for _ in range(5)] == ["1"] * 5
    assert checks == 1  # one signature check, then the remembered result
    time.sleep(max(0.0, expires - time.time()) + 0.05)
    with pytest.raises(InvalidToken, match="expired"):
        verifier.verify(token)


def test_a_remembered_token_is_refused_once_its_key_leaves_the_jwks(tmp_path: Any) -> None:
    store = KeyStore(tmp_path)
    old = store.current()
    new = store.rotate()
    jwks: dict[str, Any] = {"keys": [old.public_jwk(), new.public_jwk()]}
    verifier = TokenVerifier(lambda: jwks, "i", "a")
    token = sign({"sub": "1", "iat": int(time.time()), "exp": int(time.time()) + 60,
                  "iss": "i", "aud": "a"}, old.private, old.kid)
    assert verifier.verify(token).user_id == "1"
    jwks = {"keys": [new.public_jwk()]}  # the old key is retired
    with pytest.raises(InvalidToken, match="unknown key"):
        verifier.verify(token)


def test_the_remembered_tokens_stay_bounded(tmp_path: Any) -> None:
    key = KeyStore(tmp_path).current()
    verifier = TokenVerifier(static_jwks({"keys": [key.public_jwk()]}), "i", "a", cache_size=8)
    for n in range(50):
        token = sign({"sub": str(n), "iat": int(time.time()), "exp": int(time.time()) + 60,
                      "iss": "i", "aud": "a"}, key.private, key.kid)
        assert verifier.verify(token).user_id == str(n)
    assert len(verifier._verified) <= 8
