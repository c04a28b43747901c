"""The WeChat API client: the only place that knows WeChat's URLs, access tokens and error codes.

wechatpy 1.8.18's ``WeChatClient`` is used for the API calls, with three changes:

- every call, the token fetch included, goes to ``WECHAT_API_BASE_URL`` with a timeout (wechatpy
  hard-codes the real token URL and sets no timeout on it);
- the access token lives in a ``TokenStore`` shared by all processes (a database row, or Redis), and one
  process at a time refreshes it under a lock; so does the JS-SDK's ``jsapi_ticket`` (``jsapi_ticket()``);
- wechatpy's auto-retry is off (it re-fetches without bound on a persistent 40001); a call gets at most
  one refresh-and-retry, and a second token error is raised like any other error.

``classify`` maps an error to what the sender does with it (see ``Outcome``).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import redis
import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase, HTTPBasicAuth
from requests.utils import get_netrc_auth
from sqlalchemy.orm import Session, sessionmaker
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import NewConnectionError
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException

from models.clock import Clock
from models.metrics import TOKEN_REFRESHES
from models.outbox import AccessToken, locked_row
from models.redis_guard import RedisGuard, redis_client

logger = logging.getLogger(__name__)

REAL_API_HOST = "https://api.weixin.qq.com"
DEFAULT_TIMEOUT_SECONDS = 10.0
DEFAULT_CONNECTIONS = 10
# A token this close to its expiry is treated as expired, so no call starts with a token about to die.
EXPIRY_MARGIN = timedelta(minutes=5)
# How long one process reuses the token it last read from the shared store (well within EXPIRY_MARGIN).
TOKEN_REUSE_SECONDS = 60.0
# A kept-alive connection idle longer than this is closed rather than reused. Servers close idle
# connections on their own clock (gunicorn after 2 s, uvicorn and Apache 5 s, nginx 75 s); a POST written
# on a connection at the moment its server closes it gets no answer, and may have been delivered, so the
# sender must mark it unknown. Letting go well before any such server does rules that race out.
IDLE_CONNECTION_SECONDS = 1.0

INVALID_CREDENTIAL = 40001
INVALID_ACCESS_TOKEN = 40014
EXPIRED_ACCESS_TOKEN = 42001
TOKEN_ERRORS = frozenset({INVALID_CREDENTIAL, INVALID_ACCESS_TOKEN, EXPIRED_ACCESS_TOKEN})

SYSTEM_BUSY = -1
API_FREQUENCY_LIMIT = 45011
# Errors about one follower: recorded, not retried (the next message to them may still work).
FOLLOWER_ERRORS = {
    40003: "invalid openid",
    43004: "not following the account",
    43101: "did not accept the subscribe message",
    45015: "outside the 48-hour customer-service window",
    45047: "customer-service message quota for this window used",
}
# Errors about the whole account: every further call would fail the same way, so the sender pauses.
ACCOUNT_ERRORS = {
    45009: "daily API quota reached",
    INVALID_CREDENTIAL: "access token rejected after a refresh",
    INVALID_ACCESS_TOKEN: "access token rejected after a refresh",
    EXPIRED_ACCESS_TOKEN: "access token rejected after a refresh",
    40164: "server IP not in the account's whitelist",
    61004: "server IP not in the account's whitelist",
    48001: "API not authorised for this account",
    40125: "invalid app secret",
    40013: "invalid app id",
}


class Outcome(enum.Enum):
    """What an API error means for the message that caused it."""

    TRANSIENT = "transient"  # WeChat did not take it; retrying later may work (-1, 5xx, refused connection)
    UNCERTAIN = "uncertain"  # the request may have reached WeChat (read timeout, dropped reply): never resend
    PERMANENT = "permanent"  # about this follower or this message: record and move on
    ACCOUNT = "account"  # about the account: pause the sender


class TokenUnavailable(Exception):
    """No access token could be had, so the call that needed it never left."""


@dataclass(frozen=True)
class CallError:
    """A failed call, as the sender records it."""

    outcome: Outcome
    errcode: int | None
    errmsg: str


def classify(error: Exception) -> CallError:
    """What ``error`` (raised by a client call) means for the message and the account."""
    if isinstance(error, TokenUnavailable):
        # The call that needed the token never left: transient, unless the account itself is refused.
        cause = error.__cause__
        if isinstance(cause, WeChatClientException) and cause.errcode in ACCOUNT_ERRORS:
            return classify(cause)
        return CallError(Outcome.TRANSIENT, None, f"no access token: {cause!r}"[:200])
    if isinstance(error, WeChatClientException):
        if error.errcode is None:  # an HTTP error status: WeChat's front end, not the API, answered
            status = error.response.status_code if error.response is not None else None
            return CallError(Outcome.TRANSIENT, None, f"HTTP {status}")
        errcode = int(error.errcode)
        errmsg = str(error.errmsg)[:200]
        if errcode in (SYSTEM_BUSY, API_FREQUENCY_LIMIT):
            return CallError(Outcome.TRANSIENT, errcode, errmsg)
        if errcode in ACCOUNT_ERRORS:
            return CallError(Outcome.ACCOUNT, errcode, f"{ACCOUNT_ERRORS[errcode]}: {errmsg}")
        if errcode in FOLLOWER_ERRORS:
            return CallError(Outcome.PERMANENT, errcode, f"{FOLLOWER_ERRORS[errcode]}: {errmsg}")
        return CallError(Outcome.PERMANENT, errcode, errmsg)
    if isinstance(error, requests.ConnectTimeout):
        return CallError(Outcome.TRANSIENT, None, "connect timeout")
    if isinstance(error, requests.ConnectionError) and _never_connected(error):
        return CallError(Outcome.TRANSIENT, None, "connection refused")
    if isinstance(error, requests.RequestException):
        # Sent, but no complete answer: WeChat may have delivered the message.
        return CallError(Outcome.UNCERTAIN, None, f"no complete answer: {type(error).__name__}")
    raise TypeError(f"not a WeChat call error: {error!r}") from error


def _never_connected(error: requests.ConnectionError) -> bool:
    # requests wraps urllib3's MaxRetryError, whose reason says whether a connection was ever made.
    cause = error.args[0] if error.args else None
    return isinstance(getattr(cause, "reason", None), NewConnectionError)


class TokenStore(Protocol):
    """Where the shared access token lives."""

    def current(self) -> str | None:
        """The stored token if it is still valid, else None."""

    def refresh(self, fetch: Callable[[bool], tuple[str, int]], rejected: str | None) -> str:
        """A valid token: under the store's lock, reuse one another process just fetched, or ``fetch`` one.

        ``rejected`` is the token WeChat just refused (None if there was none); ``fetch(force)`` returns
        ``(token, expires_in_seconds)`` and ``force`` asks WeChat for a new token rather than the current one.
        """


T = TypeVar("T")

# What a store keeps besides the access token: the JS-SDK ticket, which WeChat also limits and expires.
JSAPI_TICKET = "jsapi-ticket"


class DatabaseTokenStore:
    """The token in a database row; the row lock (SQLite: the write lock) makes one process refresh.

    ``kind`` names another credential kept the same way (``JSAPI_TICKET``), in its own row.
    """

    def __init__(self, sessions: sessionmaker[Session], app_id: str, clock: Clock, kind: str = "") -> None:
        self.sessions = sessions
        self.app_id = f"{app_id}:{kind}" if kind else app_id
        self.clock = clock

    def current(self) -> str | None:
        with self.sessions() as session:
            row = session.get(AccessToken, self.app_id)
            return row.token if row is not None and self._valid(row) else None

    def refresh(self, fetch: Callable[[bool], tuple[str, int]], rejected: str | None) -> str:
        with self.sessions.begin() as session:
            row = locked_row(session, AccessToken, self.app_id, app_id=self.app_id, token="")
            if self._valid(row) and row.token != rejected:
                return row.token  # another process refreshed while this one waited for the lock
            # The lock is held during the HTTP call (bounded by the client's timeout) so others wait for it.
            token, expires_in = fetch(rejected is not None)
            row.token = token
            row.expires_at = self.clock.now() + timedelta(seconds=expires_in)
            return token

    def _valid(self, row: AccessToken) -> bool:
        return bool(row.token) and row.expires_at is not None and row.expires_at - EXPIRY_MARGIN > self.clock.now()


class RedisTokenStore:
    """The token in Redis with a TTL; a Redis lock makes one process refresh."""

    LOCK_TIMEOUT_SECONDS = 60

    def __init__(self, client: redis.Redis, namespace: str, app_id: str, kind: str = "access-token") -> None:
        self.client = client
        self.key = f"{namespace}:wechat:{kind}:{app_id}"
        self.lock_key = f"{self.key}:lock"

    def current(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if value else None

    def refresh(self, fetch: Callable[[bool], tuple[str, int]], rejected: str | None) -> str:
        with self.client.lock(self.lock_key, timeout=self.LOCK_TIMEOUT_SECONDS, blocking_timeout=self.LOCK_TIMEOUT_SECONDS):
            stored = self.current()
            if stored and stored != rejected:
                return stored
            token, expires_in = fetch(rejected is not None)
            ttl = max(int(expires_in - EXPIRY_MARGIN.total_seconds()), 1)
            self.client.set(self.key, token, ex=ttl)
            return token


class RedisOrDatabaseTokenStore:
    """Redis's store, and the database row's while Redis is unreachable, so that sending and the grant page
    go on through a Redis outage. Both hold the same token: ``stable_token`` hands every caller the valid one."""

    def __init__(self, preferred: RedisTokenStore, fallback: DatabaseTokenStore, guard: RedisGuard) -> None:
        self.preferred, self.fallback, self.guard = preferred, fallback, guard

    def current(self) -> str | None:
        return self._use(lambda store: store.current())

    def refresh(self, fetch: Callable[[bool], tuple[str, int]], rejected: str | None) -> str:
        return self._use(lambda store: store.refresh(fetch, rejected))

    def _use(self, call: Callable[[TokenStore], T]) -> T:
        if self.guard.available():
            try:
                result = call(self.preferred)
            except redis.RedisError as error:
                self.guard.failed(error)
            else:
                self.guard.succeeded()
                return result
        return call(self.fallback)


class NetrcReadOnceAuth(AuthBase):
    """The netrc credentials of a request's host (what requests' ``trust_env`` applies), looked up once per host."""

    def __init__(self) -> None:
        self._credentials: dict[tuple[str, str], tuple[str, str] | None] = {}

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        host = urlsplit(request.url)[:2]
        if host not in self._credentials:
            self._credentials[host] = get_netrc_auth(request.url)
        credentials = self._credentials[host]
        return HTTPBasicAuth(*credentials)(request) if credentials else request


class EnvironmentReadOnceSession(requests.Session):
    """requests' Session that reads the environment's proxy, CA-bundle and netrc settings once per host.

    With ``trust_env`` (kept: ``HTTPS_PROXY``, ``NO_PROXY`` and ``REQUESTS_CA_BUNDLE`` must keep working)
    requests scans ``os.environ`` again on every call: a fifth of a call's CPU in the reminder benchmark;
    and without a session ``auth`` it looks for a netrc file on every call (4 % of the sender's CPU).
    A process's environment does not change while it runs, so each host's answer is kept.
    """

    def __init__(self) -> None:
        super().__init__()
        self._environment_settings: dict[tuple, dict] = {}
        self.auth = NetrcReadOnceAuth()

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        key = (urlsplit(url)[:2], tuple(sorted((proxies or {}).items())), stream, verify, cert)
        settings = self._environment_settings.get(key)
        if settings is None:
            settings = self._environment_settings[key] = super().merge_environment_settings(
                url, proxies, stream, verify, cert
            )
        # Copies: requests may change the proxies it is given while following a redirect.
        return {**settings, "proxies": dict(settings["proxies"])}


class _IdleLimitedPool(HTTPConnectionPool):
    """urllib3's pool, but a connection idle longer than IDLE_CONNECTION_SECONDS is closed, not reused.

    urllib3 only checks that a pooled connection is still open, which its server may stop being a moment
    later (an idle limit is proposed in urllib3/urllib3#3184 and #3275, not released).
    """

    def _put_conn(self, conn) -> None:
        if conn is not None:
            conn.idle_since = time.monotonic()
        super()._put_conn(conn)

    def _get_conn(self, timeout: float | None = None):
        conn = super()._get_conn(timeout)
        idle_since = getattr(conn, "idle_since", None)
        if idle_since is not None and time.monotonic() - idle_since > IDLE_CONNECTION_SECONDS:
            conn.close()  # as urllib3 does with a dropped one: the request opens it again
        return conn


class _IdleLimitedHTTPSPool(_IdleLimitedPool, HTTPSConnectionPool):
    pass


IDLE_LIMITED_POOLS = {"http": _IdleLimitedPool, "https": _IdleLimitedHTTPSPool}


class IdleLimitedAdapter(HTTPAdapter):
    """requests' adapter whose connection pools (proxied ones too) close connections left idle too long."""

    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = IDLE_LIMITED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = IDLE_LIMITED_POOLS
        return manager


def wechat_http_session(connections: int) -> requests.Session:
    """The HTTP session of WeChat calls: ``connections`` kept-alive connections, none reused once stale."""
    session = EnvironmentReadOnceSession()
    # One kept-alive connection per thread calling at once: beyond requests' default pool of 10, every
    # call opened and dropped a connection of its own.
    adapter = IdleLimitedAdapter(pool_maxsize=connections)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class EventbotWeChatClient(WeChatClient):
    """wechatpy's client on the configured base URL, with a shared token and one bounded refresh per call."""

    def __init__(
        self,
        app_id: str,
        secret: str,
        *,
        base_url: str,
        tokens: TokenStore,
        tickets: TokenStore | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        connections: int = DEFAULT_CONNECTIONS,
    ) -> None:
        super().__init__(app_id, secret, timeout=timeout, auto_retry=False)
        self._http = wechat_http_session(connections)
        self.base_url = base_url.rstrip("/")
        self.API_BASE_URL = f"{self.base_url}/cgi-bin/"
        self.tokens = tokens
        self.tickets = tickets
        self._held_token = ("", 0.0)

    @property
    def access_token(self) -> str:
        token, reuse_until = self._held_token
        if token and time.monotonic() < reuse_until:
            return token
        return self._hold(self.tokens.current() or self._refreshed_token(rejected=None))

    def _hold(self, token: str) -> str:
        # Reading the shared store on every call cost a round trip per message (a database transaction
        # on SQLite). A stored token is valid for EXPIRY_MARGIN more at least, so it is safe to reuse it
        # for TOKEN_REUSE_SECONDS; one another process replaced meanwhile is rejected once and refreshed.
        self._held_token = (token, time.monotonic() + TOKEN_REUSE_SECONDS)
        return token

    def fetch_access_token(self) -> dict:
        """Force a new token into the shared store (wechatpy's public name for it)."""
        return {"access_token": self._refreshed_token(rejected=self.tokens.current() or "")}

    def _refreshed_token(self, rejected: str | None) -> str:
        try:
            return self._hold(self.tokens.refresh(self._fetch_token, rejected=rejected))
        except (requests.RequestException, WeChatClientException, redis.RedisError) as error:
            raise TokenUnavailable(str(error)) from error

    def _fetch_token(self, force: bool) -> tuple[str, int]:
        # stable_token, not token: the secret travels in the body (never in a URL that could be logged),
        # and fetching it does not invalidate the token other processes are using unless forced.
        logger.info("fetching a WeChat access token", extra={"force_refresh": force})
        try:
            response = self._http.post(
                f"{self.base_url}/cgi-bin/stable_token",
                json={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret, "force_refresh": force},
                timeout=self.timeout,
            )
            response.raise_for_status()
            result = self._handle_result(response)
        except (requests.RequestException, WeChatClientException):
            TOKEN_REFRESHES.labels(outcome="failed").inc()
            raise
        TOKEN_REFRESHES.labels(outcome="ok").inc()
        return result["access_token"], int(result.get("expires_in", 7200))

    def jsapi_ticket(self) -> str:
        """The JS-SDK ticket, shared by all processes like the access token: fetched once per expiry."""
        if self.tickets is None:
            raise TokenUnavailable("no store for the jsapi_ticket")
        # A valid access token first, outside the ticket's lock: on SQLite that lock is the database's
        # only write lock, which a token refresh inside it would wait for.
        _ = self.access_token
        try:
            return self.tickets.current() or self.tickets.refresh(self._fetch_ticket, rejected=None)
        except redis.RedisError as error:
            raise TokenUnavailable(str(error)) from error

    def _fetch_ticket(self, _force: bool) -> tuple[str, int]:
        result = self.jsapi.get_ticket("jsapi")
        return result["ticket"], int(result.get("expires_in", 7200))

    def _on_configured_host(self, url: str) -> str:
        return self.base_url + url[len(REAL_API_HOST) :] if url.startswith(REAL_API_HOST) else url

    def _request(self, method, url_or_endpoint, **kwargs):
        # Some wechatpy APIs carry absolute URLs or their own base on the real host: move them too.
        base = self._on_configured_host(kwargs.pop("api_base_url", self.API_BASE_URL))
        url = self._on_configured_host(url_or_endpoint)
        if not url.startswith(("http://", "https://")):
            url = base + url
        token = self.access_token
        try:
            return self._send(method, url, token, kwargs)
        except WeChatClientException as error:
            if error.errcode not in TOKEN_ERRORS:
                raise
            logger.warning("WeChat rejected the access token; refreshing once", extra={"errcode": error.errcode})
            token = self._refreshed_token(rejected=token)
            return self._send(method, url, token, kwargs)

    def _send(self, method: str, url: str, token: str, kwargs: dict):
        params = dict(kwargs.get("params") or {})
        params["access_token"] = token
        return super()._request(method, url, **{**kwargs, "params": params})


def build_client(settings, sessions: sessionmaker[Session], clock: Clock) -> EventbotWeChatClient:
    """The client for these settings: token in Redis when ``REDIS_URL`` is set (the database while Redis
    is unreachable), else in the database."""
    tokens: TokenStore = DatabaseTokenStore(sessions, settings.wechat_app_id, clock)
    tickets: TokenStore = DatabaseTokenStore(sessions, settings.wechat_app_id, clock, JSAPI_TICKET)
    if settings.redis_url:
        guard = RedisGuard(redis_client(settings.redis_url))
        namespace, app_id = settings.redis_namespace, settings.wechat_app_id
        tokens = RedisOrDatabaseTokenStore(RedisTokenStore(guard.client, namespace, app_id), tokens, guard)
        tickets = RedisOrDatabaseTokenStore(
            RedisTokenStore(guard.client, namespace, app_id, JSAPI_TICKET), tickets, guard
        )
    return EventbotWeChatClient(
        settings.wechat_app_id,
        settings.wechat_app_secret,
        base_url=settings.wechat_api_base_url,
        tokens=tokens,
        tickets=tickets,
        connections=max(settings.content.delivery.concurrency, DEFAULT_CONNECTIONS),
    )


def outbound_configured(settings) -> bool:
    """Whether the account's credentials are there, so the bot may call WeChat's API."""
    return bool(settings.wechat_app_id and settings.wechat_app_secret)
