"""The app's pages, each defined once: its script, title, icon and address. ``dashboard.py``'s
navigation is made from :data:`PAGES`, and every link and page switch names a page from here, so a
page added to the table is in the sidebar and reachable by links at once.

A new page: a script in ``app_pages/`` built from the ``ui`` package, and one entry in :data:`PAGES`.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.navigation.page import StreamlitPage


@dataclass(frozen=True)
class AppPage:
    """One page of the app."""

    # The script, relative to dashboard.py. app_pages/, not pages/: with a pages/ folder Streamlit 1.67
    # serves a direct link on a fresh server as a bare legacy page, without the frame.
    path: str
    title: str
    icon: str
    url_path: str  # its address, /<url_path> (the default page is also at /)
    default: bool = False

    def st_page(self) -> StreamlitPage:
        """This page as Streamlit registers it. Made anew at each run: a ``StreamlitPage`` holds the
        state of one session's run, so one object can't serve every session."""
        return st.Page(self.path, title=self.title, icon=self.icon, url_path=self.url_path, default=self.default)


HOME = AppPage("app_pages/home.py", "Home", ":material/home:", "home", default=True)
GENERATE = AppPage("app_pages/generate.py", "Generate", ":material/brush:", "generate")
LIVE = AppPage("app_pages/live.py", "Live", ":material/videocam:", "live")
GALLERY = AppPage("app_pages/gallery.py", "Gallery", ":material/photo_library:", "gallery")
COMPARE = AppPage("app_pages/compare.py", "Compare", ":material/compare:", "compare")
STYLES = AppPage("app_pages/styles.py", "Styles", ":material/palette:", "styles")
MODELS = AppPage("app_pages/models.py", "Models", ":material/model_training:", "models")

PAGES = (HOME, GENERATE, LIVE, GALLERY, COMPARE, STYLES, MODELS)  # in the sidebar's order


def navigation() -> StreamlitPage:
    """Register every page (Streamlit wants them at each run) and return the one this run shows."""
    return st.navigation([page.st_page() for page in PAGES])
