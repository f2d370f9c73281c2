"""The worker site's counts (issue 11 item 8): a preview does not make a HIT look full.

In MTurk's counters a preview is pending, so a one-slot HIT being previewed showed
"0 available" on the very page whose Accept button then worked. The site shows the slots a
worker can still accept instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from servers import init_project
from simulation_stack import Study, running_study

SITE = "/_mturk/worker"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Any:
    with running_study(init_project(tmp_path_factory.mktemp("counts") / "study")) as running:
        yield running


def _signed_in(study: Study) -> Any:
    client = study.app.test_client()
    page = client.get(f"{SITE}/workers").get_data(as_text=True)
    token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    assert client.post(f"{SITE}/workers", data={"csrf": token, "action": "new"}).status_code == 303
    client.csrf = token
    return client


def test_previewing_a_one_slot_hit_still_shows_the_slot_open(study: Study) -> None:
    hit_id = study.post_hit(assignments=1)
    worker = _signed_in(study)
    assert worker.post(f"{SITE}/hits/{hit_id}/preview", data={"csrf": worker.csrf}).status_code == 303
    other = _signed_in(study)  # a second worker previewing too
    assert other.post(f"{SITE}/hits/{hit_id}/preview", data={"csrf": other.csrf}).status_code == 303
    page = worker.get(f"{SITE}/hits/{hit_id}").get_data(as_text=True)
    assert "1 of 1 open" in page
    assert "0 available" not in page
    listing = other.get(f"{SITE}/").get_data(as_text=True)
    assert re.search(rf'data-hit-id="{hit_id}".*?<td class="num">1 of 1</td>', listing, re.DOTALL)
    accepted = worker.post(f"{SITE}/hits/{hit_id}/accept", data={"csrf": worker.csrf})
    assert accepted.status_code == 303  # the slot the page promised
    assert "0 of 1 open" in other.get(f"{SITE}/hits/{hit_id}").get_data(as_text=True)


def test_switch_worker_looks_like_the_other_links() -> None:
    css = (Path(__file__).parents[2] / "src/turnout/simulation/worker_site/static/site.css").read_text()
    rule = re.search(r"\.bar button\.link \{([^}]*)\}", css).group(1)
    assert "text-decoration: none" in rule and "font: inherit" in rule
