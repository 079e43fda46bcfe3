"""Live: the camera painted as it films (a style change takes effect on the next frame, and *Capture*
stores a frame in the gallery), and video files painted frame by frame, queued like every run."""

import streamlit as st

import ui

ui.header(
    "Live",
    "Your camera painted in real time by an instant model, and video files painted frame by frame with the "
    "sound kept. Both land in the gallery.",
)
choice = None
form_col, camera_col = st.columns([2, 3], gap="large")
with form_col, st.container(border=True):
    st.markdown("**Model and style**")
    with ui.guard("the live settings"):
        choice = ui.live_form()
with camera_col, st.container(border=True):
    st.markdown("**Camera**")
    with ui.guard("the camera"):
        ui.live_camera(choice)

with st.container(border=True):
    st.markdown("**A video file**")
    with ui.guard("the video"):
        ui.live_video(choice)
