"""The scikit-learn estimator: scikit-learn's own conformance suite, a Pipeline in
cross_val_score, partial_fit, labels of any type, and the documented example."""

import doctest

import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import StratifiedKFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import check_estimator  # noqa: E402

import mnistsoftmax.sklearn as module  # noqa: E402
from mnistsoftmax.models import Network  # noqa: E402
from mnistsoftmax.sklearn import SoftmaxClassifier  # noqa: E402


@pytest.mark.parametrize("model", ["mlp", "linear"])
def test_check_estimator_passes(model):
    """Every check of sklearn.utils.estimator_checks.check_estimator, none failing."""
    results = check_estimator(SoftmaxClassifier(model=model), on_fail=None)
    failed = [f"{r['check_name']}: {r['exception']}" for r in results if r["status"] == "failed"]
    assert len(results) > 40 and failed == []


def test_pipeline_on_load_digits_in_cross_val_score():
    """8 x 8 digits, 64 features, scaled in a Pipeline: >= 95 % in shuffled, stratified 5-fold
    cross validation. (Unshuffled folds split load_digits by writer: 92-93 % here, and
    MLPClassifier's own default, adam for 200 epochs, 94.6 %.)"""
    X, y = load_digits(return_X_y=True)
    pipeline = make_pipeline(StandardScaler(), SoftmaxClassifier(hidden=256, epochs=20, random_state=0))
    scores = cross_val_score(pipeline, X, y, cv=StratifiedKFold(5, shuffle=True, random_state=0))
    assert scores.mean() >= 0.95, scores


def test_labels_of_any_type_float32_inside_and_partial_fit():
    """String labels come back as given; the parameters are float32 arrays of the package's MLP;
    partial_fit needs the classes first, then learns a pass at a time."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])[y]
    clf = SoftmaxClassifier(hidden=32, epochs=5, random_state=1).fit(X, names)
    assert set(clf.predict(X[:20])) <= set(names) and clf.score(X, names) > 0.9
    assert (
        isinstance(clf.model_, Network)
        and clf.model_.kind == "mlp"
        and all(p.dtype == np.float32 for p in clf.model_.params.values())
    )
    incremental = SoftmaxClassifier(hidden=32, random_state=1)
    with pytest.raises(ValueError, match="needs classes"):
        incremental.partial_fit(X[:100], names[:100])
    scores = []
    for _ in range(5):
        incremental.partial_fit(X, names, classes=np.unique(names))
        scores.append(incremental.score(X, names))
    assert scores[-1] > 0.9 and scores[-1] > scores[0]
    with pytest.raises(ValueError, match="not among the classes"):
        incremental.partial_fit(X[:2], ["ten", "zero"])


def test_same_random_state_same_model():
    X, y = load_digits(return_X_y=True)
    a = SoftmaxClassifier(hidden=16, epochs=2, random_state=3).fit(X / 16, y)
    b = SoftmaxClassifier(hidden=16, epochs=2, random_state=3).fit(X / 16, y)
    assert a.model_.params["W1"].tobytes() == b.model_.params["W1"].tobytes()


def test_the_documented_example_runs():
    failed, attempted = doctest.testmod(module)
    assert attempted >= 5 and failed == 0


def test_label_smoothing_reaches_the_training():
    """label_smoothing=0.3 trains towards 0.73 on the true class: less confident than without;
    smoothing or dropout outside [0, 1) is refused."""
    X, y = load_digits(return_X_y=True)
    plain = SoftmaxClassifier(hidden=32, epochs=30, lr=0.1, random_state=3).fit(X / 16, y)
    smoothed = SoftmaxClassifier(hidden=32, epochs=30, lr=0.1, random_state=3, label_smoothing=0.3).fit(X / 16, y)
    assert plain.predict_proba(X / 16).max(axis=1).mean() > 0.9  # 0.96 here
    assert smoothed.predict_proba(X / 16).max(axis=1).mean() < 0.8  # 0.65 here
    assert smoothed.score(X / 16, y) > 0.95
    with pytest.raises(ValueError, match=r"label_smoothing=1.0: 1.0 is not in the range 0<=x<1"):
        SoftmaxClassifier(label_smoothing=1.0).fit(X / 16, y)
    with pytest.raises(ValueError, match=r"dropout=-0.1: -0.1 is not in the range 0<=x<1"):
        SoftmaxClassifier(dropout=-0.1).fit(X / 16, y)


def test_the_estimator_trains_on_the_hinge():
    """SoftmaxClassifier(loss="hinge") learns the digits too; label smoothing with it is refused."""
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    clf = SoftmaxClassifier(loss="hinge", hidden=64, epochs=10, random_state=0).fit(X / 16, y)
    assert clf.score(X / 16, y) > 0.95
    with pytest.raises(ValueError, match="the hinge loss has none"):
        SoftmaxClassifier(loss="hinge", label_smoothing=0.1).fit(X / 16, y)


def test_verbose_prints_one_line_per_epoch_and_changes_nothing(capsys):
    X, y = load_digits(return_X_y=True)
    quiet = SoftmaxClassifier(hidden=16, epochs=3, random_state=0).fit(X / 16, y)
    assert capsys.readouterr().err == ""
    loud = SoftmaxClassifier(hidden=16, epochs=3, random_state=0, verbose=True).fit(X / 16, y)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split()[:2] for line in lines] == [["epoch", "1/3"], ["epoch", "2/3"], ["epoch", "3/3"]]
    assert "train loss" in lines[0]
    np.testing.assert_array_equal(quiet.predict_proba(X / 16), loud.predict_proba(X / 16))


@pytest.mark.parametrize("optimizer", [{"optimizer": "adam", "lr": 0.01}, {"nesterov": True}])
def test_two_hidden_layers_and_every_optimizer(optimizer):
    """hidden=(32, 16) is two hidden layers, as train's --hidden 32,16; Adam and Nesterov's SGD
    train it; a Nesterov without momentum is refused as train refuses it."""
    X, y = load_digits(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = SoftmaxClassifier(hidden=(32, 16), epochs=10, random_state=0, **optimizer).fit(X, y)
    assert clf.model_.hidden_widths == [32, 16] and clf.score(X, y) > 0.95
    with pytest.raises(ValueError, match="--nesterov"):
        SoftmaxClassifier(nesterov=True, momentum=0.0).fit(X, y)
