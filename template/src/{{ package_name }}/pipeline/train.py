"""Stage `train`: build the model that params.yaml describes and fit it.

`model.architecture` picks a builder in ARCHITECTURES; `model.hyperparameters.<architecture>`
holds its settings (unset ones keep scikit-learn's defaults). The model is one scikit-learn
Pipeline (imputation, scaling or one-hot encoding, then the estimator), so models/model.joblib
holds all a prediction needs. When you change what a builder does, bump
`model.architecture_version` in params.yaml: runs of different code then stay apart.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core import files, paths
from ..core.errors import PipelineError
from ..core.params import Features, Params, load_params

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator
    from sklearn.pipeline import Pipeline


def _preprocessor(features: Features, *, scale: bool, dense: bool = False) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if features.numeric:
        steps = [SimpleImputer(strategy="median"), *([StandardScaler()] if scale else [])]
        parts.append(("numeric", make_pipeline(*steps), features.numeric))
    if features.categorical:
        encoder = OneHotEncoder(handle_unknown="ignore", sparse_output=not dense)
        steps = [SimpleImputer(strategy="most_frequent"), encoder]
        parts.append(("categorical", make_pipeline(*steps), features.categorical))
    return ColumnTransformer(parts)


def _logistic_regression(features: Features) -> tuple[Any, type[BaseEstimator]]:
    from sklearn.linear_model import LogisticRegression

    return _preprocessor(features, scale=True), LogisticRegression


def _random_forest(features: Features) -> tuple[Any, type[BaseEstimator]]:
    from sklearn.ensemble import RandomForestClassifier

    return _preprocessor(features, scale=False), RandomForestClassifier


def _gradient_boosting(features: Features) -> tuple[Any, type[BaseEstimator]]:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return _preprocessor(features, scale=False, dense=True), HistGradientBoostingClassifier


# architecture name -> builder returning (preprocessing step, estimator class)
ARCHITECTURES: dict[str, Callable[[Features], tuple[Any, type[BaseEstimator]]]] = {
    "logistic_regression": _logistic_regression,
    "random_forest": _random_forest,
    "gradient_boosting": _gradient_boosting,
}


def build_model(params: Params, params_path: Path = paths.PARAMS) -> Pipeline:
    """Return the unfitted pipeline for params.model, checking names first."""
    from sklearn.pipeline import Pipeline

    architecture = params.model.architecture
    if architecture not in ARCHITECTURES:
        raise PipelineError(
            f"{params_path}: `model.architecture` is '{architecture}', not a known architecture; "
            f"valid: {', '.join(ARCHITECTURES)} (add one in train.py)."
        )
    preprocessor, estimator_class = ARCHITECTURES[architecture](params.features)
    hyperparameters = params.model.selected_hyperparameters
    valid = estimator_class().get_params()
    unknown = sorted(set(hyperparameters) - set(valid))
    if unknown:
        raise PipelineError(
            f"{params_path}: `model.hyperparameters.{architecture}` has unknown "
            f"{'names' if len(unknown) > 1 else 'name'} {', '.join(unknown)}; "
            f"{estimator_class.__name__} accepts: {', '.join(sorted(valid))}."
        )
    if "random_state" in valid and "random_state" not in hyperparameters:
        hyperparameters["random_state"] = params.split.seed
    estimator = estimator_class(**hyperparameters)
    return Pipeline([("preprocess", preprocessor), ("model", estimator)])


def fit(params: Params, train: Any, params_path: Path = paths.PARAMS) -> Pipeline:
    """Build and fit the model on a training frame holding the features and the target."""
    model = build_model(params, params_path)
    target = params.features.target
    missing = [c for c in [*params.features.columns, target] if c not in train.columns]
    if missing:
        raise PipelineError(
            f"the training data lacks {', '.join(missing)}: rerun the pipeline (`dvc repro`)."
        )
    try:
        model.fit(train[params.features.columns], train[target])
    except (ValueError, TypeError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        raise PipelineError(
            f"training {params.model.architecture} failed (check "
            f"`model.hyperparameters.{params.model.architecture}` in {params_path}): {first_line}"
        ) from None
    return model


def run(
    train_path: Path = paths.TRAIN_DATA,
    params_path: Path = paths.PARAMS,
    model_path: Path = paths.MODEL,
) -> Pipeline:
    import joblib

    params = load_params(params_path)
    build_model(params, params_path)  # bad params fail before the data is read
    train = files.read_csv(train_path, "run the `preprocess` stage first (`uv run poe pipeline`)")
    model = fit(params, train, params_path)
    files.write_atomically(model_path, lambda target: joblib.dump(model, target))
    print(
        f"train: {params.model.architecture} v{params.model.architecture_version} "
        f"on {len(train)} rows -> {model_path}"
    )
    return model
