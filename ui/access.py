"""Who is using the app. Personal mode (the default): nobody signs in and everyone sees everything.
A shared site (``[jaxstyle] mode = "shared"`` in ``.streamlit/secrets.toml``): every page but the
sign-in page needs a signed-in user (Streamlit's ``st.login``, OpenID Connect), who sees and
touches only their own runs and models; admins see everything.

Pages never read ``st.user`` themselves: they ask :func:`viewer` and hand it to the core
(:mod:`jaxstyle.gallery.access`, the job queue).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import streamlit as st

from jaxstyle import gallery
from jaxstyle.errors import LimitError, ModelError, SettingsError
from jaxstyle.site import HOW_TO_GET_MORE, SiteConfig, Viewer
from ui.common import db


def _plain(values: Any) -> Any:
    """A secrets section (Streamlit's read-only mapping) as plain dicts and lists."""
    if isinstance(values, Mapping):
        return {key: _plain(value) for key, value in values.items()}
    if isinstance(values, (list, tuple)):
        return [_plain(value) for value in values]
    return values


def site() -> SiteConfig:
    """The deployment, from the ``[jaxstyle]`` table of the secrets (none: personal mode).

    Raises:
        SettingsError: a wrong value; the app then stops with that line rather than opening a
            shared site as a personal one.
    """
    try:
        values = st.secrets.get("jaxstyle")
    except FileNotFoundError:  # no secrets.toml at all: a personal app
        return SiteConfig()
    config = SiteConfig.from_mapping(_plain(values))
    if config.shared:
        try:
            has_auth = "auth" in st.secrets
        except FileNotFoundError:
            has_auth = False
        if not has_auth:
            raise SettingsError(
                'a shared site ([jaxstyle] mode = "shared") needs an [auth] table in .streamlit/secrets.toml '
                "naming its OpenID Connect provider (see the README: Deploying for a class or a public site)"
            )
    return config


def viewer() -> Viewer:
    """This session's user (personal mode: a viewer who sees everything)."""
    config = site()
    if not config.shared:
        return config.viewer(None)
    if not st.user.is_logged_in:
        raise SettingsError("sign in first")
    return config.viewer(st.user.get("sub"), st.user.get("email") or "")


def signed_in() -> bool:
    """True when the page may be shown: personal mode, or a signed-in user. Otherwise the sign-in
    page is drawn (the only thing a signed-out visitor of a shared site sees) and False returned."""
    if not site().shared or st.user.is_logged_in:
        return True
    st.title("jaxstyle", anchor=False)
    st.markdown(
        "Paint your photos in the style of a painter. **Sign in** to start: what you make stays "
        "yours, unless you share it."
    )
    st.button("Sign in", type="primary", icon=":material/login:", on_click=st.login, key="sign_in")
    return False


def account() -> None:
    """The sidebar's account line on a shared site: who is signed in, and Sign out."""
    if not site().shared or not st.user.is_logged_in:
        return
    who = viewer()
    st.caption(f"Signed in as **{who.email or who.subject}**" + (" · admin" if who.is_admin else ""))
    st.button("Sign out", icon=":material/logout:", on_click=st.logout, key="sign_out")


def share() -> dict[str, Any]:
    """What the job queue needs to hold this session's runs to its share: ``viewer`` and ``limits``."""
    return {"viewer": viewer(), "limits": site().limits}


def mine() -> dict[str, Any]:
    """``list_runs``/``count_runs`` criteria for the runs this session may list (all, in personal mode)."""
    return gallery.owner_criteria(viewer())


def own_inputs_owner() -> str | None:
    """Whose inputs to list: this user's on a shared site (admins: everyone's), None in personal mode."""
    who = viewer()
    return None if who.sees_everything else who.subject


def my_models(names: Iterable[str]) -> list[str]:
    """Those trained or imported models this session may see and use (its own; all in personal mode)."""
    names = list(names)
    if viewer().sees_everything:
        return names
    with db() as conn:
        return gallery.visible_models(names, gallery.model_owners(conn), viewer())


def check_my_model(name: str) -> None:
    """Refuse another user's model as if it did not exist."""
    if not my_models([name]):
        raise ModelError(f"no model called {name!r}")


def record_model_owner(name: str) -> None:
    """This session's user owns the model ``name`` they just trained or imported (shared sites)."""
    if viewer().subject is not None:
        with db() as conn:
            gallery.set_model_owner(conn, name, viewer().subject)


def check_training_allowed() -> None:
    """A shared site's user may train only when their share says so (admins always may)."""
    who = viewer()
    if not who.sees_everything and not site().limits.trainings:
        raise LimitError(f"training models is not part of your share of this site; {HOW_TO_GET_MORE}")
