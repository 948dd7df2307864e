"""The model: a logistic regression trained at start-up on scikit-learn's bundled iris data
(shipped inside the scikit-learn package; nothing is downloaded).

scikit-learn and numpy are imported here, when the app module is imported, before uvicorn
listens: importing them holds the GIL for long stretches (loading their extension modules),
which would stall /health and /ready if it ran in the background loader thread. Only the
data load and the fit run in the background.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

# Fixed split, so a test can rebuild the same held-out set with load_split().
TEST_SIZE = 0.3
SPLIT_SEED = 0


@dataclass(frozen=True)
class Dataset:
    x_train: Any
    x_test: Any
    y_train: Any
    y_test: Any
    feature_names: list[str]
    class_names: list[str]


def load_split() -> Dataset:
    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=TEST_SIZE, random_state=SPLIT_SEED, stratify=iris.target
    )
    return Dataset(
        x_train,
        x_test,
        y_train,
        y_test,
        [str(n) for n in iris.feature_names],
        [str(n) for n in iris.target_names],
    )


#: The width of one row of /predict: the data set's measurements (the request schema says so).
FEATURE_NAMES: tuple[str, ...] = tuple(str(n) for n in load_iris().feature_names)
#: A row the model takes, shown as the example of the /predict schema (a setosa flower).
EXAMPLE_ROW: tuple[float, ...] = tuple(float(v) for v in load_iris().data[0])


class Model:
    """A fitted classifier with its held-out accuracy."""

    def __init__(self) -> None:
        data = load_split()
        self.feature_names = data.feature_names
        self.class_names = data.class_names
        self.n_features = len(data.feature_names)
        self._clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        self._clf.fit(data.x_train, data.y_train)
        self.test_accuracy = float(self._clf.score(data.x_test, data.y_test))

    def predict(self, rows: list[list[float]]) -> tuple[list[int], list[list[float]]]:
        x = np.asarray(rows, dtype=float)
        proba = self._clf.predict_proba(x)
        classes = [int(c) for c in proba.argmax(axis=1)]
        return classes, [[round(float(p), 6) for p in row] for row in proba]
