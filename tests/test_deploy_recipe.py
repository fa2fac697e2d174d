"""The image and the Azure recipe agree with the bot on every setting name.

deploy/app.bicep sets the container's environment, the Containerfile its defaults; a name the bot does not
read (a typo, a setting renamed in bot/settings.py) would be silently ignored in production. The only
names that are not the bot's own are azure-identity's and the Python runtime's, listed here.
"""

from __future__ import annotations

import re
from pathlib import Path

from bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# read by libraries, not by Settings: azure-identity's credential choice, Python's runtime switches
NOT_THE_BOTS = {"AZURE_TOKEN_CREDENTIALS", "PATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE"}
# the build stage's pip settings (ARG, never in the image)
BUILD_ONLY = {"PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK", "PIP_ROOT_USER_ACTION"}


def setting_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        choices = getattr(alias, "choices", [alias])
        names.update(str(choice) for choice in choices)
    return names


def bicep_env_names() -> set[str]:
    """`{ name: 'X', value: … }` / `{ name: 'X', secretRef: … }` entries: the container's environment."""
    text = (ROOT / "deploy" / "app.bicep").read_text(encoding="utf-8")
    return set(re.findall(r"\{ name: '([A-Z][A-Z0-9_]*)', (?:value|secretRef):", text))


def containerfile_env_names() -> set[str]:
    names: set[str] = set()
    text = (ROOT / "Containerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        if line.startswith("ENV "):
            names.update(re.findall(r"([A-Z][A-Z0-9_]*)=", line))
    return names


def test_every_setting_the_recipe_sets_is_read_by_the_bot() -> None:
    names = bicep_env_names()
    assert {"PURVIEW_ACCOUNTS", "SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "PURVIEW_BOT_DATABASE_URL"} <= names
    unknown = names - setting_names() - NOT_THE_BOTS
    assert not unknown, f"deploy/app.bicep sets names the bot does not read: {sorted(unknown)}"


def test_the_image_sets_only_the_port_and_runtime_switches() -> None:
    names = containerfile_env_names() - BUILD_ONLY
    assert "PORT" in names
    unknown = names - setting_names() - NOT_THE_BOTS
    assert not unknown, f"the Containerfile sets names the bot does not read: {sorted(unknown)}"
    baked = names & (setting_names() - {"PORT"})
    assert not baked, f"the image gives settings a value: {sorted(baked)}"
