"""Plays a whole call through the simulator's control API using the standard library only.

Run with `python -I` (no PYTHONPATH, so voicesync cannot even be imported): the way a
test written in any other language drives the simulator. Prints one JSON summary.
"""

import json
import sys
import urllib.error
import urllib.request

BASE = sys.argv[1]


def api(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(BASE + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


call = api("POST", "/v1/calls", {"agent": "echo", "timeout": 10})
cid = call["call_id"]
first = api("POST", f"/v1/calls/{cid}/say", {"text": "Hello there"})
cut = api("POST", f"/v1/calls/{cid}/say",
          {"text": "Tell me a story", "barge_in": {"text": "Stop", "after_words": 3}})
try:  # "You said: Hi." never reaches word 10: the barge-in times out and is disarmed
    api("POST", f"/v1/calls/{cid}/say",
        {"text": "Hi", "barge_in": {"text": "x", "after_words": 10}, "timeout": 1})
    missed = None
except urllib.error.HTTPError as exc:
    missed = exc.code
story = api("POST", f"/v1/calls/{cid}/say", {"text": "Tell me a story"})  # not cut now
api("POST", f"/v1/calls/{cid}/press", {"digits": "12#"})
frames = api("GET", f"/v1/calls/{cid}/frames")
ended = api("POST", f"/v1/calls/{cid}/hangup")
try:
    api("POST", f"/v1/calls/{cid}/say", {"text": "anyone there?"})
    late = None
except urllib.error.HTTPError as exc:
    late = exc.code
print(json.dumps({
    "greeted": call["transcript"][0]["text"], "first": first["reply"], "cut": cut["reply"],
    "transcript": ended["transcript"], "status": ended["status"],
    "events": sorted({f["data"]["event"] for f in frames["frames"] if f["data"]}),
    "late_say": late, "missed_barge": missed, "story": story["reply"],
    "voicesync_imported": any(m.startswith("voicesync") for m in sys.modules),
}))
