"""Styles: the catalog of paintings, with what is on this machine and a download for the rest."""

import streamlit as st

import ui
from jaxstyle import catalog

ui.header("Styles", "Public-domain paintings to borrow a style from. Any image of your own works too.")
styles = catalog.list_styles()
offline = {style.id: catalog.is_available_offline(style.id) for style in styles}
st.caption(f"{sum(offline.values())} of {len(styles)} paintings are on this machine.")
for row in ui.chunks(styles, 4):
    for column, style in zip(st.columns(4), row, strict=False):
        with column, st.container(border=True):
            thumb = ui.style_thumbnail(style.id)
            st.image(ui.cover(thumb) if thumb else ui.placeholder(), width="stretch")
            st.markdown(f"**{style.title}**")
            st.caption(f"{style.artist}, {style.year} · {style.license}")
            if offline[style.id]:
                if st.button("Use this style", key=f"use_{style.id}", icon=":material/brush:"):
                    ui.handoff.open_generate(styles=[style.id])
            else:
                st.caption(":material/cloud_off: Not on this machine")
                ui.download_style(style, key=f"dl_{style.id}")
                ui.style_download_error(f"dl_{style.id}")
