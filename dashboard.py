"""jaxstyle's web app: ``streamlit run dashboard.py``.

The entry point is the frame: page config, JAX's compile cache, the shared sidebar, and the
navigation (the pages are listed in ``ui/pages.py``); each page is a short script in ``app_pages/``
built from the ``ui`` package.
"""

import logging

import streamlit as st

import ui
from jaxstyle import transfer
from jaxstyle.errors import SettingsError

st.set_page_config(page_title="jaxstyle", page_icon=ui.app_icon(), layout="wide")
st.logo(ui.app_icon(), size="large")


@st.cache_resource(show_spinner=False)
def _configure_process() -> None:
    """Once per process: the persistent compile cache (later runs at a known size skip compiling)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    transfer.enable_compilation_cache()


_configure_process()
# A shared site shows a signed-out visitor the sign-in page and nothing else (ui.access); a
# misconfigured one stops with its error rather than opening as a personal app.
try:
    ui.site()
except SettingsError as error:
    st.error(str(error), icon=":material/error:")
    st.stop()
if not ui.signed_in():
    st.stop()
page = ui.pages.navigation()  # every page, from its one definition in ui/pages.py
ui.handoff.follow()  # a move to another page that a click asked for (ui/handoff.py) goes before anything is drawn
st.html(ui.CSS)
# The sidebar's slot comes first, its content after the page: it then counts what the page has just
# started (a run, a training) instead of lagging one rerun behind.
sidebar_slot = st.sidebar.container()
with ui.guard(f"the {page.title} page"):
    page.run()
with sidebar_slot, ui.guard("the sidebar"):
    ui.account()
    ui.sidebar()
