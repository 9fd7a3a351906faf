"""The review page's screenshot for docs/review.md, on real audio: the finch song's detections of syllable i
(``fewshot-audio detect`` on ../shared/data/birdsong_gy6or6/episodes), reviewed in the stratified order in headless
Debian chromium; the first twelve decisions are the annotations' (IoU >= 0.3), so the summary panel has a curve and
an estimate.

    python benchmarks/screenshot_review.py [--out docs/review.png]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import FINCH as DATA
from common import events_of, iou

from fewshot_audio.review.items import read_items


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default="docs/review.png")
    args = p.parse_args(argv)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        subprocess.run([sys.executable, "-m", "fewshot_audio", "detect", str(DATA), "--json", "--out",
                        str(tmp / "all.json"), "--quiet"], check=True)
        keep = [r for r in json.loads((tmp / "all.json").read_text()) if "__syllable_i" in r["file"]]
        (tmp / "det.json").write_text(json.dumps(keep))
        items = read_items(tmp / "det.json", audio_root=DATA)
        server = subprocess.Popen([sys.executable, "-m", "fewshot_audio", "review", str(tmp / "det.json"), "--out",
                                   str(tmp / "labels.csv"), "--no-browser", "--order", "stratified", "--audio-root",
                                   str(DATA), "--context", "0.4"], stdout=subprocess.PIPE, text=True)
        url = server.stdout.readline().strip()
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for arg in ("--headless=new", "--no-sandbox", "--window-size=1400,800", "--mute-audio"):
            opts.add_argument(arg)
        driver = webdriver.Chrome(service=Service(executable_path="/usr/bin/chromedriver"), options=opts)
        try:
            driver.get(url)
            time.sleep(3)
            state = json.loads(subprocess.run(["curl", "-s", url.replace("/?", "/api/state?")], capture_output=True,
                                              text=True).stdout)
            keys = ""
            for n in state["order"][:12]:
                it = items[n]
                truth = iou((it.start, it.end), events_of(DATA / f"{it.tag}.csv")) >= 0.3
                keys += "y" if truth else "n"
            ActionChains(driver).send_keys_to_element(driver.find_element(By.TAG_NAME, "body"), keys).perform()
            time.sleep(6)
            driver.save_screenshot(args.out)
        finally:
            driver.quit()
            server.terminate()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
