"""A `hanko bench --report` page as a person sees it: Debian's Chromium, headless and
driven by selenium through Debian's chromedriver, renders DIR/<bench>.html; every plot
loads (no broken image), and the screenshot is a page of the expected size with the
plots in it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from matplotlib import image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service

from tests.conftest import BIN

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WIDTH, HEIGHT = 1280, 2000


def browser(profile: Path) -> webdriver.Chrome:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("chromium and chromium-driver are missing: run scripts/dev.sh setup")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # The machine reaches no network: nothing in the background may try.
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-sync",
        "--disable-component-update",
        f"--window-size={WIDTH},{HEIGHT}",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)


@pytest.mark.slow
def test_a_bench_report_renders_with_every_plot_loaded(tmp_path: Path) -> None:
    out = tmp_path / "report"
    run = subprocess.run(
        [str(BIN / "hanko"), "bench", "store", "--report", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    page = out / "store.html"
    assert page.exists()
    profile = Path(tempfile.mkdtemp(prefix="hanko-chromium-"))
    driver = browser(profile)
    try:
        driver.get(page.as_uri())
        images = driver.execute_script(
            "return Array.from(document.images).map(i => "
            "[i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert images, "the report has no plots"
        broken = [src for src, done, w, h in images if not done or w == 0 or h == 0]
        assert broken == [], f"plots that did not load: {broken}"
        assert all((w, h) == (800, 450) for _, _, w, h in images)
        viewport = driver.execute_script("return [window.innerWidth, window.innerHeight]")
        shot = tmp_path / "report.png"
        assert driver.save_screenshot(str(shot))
        title = driver.title
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
    pixels = image.imread(shot)
    height, width = pixels.shape[:2]
    assert [width, height] == viewport  # the page as the window shows it
    assert width == WIDTH
    assert height > 1000
    assert pixels.std() > 0.05  # plots and text, not a blank page
    assert "store" in title.lower()
