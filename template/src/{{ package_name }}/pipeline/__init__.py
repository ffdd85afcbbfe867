"""The pipeline stages, one module each, in the order dvc.yaml chains them:
read, metadata, validate, preprocess, train, evaluate (see docs/experiments.md).
"""
