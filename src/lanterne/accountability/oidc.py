"""City sign-in with OpenID Connect: the city's directory (Active Directory through ADFS, Azure AD,
Keycloak) vouches for an agent, and Lanterne maps the agent's groups to a role and a camera scope.

The authorization code flow, as OpenID Connect Core 1.0 §3.1 has it, with PKCE (RFC 7636, S256)
and both `state` and `nonce`: the browser goes to the provider with a fresh state, nonce and
code challenge, comes back with a code, and the console exchanges the code (with its secret and
the code verifier) for an ID token straight from the provider's token endpoint. The ID token is
then checked here, never trusted because of the channel it came through: signature against the
provider's published keys (asymmetric algorithms only: `none` and HMAC are refused, so the public
key cannot be used as an HMAC secret), `iss` equal to the configured issuer, `aud` containing our
client id (and `azp` equal to it when there are several), `exp` and `iat` present and `exp` not
passed (60 s of clock skew allowed), and `nonce` equal to the one this sign-in sent.

An account signed in this way is a row of the same `accounts` table as a local one, so sessions,
scope checks, habilitation and the audit log work unchanged. It is bound to the directory's
`(iss, sub)`, not to its login (a renamed agent keeps their account and its history), through its
password hash: ``oidc:`` + sha256 of issuer and subject, which argon2 cannot parse, so such an
account can never log in with a password. Its role and scope follow the directory at every
sign-in, each change recorded as a `user_change` by ``oidc``.

Nothing personal enters the audit log: the account id, never the login, the subject or the
groups; a refused person without an account is recorded as ``unknown`` with the reason.

>>> settings = OidcSettings(issuer="https://sso.ville.fr/realms/agents", client_id="lanterne",
...     client_secret_file="/etc/lanterne/oidc", redirect_url="https://cctv.ville.fr/api/login/oidc/callback",
...     roles=[{"group": "cctv-ops", "role": "operator", "scope": ["parvis"]}])
>>> role_for(settings, ["staff", "cctv-ops"]).role, role_for(settings, ["staff"])
('operator', None)
>>> login_from_claim("J.Martin@Ville.fr"), login_from_claim("Jean Martin")
('j.martin', None)
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import jwt
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from lanterne.accountability.accounts import LOGIN_PATTERN, Account, get_account
from lanterne.audit import Action, AuditLog
from lanterne.config.schema import OidcRole, OidcSettings
from lanterne.core.errors import LanterneError
from lanterne.store.tables import AccountRecord

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

ACTOR = "oidc"
"""Who the audit log says created or changed an account at sign-in: the directory, through us."""
HASH_PREFIX = "oidc:"
TIMEOUT_SECONDS = 10.0
"""For each back-channel request (discovery, keys, token, userinfo): a person is waiting."""
MAX_BODY = 1 << 20
CLOCK_SKEW_SECONDS = 60
"""Leeway on `exp` and `iat`: the provider's clock and ours may differ by this much."""
DISCOVERY_TTL = timedelta(hours=1)
"""The discovery document and the keys are cached this long; an unknown key id refetches the keys
at once (a key rotation), at most every `JWKS_REFETCH_SECONDS`, so that forged tokens with random
key ids cannot make us hammer the provider."""
JWKS_REFETCH_SECONDS = 30.0
SIGN_IN_TTL = timedelta(minutes=10)
"""How long a sign-in may take at the provider (and then at the code step) before it is dropped."""
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
"""Signatures accepted on ID tokens: asymmetric only. `none` proves nothing and HS256 would be
keyed with the client secret, which we refuse to rely on for identity."""

_A = AccountRecord.__table__


class OidcError(LanterneError):
    """A sign-in refused: `reason` is the short code the audit log records (`token_signature`,
    `no_mapped_role`, …); the message is the sentence the person sees."""

    def __init__(self, reason: str, message: str, account_id: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.account_id = account_id
        """The Lanterne account concerned, when there is one (a disabled account)."""


@dataclass(frozen=True)
class Discovery:
    """What the console uses of the provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    algorithms: tuple[str, ...]


@dataclass(frozen=True)
class Transaction:
    """One sign-in's secrets, kept by the console between the redirect and the callback."""

    state: str
    nonce: str
    code_verifier: str
    started_at: datetime


@dataclass(frozen=True)
class Identity:
    """Who the provider says signed in, after every check."""

    issuer: str
    subject: str
    login: str | None
    """The login claim made a Lanterne login; None when it cannot be one."""
    groups: tuple[str, ...]
    amr: tuple[str, ...]
    acr: str | None


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def code_challenge(verifier: str) -> str:
    """PKCE S256 (RFC 7636 §4.2).

    >>> code_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")
    'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM'
    """
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def login_from_claim(value: object) -> str | None:
    """The Lanterne login a claim's value makes: lower-cased, an e-mail address cut at '@';
    None when the result is not a valid login (3 to 64 of a-z 0-9 . _ -)."""
    if not isinstance(value, str):
        return None
    login = value.strip().lower().split("@", 1)[0]
    return login if LOGIN_PATTERN.fullmatch(login) else None


def claim_at(claims: Mapping[str, Any], path: str) -> Any:
    """The claim at a dotted path (`realm_access.roles`); a claim whose own name has a dot wins.

    >>> claim_at({"realm_access": {"roles": ["a"]}}, "realm_access.roles")
    ['a']
    """
    if path in claims:
        return claims[path]
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(v for v in value if isinstance(v, str))
    return ()


def role_for(settings: OidcSettings, groups: Iterable[str]) -> OidcRole | None:
    """The first mapping, in the configuration's order, whose group the person has."""
    held = set(groups)
    return next((r for r in settings.roles if r.group in held), None)


def second_factor_asserted(settings: OidcSettings, identity: Identity) -> bool:
    """True when the ID token's `amr` holds one of the configured methods, or its `acr` is one of
    the configured levels: the provider itself checked a second factor."""
    return bool(set(identity.amr) & set(settings.second_factor_amr)) or (
        identity.acr is not None and identity.acr in settings.second_factor_acr
    )


def subject_hash(issuer: str, subject: str) -> str:
    """What binds an account to the directory's person (kept as its password hash)."""
    return HASH_PREFIX + hashlib.sha256(f"{issuer}\n{subject}".encode()).hexdigest()


# --- the provider --------------------------------------------------------------------------


def _request(
    url: str, *, data: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
) -> tuple[str, bytes]:
    """(content type, body) of a GET, or of a form POST when `data` is given; OidcError on any
    failure, with the HTTP status but never the body (it may echo a secret)."""
    body = urllib.parse.urlencode(data).encode("ascii") if data is not None else None
    request = urllib.request.Request(
        url,
        data=body,
        method="POST" if body is not None else "GET",
        headers={"Accept": "application/json", "User-Agent": "lanterne", **(headers or {})},
    )
    if body is not None:
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:
            raw = response.read(MAX_BODY + 1)
            kind = response.headers.get_content_type()
    except urllib.error.HTTPError as exc:
        where = urllib.parse.urlsplit(url)
        log.warning("OpenID provider answered %s at %s%s", exc.code, where.netloc, where.path)
        raise OidcError(
            "provider_http", f"the city directory refused the request (HTTP {exc.code}); try again"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        log.warning("OpenID provider unreachable: %s", exc)
        raise OidcError(
            "provider_unreachable",
            "the city directory cannot be reached; try again or log in with a local account",
        ) from None
    if len(raw) > MAX_BODY:
        raise OidcError("provider_http", "the city directory sent an oversized answer")
    return kind, raw


def _json(url: str, **kwargs: Any) -> dict[str, Any]:
    _, raw = _request(url, **kwargs)
    try:
        value = json.loads(raw)
    except ValueError:
        raise OidcError("provider_http", "the city directory sent an answer that is not JSON") from None
    if not isinstance(value, dict):
        raise OidcError("provider_http", "the city directory sent an answer that is not a JSON object")
    return value


class OidcClient:
    """The console's side of the flow for one configured provider. Thread-safe: FastAPI runs the
    callbacks in its thread pool. Reads the client secret file at each code exchange, so that a
    rotated secret needs no restart."""

    def __init__(self, settings: OidcSettings, camera_ids: Iterable[str] = ()) -> None:
        known = set(camera_ids)
        if known:
            for i, mapping in enumerate(settings.roles):
                unknown = [c for c in mapping.scope if c != "*" and c not in known]
                if unknown:
                    raise LanterneError(
                        f"oidc.roles[{i}] ({mapping.group!r}) names camera {unknown[0]!r}, which is not "
                        "configured; fix its scope in the configuration"
                    )
        self.settings = settings
        self._lock = threading.Lock()
        self._discovery: tuple[Discovery, float] | None = None
        self._keys: tuple[list[dict[str, Any]], float] | None = None

    # discovery and keys

    def discovery(self) -> Discovery:
        with self._lock:
            cached = self._discovery
        if cached is not None and time.monotonic() - cached[1] < DISCOVERY_TTL.total_seconds():
            return cached[0]
        issuer = self.settings.issuer
        doc = _json(issuer.rstrip("/") + "/.well-known/openid-configuration")
        # Mix-up defence (OpenID Connect Discovery §4.3): the document must name the very issuer
        # we asked, or tokens of another issuer could pass as this one's.
        if doc.get("issuer") != issuer:
            raise OidcError(
                "provider_config",
                "the city directory's discovery document names another issuer; check oidc.issuer",
            )
        try:
            found = Discovery(
                issuer=issuer,
                authorization_endpoint=str(doc["authorization_endpoint"]),
                token_endpoint=str(doc["token_endpoint"]),
                jwks_uri=str(doc["jwks_uri"]),
                userinfo_endpoint=str(doc["userinfo_endpoint"]) if doc.get("userinfo_endpoint") else None,
                algorithms=tuple(
                    a for a in doc.get("id_token_signing_alg_values_supported", ["RS256"]) if a in ALGORITHMS
                ),
            )
        except KeyError as exc:
            raise OidcError(
                "provider_config", f"the city directory's discovery document has no {exc.args[0]}"
            ) from None
        if not found.algorithms:
            raise OidcError(
                "provider_config", "the city directory signs ID tokens with no algorithm Lanterne accepts"
            )
        with self._lock:
            self._discovery = (found, time.monotonic())
        return found

    def _key_set(self, jwks_uri: str, *, refresh: bool = False) -> list[dict[str, Any]]:
        """The provider's signing keys as published (JWKs), cached; `refresh` refetches them
        unless they were fetched less than `JWKS_REFETCH_SECONDS` ago."""
        with self._lock:
            cached = self._keys
        if cached is not None:
            age = time.monotonic() - cached[1]
            if age < DISCOVERY_TTL.total_seconds() and not (refresh and age >= JWKS_REFETCH_SECONDS):
                return cached[0]
        found = _json(jwks_uri).get("keys")
        keys = (
            [k for k in found if isinstance(k, dict) and k.get("use", "sig") == "sig"]
            if isinstance(found, list)
            else []
        )
        if not keys:
            raise OidcError("provider_config", "the city directory publishes no signing key")
        with self._lock:
            self._keys = (keys, time.monotonic())
        return keys

    def _signing_key(self, discovery: Discovery, token: str) -> jwt.PyJWK:
        """The published key that signed `token`, bound to one algorithm: the key's own `alg`
        when it names one, else the token's (Azure AD publishes keys without `alg`), and only an
        algorithm of `discovery.algorithms`, so that `none` or HMAC never reach a key."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise OidcError("token_malformed", "the city directory sent an unreadable ID token") from None
        alg = header.get("alg")
        if alg not in discovery.algorithms:
            raise OidcError(
                "token_algorithm",
                "the ID token is signed with an algorithm Lanterne refuses; sign-in refused",
            )
        kid = header.get("kid")
        for refresh in (False, True):
            keys = self._key_set(discovery.jwks_uri, refresh=refresh)
            match = [k for k in keys if k.get("kid") == kid] if kid is not None else keys
            if len(match) == 1:
                try:
                    return jwt.PyJWK(match[0], algorithm=match[0].get("alg") or alg)
                except jwt.PyJWTError:
                    break
        raise OidcError(
            "token_signature", "the ID token is not signed by a key of the city directory; sign-in refused"
        )

    # the flow

    def begin(self, now: datetime) -> tuple[str, Transaction]:
        """The provider's authorization URL for a new sign-in, and the secrets to keep for it."""
        discovery = self.discovery()
        tx = Transaction(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),
            started_at=now,
        )
        query = urllib.parse.urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.client_id,
                "redirect_uri": self.settings.redirect_url,
                "scope": " ".join(self.settings.scopes),
                "state": tx.state,
                "nonce": tx.nonce,
                "code_challenge": code_challenge(tx.code_verifier),
                "code_challenge_method": "S256",
            },
            quote_via=urllib.parse.quote,
        )
        separator = "&" if "?" in discovery.authorization_endpoint else "?"
        return f"{discovery.authorization_endpoint}{separator}{query}", tx

    def finish(self, code: str, tx: Transaction, *, iss: str | None = None) -> Identity:
        """Exchange the code for tokens, check the ID token and read the person's claims (from the
        ID token, and from the userinfo endpoint for those the provider keeps there)."""
        discovery = self.discovery()
        if iss is not None and iss != discovery.issuer:
            # RFC 9207: the authorization response names its issuer; another one is a mix-up.
            raise OidcError("token_issuer", "the answer came from another identity provider; sign-in refused")
        tokens = self._exchange(discovery, code, tx)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise OidcError(
                "token_missing", "the city directory sent no ID token; check oidc.scopes has 'openid'"
            )
        claims = self.verify_id_token(id_token, tx.nonce)
        wanted = (self.settings.login_claim, self.settings.groups_claim)
        access = tokens.get("access_token")
        if (
            any(claim_at(claims, c) is None for c in wanted)
            and discovery.userinfo_endpoint
            and isinstance(access, str)
        ):
            claims = {**self._userinfo(discovery, access, claims["sub"]), **claims}
        return Identity(
            issuer=discovery.issuer,
            subject=claims["sub"],
            login=login_from_claim(claim_at(claims, self.settings.login_claim)),
            groups=_strings(claim_at(claims, self.settings.groups_claim)),
            amr=_strings(claims.get("amr")),
            acr=claims["acr"] if isinstance(claims.get("acr"), str) else None,
        )

    def _exchange(self, discovery: Discovery, code: str, tx: Transaction) -> dict[str, Any]:
        try:
            secret = self.settings.client_secret_file.read_text(encoding="utf-8").strip()
        except OSError:
            log.error("oidc.client_secret_file cannot be read")
            raise OidcError(
                "client_secret", "the console cannot read its OpenID client secret; tell the administrator"
            ) from None
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.settings.redirect_url,
            "code_verifier": tx.code_verifier,
        }
        headers: dict[str, str] = {}
        if self.settings.token_auth == "client_secret_basic":
            # RFC 6749 §2.3.1: both parts form-encoded before base64.
            pair = f"{urllib.parse.quote_plus(self.settings.client_id)}:{urllib.parse.quote_plus(secret)}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        else:
            form |= {"client_id": self.settings.client_id, "client_secret": secret}
        tokens = _json(discovery.token_endpoint, data=form, headers=headers)
        if str(tokens.get("token_type", "")).lower() != "bearer":
            raise OidcError("token_missing", "the city directory sent no bearer token")
        return tokens

    def verify_id_token(self, token: str, nonce: str) -> dict[str, Any]:
        """The ID token's claims when every check of OpenID Connect Core §3.1.3.7 holds; else
        OidcError naming the one that failed (`token_signature`, `token_expired`, …)."""
        discovery = self.discovery()
        key = self._signing_key(discovery, token)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(discovery.algorithms),
                audience=self.settings.client_id,
                issuer=discovery.issuer,
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.ExpiredSignatureError:
            raise OidcError("token_expired", "the ID token has expired; sign in again") from None
        except jwt.InvalidAudienceError:
            raise OidcError(
                "token_audience", "the ID token was issued to another application; sign-in refused"
            ) from None
        except jwt.InvalidIssuerError:
            raise OidcError(
                "token_issuer", "the ID token comes from another issuer; sign-in refused"
            ) from None
        except jwt.ImmatureSignatureError:
            raise OidcError(
                "token_not_yet_valid", "the ID token is dated in the future; check the clocks"
            ) from None
        except jwt.MissingRequiredClaimError as exc:
            raise OidcError(
                "token_claims", f"the ID token has no {exc.claim!r} claim; sign-in refused"
            ) from None
        except jwt.InvalidAlgorithmError:
            raise OidcError(
                "token_algorithm",
                "the ID token is signed with an algorithm Lanterne refuses; sign-in refused",
            ) from None
        except jwt.InvalidSignatureError:
            raise OidcError("token_signature", "the ID token's signature is wrong; sign-in refused") from None
        except jwt.PyJWTError:
            raise OidcError("token_malformed", "the city directory sent an unreadable ID token") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != self.settings.client_id:
            raise OidcError(
                "token_audience", "the ID token was issued to another application; sign-in refused"
            )
        if not isinstance(claims.get("nonce"), str) or not hmac.compare_digest(claims["nonce"], nonce):
            raise OidcError("token_nonce", "the ID token does not belong to this sign-in; start again")
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise OidcError("token_claims", "the ID token has no subject; sign-in refused")
        return claims

    def _userinfo(self, discovery: Discovery, access_token: str, subject: str) -> dict[str, Any]:
        assert discovery.userinfo_endpoint is not None
        kind, raw = _request(discovery.userinfo_endpoint, headers={"Authorization": f"Bearer {access_token}"})
        if kind != "application/json":
            raise OidcError(
                "provider_config",
                "the city directory's userinfo answer is not plain JSON; put the login and groups claims in the ID token",
            )
        try:
            info = json.loads(raw)
        except ValueError:
            raise OidcError(
                "provider_http", "the city directory sent a userinfo answer that is not JSON"
            ) from None
        # Core §5.3.2: the userinfo of another subject must not be mixed into this person's claims.
        if not isinstance(info, dict) or info.get("sub") != subject:
            raise OidcError(
                "token_claims", "the city directory's userinfo names another person; sign-in refused"
            )
        return info


# --- the account -----------------------------------------------------------------------------


def sync_account(
    engine: Engine,
    audit: AuditLog,
    identity: Identity,
    mapping: OidcRole,
    now: datetime,
) -> Account:
    """The account of this directory person, created at their first sign-in or brought to the
    directory's current login, role and scope (each change recorded as `user_change` by
    ``oidc``). Refused: a login that cannot be a Lanterne login, a login already held by another
    account (a local one, or another directory person), an account disabled in Lanterne."""
    if identity.login is None:
        raise OidcError(
            "login_claim_invalid",
            "the city directory's login for this person is not a valid Lanterne login (3 to 64 of a-z 0-9 . _ -); "
            "ask the administrator to check oidc.login_claim",
        )
    bound = subject_hash(identity.issuer, identity.subject)
    scope = list(mapping.scope)
    with engine.begin() as conn:
        row = conn.execute(select(_A).where(_A.c.password_hash == bound)).mappings().first()
        holder = conn.execute(select(_A.c.id).where(_A.c.login == identity.login)).first()
        if holder is not None and (row is None or holder.id != row["id"]):
            raise OidcError(
                "login_taken",
                f"another Lanterne account already has the login {identity.login!r}; ask the administrator",
            )
        if row is None:
            account_id = "u-" + secrets.token_hex(5)
            try:
                conn.execute(
                    insert(_A).values(
                        id=account_id,
                        login=identity.login,
                        role=mapping.role,
                        scope=scope,
                        password_hash=bound,
                        created_at=now,
                        created_by=ACTOR,
                        disabled_at=None,
                    )
                )
            except IntegrityError:  # the same person signing in twice at once
                raise OidcError("login_taken", "this sign-in raced another one; sign in again") from None
            change: dict[str, object] | None = {"change": "create", "role": mapping.role, "scope": scope}
        else:
            account_id = row["id"]
            if row["disabled_at"] is not None:
                raise OidcError(
                    "disabled", "this account is disabled in Lanterne; ask the administrator", account_id
                )
            moved = {
                k: v
                for k, v in (("login", identity.login), ("role", mapping.role), ("scope", scope))
                if row[k] != v
            }
            if moved:
                conn.execute(update(_A).where(_A.c.id == account_id).values(**moved))
            # The login itself is personal: the record says that it changed, not what to.
            change = (
                {"change": "update", "role": mapping.role, "scope": scope, "login_changed": "login" in moved}
                if moved
                else None
            )
    if change is not None:
        audit.append(ACTOR, Action.USER_CHANGE, object_type="account", object_id=account_id, details=change)
    account = get_account(engine, account_id)
    assert account is not None
    return account


# --- sign-ins in progress --------------------------------------------------------------------


@dataclass
class SignIn:
    """One browser's sign-in between the redirect to the provider and the end: first its
    transaction, then (when the provider asserted no second factor) the account waiting for its
    TOTP code, and at last its outcome, which the login page reads once."""

    transaction: Transaction | None
    created_at: datetime
    account_id: str | None = None
    outcome: tuple[int, dict[str, Any]] | None = None
    details: dict[str, object] = field(default_factory=dict)


class SignIns:
    """Sign-ins in progress, by the random id of the browser's sign-in cookie. Kept in memory and
    bounded, like the login throttle: a restart drops the sign-ins under way (the person clicks
    again), and several server processes would need sticky sessions. Thread-safe."""

    def __init__(self, max_entries: int = 10_000, ttl: timedelta = SIGN_IN_TTL) -> None:
        self.max_entries, self.ttl = max_entries, ttl
        self._items: OrderedDict[str, SignIn] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, sign_in: SignIn) -> str:
        key = secrets.token_urlsafe(32)
        with self._lock:
            self._items[key] = sign_in
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return key

    def get(self, key: str | None, now: datetime) -> SignIn | None:
        if not key:
            return None
        with self._lock:
            item = self._items.get(key)
            if item is not None and now - item.created_at >= self.ttl:
                del self._items[key]
                item = None
        return item

    def pop(self, key: str | None) -> SignIn | None:
        if not key:
            return None
        with self._lock:
            return self._items.pop(key, None)

    def put(self, key: str, sign_in: SignIn) -> None:
        with self._lock:
            self._items[key] = sign_in
