"""Every widget group and renderer the pages share, by area; the pages only arrange them.

- ``access``: who is using the app (personal mode, or a shared site's signed-in user), sign-in.
- ``common``: page paths, the process-wide resources (job runner, device, gallery connections),
  the failure guard, widget recall, header, badges and tiles.
- ``system``: the weights panel and the sidebar.
- ``inputs``: the content and style inputs and the catalog browser.
- ``settings_form``: presets and the Advanced settings.
- ``run_views``: a run live, its result, and re-running it.
- ``gallery_views``: cards, filters, one run in full, export and import.
- ``compare_views``: runs side by side and weight sweeps.
- ``instant_views``: Generate's Instant method: the model chooser, a trained model's form, painting,
  the result, Refine.
- ``builtin_views``: the built-in instant models: their painters, their form, their styles' pictures.
- ``model_views``: the Models page: model cards, import, the training form and live trainings.
- ``live_views``: the Live page: the camera painted as it films, captures, and video files.

Rules kept here: widget keys are explicit and stable (tests use them); session state holds only
UI facts (ids, choices), never images or connections, with one exception: the Live page's live
painter, which belongs to that session's camera stream (its network, its latest frames, the
paintings it paints with) and goes with the session; the gallery is opened per operation; the
job runner and device probe are process-wide via ``st.cache_resource``; every failure becomes a
message (``guard``), never a traceback. What is not UI (loading inputs, sweeps, following a run)
lives in the core, ``jaxstyle/``.

A new page is a script in ``app_pages/`` that calls these, plus its ``st.Page`` in ``dashboard.py``
(and its path beside the others in ``common``).
"""

from ui.access import account, mine, own_inputs_owner, share, signed_in, site, viewer
from ui.builtin_views import builtin_form, builtin_painter, photo_in_styles, swatch
from ui.common import (
    COMPARE_PAGE,
    CSS,
    GALLERY_PAGE,
    GENERATE_PAGE,
    HOME_PAGE,
    IMAGE_TYPES,
    LIVE_PAGE,
    MODELS_PAGE,
    POLL_S,
    STATUS_BADGES,
    STYLES_PAGE,
    ago,
    app_icon,
    chunks,
    cover,
    db,
    device,
    failure_message,
    gallery_path,
    guard,
    header,
    index_of,
    placeholder,
    recall,
    runner,
    status_badge,
    trainings,
)
from ui.compare_views import compare_picker, comparison, sweep_form, sweep_grid, sweep_groups, sweep_view
from ui.gallery_views import (
    GALLERY_PAGE_SIZE,
    add_to_comparison,
    close_run,
    follow_card_clicks,
    gallery_archive,
    gallery_filters,
    gallery_grid,
    run_card,
    run_detail,
    run_grid,
)
from ui.inputs import (
    blend_input,
    catalog_browser,
    content_input,
    download_style,
    preview,
    style_download_error,
    style_input,
    style_thumbnail,
)
from ui.instant_views import (
    generate_method,
    instant_form,
    instant_output,
    model_label,
    paint,
    painter,
    refine,
    style_label,
)
from ui.live_views import live_camera, live_form, live_video
from ui.model_views import (
    follow_paint_clicks,
    model_card,
    model_import,
    model_list,
    model_outcome,
    start_training,
    train_form,
    training_view,
)
from ui.run_views import (
    cancel_run,
    fmt_value,
    live_run,
    loss_chart,
    method_label,
    prefill_from_run,
    request_rerun,
    result_view,
    run_facts,
    run_inputs,
    run_label,
    run_view,
    settings_table,
)
from ui.settings_form import SIZE_OPTIONS, apply_settings, default_preset, log_options, settings_form
from ui.system import runs_panel, sidebar, weights_panel

__all__ = [
    "account",
    "share",
    "mine",
    "own_inputs_owner",
    "signed_in",
    "site",
    "viewer",
    "COMPARE_PAGE",
    "CSS",
    "GALLERY_PAGE",
    "GALLERY_PAGE_SIZE",
    "GENERATE_PAGE",
    "HOME_PAGE",
    "IMAGE_TYPES",
    "LIVE_PAGE",
    "MODELS_PAGE",
    "POLL_S",
    "SIZE_OPTIONS",
    "STATUS_BADGES",
    "STYLES_PAGE",
    "add_to_comparison",
    "ago",
    "app_icon",
    "apply_settings",
    "blend_input",
    "builtin_form",
    "builtin_painter",
    "cancel_run",
    "catalog_browser",
    "chunks",
    "close_run",
    "compare_picker",
    "comparison",
    "content_input",
    "cover",
    "db",
    "default_preset",
    "device",
    "download_style",
    "failure_message",
    "fmt_value",
    "follow_card_clicks",
    "follow_paint_clicks",
    "gallery_archive",
    "gallery_filters",
    "gallery_grid",
    "gallery_path",
    "generate_method",
    "guard",
    "header",
    "index_of",
    "instant_form",
    "instant_output",
    "live_camera",
    "live_form",
    "live_run",
    "live_video",
    "log_options",
    "loss_chart",
    "method_label",
    "model_label",
    "model_card",
    "model_import",
    "model_list",
    "model_outcome",
    "paint",
    "painter",
    "photo_in_styles",
    "placeholder",
    "prefill_from_run",
    "preview",
    "recall",
    "refine",
    "request_rerun",
    "result_view",
    "run_card",
    "run_detail",
    "run_facts",
    "run_grid",
    "run_inputs",
    "run_label",
    "run_view",
    "runner",
    "settings_form",
    "settings_table",
    "sidebar",
    "start_training",
    "status_badge",
    "style_download_error",
    "style_input",
    "style_label",
    "style_thumbnail",
    "swatch",
    "sweep_form",
    "sweep_grid",
    "sweep_groups",
    "sweep_view",
    "train_form",
    "training_view",
    "trainings",
    "runs_panel",
    "weights_panel",
]
