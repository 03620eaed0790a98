"""Evaluation: the day-by-day backtest and the public KCS benchmark."""
