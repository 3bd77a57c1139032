"""One turn handler for callers and chat: a website chat is a call with
``transport == "chat"``, and each message is a whole turn.

Run: python examples/chat_agent.py
Without PINECALL_API_KEY a simulated visitor writes two chat messages. With the key it
serves real chats (open them with a token from ``agent.create_token("chat")``) and calls
until Ctrl-C.
"""

import voicesync
import voicesync.local

agent = voicesync.Agent("helpdesk")

ANSWERS = {
    "hours": "We are open from nine to six, Monday to Saturday.",
    "return": "You can return anything within 30 days, with the receipt.",
}


@agent.on("chat.started")
def opened(call):
    # Chat sessions announce themselves with chat.started (calls with call.started).
    visitor = call.metadata.get("userId", "a visitor")
    print(f"[chat {call.id} opened by {visitor}]", flush=True)


@agent.on("turn.end")
def answer(turn, call):
    text = next((a for key, a in ANSWERS.items() if key in turn.text.lower()),
                "Thanks! Someone from the team will get back to you shortly.")
    if call.transport != "chat":
        text += " Anything else?"  # spoken: invite the caller to go on
    call.reply(text)


if __name__ == "__main__":
    with voicesync.local.Session() as session:
        if session.local:
            session.attach(agent)
            chat = session.sim.start_chat("helpdesk", metadata={"userId": "u-42"})
            for line in ("What are your opening hours?", "Can I return a jacket?"):
                print(f"visitor: {line}", flush=True)
                print(f"agent:   {chat.send(line, timeout=session.timeout)}", flush=True)
            chat.end()
        else:
            session.serve(agent)
