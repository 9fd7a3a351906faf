"""The review page in a real headless browser (Debian's chromium and chromium-driver, driven by Selenium): it shows
the spectrogram and a playable audio element, takes y y y n n z n as five decisions (three positive, two negative),
and after the server is killed with SIGKILL and restarted, opens at item six. A screenshot that is not blank."""

import csv
import io
import shutil
import time

import numpy as np
import pytest
from review_helpers import Server, write_detections

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="chromium and chromium-driver are not installed "
                                "(scripts/setup.sh installs them)")


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,900",
                "--autoplay-policy=no-user-gesture-required", "--mute-audio"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def wait_for(condition, timeout=30.0, what="the page"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def labels(path):
    if not path.exists():
        return []
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_review_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    source, out = write_detections(tmp_path / "data"), tmp_path / "labels.csv"
    server = Server(source, out)
    try:
        browser.get(server.url)
        wait_for(lambda: browser.execute_script("const i = document.getElementById('spectrogram');"
                                                "return i.complete && i.naturalWidth > 0;"), what="the spectrogram")
        wait_for(lambda: browser.execute_script("const a = document.getElementById('player');"
                                                "return a.readyState >= 1 && a.duration > 0;"), what="playable audio")
        assert "item 1 of 10" in browser.find_element(By.ID, "progress").text
        body = browser.find_element(By.TAG_NAME, "body")
        ActionChains(browser).send_keys_to_element(body, "yyynnzn").perform()
        wait_for(lambda: len(labels(out)) == 5 and "5 / 10 reviewed" in browser.find_element(By.ID, "progress").text,
                 what="five decisions")
        rows = labels(out)
        assert sorted(r["label"] for r in rows) == ["negative"] * 2 + ["positive"] * 3
        assert [r["item"] for r in rows] == ["0", "1", "2", "3", "4"]
        server.kill()
        server = Server(source, out)
        browser.get(server.url)
        wait_for(lambda: "item 6 of 10" in browser.find_element(By.ID, "progress").text, what="item six after restart")
        wait_for(lambda: browser.execute_script("const i = document.getElementById('spectrogram');"
                                                "return i.complete && i.naturalWidth > 0;"), what="the spectrogram")
        shot = browser.get_screenshot_as_png()
        (tmp_path / "review.png").write_bytes(shot)
        import matplotlib.image as mpimg

        pixels = mpimg.imread(io.BytesIO(shot), format="png")
        assert pixels.shape[0] > 400 and float(np.std(pixels[..., :3])) > 0.05  # not a blank page
        assert len(labels(out)) == 5  # the restart neither lost nor duplicated a decision
    finally:
        if server.proc.poll() is None:
            server.kill()
    feed_back(tmp_path, out)


def feed_back(tmp_path, out):
    """The browser's labels go back: three confirmed beeps are detect's examples; positives and negatives join a
    tagger's 'beep' tag."""
    import soundfile as sf

    from fewshot_audio.cli import main
    from tests.conftest import write_tag_folders

    rec = tmp_path / "data" / "rec.wav"
    assert main(["detect", str(rec), "--examples", str(out), "--first", "3", "--detector", "stats", "--out",
                 str(tmp_path / "found.csv"), "--quiet"]) == 0
    with open(tmp_path / "found.csv") as fh:
        found = [(float(r["Starttime"]), float(r["Endtime"])) for r in csv.DictReader(fh)]
    assert len(found) >= 4 and all(a >= 2.3 for a, _ in found)  # after the third example; the later beeps
    support = write_tag_folders(tmp_path / "support", {"beep": ("harmonic", 0), "hiss": ("noise", 1)}, range(3),
                                sr=16000)
    tagger = tmp_path / "t.safetensors"
    assert main(["adapt", "--support", str(support), "--backbone", "mfcc", "--out", str(tagger), "--quiet"]) == 0
    assert sf.info(str(rec)).duration > 5
    assert main(["tagger", "add-examples", str(tagger), "--from-review", str(out), "--quiet"]) == 0
    from fewshot_audio.tagging.tagger import Tagger

    t = Tagger.load(tagger)
    j = t.tags.index("beep")
    named = [p for p in t.support_paths if "@" in p]
    assert len(named) == 5 and int(t.support_targets[:, j].sum()) == 3 + 3  # three folder beeps, three reviewed
