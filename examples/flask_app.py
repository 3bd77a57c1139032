"""A Flask app with a voice agent: the voicesync client starts with the app and runs in the
background; GET /calls lists live calls as JSON, POST /dial {"to": ...} places a call;
leaving the `with` block (Ctrl-C) closes the client cleanly.

Run: python examples/flask_app.py
With PINECALL_API_KEY it serves on http://127.0.0.1:5000 until Ctrl-C. Without it, the
app runs against the local simulator and a scripted call exercises both endpoints.
Under gunicorn or uwsgi, read "Deploying" in the README first: one client per agent id,
not one per worker.
"""

import logging
import threading

import requests

import voicesync
import voicesync.local

# A missing package raises the `pip install "voicesync[...]"` line that adds it.
with voicesync.local.needs_extra("examples/flask_app.py"):
    from flask import Flask, jsonify, request
    from werkzeug.serving import make_server

LINE = "+15550100001"


class Concierge(voicesync.Agent):
    id = "concierge"
    greeting = "Hotel concierge, how can I help?"

    def on_turn(self, turn, call, history):
        call.reply("We close the front door at midnight; after that, use your room key.")


def create_app(agent: voicesync.Agent) -> Flask:
    """The web app; `agent` is registered on a connected client (its threads serve calls)."""
    app = Flask(__name__)

    @app.get("/calls")
    def calls():
        # Call properties are thread-safe snapshots: read them from any request thread.
        return jsonify([{"id": c.id, "from": c.from_, "to": c.to, "direction": c.direction,
                         "transcript": c.transcript} for c in agent.calls])

    @app.post("/dial")
    def dial():
        to = (request.get_json(silent=True) or {}).get("to", "")
        try:
            call = agent.dial(to, timeout=30)  # blocks this request until answered
        except voicesync.ConfigurationError as exc:
            return jsonify(error=str(exc)), 400
        except (voicesync.CallFailedError, voicesync.RequestTimeout) as exc:
            return jsonify(error=str(exc)), 502
        return jsonify(id=call.id, to=call.to, direction=call.direction), 201

    return app


def exercise(session: voicesync.local.Session, agent: voicesync.Agent, app: Flask) -> None:
    """Local mode: serve the app on a free port and drive one call through it over HTTP."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no request log in the transcript
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"

    def http(method: str, path: str, **kwargs) -> None:
        reply = requests.request(method, base + path, timeout=30, **kwargs)
        print(f"  HTTP {method} {path} -> {reply.status_code} {reply.text.strip()}")

    session.play(agent, [
        "Hi, what time do you close tonight?",
        lambda: http("POST", "/dial", json={"to": "+15550002222"}),
        lambda: http("GET", "/calls"),
        "Thanks, bye!",
    ])
    server.shutdown()


if __name__ == "__main__":
    with voicesync.local.Session() as session:  # connects; voicesync runs in the background
        agent = session.attach(Concierge(phone=LINE))
        app = create_app(agent)
        if session.local:
            exercise(session, agent, app)
        else:
            # One process, no reloader: a reloader would start a second client.
            app.run(host="127.0.0.1", port=5000, use_reloader=False, threaded=True)
