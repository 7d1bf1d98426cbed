"""Every bad input named in the reliability issue: a clear error (or warning) naming the
argument, and the MuData exactly as it was before the call."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import scmm

from .conftest import make_paired


def _state(mdata: md.MuData) -> dict:
    """Everything a call could modify, in comparable form."""
    out = {"uns": repr(sorted(mdata.uns)), "obs": mdata.obs.copy()}
    for name, a in mdata.mod.items():
        dense = a.X.toarray() if sp.issparse(a.X) else np.array(a.X)
        out[f"{name}.X"] = dense
        for attr in ("layers", "obsm", "varm", "uns"):
            out[f"{name}.{attr}"] = repr(sorted(getattr(a, attr).keys()))
        out[f"{name}.var"] = a.var.copy()
    return out


def _assert_same(before: dict, after: dict) -> None:
    assert before.keys() == after.keys()
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, after[k], err_msg=k)
        elif isinstance(v, pd.DataFrame):
            pd.testing.assert_frame_equal(v, after[k], obj=k)
        else:
            assert v == after[k], k


def _with_nan(m):
    m["rna"].X = m["rna"].X.toarray()
    m["rna"].X[0, 0] = np.nan


def _with_inf(m):
    m["prot"].X[3, 2] = np.inf


def _negative_counts(m):
    m["rna"].layers["counts"] = m["rna"].layers["counts"].toarray()
    m["rna"].layers["counts"][1, 1] = -2


def _empty_cell(m):
    counts = m["rna"].layers["counts"].toarray()
    counts[5] = 0
    m["rna"].layers["counts"] = sp.csr_matrix(counts)


def _peaks(m):
    """Add an ATAC modality whose peaks lie on contigs the annotation lacks."""
    n = m.n_obs
    atac = ad.AnnData(
        sp.random(n, 30, density=0.2, format="csr", random_state=0, dtype=np.float32),
        obs=pd.DataFrame(index=m.obs_names),
        var=pd.DataFrame(index=[f"chrZ_{i * 1000}_{i * 1000 + 500}" for i in range(30)]),
    )
    m.mod["atac"] = atac
    m.update()


ANNOTATION = pd.DataFrame(
    {
        "chrom": ["chr1"] * 40,
        "start": np.arange(40) * 10_000,
        "end": np.arange(40) * 10_000 + 5_000,
        "strand": ["+"] * 40,
        "gene_name": [f"g{i}" for i in range(40)],
    }
)

CASES = [
    # (id, how to break the data, the call, error, pattern naming the argument)
    (
        "missing source",
        None,
        lambda m: scmm.tl.fit_baseline(m, "atac", "prot"),
        KeyError,
        "`source='atac'`",
    ),
    (
        "missing target",
        None,
        lambda m: scmm.tl.fit_baseline(m, "rna", "adt"),
        KeyError,
        "`target='adt'`",
    ),
    (
        "missing layer",
        None,
        lambda m: scmm.tl.fit_baseline(m, "rna", "prot", layer="raw"),
        KeyError,
        "`layer='raw'`",
    ),
    (
        "missing target layer",
        None,
        lambda m: scmm.tl.fit_baseline(m, "rna", "prot", target_layer="dsb"),
        KeyError,
        "`target_layer='dsb'`",
    ),
    (
        "NaN in source",
        _with_nan,
        lambda m: scmm.tl.fit_baseline(m, "rna", "prot"),
        ValueError,
        "`layer=None \\(.X\\)` holds 1 NaN",
    ),
    (
        "inf in target",
        _with_inf,
        lambda m: scmm.tl.fit_baseline(m, "rna", "prot"),
        ValueError,
        "`target_layer=None \\(.X\\)` holds 1 NaN or infinite",
    ),
    (
        "train wrong length",
        None,
        lambda m: scmm.tl.fit_baseline(m, "rna", "prot", train=np.ones(7, bool)),
        ValueError,
        "`train` has 7 entries",
    ),
    (
        "train selects none",
        None,
        lambda m: scmm.tl.fit_baseline(m, "rna", "prot", train=np.zeros(m.n_obs, bool)),
        ValueError,
        "`train` selects no cells",
    ),
    (
        "train not boolean",
        None,
        lambda m: scmm.tl.fit_baseline(m, "rna", "prot", train=np.arange(m.n_obs)),
        ValueError,
        "`train` must be a boolean mask",
    ),
    (
        "negative counts",
        _negative_counts,
        lambda m: scmm.pp.normalize(m, "rna"),
        ValueError,
        "`layer='counts'` has negative values",
    ),
    (
        "cell without counts",
        _empty_cell,
        lambda m: scmm.pp.normalize(m, "rna"),
        ValueError,
        "1 cells of `mod='rna'` have no counts",
    ),
    (
        "unknown normalisation",
        None,
        lambda m: scmm.pp.normalize(m, "rna", method="sct"),
        ValueError,
        "`method='sct'`",
    ),
    (
        "svd too many components",
        None,
        lambda m: scmm.pp.svd(m, "rna", n_components=1000),
        ValueError,
        "`n_components=1000`",
    ),
    (
        "GMT without overlap",
        None,
        lambda m: scmm.pp.pathway_connectivity(
            m, "rna", "prot", gene_sets={"SET": ["NOPE1", "NOPE2"]}
        ),
        ValueError,
        "`gene_sets` .* share no genes",
    ),
    (
        "peaks on other contigs",
        _peaks,
        lambda m: scmm.pp.gene_peak_windows(m, "rna", "atac", annotation=ANNOTATION),
        ValueError,
        "assembl",
    ),
    (
        "split unknown batch",
        None,
        lambda m: scmm.pp.split_cells(m, test_batches="d9"),
        KeyError,
        "`batch_key='batch'`",
    ),
]


@pytest.mark.parametrize(
    ("breaker", "call", "error", "pattern"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_bad_input_clear_error_and_mdata_unchanged(breaker, call, error, pattern):
    mdata = make_paired()
    if breaker is not None:
        breaker(mdata)
    before = _state(mdata)
    with pytest.raises(error, match=pattern):
        call(mdata)
    _assert_same(before, _state(mdata))


def test_unpaired_cells_refused_with_counts():
    m = make_paired()
    m = md.MuData({"rna": m["rna"], "prot": m["prot"][10:].copy()})
    before = _state(m)
    with pytest.raises(ValueError, match="10 cells of source='rna' are not in target='prot'"):
        scmm.tl.fit_baseline(m, "rna", "prot")
    _assert_same(before, _state(m))


def test_all_held_out_cells_constant_targets_warn():
    m = make_paired()
    test = ~m.obs["train"].to_numpy()
    m["prot"].X[test] = 1.0
    with pytest.warns(UserWarning, match="All 30 held-out cells have constant target values"):
        scmm.tl.fit_baseline(m, "rna", "prot", train="train", n_components=5)


def test_predict_reordered_missing_and_extra_features():
    m = make_paired()
    model = scmm.tl.fit_baseline(m, "rna", "prot", n_components=5)
    ref = model.predict(m)
    rna = m["rna"]
    reordered = rna[:, np.random.default_rng(0).permutation(rna.n_vars)].copy()
    np.testing.assert_allclose(model.predict(reordered), ref, rtol=1e-5, atol=1e-6)
    extra = ad.concat(
        [
            rna,
            ad.AnnData(
                sp.csr_matrix((rna.n_obs, 2), dtype=np.float32),
                obs=rna.obs,
                var=pd.DataFrame(index=["x1", "x2"]),
            ),
        ],
        axis=1,
    )
    np.testing.assert_allclose(model.predict(extra), ref, rtol=1e-5, atol=1e-6)  # not read
    query = md.MuData({"rna": rna[:, 5:].copy()})
    before = _state(query)
    with pytest.raises(KeyError, match=r"5 of the model's 40 features are missing.*'g4'"):
        scmm.tl.predict(model, query)
    _assert_same(before, _state(query))


def test_missing_features_hint_where_the_names_are():
    """Names elsewhere in `var`, duplicated or in another case: the refusal says which."""
    m = make_paired()
    model = scmm.tl.fit_baseline(m, "rna", "prot", n_components=5)
    ref = model.predict(m)
    rna = m["rna"]
    ids = rna.copy()  # CELLxGENE-style: Ensembl ids as names, symbols in a column
    ids.var["feature_name"] = pd.Categorical(ids.var_names)
    ids.var_names = [f"ENSG{i:011d}" for i in range(ids.n_vars)]
    with pytest.raises(ValueError, match=r"`var\['feature_name'\]` holds 40 of the missing"):
        scmm.tl.predict(model, ids)
    ids.var_names = ids.var["feature_name"].astype(str)  # the advice works
    np.testing.assert_allclose(model.predict(ids), ref, rtol=1e-5, atol=1e-6)
    dup = rna.copy()
    dup.var_names = ["g0", *rna.var_names[1:10], "g0", *rna.var_names[11:]]
    with pytest.raises(
        KeyError, match=r"Duplicated in the data's `var_names`, so never matched: 'g0'"
    ):
        scmm.tl.predict(model, dup)
    upper = rna.copy()
    upper.var_names = upper.var_names.str.upper()
    with pytest.raises(ValueError, match=r"letter case or punctuation \(the model's 'g0', the"):
        scmm.tl.predict(model, upper)
    hvg = rna.copy()  # scanpy: all genes kept in .raw, .X subset to highly variable ones
    hvg.raw = hvg
    hvg = hvg[:, :10].copy()
    with pytest.raises(ValueError, match=r"`\.raw` holds 30 of them .*adata\.raw\.to_adata"):
        scmm.tl.predict(model, hvg)
    np.testing.assert_allclose(model.predict(hvg.raw.to_adata()), ref, rtol=1e-5, atol=1e-6)
    dashed = make_paired()  # R's make.names: MT-CO1 → MT.CO1
    dashed["rna"].var_names = [f"MT-G{i}" for i in range(dashed["rna"].n_vars)]
    dashed.update()
    model = scmm.tl.fit_baseline(dashed, "rna", "prot", n_components=5)
    dotted = dashed["rna"].copy()
    dotted.var_names = dotted.var_names.str.replace("-", ".")
    with pytest.raises(ValueError, match=r"\(the model's 'MT-G0', the data's 'MT.G0'\): R's"):
        scmm.tl.predict(model, dotted)


def test_predict_refuses_transposed_matrix():
    """Features × cells, as R and Matrix Market files store it: refused, naming the fix."""
    m = make_paired()
    model = scmm.tl.fit_baseline(m, "rna", "prot", n_components=5)
    transposed = m["rna"].T.copy()
    with pytest.raises(ValueError, match=r"looks transposed: 100% of the model's 40 features"):
        scmm.tl.predict(model, transposed)
    assert not transposed.obsm and not transposed.uns
    np.testing.assert_allclose(
        model.predict(transposed.T.copy()), model.predict(m), rtol=1e-5, atol=1e-6
    )


def test_masks_given_as_series_are_matched_by_cell_name():
    """`mdata.obs["train"]` in another order than the modality's cells: by name, not position."""
    m = make_paired()
    train = m.obs["train"].copy()
    ref = scmm.tl.fit_baseline(m, "rna", "prot", train=train.to_numpy(), n_components=5)
    shuffled = train.sample(frac=1.0, random_state=0)
    assert not shuffled.index.equals(m["rna"].obs_names)
    model = scmm.tl.fit_baseline(m, "rna", "prot", train=shuffled, n_components=5)
    np.testing.assert_allclose(model.predict(m), ref.predict(m), rtol=1e-5, atol=1e-6)
    assert m.uns["scmm_ridge"]["scores"]["n_cells"] == int((~train).sum())
    with pytest.raises(ValueError, match="names only some of the 120 cells"):
        scmm.tl.fit_baseline(m, "rna", "prot", train=shuffled.iloc[:50], n_components=5)
    # pandas' nullable booleans: fine without <NA>, refused with one
    m.obs["nullable"] = pd.array(train.to_numpy(), dtype="boolean")
    model = scmm.tl.fit_baseline(m, "rna", "prot", train="nullable", n_components=5)
    np.testing.assert_allclose(model.predict(m), ref.predict(m), rtol=1e-5, atol=1e-6)
    m.obs.loc[m.obs_names[0], "nullable"] = pd.NA
    for mask in ("nullable", m.obs["nullable"]):
        with pytest.raises(ValueError, match=r"has 1 missing values \(<NA>\)"):
            scmm.tl.fit_baseline(m, "rna", "prot", train=mask, n_components=5)
    # a Series without cell names is read by position, as an array is
    by_position = pd.Series(train.to_numpy())
    model = scmm.tl.fit_baseline(m, "rna", "prot", train=by_position, n_components=5)
    np.testing.assert_allclose(model.predict(m), ref.predict(m), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "spell",
    [lambda b: b, lambda b: f"s1_{b}-1", lambda b: b.lower()],
    ids=["no suffix", "sample prefix", "lower case"],
)
def test_same_barcodes_spelt_otherwise_named_in_the_refusal(spell):
    """Cell Ranger's RNA `AAAC…-1` against CITE-seq-Count's ADT `AAAC…`: say so."""
    m = make_paired()
    bases = ["".join(b) for b in np.random.default_rng(0).choice(list("ACGT"), (m.n_obs, 16))]
    rna, prot = m["rna"].copy(), m["prot"].copy()
    rna.obs_names = [f"{b}-1" for b in bases]
    prot.obs_names = [spell(b) for b in bases]
    d = md.MuData({"rna": rna, "prot": prot})
    example = rf"e\.g\. '{bases[0]}-1' and '{spell(bases[0])}'"
    with pytest.raises(ValueError, match=rf"120 of them are there under another name.*{example}"):
        scmm.tl.fit_baseline(d, "rna", "prot", n_components=5)
    # other cells altogether (`c_0`… against `c_120`…): no such hint, the usual advice
    rna.obs_names = [f"c_{i}" for i in range(m.n_obs)]
    prot.obs_names = [f"c_{i + m.n_obs}" for i in range(m.n_obs)]
    with pytest.raises(ValueError, match=r"are not in source='rna'\. Subset the MuData"):
        scmm.tl.fit_baseline(md.MuData({"rna": rna, "prot": prot}), "rna", "prot")


def test_modality_mixing_feature_types_is_refused():
    """`sc.read_10x_h5(gex_only=False)` used as the RNA: it holds the proteins to predict."""
    m = make_paired()
    mixed = ad.concat([m["rna"], m["prot"]], axis=1, merge="first")
    mixed.var["feature_types"] = ["Gene Expression"] * m["rna"].n_vars + ["Antibody Capture"] * m[
        "prot"
    ].n_vars
    with pytest.warns(UserWarning, match="not unique"):  # the proteins are in both
        d = md.MuData({"rna": mixed, "prot": m["prot"].copy()})
    with pytest.raises(ValueError, match=r"mixes feature types \('Gene Expression': 40, 'Ant"):
        scmm.tl.fit_baseline(d, "rna", "prot", n_components=5)
    assert "scmm_ridge" not in d["prot"].layers
    d.mod["rna"] = mixed[:, mixed.var["feature_types"] == "Gene Expression"].copy()
    model = scmm.tl.fit_baseline(d, "rna", "prot", n_components=5)  # the named fix works
    # a query read that way: its antibody counts would enter each cell's RNA total
    query = md.MuData({"rna": mixed.copy()})
    with pytest.raises(ValueError, match=r"mdata\['rna'\]` mixes feature types"):
        scmm.tl.predict(model, query, normalize=True)
    assert "scmm_ridge" not in query["rna"].obsm
    # CELLxGENE's `feature_type` holds gene biotypes, not assays: not refused
    d["rna"].var["feature_type"] = ["protein_coding", "lncRNA"] * (d["rna"].n_vars // 2)
    scmm.tl.fit_baseline(d, "rna", "prot", n_components=5)


def test_outputs_never_overwrite_entries_scmm_did_not_write():
    """`key_added="counts"` would replace the raw counts: refused; an earlier output is replaced."""
    m = make_paired()
    m["prot"].layers["counts"] = m["prot"].X.copy()
    before = _state(m)
    with pytest.raises(ValueError, match=r"overwrite mdata\['prot'\]\.layers\['counts'\]"):
        scmm.tl.fit_baseline(m, "rna", "prot", n_components=5, key_added="counts")
    _assert_same(before, _state(m))
    model = scmm.tl.fit_baseline(m, "rna", "prot", n_components=5)
    query = md.MuData({"rna": m["rna"].copy(), "prot": m["prot"].copy()})
    with pytest.raises(ValueError, match=r"overwrite mdata\['prot'\]\.layers\['counts'\]"):
        scmm.tl.predict(model, query, key_added="counts")
    np.testing.assert_array_equal(query["prot"].layers["counts"], m["prot"].layers["counts"])
    scmm.tl.predict(model, query, key_added="r")
    scmm.tl.predict(model, query, key_added="r")  # its own earlier output: replaced
    with pytest.raises(ValueError, match=r"overwrite mdata\['prot'\]\.layers\['counts'\]"):
        scmm.tl.calibrate(query, "r", "prot", key_added="counts")
    assert "counts" not in query.uns


def test_source_modality_under_another_name_named_with_the_fix():
    m = make_paired()
    model = scmm.tl.fit_baseline(m, "rna", "prot", n_components=5)
    query = md.MuData({"gex": m["rna"].copy()})
    with pytest.raises(KeyError, match=r"reads modality 'rna'.*mdata\.mod\.pop\('gex'\)"):
        scmm.tl.predict(model, query)
    assert not query["gex"].obsm
    scmm.tl.predict(model, query["gex"])  # the first fix named
    np.testing.assert_allclose(
        query["gex"].obsm["scmm_ridge"].to_numpy(), model.predict(m), rtol=1e-5, atol=1e-6
    )


# -- property-based ------------------------------------------------------------------------

matrices = st.tuples(st.integers(1, 12), st.integers(2, 9), st.integers(0, 2**31 - 1))


@settings(max_examples=40, deadline=None)
@given(matrices, st.sampled_from([np.float32, np.float64]), st.booleans())
def test_metrics_properties(shape_seed, dtype, sparse):
    n, f, seed = shape_seed
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, f)).astype(dtype)
    p = rng.normal(size=(n, f)).astype(dtype)
    yy = sp.csr_matrix(y) if sparse else y
    r = scmm.metrics.pearson_per_cell(yy, p, average=False)
    assert r.shape == (n,) and np.all(np.abs(r) <= 1 + 1e-9)
    # invariant to a positive affine map of each predicted row, symmetric in its arguments
    scale = rng.uniform(0.5, 3, size=(n, 1))
    np.testing.assert_allclose(
        scmm.metrics.pearson_per_cell(y, p * scale + 7, average=False), r, atol=1e-5
    )
    np.testing.assert_allclose(scmm.metrics.pearson_per_cell(p, y, average=False), r, atol=1e-9)
    assert scmm.metrics.pearson_per_cell(y, y) == pytest.approx(1.0, abs=1e-6) or f < 2
    assert scmm.metrics.rmse(y, y) == 0.0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.integers(12, 40),
    st.integers(6, 20),
    st.integers(1, 5),
    st.booleans(),
    st.sampled_from([np.float32, np.float64]),
    st.integers(0, 1000),
)
def test_predict_random_shapes(n_cells, n_genes, n_prot, sparse, dtype, seed):
    rng = np.random.default_rng(seed)
    X = np.log1p(rng.poisson(1.0, size=(n_cells, n_genes))).astype(dtype)  # normalised
    names = [f"c{i}" for i in range(n_cells)]
    rna = ad.AnnData(
        sp.csr_matrix(X) if sparse else X,
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
    )
    prot = ad.AnnData(
        rng.normal(size=(n_cells, n_prot)).astype(dtype),
        obs=pd.DataFrame(index=names),
        var=pd.DataFrame(index=[f"p{i}" for i in range(n_prot)]),
    )
    m = md.MuData({"rna": rna, "prot": prot})
    model = scmm.tl.fit_baseline(m, "rna", "prot", n_components=min(3, n_genes - 1))
    query = md.MuData({"rna": rna[::-1, ::-1].copy()})
    scmm.tl.predict(model, query)
    out = query["rna"].obsm["scmm_ridge"]
    assert out.shape == (n_cells, n_prot) and np.isfinite(out.to_numpy()).all()
    np.testing.assert_allclose(
        out.to_numpy()[::-1], m["prot"].layers["scmm_ridge"], rtol=1e-4, atol=1e-4
    )


def test_predict_for_cells_the_target_modality_lacks():
    """Proteins measured for some cells only (ADT QC): every RNA cell still gets predictions.

    Before, the predictions went to the protein layers, for the measured cells alone, and the
    cells to predict got none, without a word.
    """
    m = make_paired()
    model = scmm.tl.fit_baseline(m, "rna", "prot", n_components=5, train="train")
    alone = md.MuData({"rna": m["rna"].copy()})
    scmm.tl.predict(model, alone, key_added="p")
    some = md.MuData({"rna": m["rna"].copy(), "prot": m["prot"][:50].copy()})
    with pytest.warns(UserWarning, match=r"70 of the 120 cells of 'rna' are not in 'prot'.*obsm"):
        scmm.tl.predict(model, some, key_added="p")
    assert "p" not in some["prot"].layers
    pd.testing.assert_frame_equal(some["rna"].obsm["p"], alone["rna"].obsm["p"])
    every = md.MuData({"rna": m["rna"].copy(), "prot": m["prot"].copy()})
    scmm.tl.predict(model, every, key_added="p")  # all cells measured: a layer, as before
    np.testing.assert_allclose(every["prot"].layers["p"], alone["rna"].obsm["p"].to_numpy())


def test_counts_kept_in_raw_are_named():
    """SeuratDisk / sceasy files and scanpy workflows keep the counts in `.raw`: say so."""
    m = make_paired()
    rna = m["rna"]
    rna.layers["counts"] = sp.random(
        rna.n_obs, rna.n_vars, density=0.3, format="csr", random_state=0
    )
    rna.layers["counts"].data = np.ceil(rna.layers["counts"].data * 10)
    counts = rna.layers.pop("counts")
    logged = ad.AnnData(counts.copy(), obs=rna.obs[[]].copy(), var=rna.var[[]].copy())
    logged.raw = logged  # the counts, as `.raw`
    logged.X = np.log1p(counts.toarray())  # what `.X` holds: log-normalised
    query = md.MuData({"rna": logged})
    with pytest.raises(ValueError, match=r"non-integer values.*Its `\.raw` holds raw counts"):
        scmm.pp.normalize(query, "rna")
    scaled = logged.copy()
    scaled.X = scaled.X - scaled.X.mean(axis=0)  # Seurat's scale.data: negative values
    with pytest.raises(ValueError, match=r"negative values.*Its `\.raw` holds raw counts"):
        scmm.pp.normalize(md.MuData({"rna": scaled}), "rna")
    no_raw = logged.copy()
    del no_raw.raw
    with pytest.raises(ValueError, match="non-integer values") as err:
        scmm.pp.normalize(md.MuData({"rna": no_raw}), "rna")
    assert "`.raw`" not in str(err.value)
    logged.layers["counts"] = logged.raw[:, logged.var_names].X  # the fix named
    scmm.pp.normalize(md.MuData({"rna": logged}), "rna")
