"""An outbound campaign: dial a short list concurrently, ask one question, collect answers.

Run: python examples/outbound_campaign.py
Without PINECALL_API_KEY the simulator answers: two scripted people pick up and the
second number is busy. With the key it dials the real numbers below (edit them, and
FROM, a number you own on the platform) and exits when every call is over.
"""

from concurrent.futures import ThreadPoolExecutor

import voicesync
import voicesync.local

FROM = "+15550100001"
NUMBERS = ["+15550100201", "+15550100202", "+15550100203"]
QUESTION = "Hi, this is Dr. Lee's office about your appointment tomorrow at ten. Can you make it?"

answers: dict[str, str] = {}  # call id -> what the person said


class Reminder(voicesync.Agent):
    id = "reminders"

    def on_turn(self, turn, call, history):
        answers[call.id] = turn.text
        call.say("Thank you, noted. Goodbye!").wait(timeout=30)  # blocks until spoken
        call.hangup()


def ring(agent, number):
    """Runs on a pool thread: dial() blocks until the call is answered or fails."""
    try:
        call = agent.dial(number, greeting=QUESTION, timeout=60)
    except voicesync.CallFailedError as exc:
        return number, f"not reached ({exc.reason})"
    call.wait_ended(timeout=120)
    return number, answers.get(call.id, "no answer given")


if __name__ == "__main__":
    with voicesync.local.Session() as session:
        agent = session.attach(Reminder(phone=FROM))
        # Local mode only (no-ops on the platform): who picks up, and what they say.
        session.pick_up(NUMBERS[0], ["Yes, I'll be there."])
        session.pick_up(NUMBERS[2], ["No, I need to move it to next week."])
        if session.sim is not None:
            session.sim.dial_script[NUMBERS[1]] = "busy"

        with ThreadPoolExecutor(max_workers=len(NUMBERS)) as pool:
            results = list(pool.map(lambda number: ring(agent, number), NUMBERS))

    print("\nresults:")
    for number, result in results:
        print(f"  {number}: {result}")
