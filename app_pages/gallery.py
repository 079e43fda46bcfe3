"""Gallery: every run, newest first, with filters, and its export and import as a ZIP; one run in full
when ``?run=<id>`` is set."""

import streamlit as st

import ui

run_param = st.query_params.get("run")
if run_param is not None and run_param.isdigit():
    shown = False
    with ui.guard(f"run #{run_param}"):
        ui.run_detail(int(run_param), st.query_params.get("token"))
        shown = True
    if not shown:  # a missing run, or not this user's: the message above, and a way out
        st.button("Back to the gallery", key="back_missing", icon=":material/arrow_back:", on_click=ui.close_run)
else:
    ui.header("Gallery", "Every run you made: filter, open one to see how it was made, re-run or compare it.")
    with ui.guard("the gallery"):
        ui.gallery_grid(ui.gallery_filters())
    with ui.guard("the export or import"):
        ui.gallery_archive()
