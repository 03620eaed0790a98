"""Helpers of the browser tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

from pathlib import Path

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "correct horse battery"


def sign_in(page, username: str, password: str = PASSWORD) -> None:  # noqa: ANN001 - playwright Page
    """Fill the sign-in form and submit it."""
    page.goto("/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")


def screenshot(page, name: str, *, full_page: bool = True) -> Path:  # noqa: ANN001 - playwright Page
    """Save a screenshot of ``page`` as ``docs/screenshots/<name>.png``."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
