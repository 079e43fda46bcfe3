"""The state of this machine as the app shows it: the VGG19 weights in use (with their download)
and, in the sidebar, what is running and on which device."""

from __future__ import annotations

import streamlit as st

from jaxstyle import weights
from jaxstyle.errors import ClusterError
from ui.common import device, guard, runner, trainings


def weights_panel() -> None:
    """Which VGG19 weights runs use, with a download button while they are the offline fallback."""
    status = weights.weights_status()
    if status.problem:
        st.error(status.problem, icon=":material/error:")
    if status.pretrained:
        st.success("Pretrained VGG19 (ImageNet)", icon=":material/verified:")
        st.caption(status.description)
        return
    st.warning("Offline fallback (random VGG19): results show texture, not painting style.", icon=":material/warning:")
    if st.button(
        f"Download pretrained weights ({weights.KERAS_SIZE_MB} MB)", key="download_weights", icon=":material/download:"
    ):
        bar = st.progress(0.0, text="Downloading VGG19 weights…")

        def progress(done: int, total: int | None) -> None:
            text = f"Downloading VGG19 weights… {done / 1e6:.0f} MB" + (f" of {total / 1e6:.0f} MB" if total else "")
            bar.progress(min(1.0, done / total) if total else 0.0, text=text)

        with guard("the weights download"):
            weights.download_weights(progress=progress)
            runner().reset_weights()
            st.toast("Pretrained weights downloaded; new runs use them.", icon=":material/check:")
        bar.empty()


def sidebar() -> None:
    """The shared sidebar's content (drawn into the sidebar by ``dashboard.py``): what is running now,
    device and weights in one glance."""
    active, queued = runner().active_ids(), runner().queued_ids()
    training = sum(trainings().running(name) for name in trainings().names())
    if active or queued or training:
        text = " · ".join(
            part
            for part in (
                f"{len(active)} running" if active else "",
                f"{len(queued)} waiting" if queued else "",
                f"{training} training" if training else "",
            )
            if part
        )
        st.caption(f":material/autorenew: {text}")
    status = weights.weights_status()
    kind = "pretrained VGG19" if status.pretrained else "fallback VGG19"
    st.caption(f":material/memory: {device()} · {kind}")
    backend = runner().backend
    if backend.name != "in-process":
        st.caption(f":material/cloud: runs go to the {backend.describe()}")


def runs_panel() -> None:
    """Where runs execute: this process, or a Ray cluster (joined here, so an unreachable one is
    one clear message on the Home page)."""
    backend = runner().backend
    if backend.name == "in-process":
        st.metric("Runs execute", "In this app", border=False)
        st.caption("Set JAXSTYLE_RAY_ADDRESS to run them on a Ray cluster.")
        return
    st.metric("Runs execute", "On a Ray cluster", border=False)
    try:
        with st.spinner("Joining the Ray cluster…"):
            backend.connect()
    except ClusterError as error:
        st.error(str(error), icon=":material/cloud_off:")
        return
    st.caption(backend.describe())
