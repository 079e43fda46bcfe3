"""The gallery as the app shows it: run cards and grids, the filter row, one run in full with its
edits (title, tags, favorite, delete), and the gallery's export to and import from a ZIP."""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import streamlit as st

from jaxstyle import gallery, images, runs
from jaxstyle.errors import JaxstyleError
from jaxstyle.inputs import input_label
from ui import handoff, pages
from ui.access import mine, own_inputs_owner, site, viewer
from ui.common import (
    ago,
    chunks,
    cover,
    db,
    failure_message,
    guard,
    index_of,
    placeholder,
    recall,
    status_badge,
)
from ui.run_views import (
    VIDEO_RERUN_REASON,
    cancel_run,
    live_run,
    loss_chart,
    method_label,
    run_facts,
    settings_table,
    shown_settings,
    video_view,
)

GALLERY_PAGE_SIZE = 12
METHOD_ICONS = {runs.METHOD_INSTANT: ":material/bolt:", runs.METHOD_VIDEO: ":material/movie:"}  # optimizations: none

# ----- cards --------------------------------------------------------------------------------------


def run_card(summary: gallery.RunSummary, thumb: bytes | None, *, key: str) -> None:
    """One gallery card: thumbnail, title, status and age, an Open button."""
    with st.container(border=True):
        st.image(cover(thumb) if thumb else placeholder(), width="stretch")
        star = ":material/star: " if summary.favorite else ""
        st.markdown(f"**{star}{summary.title or f'Run #{summary.id}'}**")
        meta = st.container(horizontal=True, vertical_alignment="center")
        with meta:
            if summary.status != runs.DONE:
                status_badge(summary.status)
            icon = METHOD_ICONS.get(summary.method)
            made = f" · {icon} {method_label(summary)}" if icon else ""
            st.caption(f"#{summary.id} · {ago(summary.created)}{made}")
        st.button("View", key=f"{key}_{summary.id}", on_click=handoff.open_run, args=(summary.id,), width="stretch")


def run_grid(summaries: Sequence[gallery.RunSummary], *, key: str, columns: int = 4) -> None:
    with db() as conn:
        thumbs = gallery.thumbnails(conn, [s.id for s in summaries])
    for row in chunks(list(summaries), columns):
        for column, summary in zip(st.columns(columns), row, strict=False):
            with column:
                run_card(summary, thumbs.get(summary.id), key=key)


# ----- the filtered grid --------------------------------------------------------------------------


def _reset_gallery_page() -> None:
    st.session_state["g_page"] = 1


def gallery_filters() -> dict[str, Any]:
    """The gallery's filter row; returns keyword arguments for ``gallery.list_runs``."""
    with db() as conn:
        styles = {info.sha256: info for info in gallery.list_inputs(conn, "style", owner=own_inputs_owner())}
        tags = sorted({tag for run in gallery.list_runs(conn, limit=1000, **mine()) for tag in run.tags}, key=str.lower)
    now = recall({"g_text": "", "g_style": None, "g_tag": None, "g_status": [], "g_fav": False})
    kw: dict[str, Any] = {"on_change": _reset_gallery_page}
    search, style_col, tag_col, status_col, date_col, fav_col = st.columns(
        [3, 2, 2, 2, 2, 1.6], vertical_alignment="bottom"
    )
    text = search.text_input(
        "Search titles", now["g_text"], key="g_text", placeholder="Search titles", icon=":material/search:", **kw
    )
    style = style_col.selectbox(
        "Style", list(styles), key="g_style", index=index_of(list(styles), now["g_style"]), placeholder="Any style",
        format_func=lambda s: input_label(styles[s]), **kw,
    )  # fmt: skip
    tag = tag_col.selectbox("Tag", tags, index_of(tags, now["g_tag"]), key="g_tag", placeholder="Any tag", **kw)
    status = status_col.multiselect(
        "Status",
        runs.RUN_STATUSES,
        now["g_status"],
        key="g_status",
        placeholder="Any status",
        format_func=str.capitalize,
        **kw,
    )
    dates = date_col.date_input("Created", value=(), key="g_dates", **kw)
    favorite = fav_col.toggle("Starred", now["g_fav"], key="g_fav", help="Only favorites", **kw)
    since, until = (tuple(dates) + (None, None))[:2] if dates else (None, None)
    scope = mine()
    if site().shared:  # a shared site: one's own runs, or everyone's published ones
        published = st.segmented_control(
            "Whose runs", ["Mine", "Published"], key="g_scope", default="Mine", on_change=_reset_gallery_page,
            help="Published: the runs their owners put on the public page.",
        )  # fmt: skip
        if published == "Published":
            scope = {"public": True}
    return {
        **scope,
        "text": text.strip() or None,
        "style": style,
        "tag": tag,
        "status": status or None,
        "since": since,
        "until": until or since,
        "favorite": True if favorite else None,
    }


def gallery_grid(filters: dict[str, Any]) -> None:
    """The filtered runs, newest first, as pages of thumbnail cards."""
    with db() as conn:
        total = gallery.count_runs(conn, **filters)
        page_count = max(1, math.ceil(total / GALLERY_PAGE_SIZE))
        page = min(int(st.session_state.get("g_page", 1)), page_count)
        shown = gallery.list_runs(conn, **filters, limit=GALLERY_PAGE_SIZE, offset=(page - 1) * GALLERY_PAGE_SIZE)
    if not shown:
        filtered = any(value for name, value in filters.items() if name not in ("owner", "public"))
        st.info(
            "No runs match these filters." if filtered else "The gallery is empty: generate an image first.",
            icon=":material/photo_library:",
        )
        return
    st.caption(f"{total} run{'s' if total != 1 else ''}, newest first")
    run_grid(shown, key="gallery_open")
    if page_count > 1:
        with st.container(horizontal_alignment="center"):
            st.pagination(page_count, key="g_page", default=page)


def _toggle_favorite(run_id: int, favorite: bool) -> None:
    with db() as conn:
        gallery.visible_run(conn, run_id, viewer())  # only one's own runs change
        gallery.set_favorite(conn, run_id, favorite)


def _rename(run_id: int) -> None:
    with db() as conn:
        gallery.visible_run(conn, run_id, viewer())
        gallery.set_title(conn, run_id, st.session_state[f"title_{run_id}"])


def _retag(run_id: int) -> None:
    with db() as conn:
        gallery.visible_run(conn, run_id, viewer())
        gallery.set_tags(conn, run_id, st.session_state[f"tags_{run_id}"])


def _share(run_id: int, share: bool) -> None:
    with db() as conn:
        gallery.visible_run(conn, run_id, viewer())
        if share:
            gallery.share_run(conn, run_id)
        else:
            gallery.unshare_run(conn, run_id)


def _publish(run_id: int) -> None:
    with db() as conn:
        gallery.visible_run(conn, run_id, viewer())
        gallery.set_public(conn, run_id, bool(st.session_state[f"public_{run_id}"]))


def _delete(run_id: int) -> None:
    try:
        with db() as conn:
            gallery.visible_run(conn, run_id, viewer())
            gallery.delete_run(conn, run_id)
    except JaxstyleError as error:
        st.session_state["delete_error"] = str(error)
        return
    st.query_params.pop("run", None)
    handoff.drop_from_comparison(run_id)
    st.toast(f"Run #{run_id} deleted.", icon=":material/delete:")


def add_to_comparison(run_id: int) -> None:
    chosen = handoff.add_to_comparison(run_id)
    st.toast(f"Run #{run_id} added to the comparison ({len(chosen)} of up to {handoff.MAX_COMPARED}).")


def close_run() -> None:
    st.query_params.pop("run", None)


def run_detail(run_id: int, token: str | None = None) -> None:
    """One run in full: image, inputs, every setting, loss curves, facts, and what to do with it.

    On a shared site: the owner's (or an admin's) run with everything; a published run or one
    opened by its share link (``token``) read only; anyone else's is "not found"."""
    who = viewer()
    with db() as conn:
        run = gallery.readable_run(conn, run_id, who, token)
        png = gallery.run_image(conn, run_id)
        all_tags = sorted({t for r in gallery.list_runs(conn, limit=1000, **mine()) for t in r.tags} | set(run.tags))
        shared_token = gallery.share_token(conn, run_id) if who.may_touch(run.owner) else None
    if not who.may_touch(run.owner):
        _read_only_detail(run, png)
        return
    st.button("Back to the gallery", key="back", icon=":material/arrow_back:", on_click=close_run, type="tertiary")
    title_col, badge_col = st.columns([6, 1], vertical_alignment="center")
    title_col.title(("★ " if run.favorite else "") + (run.title or f"Run #{run.id}"), anchor=False)
    with badge_col:
        status_badge(run.status)
    image_col, side_col = st.columns([3, 2], gap="large")
    video = run.method == runs.METHOD_VIDEO
    with image_col:
        if video and video_view(run, key="detail", link=False):
            pass  # the painted video, its download and what it measured
        elif png is not None:
            st.image(png, width="stretch")
        elif run.status in runs.ACTIVE_STATUSES:
            live_run(run.id)
        else:
            if run.status == runs.CANCELLED:  # the user's choice, not a failure
                st.info(run.error[:1].upper() + run.error[1:] if run.error else "Cancelled.", icon=":material/cancel:")
            else:
                st.error(f"{run.status.capitalize()}: {run.error}", icon=":material/error:")
    with side_col:
        inputs = st.columns(1 + len(run.styles))
        with db() as conn:
            datas = [gallery.input_image(conn, info.sha256) for info in (run.content, *run.styles)]
        for column, info, data, role in zip(
            inputs, (run.content, *run.styles), datas, ["Content"] + ["Style"] * len(run.styles), strict=True
        ):
            blend = f" {info.blend:.0%}" if role == "Style" and len(run.styles) > 1 and info.blend is not None else ""
            column.image(
                cover(data),
                caption=f"{role}: {input_label(info)}{blend}",
                width="stretch",
            )
        st.caption(
            f"#{run.id} · {method_label(run)} · created {run.created.astimezone():%Y-%m-%d %H:%M}"
            + (f" · {run_facts(run)}" if run_facts(run) else "")
            + (f" · group {run.group_id}" if run.group_id else "")
        )
        if run.final_losses:
            st.caption(
                "Final loss: " + " · ".join(f"{k} {v:.3g}" for k, v in run.final_losses.items() if k in runs.LOSS_NAMES)
            )
        st.session_state[f"title_{run.id}"] = run.title
        st.text_input("Title", key=f"title_{run.id}", on_change=_rename, args=(run.id,))
        st.session_state[f"tags_{run.id}"] = list(run.tags)
        st.multiselect(
            "Tags", all_tags, key=f"tags_{run.id}", accept_new_options=True, placeholder="Add a tag",
            on_change=_retag, args=(run.id,),
        )  # fmt: skip
        actions = st.container(horizontal=True)
        if png is not None:
            actions.download_button(
                "Poster PNG" if video else "PNG", png,
                file_name=images.safe_filename(f"{run.title or f'run-{run.id}'}.png"), mime="image/png",
                key="detail_download", icon=":material/download:", on_click="ignore",
            )  # fmt: skip
        actions.button(
            "Unfavorite" if run.favorite else "Favorite", key="favorite", icon=":material/star:",
            on_click=_toggle_favorite, args=(run.id, not run.favorite),
        )  # fmt: skip
        if not video and actions.button("Re-run", key="rerun", icon=":material/replay:"):
            handoff.open_generate(rerun=run.id)
        actions.button(
            "Compare", key="add_compare", icon=":material/compare:", on_click=add_to_comparison, args=(run.id,)
        )
        with actions.popover("Delete", icon=":material/delete:"):
            if run.status in runs.ACTIVE_STATUSES:
                st.caption("This run is still going; cancel it first.")
                st.button("Cancel the run", key="detail_cancel", on_click=cancel_run, args=(run.id,))
            else:
                st.markdown(f"Delete **{run.title or f'run #{run.id}'}** and its image? This can't be undone.")
                st.button("Delete for good", key="confirm_delete", type="primary", on_click=_delete, args=(run.id,))
        if video:
            st.caption(f":material/info: No *Re-run* here: {VIDEO_RERUN_REASON}.")
        if site().shared:
            _sharing(run, shared_token)
        if message := st.session_state.pop("delete_error", None):
            st.error(message, icon=":material/error:")
        if chosen := handoff.comparison():
            st.page_link(
                pages.COMPARE.path, label=f"Compare {len(chosen)} chosen runs", icon=":material/arrow_forward:"
            )
    settings_tab, losses_tab = st.tabs(["Settings", "Loss curves"])
    with settings_tab:
        settings_table(shown_settings(run))
    with losses_tab:
        loss_chart(run.loss_history, key=f"detail_chart_{run.id}")


def _read_only_detail(run: gallery.Run, png: bytes | None) -> None:
    """Someone else's run opened by its share link, or published: to look at and download, nothing to change."""
    st.button("Back to the gallery", key="back", icon=":material/arrow_back:", on_click=close_run, type="tertiary")
    st.title(run.title or f"Run #{run.id}", anchor=False)
    st.caption(("Published" if run.public else "Shared with you") + f" · read only · {method_label(run)}")
    image_col, side_col = st.columns([3, 2], gap="large")
    with image_col:
        if run.method == runs.METHOD_VIDEO and video_view(run, key="shared", link=False):
            pass
        elif png is not None:
            st.image(png, width="stretch")
        else:
            st.info(f"This run is {run.status}.", icon=":material/info:")
    with side_col:
        if png is not None:
            st.download_button(
                "PNG", png, file_name=images.safe_filename(f"{run.title or f'run-{run.id}'}.png"), mime="image/png",
                key="shared_download", icon=":material/download:", on_click="ignore",
            )  # fmt: skip
        settings_table(shown_settings(run))


def _sharing(run: gallery.Run, token: str | None) -> None:
    """A shared site's owner: a share link (read only for whoever has it; revocable) and the public page."""
    with st.expander("Share", icon=":material/share:", expanded=token is not None):
        if token is None:
            st.caption("A link that opens this run read-only for any signed-in user who has it.")
            st.button("Create a share link", key="share_create", icon=":material/link:", on_click=_share,
                      args=(run.id, True))  # fmt: skip
        else:
            base = str(st.context.url or "").split("?", 1)[0]
            st.code(f"{base}?run={run.id}&token={token}", language=None)
            st.button("Revoke the link", key="share_revoke", icon=":material/link_off:", on_click=_share,
                      args=(run.id, False))  # fmt: skip
        st.session_state[f"public_{run.id}"] = run.public
        st.toggle("On the public page", key=f"public_{run.id}", on_change=_publish, args=(run.id,),
                  help="Every signed-in user can see it under Gallery → Published.")  # fmt: skip


# ----- export and import --------------------------------------------------------------------------


def _export_zip() -> tuple[bytes, int]:
    """The whole gallery as a ZIP (what ``python -m jaxstyle gallery export`` writes) and its run count."""
    with tempfile.TemporaryDirectory(prefix="jaxstyle-export-") as folder:
        path = Path(folder) / "gallery.zip"
        with db() as conn:
            run_ids = None  # everything, in personal mode and for an admin
            if not viewer().sees_everything:
                run_ids = [summary.id for summary in gallery.list_runs(conn, order="oldest", limit=1000, **mine())]
            count = gallery.export_gallery(conn, path, run_ids=run_ids)
        return path.read_bytes(), count


def _import_upload() -> None:
    """Import the ZIP just uploaded (once: this is the uploader's on_change) and keep the outcome to show."""
    upload = st.session_state.get("g_import")
    if upload is None:
        return
    name = images.safe_filename(upload.name or "gallery.zip")
    with tempfile.TemporaryDirectory(prefix="jaxstyle-import-") as folder:
        path = Path(folder) / name
        try:
            path.write_bytes(upload.getvalue())
            who, limits = viewer(), site().limits
            storage_limit = None if who.sees_everything else int(limits.storage_mb * 2**20)
            with db() as conn:
                imported = gallery.import_gallery(conn, path, owner=who.subject, storage_limit=storage_limit)
        except Exception as error:  # noqa: BLE001 — a callback's failure would otherwise be a traceback
            # The messages name the file they read: the upload's name, not the temporary copy.
            message = failure_message(error, "the import").replace(str(path), name)
            st.session_state["g_import_outcome"] = ("error", message)
            return
    st.session_state["g_import_outcome"] = ("success", f"{imported.summary().capitalize()} from {name}.")
    st.session_state["g_page"] = 1


def gallery_archive() -> None:
    """Export the gallery as a ZIP to download, or import one (its runs are added as new runs)."""
    with db() as conn:
        total_runs = gallery.count_runs(conn, **mine())
    with st.expander("Export or import runs", icon=":material/archive:"):
        export_col, import_col = st.columns(2, gap="large")
        with export_col:
            st.markdown("**Export**")
            st.caption("Every run with its settings, inputs and image, in one ZIP that jaxstyle can import.")
            clicked = st.button("Prepare the ZIP", key="g_export", icon=":material/archive:", disabled=not total_runs)
            if clicked:
                with guard("the export"):
                    data, count = _export_zip()
                    st.download_button(
                        f"Download ({count} run{'s' if count != 1 else ''}, {len(data) / 1e6:.1f} MB)", data,
                        file_name=f"jaxstyle-gallery-{date.today():%Y-%m-%d}.zip", mime="application/zip",
                        key="g_export_download", icon=":material/download:", on_click="ignore", type="primary",
                    )  # fmt: skip
        with import_col:
            st.markdown("**Import**")
            st.file_uploader(
                "A gallery ZIP", type=["zip"], key="g_import", on_change=_import_upload,
                help="A ZIP exported by this app or by `python -m jaxstyle gallery export`; its runs are added.",
            )  # fmt: skip
            outcome = st.session_state.pop("g_import_outcome", None)
            if outcome is not None:
                kind, message = outcome
                if kind == "success":
                    st.success(message, icon=":material/check:")
                else:
                    st.error(message, icon=":material/error:")
