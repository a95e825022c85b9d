"""ITDO ERP settings: one module for every environment, switched by environment variables.

ERP_ENV selects dev (the default, embedded SQLite + local-memory cache), staging or prod. Everything that differs
between machines comes from the environment; nothing here needs editing per deployment.
"""

import datetime
import ipaddress
from pathlib import Path

import environ

from accounts.oidc.mapping import role_mapping_setting

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

ERP_ENV = env.str("ERP_ENV", default="dev")
if ERP_ENV not in {"dev", "staging", "prod"}:
    raise environ.ImproperlyConfigured(f"ERP_ENV must be dev, staging or prod, not {ERP_ENV!r}")
IS_DEV = ERP_ENV == "dev"

# Where the embedded default keeps its SQLite file; the smoke test points it at a temporary directory.
DATA_DIR = Path(env.str("ERP_DATA_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DEBUG", default=IS_DEV)
if IS_DEV:
    SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-change-me-outside-development-0123456789")
else:
    SECRET_KEY = env.str("SECRET_KEY")  # required outside dev: raises ImproperlyConfigured when missing

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]", "testserver"] if IS_DEV else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "guardian",
    "simple_history",
    "erp.health",
    "accounts",  # before axes: its axes_reset command (which records the reset as a security event) wins
    "axes",
    "organizations",
    "rbac",
    "audit",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "erp.security.SecurityHeadersMiddleware",
    "audit.middleware.AuditContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.sessions.SessionTimeoutMiddleware",
    "accounts.oidc.middleware.ProviderSessionRefresh",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes requires: turns a sign-in refused for a lockout into the lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "erp.urls"
WSGI_APPLICATION = "erp.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.oidc.views.sign_in_options",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------------
# The embedded default is a SQLite file; DATABASE_URL (postgres://user:password@host:port/name) selects PostgreSQL.
DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{DATA_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Persistent connections rather than Django's psycopg pool: gunicorn runs sync workers that serve one request at a
    # time, so one kept-alive connection per worker is all a pool would give us, without a pool's idle connections per
    # process (a PgBouncer in front scales the connection count when needed). Health checks drop dead connections.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    statement_timeout_ms = env.int("DATABASE_STATEMENT_TIMEOUT_MS", default=30_000)
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"]["options"] = f"-c statement_timeout={statement_timeout_ms}"
    DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
    # Server-side binding with prepared statements: a statement sent this many times on a connection is prepared, and
    # PostgreSQL then skips parsing and planning it. For a list scoped by the permission predicates, planning takes
    # about as long as running (EXPLAIN ANALYZE on the benchmark's database). "off" binds every value on the client,
    # as a PgBouncer in transaction mode needs unless it keeps prepared statements (max_prepared_statements, 1.21+).
    prepare_threshold = env.str("DATABASE_PREPARE_THRESHOLD", default="5").strip().lower()
    if prepare_threshold != "off":
        if not prepare_threshold.isdigit():
            raise environ.ImproperlyConfigured(
                f"DATABASE_PREPARE_THRESHOLD must be a whole number of uses or off, not {prepare_threshold!r}"
            )
        DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
        DATABASES["default"]["OPTIONS"]["prepare_threshold"] = int(prepare_threshold)
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # WAL lets the development server read while a command writes.
    DATABASES["default"].setdefault("OPTIONS", {})
    DATABASES["default"]["OPTIONS"]["init_command"] = "PRAGMA journal_mode=WAL;"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and sessions ---------------------------------------------------------------------------------------------
# The shared cache fails open (erp.cache): with Redis down, what it holds is computed again and throttles count in
# each process's memory. Sessions live in the database with a copy in Redis (accounts.session_store): people stay
# signed in, and can sign in, while Redis is down.
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    _redis_options = {
        "CLIENT_CLASS": "django_redis.client.DefaultClient",
        "SOCKET_CONNECT_TIMEOUT": env.float("REDIS_CONNECT_TIMEOUT", default=0.5),
        "SOCKET_TIMEOUT": env.float("REDIS_TIMEOUT", default=1.0),
    }
    CACHES = {
        "default": {
            "BACKEND": "erp.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="erp"),
            "OPTIONS": _redis_options,
        },
        "sessions": {
            # Errors are raised here: the session engine tells a copy it could not write or delete from one it did.
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="erp") + "-sessions",
            "OPTIONS": _redis_options,
        },
    }
    SESSION_ENGINE = "accounts.session_store"
    SESSION_CACHE_ALIAS = "sessions"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "erp"}}
    # Without Redis, sessions live in the database so that they survive a restart of the development server.
    SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Sessions end after SESSION_IDLE_TIMEOUT seconds without use and SESSION_ABSOLUTE_TIMEOUT seconds after sign-in,
# whichever comes first; a person holds at most SESSION_MAX_PER_USER of them (see accounts.sessions).
SESSION_IDLE_TIMEOUT = env.int("SESSION_IDLE_TIMEOUT", default=30 * 60)
SESSION_ABSOLUTE_TIMEOUT = env.int("SESSION_ABSOLUTE_TIMEOUT", default=12 * 60 * 60)
SESSION_MAX_PER_USER = env.int("SESSION_MAX_PER_USER", default=5)
SESSION_ACTIVITY_RESOLUTION = 60  # seconds between two writes of a session's last activity
SESSION_COOKIE_AGE = SESSION_ABSOLUTE_TIMEOUT

# --- Authentication -------------------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# django-axes comes first: it refuses every password check (API, admin, auditors' pages, password change) of a locked
# account or address before any password is compared. Passwords are then checked by Django's model backend;
# permissions come from roles, assignments and object grants. The identity provider's backend comes last: it answers
# only its own callback, and only when OIDC_ISSUER is set.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "rbac.backends.RoleBackend",
    "accounts.oidc.backend.ProviderBackend",
]
ANONYMOUS_USER_NAME = None  # django-guardian: no anonymous user row; anonymous callers hold nothing
# Guardian's own backend is not used: RoleBackend answers object permissions, grants included.
SILENCED_SYSTEM_CHECKS = ["guardian.W001"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.passwords.EmailPasswordValidator"},
    # Also the hook run whenever a password is set: it keeps the history and ends the account's other sessions.
    {
        "NAME": "accounts.passwords.PasswordHistoryValidator",
        "OPTIONS": {"remember": env.int("PASSWORD_HISTORY_SIZE", default=5)},
    },
]
LOGIN_URL = "admin:login"
# Local sign-ins (accounts.signin_limits, with django-axes): failed password checks within LOGIN_LOCKOUT_SECONDS lock
# an account after LOGIN_FAILURE_LIMIT of them, and a client address after LOGIN_ADDRESS_FAILURE_LIMIT of them (higher,
# so that people behind one office address do not lock each other out); a lock ends LOGIN_LOCKOUT_SECONDS after the
# failure that set it. LOGIN_RATE throttles password attempts per client address on the API.
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_ADDRESS_FAILURE_LIMIT = env.int("LOGIN_ADDRESS_FAILURE_LIMIT", default=5 * LOGIN_FAILURE_LIMIT)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=30 * 60)
LOGIN_RATE = env.str("LOGIN_RATE", default="30/min")
AXES_HANDLER = "accounts.signin_limits.SignInAttemptHandler"  # the database: lockouts hold while Redis is down
AXES_FAILURE_LIMIT = LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = datetime.timedelta(seconds=LOGIN_LOCKOUT_SECONDS)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own, with its own limit (see above)
AXES_USERNAME_CALLABLE = "accounts.signin_limits.username_of"  # one count per email, whatever its letter case
AXES_CLIENT_IP_CALLABLE = "audit.middleware.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.signin_limits.lockout_response"
AXES_HTTP_RESPONSE_CODE = 429
AXES_RESET_ON_SUCCESS = True  # a success forgets the account's failures (not its address's: see the handler)
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # a lock ends when announced, however often it is knocked on
AXES_ENABLE_ACCESS_FAILURE_LOG = True
# Kept out of the attempts' logs.
AXES_SENSITIVE_PARAMETERS = ["username", "email", "ip_address", "current_password", "new_password"]

# --- Client address -------------------------------------------------------------------------------------------------
# Reverse proxies (addresses or CIDR networks) whose X-Forwarded-For is believed; the client's address is otherwise the
# socket's. One setting for the audit trail, the sessions list, the sign-in throttle and lockouts (audit.middleware).
# AUDIT_TRUSTED_PROXIES is its former name, still read when TRUSTED_PROXIES is not set.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=env.list("AUDIT_TRUSTED_PROXIES", default=[]))
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _error:
        raise environ.ImproperlyConfigured(f"TRUSTED_PROXIES: {_proxy!r} is no address or network") from _error

# --- Audit ----------------------------------------------------------------------------------------------------------
# History is kept through the audit context, never through simple-history's thread-local request middleware.
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- Internationalisation -------------------------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files (the API docs' assets are served from here, never from a CDN) -------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Security -------------------------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Sent on every response by erp.security; "{nonce}" becomes a fresh nonce per response, which templates read as
# request.csp_nonce, and "{provider}" the identity provider's origin (if any). Inline styles stay allowed (Redoc and
# Swagger UI inject theirs at run time), and Redoc's search runs in a blob: worker.
CONTENT_SECURITY_POLICY = env.str(
    "CONTENT_SECURITY_POLICY",
    default=(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; "
        "object-src 'none'; base-uri 'self'; form-action 'self' {provider}; frame-ancestors 'none'"
    ),
)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
if not IS_DEV:
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_REDIRECT_EXEMPT = [r"^health/"]  # load balancers probe over plain HTTP

# --- Identity provider (OIDC browser sign-in) -------------------------------------------------------------------------
# People sign in at the identity provider (Keycloak in production) with the code flow and PKCE (accounts.oidc). Without
# OIDC_ISSUER the /oidc/ routes are absent and only local accounts sign in. The endpoints come from the issuer's
# discovery document (fetched with a timeout, cached) unless given explicitly in OIDC_OP_*_ENDPOINT.
OIDC_ISSUER = env.str("OIDC_ISSUER", default="").rstrip("/")  # e.g. http://localhost:8080/realms/itdo
OIDC_OP_DISCOVERY_URL = env.str("OIDC_OP_DISCOVERY_URL", default="")  # default: <issuer>/.well-known/openid-...
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="Keycloak")  # "Sign in with …" on the login page
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="itdo-erp")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_OP_LOGOUT_ENDPOINT = env.str("OIDC_OP_LOGOUT_ENDPOINT", default="")
OIDC_TIMEOUT = env.float("OIDC_TIMEOUT", default=5.0)  # seconds, every call to the provider
OIDC_VERIFY_SSL = env.bool("OIDC_VERIFY_SSL", default=True)
OIDC_DISCOVERY_CACHE_SECONDS = env.int("OIDC_DISCOVERY_CACHE_SECONDS", default=60 * 60)
OIDC_TOKEN_USE_BASIC_AUTH = env.bool("OIDC_TOKEN_USE_BASIC_AUTH", default=False)  # else client_secret_post
OIDC_USE_PKCE = True
OIDC_PKCE_CODE_CHALLENGE_METHOD = "S256"
OIDC_USE_NONCE = True
OIDC_CREATE_USER = True
OIDC_STORE_ID_TOKEN = True  # the logout names the provider's session with id_token_hint
# Every so often a page request checks silently (prompt=none) that the provider's session still lives.
OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS = env.int("OIDC_RENEW_ID_TOKEN_EXPIRY_SECONDS", default=15 * 60)
OIDC_OP_LOGOUT_URL_METHOD = "accounts.oidc.logout.provider_logout_url"
OIDC_LOGOUT_REDIRECT_URL = env.str("OIDC_LOGOUT_REDIRECT_URL", default="/")  # a post-logout URI known to the provider
LOGIN_REDIRECT_URL = "/"
LOGIN_REDIRECT_URL_FAILURE = "/admin/login/"  # where refusals are explained
# Groups and roles at the provider -> memberships and role assignments here (JSON; see accounts.oidc.mapping and
# deploy/keycloak/role-mapping.json). Checked now: a mistake stops the start-up.
OIDC_ROLE_MAPPING = role_mapping_setting(env.str("OIDC_ROLE_MAPPING", default=""))

# --- API bearer tokens (OIDC) ---------------------------------------------------------------------------------------
# API clients send the identity provider's access tokens (Authorization: Bearer); they are checked locally against the
# provider's keys (accounts.oidc.bearer) for the issuer OIDC_ISSUER. Without an issuer no bearer token is accepted.
OIDC_API_AUDIENCE = env.str("OIDC_API_AUDIENCE", default="itdo-erp-api")  # the "aud" the tokens must carry
OIDC_API_CLIENT_IDS = env.list("OIDC_API_CLIENT_IDS", default=[])  # "azp" accepted besides OIDC_RP_CLIENT_ID
OIDC_JWKS_CACHE_SECONDS = env.int("OIDC_JWKS_CACHE_SECONDS", default=60 * 60)
OIDC_JWKS_MIN_REFETCH_SECONDS = env.int("OIDC_JWKS_MIN_REFETCH_SECONDS", default=60)  # unknown key ids: one refetch
OIDC_LEEWAY_SECONDS = env.int("OIDC_LEEWAY_SECONDS", default=30)  # clock skew tolerated on exp / nbf / iat
OIDC_USER_CACHE_SECONDS = env.int("OIDC_USER_CACHE_SECONDS", default=60)

# --- REST API -------------------------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "erp.api.authentication.SessionAuthentication",
        "accounts.oidc.bearer.BearerTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "erp.api.pagination.CursorPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "erp.api.filters.StrictDjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "erp.api.filters.StrictOrderingFilter",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "erp.api.exceptions.exception_handler",
    "DEFAULT_THROTTLE_RATES": {"login": LOGIN_RATE},
    # DRF's own client address for throttles: the socket's, never X-Forwarded-For (which any client writes). The
    # account throttles use the project's (audit.middleware.client_ip), which also knows TRUSTED_PROXIES.
    "NUM_PROXIES": 0,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "PAGE_SIZE": 50,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
API_MAX_PAGE_SIZE = 200

SPECTACULAR_SETTINGS = {
    "TITLE": "ITDO ERP API",
    "DESCRIPTION": "Multi-tenant ERP: organizations, departments, members and the resources of every business context.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "TaskStatusEnum": "tasks.models.TaskStatus",
        "ProjectStatusEnum": "tasks.models.ProjectStatus",
    },
}

# --- Email and invitations ------------------------------------------------------------------------------------------
# Invitations are mailed through Django's mail backend: printed on the console in development, SMTP elsewhere.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.console.EmailBackend"
    if IS_DEV
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="ITDO ERP <noreply@localhost>")
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000")  # the links in emails point here
INVITATION_VALID_DAYS = env.int("INVITATION_VALID_DAYS", default=7)

# --- Health ---------------------------------------------------------------------------------------------------------
HEALTH_MIN_FREE_DISK_MB = env.int("HEALTH_MIN_FREE_DISK_MB", default=100)

# --- Logging --------------------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
