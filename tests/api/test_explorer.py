"""The label explorer (/ui/) in a real headless Chromium against a live mug-api on loopback.

Chromium and chromedriver are Debian's packages (`chromium`, `chromium-driver`; .ci/run installs
them); selenium is told where both are, so it downloads nothing. The label sets are published
straight into the server's store: their uni-labels are seeded random values and their
uncertainty, gate and selection records are MADE UP by this test (synthetic data throughout).
What is checked is what the pages show against the bulk export of the same label sets.
Screenshots of every page go to the test's tmp dir and to /tmp/explorer-shots/.
"""

import io
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.expected_conditions import staleness_of
from selenium.webdriver.support.ui import Select, WebDriverWait

from mugcore.data.schema import MODALITIES, SPLITS, MMSADataset
from mugcore.metrics import unilabel_quality
from storage import LabelStore
from storage.testing import clip_table, random_dataset, seeded_labels, seeded_uncertainty
from tests.api.conftest import LONG_JOB, READ, READ_TOKEN, WRITE, Server, wait_job

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
SHOTS = Path("/tmp/explorer-shots")
HOSTILE_ID = "<img src=x onerror=\"document.title='pwned'\">$_$9"
HOSTILE_TEXT = "<script>document.title='pwned'</script> pwned"
WORDS = ("happy", "sad", "calm", "angry", "bored", "glad")
PROVENANCE = {
    "gate": {"text": {"decision": "correct", "evidence": {"val_gain": 0.12}, "reason": "made up"},
             "audio": {"decision": "shrink", "shrink": 0.5, "evidence": {"val_gain": 0.01},
                       "reason": "made up: thin evidence"},
             "vision": {"decision": "copy", "evidence": {"val_gain": -0.03},
                        "reason": "made up: no gain"}},
    "selection": {"criterion": "made-up-criterion",
                  "audio": {"chosen": {"noise": 0.9},
                            "candidates": [{"noise": 0.3, "score": 1.4},
                                           {"noise": 0.9, "score": 1.1}]}},
    "uncertainty": {"method": "made-up", "level": 0.9,
                    "summary": {m: {"mean_width": 1.5} for m in MODALITIES}},
}


def _dataset() -> MMSADataset:
    ds = random_dataset((60, 20, 20), seed=7, prefix="exp")
    rng = np.random.default_rng(7)
    for split in SPLITS:
        texts = [" ".join(rng.choice(WORDS, 3)) + f" clip {split} {i}"
                 for i in range(ds.size(split))]
        ids = [str(c) for c in ds.splits[split]["id"]]
        if split == "train":
            ids[5], texts[5] = HOSTILE_ID, HOSTILE_TEXT
        ds.splits[split]["id"], ds.splits[split]["raw_text"] = np.array(ids), np.array(texts)
    return ds


@pytest.fixture(scope="module")
def explorer(server: Server, tiny_sims: MMSADataset) -> dict[str, Any]:
    ds = _dataset()
    clips = clip_table(ds)
    truth = {m: np.concatenate([ds.splits[s][k] for s in SPLITS])
             for m, k in (("text", "regression_labels_T"), ("audio", "regression_labels_A"),
                          ("vision", "regression_labels_V"))}
    labels = seeded_labels(clips, seed=11)
    labels |= seeded_uncertainty(labels, seed=12)
    train = clips["split"] == "train"
    quality = {"train": unilabel_quality({m: labels[m][train] for m in MODALITIES},
                                         {m: truth[m][train] for m in MODALITIES},
                                         clips["multimodal"][train])}
    with LabelStore.open(server.store) as store:
        info = store.register_dataset("explorer", ds, source_format="hdf5")
        mug = store.publish_label_set(info.id, labels, method="mug", options={"made_up": True},
                                      seed=3, provenance=PROVENANCE, quality=quality)
        copy = store.publish_label_set(
            info.id, {**clips, **{m: clips["multimodal"] for m in MODALITIES}}, method="copy",
            options={}, seed=0,
            provenance={"uncertainty": {"method": "none", "reason": "copy carries none"}})
        other = store.register_dataset("jobs-sims", tiny_sims, source_format="pickle")
        other_copy = store.publish_label_set(
            other.id, {**clip_table(tiny_sims),
                       **{m: clip_table(tiny_sims)["multimodal"] for m in MODALITIES}},
            method="copy", options={}, seed=0)
    raw_text = np.concatenate([ds.splits[s]["raw_text"] for s in SPLITS])
    return {"dataset": info.id, "mug": mug.id, "copy": copy.id, "other": other.id,
            "other_copy": other_copy.id, "raw_text": raw_text, "truth": truth}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        why = f"no {CHROMIUM} / {CHROMEDRIVER}: apt-get install chromium chromium-driver"
        if os.environ.get("MUG_REQUIRE_BROWSER") == "1":
            pytest.fail(why)
        pytest.skip(why)
    profile = tempfile.mkdtemp(prefix="mug-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def shot(driver: Any, tmp_path: Path, name: str) -> None:
    """A screenshot of the whole page, in the test's tmp dir and in SHOTS for people."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(int(height) + 40, 600), 6000))
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path))
    SHOTS.mkdir(exist_ok=True)
    shutil.copy(path, SHOTS / path.name)
    driver.set_window_size(1400, 1000)


def follow(driver: Any, element: Any) -> None:
    """Click a link or submit button and wait until the next page has replaced this one."""
    element.click()
    WebDriverWait(driver, 30).until(staleness_of(element))


def submit(driver: Any, button_id: str) -> None:
    follow(driver, driver.find_element(By.ID, button_id))


def log_in(driver: Any, token: str) -> None:
    driver.find_element(By.ID, "token").send_keys(token)
    submit(driver, "login-submit")


@pytest.fixture
def ui(browser: Any, server: Server) -> Any:
    """The browser with the read cookie set (through the login form when it is missing)."""
    if browser.get_cookie("mug_read_token") is None:
        browser.get(f"{server.url}/ui/")
        log_in(browser, READ_TOKEN)
    return browser


def table(driver: Any) -> list[list[str]]:
    return driver.execute_script(
        "return [...document.querySelectorAll('#clips tr.clip')]"
        ".map(r => [...r.cells].map(c => c.textContent.trim()))")


def export(server: Server, dataset: int, label_set: int) -> dict[str, np.ndarray]:
    with server.client(READ) as c:
        r = c.get(f"/v1/datasets/{dataset}/labels",
                  params={"label_set": label_set, "format": "npz"})
    r.raise_for_status()
    return dict(np.load(io.BytesIO(r.content)))


def signed(value: float, digits: int = 3) -> str:
    return f"{float(value) + 0.0:+.{digits}f}"


def expected_ids(arrays: dict[str, np.ndarray], score: np.ndarray | None, keep: np.ndarray,
                 *, descending: bool, start: int, count: int) -> list[str]:
    """The clip ids a page should list: a stable sort of the export, as documented."""
    positions = np.flatnonzero(keep)
    if score is not None:
        s = score[positions]
        positions = positions[np.argsort(-s if descending else s, kind="stable")]
    return [str(arrays["clip_id"][i]) for i in positions[start:start + count]]


def test_read_token_is_asked_once_and_kept_in_an_httponly_cookie(
        browser: Any, server: Server, explorer: dict, tmp_path: Path) -> None:
    page = f"/ui/label-sets/{explorer['mug']}"
    some_ids = [str(c) for c in export(server, explorer["dataset"], explorer["mug"])["clip_id"]]
    for path in ("/ui/", page, f"/ui/compare?a={explorer['mug']}&b={explorer['copy']}",
                 "/ui/jobs"):
        for cookies in ({}, {"mug_read_token": "wrong"}):
            r = httpx.get(f"{server.url}{path}", cookies=cookies)
            assert r.status_code == 401, (path, cookies)
            assert 'id="login"' in r.text and "explorer" not in r.text.split("<main>")[1]
            assert not any(i in r.text for i in some_ids[:20])
    assert httpx.get(f"{server.url}{page}", headers=READ).status_code == 200
    r = httpx.get(f"{server.url}/v1/labels/{some_ids[0]}", cookies={"mug_read_token": "wrong"})
    assert r.status_code == 401

    browser.delete_all_cookies()
    browser.get(f"{server.url}{page}")
    assert browser.find_elements(By.ID, "login") and not browser.find_elements(By.ID, "clips")
    shot(browser, tmp_path, "login")
    log_in(browser, "not-the-token")
    assert browser.find_element(By.ID, "login-error").is_displayed()
    assert not browser.find_elements(By.ID, "clips")
    assert browser.get_cookie("mug_read_token") is None
    log_in(browser, READ_TOKEN)
    assert browser.current_url == f"{server.url}{page}"  # back where it was, no token in sight
    assert READ_TOKEN not in browser.current_url and len(table(browser)) == 50
    cookie = browser.get_cookie("mug_read_token")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert browser.execute_script("return document.cookie") == ""  # scripts cannot read it

    browser.get(f"{server.url}/ui/")  # asked once: other pages just work
    assert browser.find_elements(By.ID, f"dataset-{explorer['dataset']}")
    # A row's JSON link is the API's own look-up, authorised by the same cookie.
    browser.get(f"{server.url}{page}?sort=position")
    follow(browser, browser.find_element(By.CSS_SELECTOR, "#clips tr.clip a"))
    clip = json.loads(browser.find_element(By.TAG_NAME, "body").text)
    assert clip["clip_id"] == some_ids[0] and clip["label_set_id"] == explorer["mug"]
    assert set(clip["uncertainty"]) == set(MODALITIES)


def test_datasets_page_lists_label_sets_with_gate_and_uncertainty(
        ui: Any, server: Server, explorer: dict, tmp_path: Path) -> None:
    ui.get(f"{server.url}/ui/")
    section = ui.find_element(By.ID, f"dataset-{explorer['dataset']}")
    assert "explorer" in section.text and "synthetic" in section.text
    mug = ui.find_element(By.ID, f"label-set-{explorer['mug']}").text
    assert "mug" in mug and "made-up, level 0.9" in mug
    assert "audio shrink 0.5" in mug and "vision copy" in mug and "text correct" in mug
    assert "none: copy carries none" in ui.find_element(By.ID,
                                                        f"label-set-{explorer['copy']}").text
    shot(ui, tmp_path, "datasets")


def test_clip_table_sorts_filters_and_pages_like_the_export(
        ui: Any, server: Server, explorer: dict, tmp_path: Path) -> None:
    arrays = export(server, explorer["dataset"], explorer["mug"])
    moved = {m: np.abs(arrays[m].astype(np.float64) - arrays["multimodal"]) for m in MODALITIES}
    largest = np.maximum.reduce([moved[m] for m in MODALITIES])
    everything = np.ones(len(arrays["clip_id"]), dtype=bool)

    ui.get(f"{server.url}/ui/label-sets/{explorer['mug']}")
    rows = table(ui)  # default: largest move over the modalities first
    assert [r[0] for r in rows] == expected_ids(arrays, largest, everything, descending=True,
                                                start=0, count=50)
    assert ui.find_element(By.ID, "total").text == "100 clips"
    first = rows[0]
    i = list(arrays["clip_id"]).index(first[0])
    assert first[2] == explorer["raw_text"][i] and first[3] == signed(arrays["multimodal"][i])
    assert first[5].startswith(signed(arrays["audio"][i]))
    assert f"± {arrays['audio_std'][i]:.3f}" in first[5]
    assert (f"[{signed(arrays['audio_lower'][i])}, {signed(arrays['audio_upper'][i])}]"
            in first[5])
    for plots in MODALITIES:
        assert len(ui.find_elements(By.CSS_SELECTOR, f"#plots-{plots} svg")) == 3  # + truth
        # Every 2-D histogram has its colour scale; every figure says which clips it covers.
        svgs = ui.find_elements(By.CSS_SELECTOR, f"#plots-{plots} svg")
        assert all(s.get_attribute("innerHTML").count("scale-tick") >= 2 for s in svgs[1:])
        assert all("all clips" in s.get_attribute("innerHTML") for s in svgs)
    # The evidence is folded away, and there when unfolded.
    gate = ui.find_element(By.ID, "provenance-gate")
    assert not gate.is_displayed()
    ui.find_element(By.CSS_SELECTOR, "details#evidence > summary").click()
    assert gate.is_displayed() and "thin evidence" in gate.text
    assert "made-up-criterion" in ui.find_element(By.ID, "provenance-selection").text
    shot(ui, tmp_path, "label-set")

    # Filter by split and text, sort by audio uncertainty, smallest first, 7 a page.
    Select(ui.find_element(By.ID, "f-split")).select_by_value("train")
    ui.find_element(By.ID, "f-q").send_keys("HAPPY")
    Select(ui.find_element(By.ID, "f-sort")).select_by_value("std_audio")
    Select(ui.find_element(By.ID, "f-order")).select_by_value("asc")
    per_page = ui.find_element(By.ID, "f-per-page")
    per_page.clear()
    per_page.send_keys("7")
    submit(ui, "f-apply")
    keep = (arrays["split"] == "train") & np.array(["happy" in t for t in explorer["raw_text"]])
    assert keep.sum() > 14, "the test wants at least three pages"
    assert ui.find_element(By.ID, "total").text == f"{keep.sum()} clips"
    assert [r[0] for r in table(ui)] == expected_ids(
        arrays, arrays["audio_std"], keep, descending=False, start=0, count=7)
    follow(ui, ui.find_element(By.ID, "next"))
    assert [r[0] for r in table(ui)] == expected_ids(
        arrays, arrays["audio_std"], keep, descending=False, start=7, count=7)
    assert all(r[1] == "train" and "happy" in r[2] for r in table(ui))
    shot(ui, tmp_path, "label-set-filtered")

    # A column header sorts by that modality's move.
    follow(ui, ui.find_element(By.LINK_TEXT, "vision"))
    assert [r[0] for r in table(ui)] == expected_ids(arrays, moved["vision"], keep,
                                                     descending=True, start=0, count=7)


def test_summary_and_first_plot_fit_the_first_screen(ui: Any, server: Server, explorer: dict,
                                                     tmp_path: Path) -> None:
    """In a 1400 x 900 viewport: what the label set is, whether to trust it (one line per
    modality) and the first plot, without scrolling."""
    ui.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": 1400, "height": 900, "deviceScaleFactor": 1, "mobile": False})
    try:
        ui.get(f"{server.url}/ui/label-sets/{explorer['mug']}")
        box = "return arguments[0].getBoundingClientRect().bottom"
        summary = ui.find_element(By.ID, "summary")
        first_plot = ui.find_element(By.CSS_SELECTOR, "#plots-text svg")
        assert ui.execute_script("return window.innerHeight") == 900
        assert ui.execute_script(box, ui.find_element(By.ID, "what")) <= 900
        assert ui.execute_script(box, summary) <= 900
        assert ui.execute_script(box, first_plot) <= 900
        rows = ui.execute_script(
            "return [...document.querySelectorAll('#summary tr[data-modality]')]"
            ".map(r => [...r.cells].map(c => c.textContent.trim()))")
        assert [r[0] for r in rows] == list(MODALITIES)
        # From the made-up gate: correct, shrink 0.5, copy; MAE and change against copy;
        # the mean interval width over all clips.
        assert [r[1] for r in rows] == ["corrected", "corrected 50%", "kept at y_M (copy)"]
        arrays = export(server, explorer["dataset"], explorer["mug"])
        train = arrays["split"] == "train"
        for row, m in zip(rows, MODALITIES, strict=True):
            mae = np.abs(arrays[m][train] - explorer["truth"][m][train]).mean()
            copy = np.abs(arrays["multimodal"][train] - explorer["truth"][m][train]).mean()
            assert row[3] == f"{mae:#.3g}" and row[4] == f"{copy:#.3g}"
            assert row[5] == f"{round(100 * (mae / copy - 1), 1) + 0.0:+.1f}%"
            width = (arrays[f"{m}_upper"] - arrays[f"{m}_lower"]).mean()
            assert row[6] == f"{width:#.3g}"
        assert "train split" in summary.text and "all clips" in summary.text
        path = tmp_path / "label-set-first-screen.png"
        assert ui.save_screenshot(str(path))
        SHOTS.mkdir(exist_ok=True)
        shutil.copy(path, SHOTS / path.name)
    finally:
        ui.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_clip_ids_and_raw_text_are_escaped(ui: Any, server: Server, explorer: dict,
                                           tmp_path: Path) -> None:
    ui.get(f"{server.url}/ui/label-sets/{explorer['mug']}?q=pwned")
    (row,) = table(ui)
    assert row[0] == HOSTILE_ID and row[2] == HOSTILE_TEXT
    assert ui.title != "pwned" and "pwned" not in ui.title
    assert ui.find_elements(By.TAG_NAME, "script") == []
    assert ui.find_elements(By.CSS_SELECTOR, "#clips img") == []
    assert "&lt;script&gt;" in ui.page_source
    shot(ui, tmp_path, "escaped")


def test_compare_two_label_sets_and_against_truth(ui: Any, server: Server, explorer: dict,
                                                  tmp_path: Path) -> None:
    a = export(server, explorer["dataset"], explorer["mug"])
    b = export(server, explorer["dataset"], explorer["copy"])
    diff = {m: np.abs(a[m].astype(np.float64) - b[m]) for m in MODALITIES}
    ui.get(f"{server.url}/ui/compare?a={explorer['mug']}&b={explorer['copy']}")
    agreement = ui.execute_script(
        "return [...document.querySelectorAll('#agreement tr')].slice(1)"
        ".map(r => [...r.cells].map(c => c.textContent.trim()))")
    assert [r[0] for r in agreement] == list(MODALITIES)
    for row, m in zip(agreement, MODALITIES, strict=True):
        assert row[1] == f"{diff[m].mean():#.3g}"
    assert len(ui.find_elements(By.CSS_SELECTOR, "svg.plot")) == 3
    assert "all clips (train, valid and test)" in ui.find_element(By.ID, "scope").text
    worst = np.maximum.reduce([diff[m] for m in MODALITIES])
    everything = np.ones(len(a["clip_id"]), dtype=bool)
    assert [r[0] for r in table(ui)] == expected_ids(a, worst, everything, descending=True,
                                                     start=0, count=50)
    shot(ui, tmp_path, "compare")

    ui.get(f"{server.url}/ui/compare?a={explorer['mug']}&b=truth&sort=diff_text&split=test")
    to_truth = np.abs(a["text"].astype(np.float64) - explorer["truth"]["text"])
    keep = a["split"] == "test"
    assert ui.find_element(By.ID, "total").text == "20 clips"
    assert ui.find_element(By.ID, "scope").text == "· the test split"
    assert [r[0] for r in table(ui)] == expected_ids(a, to_truth, keep, descending=True,
                                                     start=0, count=50)
    first = ui.find_element(By.CSS_SELECTOR, "#agreement tr:nth-child(2) td:nth-child(2)").text
    assert first == f"{to_truth[keep].mean():#.3g}"
    shot(ui, tmp_path, "compare-truth")


def test_errors_are_pages_that_name_the_problem(server: Server, explorer: dict) -> None:
    cases = [
        ("/ui/label-sets/987654", 404, "no label set 987654"),
        (f"/ui/label-sets/{explorer['copy']}?sort=std_text", 422, "query.sort"),
        (f"/ui/label-sets/{explorer['mug']}?page=0", 422, "query.page"),
        (f"/ui/label-sets/{explorer['mug']}?split=nope", 422, "query.split"),
        (f"/ui/compare?a={explorer['mug']}&b={explorer['other_copy']}", 422, "query.b"),
        (f"/ui/compare?a={explorer['other_copy']}&b=truth", 200, "dataset truth"),
        ("/ui/jobs/987654", 404, "no job 987654"),
    ]
    for path, status, text in cases:
        r = httpx.get(f"{server.url}{path}", headers=READ)
        assert r.status_code == status, (path, r.text[-500:])
        assert r.headers["content-type"].startswith("text/html") and text in r.text, path
        assert r.headers["server-timing"].startswith("app;dur=")


def test_jobs_page_refreshes_while_a_job_runs(ui: Any, server: Server, explorer: dict,
                                              tmp_path: Path) -> None:
    with server.client(WRITE) as c:
        r = c.post(f"/v1/datasets/{explorer['other']}/jobs", json=LONG_JOB)
        assert r.status_code == 202, r.text
        job = r.json()
        running = wait_job(c, job["id"], until=("running",), timeout=120)
        assert running["status"] == "running"
        try:
            ui.get(f"{server.url}/ui/jobs")
            row = ui.find_element(By.ID, f"job-{job['id']}").text
            assert "running" in row and "jobs-sims" in row and "mug" in row
            assert ui.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
            ui.execute_script("window.__before_refresh = true")
            deadline = time.monotonic() + 20
            while ui.execute_script("return window.__before_refresh === true"):
                assert time.monotonic() < deadline, "the jobs page did not refresh itself"
                time.sleep(0.2)
            deadline = time.monotonic() + 300  # a loaded machine starts torch slowly
            while (seen := c.get(f"/v1/jobs/{job['id']}").json())["eta_s"] is None:
                assert time.monotonic() < deadline, "the job never reported progress and ETA"
                time.sleep(0.3)
            ui.get(f"{server.url}/ui/jobs/{job['id']}")
            assert ui.find_element(By.ID, "status").text == "running"
            assert ui.find_element(By.ID, "stage").text not in ("", "–")
            shown = int(ui.find_element(By.ID, "progress").text.rstrip("%"))
            assert shown >= int(round(100 * seen["progress"]))
            assert ui.find_element(By.ID, "eta").text != "–"
            shot(ui, tmp_path, "job-running")
        finally:
            c.post(f"/v1/jobs/{job['id']}/cancel")
            wait_job(c, job["id"], timeout=120)
    ui.get(f"{server.url}/ui/jobs")
    assert "cancelled" in ui.find_element(By.ID, f"job-{job['id']}").text
    ui.get(f"{server.url}/ui/jobs/{job['id']}")  # no stage of a job that no longer runs
    assert ui.find_element(By.ID, "stage").text.startswith("cancelled during ")
    assert not ui.find_elements(By.CSS_SELECTOR, 'meta[http-equiv="refresh"]')
    shot(ui, tmp_path, "jobs")
