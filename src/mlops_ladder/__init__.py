"""mlops-ladder's command line tools, installed from the template's own source.

`uvx --from <template source> mlops-ladder doctor` runs the level doctor on the
project in the current folder; a generated project's `uv run poe doctor` does
this at the template version the project records (.copier-answers.yml).
"""
