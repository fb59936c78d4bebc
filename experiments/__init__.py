"""Studies and tables built on the framework (scripts: `python experiments/NAME.py`); a package so that the tests
can import them."""
