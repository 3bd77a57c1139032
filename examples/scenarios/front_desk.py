"""A keypad menu with a transfer and a goodbye: the agent the DTMF, transfer and hang-up
scenarios call. Run its scenarios: python -m voicesync test examples/scenarios
"""

import voicesync

MENU = "Press 1 for our opening hours, or 0 to speak to someone."
OPERATOR = "+15550100999"


class FrontDesk(voicesync.Agent):
    id = "acme-front-desk"
    greeting = "Welcome to Acme. " + MENU

    def __init__(self, **config):
        super().__init__(**config)
        self.on("call.dtmf_received", self.pressed)

    # Runs on a voicesync handler thread for each key the caller presses.
    def pressed(self, event, call):
        if event.digit == "1":
            call.say("We are open from nine to six, Monday to Saturday.")
        elif event.digit == "0":
            self.transfer(call)
        else:
            call.say("Sorry, that is not an option. " + MENU)

    def on_turn(self, turn, call, history):
        text = turn.text.lower()
        if "bye" in text:
            call.say("Thanks for calling Acme. Goodbye!").wait(timeout=30)
            call.hangup()
        elif "someone" in text or "operator" in text:
            self.transfer(call)
        else:
            call.reply(MENU)

    def transfer(self, call):
        call.say("Putting you through now.").wait(timeout=30)
        call.forward(OPERATOR)
