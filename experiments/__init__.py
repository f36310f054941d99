"""Entry points: `python experiments/main.py --config=configs/<name>.py`."""
