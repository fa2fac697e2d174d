"""Configuration from the environment (and a `.env` file); the variable names are a stable interface."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from checks.gateways.endpoints import AzureEndpoints, cloud_preset
from checks.sections import DEFAULT_DOCS_URL


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", populate_by_name=False)

    slack_bot_token: str | None = Field(None, validation_alias=_env("SLACK_BOT_TOKEN"))
    slack_signing_secret: str | None = Field(None, validation_alias=_env("SLACK_SIGNING_SECRET"))
    slack_app_token: str | None = Field(None, validation_alias=_env("SLACK_APP_TOKEN"))
    slack_api_url: str = Field("https://slack.com/api/", validation_alias=_env("SLACK_API_URL"))

    purview_accounts: str = Field("", validation_alias=_env("PURVIEW_ACCOUNTS"))
    cloud: str = Field("AzurePublicCloud", validation_alias=_env("PURVIEW_BOT_CLOUD"))
    arm_endpoint: str | None = Field(None, validation_alias=_env("PURVIEW_BOT_ARM_ENDPOINT"))
    purview_endpoint: str | None = Field(None, validation_alias=_env("PURVIEW_BOT_PURVIEW_ENDPOINT"))
    graph_endpoint: str | None = Field(None, validation_alias=_env("PURVIEW_BOT_GRAPH_ENDPOINT"))
    keyvault_verify_challenge: bool = Field(
        True, validation_alias=_env("PURVIEW_BOT_KEYVAULT_VERIFY_CHALLENGE")
    )
    # the standard variable: a CA bundle to trust (a TLS-inspecting proxy, or the local sandbox)
    ssl_cert_file: str | None = Field(None, validation_alias=_env("SSL_CERT_FILE"))

    allowed_channels: str = Field("", validation_alias=_env("PURVIEW_BOT_ALLOWED_CHANNELS"))
    # a Slack user group id (S…): when set, only its members may use the bot
    allowed_usergroup: str | None = Field(None, validation_alias=_env("PURVIEW_BOT_ALLOWED_USERGROUP"))
    port: int = Field(3000, validation_alias=_env("PORT"))
    # the address `serve` listens on: 127.0.0.1 behind a reverse proxy on the same host
    host: str = Field("0.0.0.0", validation_alias=_env("PURVIEW_BOT_HOST"))
    alert_channel: str | None = Field(None, validation_alias=_env("PURVIEW_BOT_ALERT_CHANNEL"))
    routes: str | None = Field(None, validation_alias=_env("PURVIEW_BOT_ROUTES"))
    watch_interval: float = Field(300, ge=0, validation_alias=_env("PURVIEW_BOT_WATCH_INTERVAL"))
    # run statuses the watcher posts about (comma-separated), e.g. "Failed,CompletedWithExceptions"
    watch_statuses: str = Field("Failed", validation_alias=_env("PURVIEW_BOT_WATCH_STATUSES"))
    # runs that ended longer ago than this (seconds) are history, not news
    watch_lookback: float = Field(86400, gt=0, validation_alias=_env("PURVIEW_BOT_WATCH_LOOKBACK"))
    # Purview requests in flight per sweep
    watch_concurrency: int = Field(8, ge=1, validation_alias=_env("PURVIEW_BOT_WATCH_CONCURRENCY"))
    database_url: str = Field(
        "sqlite+aiosqlite:///purview-bot.db", validation_alias=_env("PURVIEW_BOT_DATABASE_URL")
    )
    webhook_secret: str | None = Field(None, validation_alias=_env("PURVIEW_BOT_WEBHOOK_SECRET"))
    # seconds a database connect (and each statement, PostgreSQL) may take; the schema migration at start
    # gets 6 × it. The bot starts and serves without its database, retrying with backoff
    database_timeout: float = Field(10, gt=0, validation_alias=_env("PURVIEW_BOT_DATABASE_TIMEOUT"))
    # runs one alert webhook payload may hand to the watcher; the rest are dropped with a log line
    alert_max_runs: int = Field(100, ge=1, validation_alias=_env("PURVIEW_BOT_ALERT_MAX_RUNS"))
    # a Slack user group id (S…) whose members may remove any channel's watch
    admin_usergroup: str | None = Field(None, validation_alias=_env("PURVIEW_BOT_ADMIN_USERGROUP"))
    docs_url: str = Field(DEFAULT_DOCS_URL, validation_alias=_env("PURVIEW_BOT_DOCS_URL"))

    deadline_seconds: float = Field(60, validation_alias=_env("PURVIEW_BOT_DEADLINE"))
    call_timeout_seconds: float = Field(20, validation_alias=_env("PURVIEW_BOT_CALL_TIMEOUT"))
    max_concurrent_diagnoses: int = Field(8, ge=1, validation_alias=_env("PURVIEW_BOT_MAX_DIAGNOSES"))
    # requests that read Azure (checks, runs, list, Re-run) waiting beyond the diagnoses running; past
    # it the ack says "purview-bot is busy — try again in a minute"
    max_queued: int = Field(50, ge=0, validation_alias=_env("PURVIEW_BOT_MAX_QUEUED"))
    # such requests per minute per Slack user and per channel (token buckets in each process; 0 = off)
    user_rate: float = Field(10, ge=0, validation_alias=_env("PURVIEW_BOT_USER_RATE"))
    channel_rate: float = Field(30, ge=0, validation_alias=_env("PURVIEW_BOT_CHANNEL_RATE"))
    # on SIGTERM: how long reports in progress may still finish (a second signal skips the wait); then
    # the unfinished ones are edited to "interrupted by a restart" (a few seconds more) and the process exits
    drain_seconds: float = Field(25, ge=0, validation_alias=_env("PURVIEW_BOT_DRAIN_SECONDS"))
    # the web server: connections open at once (beyond it the oldest one still sending its request is
    # closed), and the seconds a request's headers, then its body, have to arrive (also the keep-alive)
    http_max_connections: int = Field(64, ge=2, validation_alias=_env("PURVIEW_BOT_HTTP_MAX_CONNECTIONS"))
    http_read_seconds: float = Field(5, gt=0, validation_alias=_env("PURVIEW_BOT_HTTP_READ_TIMEOUT"))

    @property
    def accounts(self) -> list[str]:
        return [a.strip() for a in self.purview_accounts.split(",") if a.strip()]

    @property
    def allowed_channel_ids(self) -> frozenset[str]:
        """`PURVIEW_BOT_ALLOWED_CHANNELS` as a set of channel ids (comma or space separated); empty = all."""
        return frozenset(c.strip() for c in self.allowed_channels.replace(",", " ").split() if c.strip())

    @property
    def watch_status_set(self) -> frozenset[str]:
        """`PURVIEW_BOT_WATCH_STATUSES` lower-cased (run statuses are compared case-insensitively)."""
        return frozenset(s.strip().lower() for s in self.watch_statuses.split(",") if s.strip())

    def endpoints(self) -> AzureEndpoints:
        """The cloud's preset, with each per-endpoint override applied; raises ValueError on a bad cloud."""
        preset = cloud_preset(self.cloud)
        return AzureEndpoints(
            arm_url=(self.arm_endpoint or preset.arm_url).rstrip("/"),
            arm_scope=preset.arm_scope,
            purview_url_template=(self.purview_endpoint or preset.purview_url_template).rstrip("/"),
            purview_scope=preset.purview_scope,
            graph_url=(self.graph_endpoint or preset.graph_url).rstrip("/"),
            graph_scope=preset.graph_scope,
            keyvault_verify_challenge=self.keyvault_verify_challenge,
            call_timeout=self.call_timeout_seconds,
        )
