"""Docstring fragments shared by several functions, in one place."""

from __future__ import annotations


def training_doc(model: str) -> str:
    """Document the ``training`` of a neural ``fit_*``.

    ``model`` names the model class whose ``default_training()`` the options change.
    """
    return f"""\
    training
        Training options (learning rate, batch size, schedule, SWA, loss, penalties, early
        stopping, device, logging, checkpoints): a :class:`~scmm.train.TrainingConfig`, used as
        it is, or a dict of some of its fields, e.g. ``{{"lr": 1e-3, "batch_size": 128}}``, over
        the model's defaults (:meth:`scmm.models.{model}.default_training`). ``device`` and
        ``verbose`` left out take ``scmm.settings``' values.
"""


#: The ``data_dir`` argument of the :mod:`scmm.datasets` loaders.
DATA_DIR = """\
    data_dir
        Directory with the data files; see :func:`scmm.datasets.fetch` for the search order.
"""

#: The data arguments of a ``fit_*`` (``mdata``, ``source``, ``target``).
FIT_DATA = """\
    mdata
        Paired data holding ``source`` and ``target`` for the same cells.
    source
        Modality predicted from (normalised values in ``.X`` or ``layer``).
    target
        Modality to predict (values in ``.X`` or ``target_layer``).
"""

#: The fit-contract arguments from ``train`` to ``key_added``.
_FIT_DATA = """\
    train
        Training cells: a boolean mask (a pandas Series is matched to the cells by its index,
        such as ``mdata.obs["train"]``), the name of a boolean ``.obs`` column, or ``None``
        for all cells.
    layer
        Source layer instead of ``.X``.
    target_layer
        Target layer instead of ``.X``.
    svd_fit_on
        ``"train"`` fits the SVD on the training cells only (default: the model does not
        depend on the cells it is scored on); ``"all"`` on every cell's source values
        (transductive, as in the 2022 competition; targets of held-out cells are never used).
    key_added
        Output key; default ``"scmm_<method>"``.
"""

_FIT_RNG = """\
    rng
        Seed or :class:`numpy.random.Generator`.
"""

_FIT_CONTRACT = """\
    **contract
        The fit-contract keywords (:class:`scmm.tl.FitKeywords`; with ``max_epochs`` and
        ``validation`` for a neural model, :class:`scmm.tl.NeuralFitKeywords`), by name: those
        above and the *Other Parameters*. Any other keyword raises a :class:`TypeError` naming
        it and them.
"""

#: The fit-contract keywords of a ``fit_*`` (``train`` … ``rng``, then ``**contract``).
FIT_KEYWORDS = _FIT_DATA + _FIT_RNG + _FIT_CONTRACT

#: The fit contract's output options (keywords of every ``fit_*``, :class:`scmm.tl.FitKeywords`).
FIT_OPTIONS = """\
    write_predictions
        Write the predictions for every cell to ``mdata[target].layers[key_added]``: in
        memory up to 2 GiB (``scmm.settings.memory_budget``), above it (``True``/``"auto"``)
        to a ``.npy`` file in ``$SCMM_DISK_DIR`` (default ``./scmm_disk``) written a block
        of cells at a time, the layer then being a read-only memory map of it (path in
        ``.uns[key_added]['predictions_path']``; one logged line says so; e.g. 105,942 cells
        × 23,418 genes is 9.9 GB). ``"memory"`` or ``"disk"``
        force either. ``False`` writes only ``.uns[key_added]`` (parameters, and the held-out
        cells' scores, predicted a block of rows at a time); predict the cells you need with
        :func:`scmm.tl.predict`.
    control_features
        Isotype-control targets, left out of the held-out mean per-feature Pearson and scored
        apart (``scores['controls_pearson_per_feature']``): ``"auto"`` takes target names
        matching IgG, isotype, ctrl or control (any case) unless the target modality holds
        genes (no controls there: ``CTRL`` is a gene), a list names them, ``None`` none.
"""

#: The keyword options of a neural ``fit_*`` (:class:`scmm.tl.NeuralFitKeywords`).
NEURAL_FIT_OPTIONS = (
    """\
    max_epochs
        Training epochs; None: those of ``training``, else the model's default.
    validation
        Bool mask over all cells (within ``train``) of validation cells, or a fraction of the
        training cells; overrides ``training``'s ``validation_fraction``.
"""
    + FIT_OPTIONS
)

#: All fit-contract keywords (``train`` … ``rng``) in one *Parameters* section.
FIT_CONTRACT = _FIT_DATA + FIT_OPTIONS + _FIT_RNG + _FIT_CONTRACT


#: What every ``fit_*`` writes into the MuData, for its *Returns* section.
FIT_WRITES = """\
    ``mdata[target].layers[key_added]`` : ndarray (n_obs, n_vars)
        Predictions for every cell (unless ``write_predictions=False``; a read-only memory
        map of a ``.npy`` file when they are written to disk).
    ``mdata.uns[key_added]['params']`` : dict
        The arguments and package versions.
    ``mdata.uns[key_added]['scores']`` : dict
        On the cells outside ``train`` (if any): ``pearson_per_cell``, ``pearson_per_feature``
        (mean, isotype controls left out) and ``rmse``; the same for the mean profile (each
        target's training mean for every cell) as ``mean_profile_*``; the model's gain over it,
        ``gain_pearson_per_cell``, ``gain_pearson_per_feature`` and ``rmse_reduction`` (a
        warning says when it does not beat it); ``n_controls`` and
        ``controls_pearson_per_feature`` when there are isotype controls (named in
        ``params['control_features']``).
"""


def fit_doc(model: str | None = None):
    """Fill the shared fragments of a ``fit_*`` docstring; ``model``: its neural model class.

    ``{fit_data}``, ``{fit_keywords}`` (the contract keywords, then the *Other Parameters*
    section: :data:`NEURAL_FIT_OPTIONS` for a neural model, else :data:`FIT_OPTIONS`),
    ``{fit_writes}`` and, for a neural model, ``{training}`` (:func:`training_doc`).
    """
    options = FIT_OPTIONS if model is None else NEURAL_FIT_OPTIONS
    fragments = {
        "fit_data": FIT_DATA,
        "fit_keywords": FIT_KEYWORDS + "\n    Other Parameters\n    ----------------\n" + options,
        "fit_writes": FIT_WRITES,
    }
    if model is not None:
        fragments["training"] = training_doc(model)
    return doc_params(**fragments)


def class_params(cls: type, *, skip: tuple[str, ...] = ("training",)) -> str:
    """Return the *Parameters* entries of ``cls``'s docstring, less ``skip``, as a fragment.

    So that a ``fit_*`` function documents its model's options in the class's words, once.
    """
    lines = cls.__doc__.split("    Parameters\n    ----------\n", 1)[1].split("\n\n", 1)[0]
    entries: list[list[str]] = []
    for line in lines.splitlines():
        if not line.strip():  # the end of the section
            break
        if not line.startswith("     "):  # a parameter name: a new entry
            entries.append([])
        entries[-1].append(line)
    return "".join("\n".join(entry) + "\n" for entry in entries if entry[0].strip() not in skip)


def doc_params(**fragments: str):
    """Substitute ``{name}`` lines of a docstring with shared fragments (as scanpy does).

    A line holding only ``{name}`` (indented like a parameter) is replaced by the fragment.
    """

    def decorate(obj):
        doc = obj.__doc__
        for name, text in fragments.items():
            doc = doc.replace(f"    {{{name}}}\n", text)
        obj.__doc__ = doc
        return obj

    return decorate
