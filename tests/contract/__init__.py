"""The connector contract suite: `suite.py` holds it, each test module plugs one connector in."""
