"""How the app is deployed: **personal** (no sign-in, one gallery, everything visible: the default)
or **shared** (sign-in required; each user sees and touches only their own runs, models and
imports, admins see everything, and each user gets a fair share of the workers).

The app reads the ``[jaxstyle]`` table of ``.streamlit/secrets.toml`` (beside Streamlit's own
``[auth]``) into a :class:`SiteConfig`; the CLI is always personal. Everything here is plain data
and checks, free of Streamlit::

    [jaxstyle]
    mode = "shared"
    admins = ["teacher@school.example"]

    [jaxstyle.limits]          # per user; each one optional
    active_runs = 2            # runs queued or running at once
    size_px = 1024             # longest side of a run
    iterations = 800
    trainings = false          # may they train instant models?
    video_s = 60               # longest video to paint, seconds
    storage_mb = 500           # gallery storage: their runs' images and videos
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from jaxstyle.errors import LimitError, SettingsError

PERSONAL, SHARED = "personal", "shared"
MODES = (PERSONAL, SHARED)
HOW_TO_GET_MORE = "ask an admin of this site for a larger share"


@dataclasses.dataclass(frozen=True)
class UserLimits:
    """One user's share of a shared site (admins have none of these limits)."""

    active_runs: int = 2
    size_px: int = 1024
    iterations: int = 800
    trainings: bool = False
    video_s: float = 60.0
    storage_mb: float = 500.0

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> UserLimits:
        """Limits from the configuration's ``[jaxstyle.limits]`` table. Raises SettingsError."""
        fields = {field.name: field for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - set(fields))
        if unknown:
            raise SettingsError(f"[jaxstyle.limits] has no setting {unknown[0]!r} (one of {', '.join(fields)})")
        checked: dict[str, Any] = {}
        for name, value in values.items():
            default = fields[name].default
            if isinstance(default, bool):
                if not isinstance(value, bool):
                    raise SettingsError(f"[jaxstyle.limits] {name} must be true or false, got {value!r}")
            elif type(value) not in (int, float) or not math.isfinite(value) or value < 0:
                raise SettingsError(f"[jaxstyle.limits] {name} must be a number of at least 0, got {value!r}")
            elif isinstance(default, int) and value != int(value):
                raise SettingsError(f"[jaxstyle.limits] {name} must be a whole number, got {value!r}")
            checked[name] = type(default)(value)
        return cls(**checked)

    def describe(self) -> str:
        trainings = "trainings allowed" if self.trainings else "no trainings"
        return (f"{self.active_runs} runs at once, {self.size_px} px, {self.iterations:,} iterations, "
                f"videos of {self.video_s:g} s, {self.storage_mb:g} MB of gallery, {trainings}")  # fmt: skip


@dataclasses.dataclass(frozen=True)
class SiteConfig:
    """The deployment: its mode, its admins (by e-mail) and each user's limits."""

    mode: str = PERSONAL
    admins: tuple[str, ...] = ()
    limits: UserLimits = UserLimits()

    @property
    def shared(self) -> bool:
        return self.mode == SHARED

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> SiteConfig:
        """The ``[jaxstyle]`` table (None or empty: personal mode). Raises SettingsError naming the setting."""
        values = dict(values or {})
        unknown = sorted(set(values) - {"mode", "admins", "limits"})
        if unknown:
            raise SettingsError(f"[jaxstyle] has no setting {unknown[0]!r} (mode, admins, limits)")
        mode = values.get("mode", PERSONAL)
        if mode not in MODES:
            raise SettingsError(f"[jaxstyle] mode must be {' or '.join(repr(m) for m in MODES)}, got {mode!r}")
        admins = values.get("admins", [])
        if isinstance(admins, str) or not all(isinstance(a, str) and "@" in a for a in admins):
            raise SettingsError(f"[jaxstyle] admins must be a list of e-mail addresses, got {admins!r}")
        limits = values.get("limits", {})
        if not isinstance(limits, Mapping):
            raise SettingsError("[jaxstyle] limits must be a table ([jaxstyle.limits])")
        return cls(mode, tuple(a.strip().lower() for a in admins), UserLimits.from_mapping(limits))

    def viewer(self, subject: str | None, email: str = "") -> Viewer:
        """Who a session is: everyone is the owner of everything in personal mode; in shared mode
        the signed-in identity (``subject``: OpenID Connect's stable ``sub``), an admin when its
        e-mail is in :attr:`admins`."""
        if not self.shared:
            return Viewer(None, "", is_admin=True)
        if not subject:
            raise SettingsError("a shared site needs a signed-in user")
        return Viewer(str(subject), email or "", is_admin=bool(email) and email.strip().lower() in self.admins)


@dataclasses.dataclass(frozen=True)
class Viewer:
    """Who is looking, and so what they may see and touch.

    Attributes:
        subject: the owner new items are stored under (None: personal mode, no owners).
        email: shown beside the subject; it decides who is an admin.
        is_admin: sees and manages everything, has no limits.
    """

    subject: str | None
    email: str = ""
    is_admin: bool = False

    @property
    def sees_everything(self) -> bool:
        return self.subject is None or self.is_admin

    def may_touch(self, owner: str | None) -> bool:
        """Whether an item of ``owner`` is this viewer's to see and change (None: the admins')."""
        return self.sees_everything or owner == self.subject


def check_run(limits: UserLimits, viewer: Viewer, *, size_px: int, iterations: int) -> None:
    """Refuse a run over the user's size or iterations (admins and personal mode: no limits)."""
    if viewer.sees_everything:
        return
    if size_px > limits.size_px:
        raise LimitError(f"a size of {size_px} px is over your limit of {limits.size_px} px; {HOW_TO_GET_MORE}")
    if iterations > limits.iterations:
        raise LimitError(f"{iterations:,} iterations are over your limit of {limits.iterations:,}; {HOW_TO_GET_MORE}")
