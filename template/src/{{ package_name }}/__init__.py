"""The project's ML pipeline: one module per DVC stage (see docs/experiments.md).

Stages run as `python -m <package> <stage>` from the project root; `dvc repro`
chains them as dvc.yaml describes. Importing the package is cheap: heavy
libraries are imported by the stage that needs them.
"""

__version__ = "0.1.0"
