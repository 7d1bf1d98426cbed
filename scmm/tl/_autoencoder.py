"""``fit_autoencoder``: the MLP whose embedding also reconstructs the input SVD."""

from __future__ import annotations

from mudata import MuData

from .. import _keys
from ..models._autoencoder import AutoencoderModel
from ._contract import fit_model
from ._mlp import training_from


def fit_autoencoder(
    mdata: MuData,
    source: str,
    target: str,
    *,
    reconstruction_weight: float = 0.1,
    hidden: list[int] | None = None,
    latent: int = 64,
    skip: str | int = "all",
    decoder_hidden: list[int] | None = None,
    dropout: float = 0.0,
    batchnorm: bool = True,
    n_components: int = 64,
    target_svd: int | None = None,
    lr: float = 3e-3,
    weight_decay: float = 1e-2,
    max_epochs: int = 40,
    batch_size: int = 64,
    one_cycle: bool = True,
    schedule_epochs: int | None = None,
    min_lr: float = 1e-6,
    swa: bool = True,
    swa_start: int | None = None,
    swa_lr: float | None = None,
    sparsity: str | None = None,
    sparsity_weight: float = 1e-3,
    sparsity_rho: float = 0.05,
    l1: float = 0.0,
    l2: float = 0.0,
    loss: str = "mixed",
    correlation_weight: float = 0.5,
    validation_fraction: float = 0.0,
    validation=None,
    patience: int | None = None,
    device: str | None = None,
    precision: str | None = None,
    devices=1,
    strategy="auto",
    num_nodes: int = 1,
    verbose: bool | None = None,
    log_dir: str | None = None,
    logger: str | None = "csv",
    checkpoint_dir: str | None = None,
    resume: bool = False,
    train=None,
    layer: str | None = None,
    target_layer: str | None = None,
    svd_fit_on: str = "train",
    key_added: str | None = None,
    rng=None,
) -> AutoencoderModel:
    """Fit an MLP regularised by an autoencoder: source SVD → embedding → targets and SVD.

    An MLP encoder maps the source's SVD (components scaled to unit variance) to an embedding
    of ``latent`` units (its last block); a linear head predicts the targets from the encoder
    blocks ``skip`` selects (``"none"``: the embedding alone), and a decoder (ending in a linear
    layer, so it can produce negative values) reconstructs the SVD from the embedding. The loss is
    the target loss + ``reconstruction_weight`` × the reconstruction's mean squared error.
    With ``reconstruction_weight=0`` this is :func:`fit_mlp` with
    ``hidden=[*hidden, latent]`` and the same ``skip`` (same predictions for the same ``rng``).

    Parameters
    ----------
    mdata
        Paired data holding ``source`` and ``target`` for the same cells.
    source
        Modality predicted from (normalised values in ``.X`` or ``layer``).
    target
        Modality to predict (values in ``.X`` or ``target_layer``).
    reconstruction_weight
        Weight of the reconstruction loss (0: a plain MLP). The default 0.1 did as well as 0
        and better than 1 on ``bmmc_cite`` (see the benchmarks); larger weights trade target
        accuracy for an embedding that keeps more of the input.
    hidden
        Encoder block widths before the embedding; None: ``[512, 256, 128]`` (with the
        defaults ``latent=64`` and ``skip="all"``, the architecture of :func:`fit_mlp`).
    latent
        Width of the embedding.
    skip
        Encoder blocks the target head reads: ``"none"`` (the embedding only), ``"all"`` (as
        the original CITE MLP) or the last ``k``.
    decoder_hidden
        Decoder block widths before its linear output; None: ``hidden`` reversed.
    dropout
        Dropout after each encoder block.
    batchnorm
        BatchNorm in each block.
    n_components
        Number of SVD components of the source (the input, and what is reconstructed).
    target_svd
        None, or predict this many SVD coefficients of the targets, mapped back through the
        fixed components before the loss.
    lr
        AdamW learning rate (the one-cycle peak).
    weight_decay
        AdamW weight decay.
    max_epochs
        Training epochs.
    batch_size
        Cells per step.
    one_cycle
        One-cycle learning-rate schedule, stepped per batch.
    schedule_epochs
        Epochs the one-cycle spans, after which the rate stays at ``min_lr`` (None: all).
    min_lr
        Final learning rate of the one-cycle.
    swa
        Stochastic weight averaging from epoch ``swa_start`` at rate ``swa_lr``.
    swa_start
        First SWA epoch (None: 75% of ``max_epochs``).
    swa_lr
        SWA learning rate (None: ``lr / 10``).
    sparsity
        None, ``"kl"`` or ``"l1"`` penalty on predicted target values.
    sparsity_weight
        Weight of the sparsity penalty.
    sparsity_rho
        Target mean activation of the ``"kl"`` penalty.
    l1
        L1 penalty on weight matrices.
    l2
        L2 penalty on weight matrices.
    loss
        ``"mse"``, ``"correlation"`` (negative per-cell Pearson) or ``"mixed"``.
    correlation_weight
        Weight of the correlation term in ``"mixed"``.
    validation_fraction
        Fraction of the training cells held out for the validation loss (0: none).
    validation
        Bool mask over all cells (within ``train``) of validation cells; overrides
        ``validation_fraction``.
    patience
        Early stopping patience in epochs (None: off); the best epoch's weights are kept.
    device
        ``"auto"``, ``"cpu"`` or ``"cuda"``; None: ``scmm.settings.device``.
    precision
        Lightning precision; None: ``"bf16-mixed"`` on CUDA, ``"32-true"`` on CPU.
    devices
        Lightning ``devices``.
    strategy
        Lightning ``strategy`` (e.g. ``"ddp"``; see the scale-out page of the docs).
    num_nodes
        Lightning ``num_nodes`` (machines of a multi-node DDP run).
    verbose
        Progress bar; None: ``scmm.settings.verbose``.
    log_dir
        Folder for training logs (None: no logs).
    logger
        ``"csv"`` or ``"tensorboard"`` logs under ``log_dir``.
    checkpoint_dir
        Folder for lightning checkpoints (None: none): ``last.ckpt`` every epoch,
        ``best.ckpt`` with validation.
    resume
        Continue from ``checkpoint_dir/last.ckpt`` if it exists (same data and ``rng``:
        the result equals an uninterrupted run).
    train
        Training cells: a boolean mask, the name of a boolean ``.obs`` column, or None for all.
    layer
        Source layer instead of ``.X``.
    target_layer
        Target layer instead of ``.X``.
    svd_fit_on
        ``"train"`` or ``"all"`` (inputs of every cell; targets of held-out cells never used).
    key_added
        Output key; default ``"scmm_autoencoder"``.
    rng
        Seed or :class:`numpy.random.Generator`: SVD, weight initialisation, validation split,
        batch order and dropout. Same ``rng``, same result on CPU.

    Returns
    -------
    The fitted :class:`~scmm.models.AutoencoderModel` (``model.embed(mdata)`` gives the
    embedding of new cells; training history in ``model.history``). Writes

    ``mdata[target].layers[key_added]`` : ndarray (n_obs, n_vars)
        Predictions for every cell.
    ``mdata[source].obsm[key_added]`` : ndarray (n_obs, latent)
        The embedding of every cell.
    ``mdata.uns[key_added]['params']`` : dict
        The arguments and package versions.
    ``mdata.uns[key_added]['scores']`` : dict
        Per-cell and per-feature Pearson and RMSE on the cells outside ``train`` (if any).

    Examples
    --------
    >>> import numpy as np, anndata as ad, mudata as md, scmm
    >>> rng = np.random.default_rng(0)
    >>> rna = ad.AnnData(rng.poisson(2.0, (60, 30)).astype("float32"))
    >>> prot = ad.AnnData(rng.normal(size=(60, 4)).astype("float32"))
    >>> prot.var_names = ["CD3", "CD4", "CD8", "CD19"]  # distinct from the gene names
    >>> mdata = md.MuData({"rna": rna, "prot": prot})
    >>> model = scmm.tl.fit_autoencoder(
    ...     mdata, "rna", "prot", hidden=[16], latent=4, n_components=5, max_epochs=2,
    ...     verbose=False, rng=0,
    ... )
    >>> mdata["prot"].layers["scmm_autoencoder"].shape
    (60, 4)
    """
    training = training_from(locals())
    model = AutoencoderModel(
        hidden=hidden,
        latent=latent,
        skip=skip,
        decoder_hidden=decoder_hidden,
        reconstruction_weight=reconstruction_weight,
        dropout=dropout,
        batchnorm=batchnorm,
        n_components=n_components,
        target_svd=target_svd,
        training=training,
    )
    key_added = key_added or _keys.prediction(model.name)
    fit_model(
        model,
        mdata,
        source,
        target,
        train=train,
        layer=layer,
        target_layer=target_layer,
        key_added=key_added,
        svd_fit_on=svd_fit_on,
        validation=validation,
        rng=rng,
    )
    mdata[source].obsm[key_added] = model.embed(mdata[source])
    return model
