"""Generate: pick a photo, then either optimize it towards one or more paintings (a queued run you can
watch) or paint it at once with a network (a built-in one, or one trained on the Models page)."""

import streamlit as st

import ui
from jaxstyle import inputs

ui.header(
    "Generate",
    "A photo and one or more paintings: optimize step by step (the run goes on even if you close the tab), "
    "or paint at once with a network.",
)
ui.prefill_generate()
method = ui.generate_method()
inputs_col, output_col = st.columns([5, 6], gap="large")
with inputs_col:
    with st.container(border=True):
        st.markdown("**1 · Content**")
        content = ui.content_input()
    if method == "Instant":
        with st.container(border=True):
            st.markdown("**2 · Model and styles**")
            with ui.guard("the models"):
                request = ui.instant_form(content)
        missing = [name for name, value in (("a photo", content), ("a style", request)) if not value]
        clicked = st.button(
            "Paint", key="paint", type="primary", icon=":material/bolt:", width="stretch", disabled=bool(missing)
        )
        if missing:
            st.caption("To paint, choose " + " and ".join(missing) + ".")
        if clicked:
            with ui.guard("painting"):
                ui.paint(content, request)
    else:
        with st.container(border=True):
            st.markdown("**2 · Style**")
            styles, blend = ui.style_input()
        with st.container(border=True):
            st.markdown("**3 · Settings**")
            settings = ui.settings_form()
        missing = [
            name
            for name, value in (("a photo", content), ("a style", styles), ("valid settings", settings))
            if not value
        ]
        clicked = st.button(
            "Generate", key="generate", type="primary", icon=":material/brush:", width="stretch", disabled=bool(missing)
        )
        if missing:
            st.caption("To generate, choose " + " and ".join(missing) + ".")
        if clicked:
            with ui.guard("starting the run"):
                title = inputs.default_title(content, styles)
                st.session_state["run_id"] = ui.runner().submit(
                    settings, content, styles, style_blend=blend, title=title, **ui.share()
                )

with output_col, st.container(key="run_output"):
    if method == "Instant":
        with ui.guard("the instant run"):
            ui.instant_output()
    elif (run_id := st.session_state.get("run_id")) is None:
        with st.container(border=True):
            st.markdown("**Your image appears here**")
            st.caption(
                "Start with *Quick preview* to see a style in a minute, then raise the size or pick "
                "*High quality*. Weights under *Advanced settings* trade photo for painting."
            )
    else:
        with ui.guard(f"run #{run_id}"):
            ui.run_view(run_id)
