"""Compare: 2–4 runs side by side, and weight sweeps that show what the weights do."""

import streamlit as st

import ui

ui.header("Compare", "Runs side by side, with the settings that differ marked, and weight sweeps.")
side_tab, sweep_tab = st.tabs(["Side by side", "Weight sweep"], key="cmp_tab")
with side_tab, ui.guard("the comparison"):
    chosen = ui.compare_picker()
    if len(chosen) < 2:
        st.info(
            "Choose at least two finished runs above, or use *Compare* on a run in the gallery.",
            icon=":material/compare:",
        )
    else:
        ui.comparison(chosen)

with sweep_tab, ui.guard("the weight sweep"):
    st.markdown(
        "One photo, one style, several **style/content weight ratios** on a log scale: "
        "the quickest way to see how much painting you want."
    )
    inputs = st.columns(2, gap="large")
    with inputs[0]:
        content = ui.content_input()
    with inputs[1]:
        styles, blend = ui.style_input()
    ui.sweep_form(content, styles, blend)
    groups = ui.sweep_groups()
    if groups:
        st.divider()
        if st.session_state.get("sweep_group") in groups:
            st.session_state["sw_group"] = st.session_state.pop("sweep_group")
        group = st.selectbox("Sweep", list(groups), key="sw_group", format_func=groups.get)
        ui.sweep_view(group)
