"""Moving pictures: the camera (:mod:`~jaxstyle.video.live`) and video files
(:mod:`~jaxstyle.video.files`, :mod:`~jaxstyle.video.run`), painted frame by frame by an instant
model whose style is fixed once per stream (:mod:`~jaxstyle.video.frames`), with flicker measured
and lowered (:mod:`~jaxstyle.video.flicker`). Nothing here imports Streamlit.
"""
