"""Home: what this is, a way in, the latest runs and the system status."""

import streamlit as st

import ui
from jaxstyle import devices, gallery, runs

intro, action = st.columns([3, 1], vertical_alignment="center")
with intro:
    st.title("jaxstyle", anchor=False)
    st.markdown(
        "Repaint any photo in the style of a painting: neural style transfer (Gatys et al.) running on JAX.  \n"
        "Every run lands in a gallery where you can find it, compare it and run it again."
    )
with action:
    if st.button("Generate an image", key="cta_generate", type="primary", icon=":material/brush:", width="stretch"):
        ui.handoff.open_generate()

with ui.db() as db:
    latest = gallery.list_runs(db, limit=8, **ui.mine())
    total = gallery.count_runs(db, **ui.mine())
    done = gallery.count_runs(db, status=runs.DONE, **ui.mine())

st.subheader("Latest runs", anchor=False)
if latest:
    ui.run_grid(latest, key="home_open")
    st.page_link(ui.pages.GALLERY.path, label=f"All {total} runs in the gallery", icon=":material/arrow_forward:")
else:
    st.info("No runs yet. Your first image will appear here.", icon=":material/photo_library:")

st.subheader("System", anchor=False)
device_col, runs_col, weights_col, gallery_col = st.columns(4, gap="medium")
with device_col, st.container(border=True):
    device = ui.device()
    st.metric("Device", devices.platform().upper(), border=False)
    st.caption(device if ":" in device else "JAX on the CPU: fine for previews; a GPU is much faster.")
with runs_col, st.container(border=True), ui.guard("the runner"):
    ui.runs_panel()
with weights_col, st.container(border=True):
    st.markdown("**VGG19 weights**")
    ui.weights_panel()
with gallery_col, st.container(border=True):
    st.metric("Gallery", f"{total} runs", border=False)
    st.caption(f"{done} finished" + ("" if ui.site().shared else f" · {ui.gallery_path()}"))
