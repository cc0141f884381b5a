"""Estimators skl2onnx has no converter for (importable, so MLflow can unpickle them)."""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, RegressorMixin


class MedianRegressor(BaseEstimator, RegressorMixin):
    """Predicts the training median: a custom model no ONNX converter knows."""

    def fit(self, X, y):
        self.median_ = float(np.median(y))
        return self

    def predict(self, X):
        return np.full(len(X), self.median_)
