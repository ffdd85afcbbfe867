"""Level 3: release a model. The gate decides whether a new model may replace the
champion (gate.py); the registry holds versions and the `challenger` and
`champion` aliases (register.py, promote.py, rollback.py, models.py); export
writes the folder the serving API loads (export.py). Settings: deploy.yaml.
"""
