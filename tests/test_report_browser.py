"""The report in a real browser: headless Debian chromium opens reports/report.html offline, runs
its scripts without an error, renders the character sections and writes a screenshot.

Console errors are caught twice: the page's first script writes every error, failed resource
and console.error into the DOM (html[data-js-errors], #js-errors), which --dump-dom shows, and
chromium's own log (--enable-logging=stderr) prints every console message as a CONSOLE line."""
import os
import shutil
import subprocess

import lxml.html
import pytest
from eval_tiny import tiny_project

BROWSER_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                 "--enable-logging=stderr", "--v=0"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium():
    """The chromium binary; installed with apt-get (as root, or through sudo) when missing."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and apt-get is unavailable to install it")
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        result = subprocess.run(sudo + command, capture_output=True, text=True, env=env, timeout=900)
        assert result.returncode == 0, f"{' '.join(command)} failed: {result.stderr[-500:]}"
    return shutil.which("chromium")


def open_page(chromium, page, tmp_path, *extra):
    """(dumped DOM, chromium's log) of `page` loaded from disk."""
    result = subprocess.run(
        [chromium, *BROWSER_FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *extra, page.as_uri()],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-1000:]
    return result.stdout, result.stderr


def test_report_loads_without_console_errors_and_renders_characters(chromium, tmp_path_factory, tmp_path):
    page = tiny_project(tmp_path_factory) / "reports" / "report.html"
    dom, log = open_page(chromium, page, tmp_path, "--dump-dom")
    tree = lxml.html.fromstring(dom)
    assert tree.get("data-js-errors") is None, tree.get_element_by_id("js-errors").text_content()
    assert tree.get_element_by_id("js-errors").get("hidden") is not None
    assert [line for line in log.splitlines() if ":CONSOLE" in line] == []
    sections = tree.xpath("//details[@class='character']")
    assert tree.get("data-ready") == str(len(sections)) == "12"  # the closing script ran to its end
    assert "Char 00" in sections[0].findtext("summary") and sections[0].xpath(".//span[@class='w']")

    screenshot = tmp_path / "report.png"
    open_page(chromium, page, tmp_path, "--window-size=1400,2400", f"--screenshot={screenshot}")
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 20_000


def test_the_error_hooks_catch_a_broken_script_and_a_failed_resource(chromium, tmp_path_factory, tmp_path):
    """The check above is live: the same page with a bad call and a missing image is flagged."""
    page = tiny_project(tmp_path_factory) / "reports" / "report.html"
    broken = tmp_path / "broken.html"
    bad_parts = '<img src="missing.png"></main><script>noSuchFunction();</script>'
    broken.write_text(page.read_text().replace("</main>", bad_parts))
    dom, log = open_page(chromium, broken, tmp_path, "--dump-dom")
    tree = lxml.html.fromstring(dom)
    assert tree.get("data-js-errors") == "2"
    errors = tree.get_element_by_id("js-errors").text_content()
    assert "noSuchFunction is not defined" in errors and "missing.png" in errors
    assert any(":CONSOLE" in line and "noSuchFunction" in line for line in log.splitlines())
