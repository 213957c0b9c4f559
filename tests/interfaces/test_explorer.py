"""The explorer page in a real browser (headless Chromium from the system, driven by Selenium):
it loads offline with no console errors, a moved slider shows exactly what `tokensweep slice`
gives for the new point, it works on reduced cubes and on every shipped sweep's cube, and an
oversized page is refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import xarray as xr
import yaml

from engine.interfaces.cli import main
from engine.model.variables import VARIABLES
from engine.sweep.plan import make_plan
from engine.sweep.spec import parse_spec
from engine.sweep.store import run_sweep
from tests.sweep_helpers import small

ROOT = Path(__file__).parents[2]
VARIABLE_NAMES = {v.name for v in VARIABLES}
ARTIFACTS = ROOT / "outputs" / "test-artifacts"
CHROMIUM = next((p for p in ("chromium", "chromium-browser", "google-chrome") if shutil.which(p)), None)
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.fail("the explorer test needs Chromium and its driver: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1500,1700",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def load(driver, page: Path) -> list[dict]:
    """Open the page, wait until its data are decoded and drawn; returns the console messages."""
    import time

    driver.get_log("browser")  # drop messages from earlier pages
    driver.get(page.resolve().as_uri())
    deadline = time.monotonic() + 60
    while driver.execute_script("return document.body.dataset.ready") != "1":
        assert time.monotonic() < deadline, "the page never finished drawing"
        time.sleep(0.1)
    return driver.get_log("browser")


def errors(messages: list[dict]) -> list[str]:
    return [m["message"] for m in messages if m["level"] in ("SEVERE", "WARNING")]


@pytest.fixture(scope="module")
def cube(tmp_path_factory):
    path = tmp_path_factory.mktemp("explorer") / "small.zarr"
    run_sweep(make_plan(parse_spec(small(hardware=["wse3", "h100-sxm", "b200"]))), path, progress=False)
    return path


@pytest.fixture(scope="module")
def page(cube):
    output = cube.with_name("small.html")
    assert main(["explore", str(cube), "-o", str(output)]) == 0
    return output


def point_of(driver) -> dict:
    """The page's current point as DIM=VALUE labels, read from its own state."""
    return driver.execute_script(
        "return Object.fromEntries(P.dims.filter(d => d.name !== 'token_type')"
        ".map(d => [d.name, d.values[cur[d.name]]]));"
    )


def shown_values(driver) -> dict:
    cells = driver.execute_script(
        "return [...document.querySelectorAll('#values td.num')].map(td => [td.dataset.var, td.dataset.tokenType || null, td.dataset.value]);"
    )
    return {(name, token): value for name, token, value in cells}


def sliced(cube, point: dict, var: str, capsys) -> list[dict]:
    sel = [f"{d}={v!r}" if isinstance(v, float) else f"{d}={v}" for d, v in point.items()]
    assert main(["slice", str(cube), "--var", var, *[x for s in sel for x in ("--sel", s)], "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    return rows if isinstance(rows, list) else [rows]


def test_page_is_one_offline_file_that_loads_without_console_errors(browser, page):
    html = page.read_text()
    assert "<script src=" not in html and "https://" not in html.split("<script>", 2)[-1][:2000]
    messages = load(browser, page)
    assert errors(messages) == []
    assert browser.find_element("id", "ctl-concurrency").get_attribute("type") == "range"
    assert browser.find_element("id", "ctl-hardware").tag_name == "select"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.body.scrollHeight")
    browser.set_window_size(1500, height + 80)
    browser.save_screenshot(str(ARTIFACTS / "explorer_default_point.png"))  # looked at by people, see the README


def test_the_page_opens_at_the_calculators_point(browser, page):
    load(browser, page)
    point = point_of(browser)
    assert point["model"] == "gpt-oss-120b" and point["hardware"] == "wse3"
    assert point["concurrency"] == 250 and point["weight_bits"] == 4 and point["kv_bits"] == 16


def test_moving_sliders_shows_exactly_what_slice_gives(browser, page, cube, capsys):
    from selenium.webdriver.common.keys import Keys

    load(browser, page)
    browser.find_element("id", "ctl-isl").send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)
    browser.find_element("id", "ctl-concurrency").send_keys(Keys.ARROW_LEFT)
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element("id", "ctl-hardware")).select_by_visible_text("h100-sxm")
    point = point_of(browser)
    assert point["hardware"] == "h100-sxm" and point["concurrency"] == 16
    shown = shown_values(browser)
    assert len(shown) >= 27
    for (name, token), text in shown.items():
        rows = sliced(cube, point, name, capsys)
        if token is not None:
            rows = [r for r in rows if r["token_type"] == token]
        (row,) = rows
        expected = row[name]
        if expected is None:
            assert text == "NaN", name
        elif isinstance(expected, bool):
            assert float(text) == float(expected), name
        else:
            assert float(text) == expected, (name, token)  # exactly: float64 travels unchanged
    # The calibrated figures carry their measured-error band on a GPU, none on the wafer.
    from engine.analysis.uncertainty import band_factors
    from engine.model.catalog import load_catalog

    factors = band_factors(load_catalog().profile("calibrated").uncertainty)
    for control in ("ctl-isl", "ctl-concurrency"):  # the shortest context, one request: H100s serve it
        browser.find_element("id", control).send_keys(Keys.HOME)
    shown = shown_values(browser)
    assert float(shown[("interactivity_tps", None)]) > 0
    banded = "return [...document.querySelectorAll('#values td.num')].filter(td => td.querySelector('.band'))" \
             ".map(td => [td.dataset.var, bandOf(td.dataset.var, Number(td.dataset.value))]);"  # fmt: skip
    found = dict(browser.execute_script(banded))
    assert {"interactivity_tps", "ttft_s", "cost_per_mtok_usd"} <= set(found) <= set(factors)
    from engine.analysis.uncertainty import intervals

    values = {name: float(text) for (name, token), text in shown.items() if token is None and text != "NaN"
              and name in VARIABLE_NAMES}  # fmt: skip
    expected = intervals(values, load_catalog().profile("calibrated").uncertainty)  # capped at the roofline too
    for name, band in found.items():
        assert band == pytest.approx(list(expected[name]), rel=1e-12), name
    Select(browser.find_element("id", "ctl-hardware")).select_by_visible_text("wse3")
    assert browser.execute_script(banded) == []


def test_reduced_cubes_explore_with_their_labels(browser, tmp_path):
    from tests.sweep_helpers import BASE

    spec_path = tmp_path / "reduced.yaml"
    spec_path.write_text(yaml.safe_dump({**BASE, "axes": {**BASE["axes"], "parallelism": ["tp", "dp-ep"]},
                                         "reduce": {**BASE["reduce"], "over": [*BASE["reduce"]["over"], "parallelism"]}}))  # fmt: skip
    output = tmp_path / "reduced.zarr"
    assert main(["run", str(spec_path), "--output", str(output), "--no-progress"]) == 0
    page = tmp_path / "reduced.html"
    assert main(["explore", str(output), "-o", str(page)]) == 0
    assert errors(load(browser, page)) == []
    shown = shown_values(browser)
    assert shown[("parallelism", None)] in ("tp", "dp-ep", "")
    # The phase panel maps the minimum over model x ISL; the frontier needs the configurations reduced away.
    title = browser.find_element("id", "phase-title").text
    assert title == f"Phase diagram: {xr.open_zarr(output)['cost_per_mtok_output_usd'].attrs['long_name']} [USD/Mtok]"
    # The values table names each figure in words with its units, the cube's name beside it.
    named = browser.execute_script(
        "return document.querySelector('#values td.num[data-var=\"cost_per_mtok_output_usd\"]')"
        ".previousElementSibling.innerText;"
    )
    assert named.split("\n") == [title.removeprefix("Phase diagram: "), "cost_per_mtok_output_usd"]
    assert browser.find_element("id", "frontier-panel").is_displayed() is False


def test_an_oversized_page_is_refused_before_writing(cube, tmp_path, capsys):
    output = tmp_path / "big.html"
    assert main(["explore", str(cube), "-o", str(output), "--max-size", "100kB"]) == 2
    err = capsys.readouterr().err
    assert "limit 100 kB" in err and "--sel" in err and len(err.strip().splitlines()) == 1
    assert not output.exists()
    narrow = ["--sel", "isl=16000", "--sel", "model=gpt-oss-120b", "--vars", "units_needed,cost_per_mtok_usd"]
    # The limit counts the whole page (Plotly's runtime and every label), not only the numbers.
    assert main(["explore", str(cube), "-o", str(output), "--max-size", "1MB", *narrow]) == 2
    assert "Plotly's runtime and every label included" in capsys.readouterr().err and not output.exists()
    assert main(["explore", str(cube), "-o", str(output), "--max-size", "10MB", *narrow]) == 0
    assert output.exists() and output.stat().st_size <= 10e6


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["-o", "x.png"], "must end in .html"),
        (["--vars", "cost"], "--vars: unknown variable 'cost'"),
        (["--sel", "isl=1e12"], "outside the cube's axis"),
        (["--max-size", "lots"], "--max-size"),
    ],
)
def test_explore_errors_are_one_line(cube, tmp_path, capsys, argv, message):
    argv = [a.replace("x.png", str(tmp_path / "x.png")) for a in argv]
    assert main(["explore", str(cube), *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_every_shipped_sweep_explores(browser, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sizes = {}
    for spec in sorted((ROOT / "sweeps").glob("*.yaml")):
        data = yaml.safe_load(spec.read_text())
        data["figures"] = []
        local = tmp_path / spec.name
        local.write_text(yaml.safe_dump(data))
        cube = tmp_path / f"{spec.stem}.zarr"
        assert main(["run", str(local), "--output", str(cube), "--no-progress"]) == 0
        page = tmp_path / f"{spec.stem}.html"
        assert main(["explore", str(cube), "-o", str(page)]) == 0
        assert errors(load(browser, page)) == [], spec.name
        sizes[spec.stem] = page.stat().st_size
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "explorer_page_sizes.json").write_text(json.dumps(sizes, indent=1))
