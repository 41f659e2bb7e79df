"""The shared test harness: real servers (`servers`) and the bot as a real process (`bots`).

A package (importable as `tests.harness` from the repository root; pytest puts the root on
`sys.path`) so conftests, tests and bench/ scripts share one copy instead of loading conftest
files by path.
"""
