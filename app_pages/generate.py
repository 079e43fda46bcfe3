"""Generate: pick a photo and a painting, choose settings, and watch the run."""

import streamlit as st

import ui
from jaxstyle import inputs

ui.header("Generate", "A photo, one or more paintings, a preset: the run continues even if you close the tab.")
ui.prefill_from_run()
inputs_col, output_col = st.columns([5, 6], gap="large")
with inputs_col:
    with st.container(border=True):
        st.markdown("**1 · Content**")
        content = ui.content_input()
    with st.container(border=True):
        st.markdown("**2 · Style**")
        styles, blend = ui.style_input()
    with st.container(border=True):
        st.markdown("**3 · Settings**")
        settings = ui.settings_form()
    missing = [
        name for name, value in (("a photo", content), ("a style", styles), ("valid settings", settings)) if not value
    ]
    clicked = st.button(
        "Generate", key="generate", type="primary", icon=":material/brush:", width="stretch", disabled=bool(missing)
    )
    if missing:
        st.caption("To generate, choose " + " and ".join(missing) + ".")
    if clicked:
        with ui.guard("starting the run"):
            title = inputs.default_title(content, styles)
            st.session_state["run_id"] = ui.runner().submit(settings, content, styles, style_blend=blend, title=title)

with output_col, st.container(key="run_output"):
    run_id = st.session_state.get("run_id")
    if run_id is None:
        with st.container(border=True):
            st.markdown("**Your image appears here**")
            st.caption(
                "Start with *Quick preview* to see a style in a minute, then raise the size or pick "
                "*High quality*. Weights under *Advanced settings* trade photo for painting."
            )
    else:
        with ui.guard(f"run #{run_id}"):
            ui.run_view(run_id)
