"""Plain ``pytest`` collects with the base install alone: modules that need an optional extra are left out of
the doctest collection when the extra is missing (the tests of those extras skip themselves)."""

collect_ignore = []
try:  # the Dask sweep's module imports distributed at its top; the package imports it only under a Dask backend
    import distributed  # noqa: F401
except ImportError:
    collect_ignore.append("sklearn_id/_dask.py")
