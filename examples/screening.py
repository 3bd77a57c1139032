"""Call screening: on a `ringing=True` number each inbound call rings first and your code
accepts or rejects it (the platform accepts it by itself after about 5 s).

Run: python examples/screening.py
Without PINECALL_API_KEY two simulated callers ring: a customer and a blocked number.
With the key it screens real calls on LINE (a number you own) until Ctrl-C.
"""

import voicesync
import voicesync.local

LINE = "+15550100001"
BLOCKED = {"+15550009999"}

agent = voicesync.Agent("front-desk", phone=LINE, ringing=True,
                        greeting="Front desk, how can I help?")


@agent.on("call.ringing")
def screen(ringing):
    # Runs on a voicesync handler thread; look the caller up, then decide.
    if ringing.from_ in BLOCKED:
        ringing.reject("rejected")
    else:
        ringing.accept()


@agent.on("turn.end")
def answer(turn, call):
    call.reply("Let me put you through to someone who can help.")


if __name__ == "__main__":
    with voicesync.local.Session() as session:
        if session.local:
            session.play(agent, ["Hi, I'd like to change my booking."], from_="+15550001234",
                         to=LINE)
            session.play(agent, ["Congratulations, you won a cruise!"], from_="+15550009999",
                         to=LINE)
        else:
            session.serve(agent)
