"""The workflow templates shipped with the package (``<name>.json``); see ``templates.py``."""
