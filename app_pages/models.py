"""Models: the built-in instant models, the gallery's trained ones (styles, training, a sample; export,
delete, resume), a model file's import, and the training of a new one in the background."""

import streamlit as st

import ui

ui.header(
    "Models",
    "A model paints any photo in one pass: Generate's *Instant* method uses them. The built-in ones need no "
    "training; one you train learns your paintings once.",
)
ui.model_outcome()
with ui.guard("the models"):
    ui.model_list()
with ui.guard("the import"):
    ui.model_import()

st.subheader("Train a new model", anchor=False)
with st.container(border=True), ui.guard("the training form"):
    form = ui.train_form()
    if st.button("Train", key="train", type="primary", icon=":material/model_training:"):
        with ui.guard("starting the training"):
            ui.start_training(form)
with ui.guard("the trainings"):
    ui.training_view()
