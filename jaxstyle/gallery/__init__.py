"""The gallery: every run, its settings, inputs, losses and result image, in one SQLite file.

People come back to the gallery to find what they made and to learn which settings give which
look, so it keeps every setting, the input images, the loss history and the result (every image
and video stored once, by SHA-256, and shared by the runs that use it). It lives in
``gallery.db`` at the project root unless ``JAXSTYLE_GALLERY`` (or a ``path``) says otherwise
(see :func:`jaxstyle.paths.default_gallery_path`).

Open one connection per operation or per thread, never share one across threads::

    with gallery.connect(path) as db:
        run_id = gallery.add_run(db, settings.to_dict(), content_sha=c, style_shas=[s])

Public API (``db`` is what :func:`connect` returns), by module:

- ``connection``: ``connect(path=None, *, timeout_s=10.0) -> GalleryDatabase``: open (creating,
  migrating, WAL, foreign keys, busy timeout) and mark runs of dead processes failed.
- ``lifecycle``: ``store_image(db, data, *, origin_kind, origin) -> sha256`` (a content/style input,
  stored once); ``add_run(db, settings, *, content_sha, style_shas, style_blend=None, title=None,
  tags=(), group_id=None, status="queued", weights_source="", device="") -> int``;
  ``start_run(db, run_id, *, total_steps=None) -> bool``; ``record_progress(db, run_id, *, step,
  total_steps, losses, preview_png=None) -> bool``; ``finish_run(db, run_id, *, image_png,
  initial_losses, final_losses, loss_history, compile_s, run_s, device, weights_source)``;
  ``finish_video(db, run_id, *, poster_png, video, suffix, stats, compile_s, run_s, device)`` (a
  video run: its poster frame as the result, its video in ``videos``);
  ``record_scores(db, run_id, *, initial_losses, final_losses, loss_history) -> bool`` (the
  losses of a run whose image was stored first); ``fail_run(db, run_id, error, *, cancelled=False) -> bool``.
- ``queries``: ``get_run(db, run_id) -> Run``; ``run_image``/``run_thumbnail``/``run_preview(db,
  run_id) -> bytes | None``; ``run_video(db, run_id) -> VideoFile | None``; ``thumbnails(db,
  run_ids) -> dict[int, bytes]``; ``input_image(db,
  sha256) -> bytes``; ``list_runs(db, run_filter=None, *, order, limit, offset, **criteria) ->
  list[RunSummary]`` and ``count_runs(db, run_filter=None, **criteria) -> int``, where a
  :class:`RunFilter` (style, content, tag, favorite, status, since, until, text, group_id) says
  which runs and ``criteria`` are its fields as keywords; ``list_inputs(db, kind) ->
  list[ImageInfo]``; ``compare_runs(db, run_ids) -> Comparison``; ``rerun_settings(db, run_id) -> dict``.
- ``edits``: ``set_title``, ``set_tags``, ``set_favorite``; ``delete_run(db, run_id, *, force=False)``.
- ``archive``: ``export_run(db, run_id, dest_dir) -> (png_path | None, json_path)``;
  ``export_gallery(db, zip_path, *, run_ids=None) -> int``; ``imports``: ``import_gallery(db,
  zip_path) -> ImportedRuns`` (the new ids; ``already_here``: runs skipped as already in the
  gallery), read under the limits of :mod:`jaxstyle.gallery.imports`.
- ``access`` (shared sites): ``visible_run(db, run_id, viewer) -> Run`` (its owner's, or an
  admin's; else RunNotFound as for a missing run), ``readable_run(db, run_id, viewer, token=None)``
  (also published runs and share links), ``share_run``/``share_token``/``unshare_run``,
  ``set_public``, ``owner_criteria(viewer)`` (what :func:`list_runs` may list), ``storage_bytes(db, owner)``;
  ``set_model_owner``/``model_owners``/``visible_models`` (whose trained or imported models).
- ``recovery``: ``recover_stale_runs(db, *, stale_after_s=STALE_AFTER_S) -> list[int]``;
  ``schema``: ``schema_version(db) -> int``, ``SCHEMA_VERSION``, ``MIGRATIONS``.
- ``records``: ``Run``, ``RunSummary``, ``ImageInfo``, ``Comparison``. ``RUN_STATUSES`` and
  ``ACTIVE_STATUSES`` are :mod:`jaxstyle.runs`'; errors: :class:`~jaxstyle.errors.GalleryError`
  and its subclass :class:`~jaxstyle.errors.RunNotFound`.

Reliability: the file is in WAL mode (synchronous=NORMAL) with a busy timeout, every change is one
``BEGIN IMMEDIATE`` transaction (:func:`jaxstyle.gallery.database.transaction`), and a result image
is written in the same transaction that marks its run done, so a crash leaves either a finished
run or an unfinished one, never half of one. Each queued/running run records its owner (pid,
host) and a heartbeat; :func:`connect` marks failed the runs whose owner process is gone (same
host) or whose heartbeat is older than :data:`STALE_AFTER_S`. A file that is not a gallery, is
locked too long, or can't be written raises :class:`~jaxstyle.errors.GalleryError` naming the
file, and the file is left as it was. Every image that enters the gallery (inputs, results,
imported ones included) passes the same checks as an upload (:func:`jaxstyle.images.open_image`).
"""

from jaxstyle.errors import RunNotFound
from jaxstyle.gallery.access import (
    model_owners,
    owner_criteria,
    readable_run,
    set_model_owner,
    set_public,
    share_run,
    share_token,
    storage_bytes,
    unshare_run,
    visible_models,
    visible_run,
)
from jaxstyle.gallery.archive import EXPORT_FORMAT, EXPORT_VERSION, export_gallery, export_run
from jaxstyle.gallery.connection import connect
from jaxstyle.gallery.database import GalleryDatabase
from jaxstyle.gallery.edits import delete_run, set_favorite, set_tags, set_title
from jaxstyle.gallery.imports import ImportedRuns, import_gallery
from jaxstyle.gallery.lifecycle import (
    ORIGIN_KINDS,
    add_run,
    fail_run,
    finish_run,
    finish_video,
    record_progress,
    record_scores,
    start_run,
    store_image,
)
from jaxstyle.gallery.queries import (
    ORDERS,
    RunFilter,
    compare_runs,
    count_runs,
    get_run,
    input_image,
    list_inputs,
    list_runs,
    rerun_settings,
    run_image,
    run_preview,
    run_thumbnail,
    run_video,
    thumbnails,
)
from jaxstyle.gallery.records import Comparison, ImageInfo, Run, RunSummary, VideoFile
from jaxstyle.gallery.recovery import STALE_AFTER_S, recover_stale_runs
from jaxstyle.gallery.schema import MIGRATIONS, SCHEMA_VERSION, SETTING_COLUMNS, schema_version
from jaxstyle.gallery.values import THUMBNAIL_PX
from jaxstyle.runs import ACTIVE_STATUSES, RUN_STATUSES

__all__ = [
    "model_owners",
    "set_model_owner",
    "visible_models",
    "owner_criteria",
    "readable_run",
    "set_public",
    "share_run",
    "share_token",
    "storage_bytes",
    "unshare_run",
    "visible_run",
    "ACTIVE_STATUSES",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "MIGRATIONS",
    "ORDERS",
    "ORIGIN_KINDS",
    "RUN_STATUSES",
    "SCHEMA_VERSION",
    "SETTING_COLUMNS",
    "STALE_AFTER_S",
    "THUMBNAIL_PX",
    "Comparison",
    "GalleryDatabase",
    "ImageInfo",
    "ImportedRuns",
    "Run",
    "RunFilter",
    "RunNotFound",
    "RunSummary",
    "VideoFile",
    "add_run",
    "compare_runs",
    "connect",
    "count_runs",
    "delete_run",
    "export_gallery",
    "export_run",
    "fail_run",
    "finish_run",
    "finish_video",
    "record_scores",
    "get_run",
    "import_gallery",
    "input_image",
    "list_inputs",
    "list_runs",
    "record_progress",
    "recover_stale_runs",
    "rerun_settings",
    "run_image",
    "run_preview",
    "run_thumbnail",
    "run_video",
    "schema_version",
    "set_favorite",
    "set_tags",
    "set_title",
    "start_run",
    "store_image",
    "thumbnails",
]
