"""psiturk.js in real Chromium against a scripted stub server, on old and new library stacks."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

pytestmark = pytest.mark.browser

STACKS = ["old", "new"]
UID = "W1:A1"
TOKEN = "tok-123_abc"   # what the stub page puts in its token meta tag


def open_page(page: Any, stub: Any, stack: str = "new", *, token: bool = True) -> None:
    page.goto(f"{stub.base}/exp?stack={stack}" + ("" if token else "&notoken=1"))
    page.wait_for_function("() => window.PsiTurk && window.Backbone")


def make_psiturk(page: Any, mode: str = "sandbox", *, with_new: bool = True) -> None:
    call = "new PsiTurk" if with_new else "PsiTurk"
    page.evaluate(f"() => {{ window.psiTurk = {call}({UID!r}, '/complete', {mode!r}); }}")


def save(page: Any) -> None:
    """saveData with callbacks that note their outcome on window.outcomes."""
    page.evaluate("""() => {
        window.outcomes = window.outcomes || [];
        psiTurk.saveData({
            success: function (model, response) { outcomes.push(['ok', response]); },
            error: function (model, xhr) { outcomes.push(['error', xhr.status]); }
        });
    }""")


def outcomes(page: Any, count: int, timeout: float = 20) -> list[Any]:
    page.wait_for_function(f"() => (window.outcomes || []).length >= {count}", timeout=timeout * 1000)
    return page.evaluate("() => window.outcomes")


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("with_new", [True, False])
def test_constructor_loads_record_synchronously_with_or_without_new(page: Any, stub: Any, stack: str,
                                                                     with_new: bool) -> None:
    open_page(page, stub, stack)
    make_psiturk(page, with_new=with_new)
    # The record is there as soon as the constructor returns.
    got = page.evaluate("() => [psiTurk instanceof PsiTurk, psiTurk.taskdata.id, "
                        "psiTurk.taskdata.get('condition'), psiTurk.taskdata.get('mode'), "
                        "typeof window.recordTrialData]")
    assert got == [True, UID, 1, "sandbox", "undefined"]
    (load,) = stub.state.calls("GET", "/sync/")
    assert load.path == "/sync/W1%3AA1"
    assert load.headers["x-turnout-token"] == TOKEN
    assert page.console_errors == []


@pytest.mark.parametrize("stack", STACKS)
def test_token_rides_on_every_same_origin_request_and_never_leaves_the_origin(page: Any, stub: Any,
                                                                             stack: str) -> None:
    open_page(page, stub, stack)
    page.evaluate("""async (foreign) => {
        await $.ajax('echo?via=jquery-relative');
        await $.getJSON('/echo', {via: 'getJSON'});
        await fetch('/echo?via=fetch');
        await fetch(new Request('/echo?via=fetch-request', {method: 'POST', body: 'x'}));
        await new Promise(function (done) {
            var xhr = new XMLHttpRequest();
            xhr.open('GET', '/echo?via=xhr');
            xhr.onloadend = done;
            xhr.send();
        });
        await fetch(foreign + '/echo?via=foreign-fetch');
        await new Promise(function (done) {
            var xhr = new XMLHttpRequest();
            xhr.open('GET', foreign + '/echo?via=foreign-xhr');
            xhr.onloadend = done;
            xhr.send();
        });
        await $.ajax(foreign + '/echo?via=foreign-jquery');
    }""", stub.foreign)
    own = stub.state.calls("GET", "/echo") + stub.state.calls("POST", "/echo")
    assert sorted(r.query["via"][0] for r in own) == sorted(
        ["jquery-relative", "getJSON", "fetch", "fetch-request", "xhr"])
    assert all(r.headers.get("x-turnout-token") == TOKEN for r in own)
    foreign = stub.foreign_state.requests
    assert len(foreign) == 3, [(r.method, r.path) for r in foreign]   # no preflights either
    assert all("x-turnout-token" not in r.headers for r in foreign)
    assert all(TOKEN not in (r.path + str(r.query)) for r in foreign)
    assert page.console_errors == []


def test_no_token_meta_means_no_header(page: Any, stub: Any) -> None:
    open_page(page, stub, token=False)
    make_psiturk(page)
    page.evaluate("() => fetch('/echo')")
    assert all("x-turnout-token" not in r.headers for r in stub.state.requests)


def test_a_header_the_page_sets_itself_is_not_doubled(page: Any, stub: Any) -> None:
    open_page(page, stub)
    page.evaluate("() => $.ajax('/echo', {headers: {'X-Turnout-Token': 'own'}})")
    (echo,) = stub.state.calls("GET", "/echo")
    assert echo.headers["x-turnout-token"] == "own"


@pytest.mark.parametrize("stack", STACKS)
def test_save_sends_psiturks_body_shape(page: Any, stub: Any, stack: str) -> None:
    open_page(page, stub, stack)
    make_psiturk(page)
    page.evaluate("""() => {
        psiTurk.recordTrialData({phase: 'TEST', hit: true, rt: 321});
        psiTurk.recordTrialData(['a', 1]);
        psiTurk.recordUnstructuredData('engagement', '7');
        window.dispatchEvent(new Event('blur'));
        window.dispatchEvent(new Event('focus'));
    }""")
    save(page)
    assert outcomes(page, 1) == [["ok", {"status": "user data saved"}]]
    (put,) = stub.state.calls("PUT", "/sync/")
    assert put.path == "/sync/W1%3AA1"
    assert put.headers["content-type"].startswith("application/json")
    assert put.headers["x-turnout-token"] == TOKEN
    body = put.json()
    assert set(body) == {"id", "condition", "counterbalance", "assignmentId", "workerId", "hitId",
                         "currenttrial", "bonus", "data", "questiondata", "eventdata", "useragent", "mode"}
    assert body["id"] == UID and body["condition"] == 1 and body["mode"] == "sandbox"
    assert body["currenttrial"] == 2
    first = body["data"][0]
    assert set(first) == {"uniqueid", "current_trial", "dateTime", "trialdata"}
    assert first["uniqueid"] == UID and first["current_trial"] == 0
    assert first["trialdata"] == {"phase": "TEST", "hit": True, "rt": 321}
    assert body["data"][1]["current_trial"] == 1 and body["data"][1]["trialdata"] == ["a", 1]
    assert body["questiondata"] == {"engagement": "7"}
    events = body["eventdata"]
    assert [e["eventtype"] for e in events] == ["initialized", "window_resize", "focus", "focus"]
    assert events[0]["interval"] == 0 and events[0]["value"] is None
    assert [e["value"] for e in events[2:]] == ["off", "on"]
    assert set(events[1]) == {"eventtype", "value", "timestamp", "interval"}
    assert page.evaluate("() => psiTurk.getTrialData().length") == 2
    assert page.evaluate("() => psiTurk.getQuestionData()") == {"engagement": "7"}
    assert page.console_errors == []


@pytest.mark.parametrize("stack", STACKS)
def test_save_retries_after_server_errors_with_growing_backoff(page: Any, stub: Any, stack: str) -> None:
    stub.state.put_script = [503, 429, 502, 200]
    open_page(page, stub, stack)
    make_psiturk(page)
    save(page)
    assert outcomes(page, 1) == [["ok", {"status": "user data saved"}]]
    puts = stub.state.calls("PUT", "/sync/")
    assert len(puts) == 4
    gaps = [b.at - a.at for a, b in zip(puts, puts[1:], strict=False)]
    # 0.5 s doubling, with up to half of each wait taken off at random.
    assert 0.2 <= gaps[0] <= 0.7 and 0.45 <= gaps[1] <= 1.2 and 0.95 <= gaps[2] <= 2.2


def test_save_retries_after_a_dropped_connection(page: Any, stub: Any) -> None:
    stub.state.put_script = ["drop", "drop", "drop", 200]
    open_page(page, stub)
    make_psiturk(page)
    save(page)
    assert outcomes(page, 1) == [["ok", {"status": "user data saved"}]]


def save_order(put: Any) -> tuple[str, int]:
    load, seq = re.fullmatch(r"(\d{13}-[0-9a-f]{8})\.(\d{1,9})", put.headers["x-turnout-save"]).groups()
    return load, int(seq)


def test_every_put_carries_a_growing_save_order_even_across_retries(page: Any, stub: Any) -> None:
    stub.state.put_script = [503, 200, 200]
    open_page(page, stub)
    make_psiturk(page)
    save(page)
    outcomes(page, 1)
    save(page)
    outcomes(page, 2)
    orders = [save_order(p) for p in stub.state.calls("PUT", "/sync/")]
    assert len(orders) == 3
    assert len({load for load, _ in orders}) == 1              # one page load
    assert [seq for _, seq in orders] == [1, 2, 3]
    page.reload()
    page.wait_for_function("() => window.PsiTurk")
    make_psiturk(page)
    save(page)
    outcomes(page, 1)
    reloaded = save_order(stub.state.calls("PUT", "/sync/")[-1])
    assert reloaded[0] > orders[0][0] and reloaded[1] == 1     # a later page load sorts after


def test_save_order_uses_the_servers_page_load_time_not_the_browsers_clock(page: Any, stub: Any) -> None:
    # The server refuses stamps from the future (issue 6); a browser whose clock is fast
    # must still make stamps the server accepts.
    page.goto(f"{stub.base}/exp?stack=new&page_load=1767268800000")
    page.wait_for_function("() => window.PsiTurk && window.Backbone")
    make_psiturk(page)
    save(page)
    outcomes(page, 1)
    load, seq = save_order(stub.state.calls("PUT", "/sync/")[-1])
    assert load.startswith("1767268800000-") and seq == 1


@pytest.mark.parametrize("status", [409, 403, 400])
def test_save_does_not_retry_a_refusal_and_reports_it(page: Any, stub: Any, status: int) -> None:
    stub.state.put_script = [status]
    page.clock.install()  # fake timers: a retry, had one been scheduled, comes when the test says
    open_page(page, stub)
    make_psiturk(page)
    save(page)
    assert outcomes(page, 1) == [["error", status]]
    page.clock.run_for(120_000)  # longer than every backoff the page could wait
    time.sleep(0.2)
    assert len(stub.state.calls("PUT", "/sync/")) == 1


def run_clock_until_put(page: Any, stub: Any, count: int, step_ms: int = 250) -> None:
    """With the page's timers faked (``page.clock.install()``), move its clock on in small
    steps until the stub has seen ``count`` PUTs: each backoff wait passes at once, and no
    request in flight is cut off by its own (30 s) timeout."""
    deadline = time.monotonic() + 20
    while len(stub.state.calls("PUT", "/sync/")) < count:
        assert time.monotonic() < deadline, f"saw {len(stub.state.calls('PUT', '/sync/'))} PUTs, not {count}"
        page.clock.run_for(step_ms)


def test_save_gives_up_after_bounded_attempts(page: Any, stub: Any) -> None:
    stub.state.put_script = [500] * 10
    page.clock.install()  # fake timers: the backoff (0.5 s doubling to 8 s) passes when the test says
    open_page(page, stub)
    make_psiturk(page)
    save(page)
    run_clock_until_put(page, stub, 6)
    assert outcomes(page, 1) == [["error", 500]]
    page.clock.run_for(120_000)  # two minutes more of the page's time: no seventh attempt
    time.sleep(0.2)
    assert len(stub.state.calls("PUT", "/sync/")) == 6


@pytest.mark.parametrize("stack", STACKS)
def test_saves_are_serialized_and_a_queued_save_carries_the_newest_data(page: Any, stub: Any,
                                                                       stack: str) -> None:
    stub.state.put_script = [("delay", 1.0, 200)]
    open_page(page, stub, stack)
    make_psiturk(page)
    save(page)
    stub.state.wait_for("PUT", "/sync/")
    page.evaluate("() => { psiTurk.recordTrialData({n: 1}); }")
    save(page)
    page.evaluate("() => { psiTurk.recordTrialData({n: 2}); }")
    save(page)
    assert [o[0] for o in outcomes(page, 3)] == ["ok", "ok", "ok"]
    time.sleep(0.3)
    first, second = stub.state.calls("PUT", "/sync/")   # two requests for three saves
    assert second.at - first.at >= 0.9                    # the second waited for the first
    assert [d["trialdata"] for d in second.json()["data"]] == [{"n": 1}, {"n": 2}]


@pytest.mark.parametrize("stack", STACKS)
def test_save_during_backoff_rides_on_the_retry(page: Any, stub: Any, stack: str) -> None:
    stub.state.put_script = [503, 200]
    open_page(page, stub, stack)
    make_psiturk(page)
    save(page)
    stub.state.wait_for("PUT", "/sync/")
    page.evaluate("() => { psiTurk.recordTrialData({late: true}); }")
    save(page)
    assert [o[0] for o in outcomes(page, 2)] == ["ok", "ok"]
    puts = stub.state.calls("PUT", "/sync/")
    assert len(puts) == 2
    assert puts[1].json()["data"][0]["trialdata"] == {"late": True}


@pytest.mark.parametrize("stack", STACKS)
def test_complete_hit_waits_for_the_pending_save_then_carries_the_token(page: Any, stub: Any,
                                                                        stack: str) -> None:
    stub.state.put_script = [("delay", 1.0, 200)]
    open_page(page, stub, stack)
    make_psiturk(page, mode="sandbox")
    page.evaluate("() => { psiTurk.saveData(); psiTurk.completeHIT(); }")
    page.wait_for_url("**/complete?**")
    (put,) = stub.state.calls("PUT", "/sync/")
    (done,) = stub.state.calls("GET", "/complete")
    assert done.at - put.at >= 0.9
    assert done.query == {"uniqueId": [UID], "mode": ["sandbox"], "turnout_token": [TOKEN]}
    assert "uniqueId=W1:A1&mode=sandbox&turnout_token=" in page.url


def test_complete_hit_never_puts_the_token_on_a_foreign_url(page: Any, stub: Any) -> None:
    open_page(page, stub)
    page.evaluate("(foreign) => { window.psiTurk = new PsiTurk('W1:A1', foreign + '/complete', 'live'); "
                  "psiTurk.completeHIT(); }", stub.foreign + "")
    page.wait_for_url(f"{stub.foreign}/complete?**")
    assert "turnout_token" not in page.url


@pytest.mark.parametrize("stack", STACKS)
def test_start_task_saves_and_enters_then_leaving_reports_a_quitter(page: Any, stub: Any, stack: str) -> None:
    open_page(page, stub, stack)
    make_psiturk(page, mode="live")
    page.evaluate("() => psiTurk.finishInstructions()")
    (inexp,) = stub.state.wait_for("POST", "/inexp")
    assert inexp.form() == {"uniqueId": [UID]}
    assert inexp.headers["x-turnout-token"] == TOKEN
    stub.state.wait_for("PUT", "/sync/")
    assert stub.state.calls("POST", "/quitter") == []
    page.goto(f"{stub.base}/echo")        # the participant leaves
    (quit_,) = stub.state.wait_for("POST", "/quitter")
    assert quit_.form() == {"uniqueId": [UID]}
    assert quit_.headers["x-turnout-token"] == TOKEN
    assert len(stub.state.calls("PUT", "/sync/")) >= 2     # a last save on the way out


def test_debug_mode_never_reports_a_quitter(page: Any, stub: Any) -> None:
    open_page(page, stub)
    make_psiturk(page, mode="debug")
    page.evaluate("() => psiTurk.startTask()")
    stub.state.wait_for("POST", "/inexp")
    page.goto(f"{stub.base}/echo")
    time.sleep(0.5)
    assert stub.state.calls("POST", "/quitter") == []


def test_teardown_stops_the_quitter_report(page: Any, stub: Any) -> None:
    open_page(page, stub)
    make_psiturk(page, mode="live")
    page.evaluate("() => { psiTurk.startTask(); psiTurk.teardownTask(); }")
    stub.state.wait_for("POST", "/inexp")
    page.goto(f"{stub.base}/echo")
    time.sleep(0.5)
    assert stub.state.calls("POST", "/quitter") == []


@pytest.mark.parametrize("stack", STACKS)
def test_preload_pages_returns_a_promise_and_pages_stay_raw(page: Any, stub: Any, stack: str) -> None:
    open_page(page, stub, stack)
    make_psiturk(page)
    result = page.evaluate("""async () => {
        var p = psiTurk.preloadPages(['stage.html', 'instructions/one.html']);
        var isPromise = p instanceof Promise;
        await p;
        psiTurk.showPage('stage.html');
        return [isPromise, psiTurk.getPage('stage.html'), document.getElementById('stage').textContent];
    }""")
    assert result == [True, '<div id="stage">stage {{ raw braces }}</div>', "stage {{ raw braces }}"]
    assert all(r.headers.get("x-turnout-token") == TOKEN for r in stub.state.calls("GET", "/stage.html"))
    assert page.evaluate("async () => { try { await psiTurk.preloadPages(['missing.html']); return 'ok'; }"
                         " catch (e) { return 'rejected'; } }") == "rejected"


def test_get_page_fetches_a_page_that_was_never_preloaded(page: Any, stub: Any) -> None:
    # psiTurk 2 projects show pages without waiting for preloadPages.
    open_page(page, stub)
    make_psiturk(page)
    assert "page-one" in page.evaluate("() => psiTurk.getPage('instructions/one.html')")
    with pytest.raises(Exception, match="before preloading"):
        page.evaluate("() => psiTurk.getPage('nope.html')")


@pytest.mark.parametrize("stack", STACKS)
def test_do_instructions_pages_back_and_forth_then_starts_the_task(page: Any, stub: Any, stack: str) -> None:
    open_page(page, stub, stack)
    make_psiturk(page, mode="debug")
    page.evaluate("""async () => {
        var deck = ['instructions/one.html', 'instructions/two.html'];
        await psiTurk.preloadPages(deck);
        psiTurk.doInstructions(deck, function () { window.instructionsDone = true; });
    }""")
    page.wait_for_selector("#page-one")
    assert page.evaluate("() => psiTurk.getInstructionIndicator()") == {
        "currently_viewing": {"indexOf": 0, "template": "instructions/one.html"},
        "instruction_deck": {"total_pages": 2,
                             "templates": ["instructions/one.html", "instructions/two.html"]}}
    page.click("#next")
    page.wait_for_selector("#page-two")
    page.click("#prev")
    page.wait_for_selector("#page-one")
    page.click("#next")
    page.click("#next")
    page.wait_for_function("() => window.instructionsDone === true")
    stub.state.wait_for("POST", "/inexp")
    trials = page.evaluate("() => psiTurk.getTrialData().map(function (d) { return d.trialdata; })")
    assert [t["action"] for t in trials] == ["Begin", "NextPage", "PrevPage", "NextPage", "FinishInstructions"]
    assert all(t["phase"] == "INSTRUCTIONS" for t in trials)
    assert trials[0]["templates"] == ["instructions/one.html", "instructions/two.html"]
    assert [t.get("indexOf") for t in trials[1:]] == [0, 1, 0, 1]
    assert all(isinstance(t["viewTime"], int) for t in trials[1:])
    assert page.console_errors == []


def test_compute_bonus_sends_the_unique_id(page: Any, stub: Any) -> None:
    open_page(page, stub)
    make_psiturk(page)
    page.evaluate("() => new Promise(function (done) { psiTurk.computeBonus('compute_bonus', done); })")
    (call,) = stub.state.calls("GET", "/compute_bonus")
    assert call.query == {"uniqueId": [UID]}
    assert call.headers["x-turnout-token"] == TOKEN


@pytest.mark.parametrize("stack", STACKS)
def test_only_psiturk_is_added_to_the_global_scope(page: Any, stub: Any, stack: str) -> None:
    open_page(page, stub, stack)
    make_psiturk(page, mode="debug")
    page.evaluate("""async () => {
        await psiTurk.preloadPages(['instructions/one.html']);
        psiTurk.doInstructions(['instructions/one.html'], function () {});
        psiTurk.preloadImages(['/echo']);
    }""")
    added = page.evaluate("() => Object.keys(window).filter(function (k) { "
                          "return window.__globalsBefore.indexOf(k) === -1; })")
    # psiTurk is the test's own variable; jQuery 1.x keeps its event data in a
    # jQuery<digits> property on window.
    ours = [k for k in added if k != "__globalsBefore" and not k.startswith("jQuery")]
    assert sorted(ours) == ["PsiTurk", "psiTurk"]
    assert page.evaluate("() => typeof Backbone.Notifications.trigger") == "function"


def test_resize_is_recorded_debounced(page: Any, stub: Any) -> None:
    open_page(page, stub)
    make_psiturk(page)
    page.set_viewport_size({"width": 900, "height": 700})
    page.wait_for_function("() => psiTurk.getEventData().length >= 3")
    last = page.evaluate("() => psiTurk.getEventData().slice(-1)[0]")
    assert last["eventtype"] == "window_resize" and last["value"] == [900, 700]
