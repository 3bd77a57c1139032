"""A booking tool: the model decides to call `book_table`, voicesync runs it and streams
the model's answer that uses its result. Tools are plain functions with type hints and a
docstring; @voicesync.tool turns them into the schema the model sees.

Run: python examples/tools_agent.py
Keys: PINECALL_API_KEY (else one local simulated call), OPENAI_API_KEY (else a stand-in
model scripted below to call the tool).
"""

import itertools

import voicesync
import voicesync.local
from voicesync.llm import OpenAIAgent
from voicesync.sim.model import Reply, ToolCall

BOOKINGS: list[dict] = []
_numbers = itertools.count(1)


@voicesync.tool
def book_table(day: str, time: str, people: int) -> dict:
    """Book a table at the restaurant.

    Args:
        day: the day of the booking, e.g. "Friday".
        time: the time, 24-hour, e.g. "19:30".
        people: how many guests.
    """
    # Runs on the handler thread of the call; a real app would write to its database here.
    booking = {"reference": f"T{next(_numbers):03d}", "day": day, "time": time, "people": people}
    BOOKINGS.append(booking)
    return booking


class Host(OpenAIAgent):
    id = "trattoria"
    model = "gpt-4o-mini"
    instructions = "You take table bookings for Trattoria Roma. Be brief and confirm details."
    greeting = "Trattoria Roma, good evening! Would you like to book a table?"
    tools = [book_table]


if __name__ == "__main__":
    voicesync.local.run(Host(), caller=[
        "Yes, a table for four on Friday at half past seven, please.",
    ], stand_in=[
        Reply(tool_calls=(ToolCall("book_table", {"day": "Friday", "time": "19:30",
                                                  "people": 4}),)),
        "You are booked for four on Friday at half past seven. Your reference is T001.",
    ])
    print("bookings:", BOOKINGS)
