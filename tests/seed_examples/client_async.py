import toad


@toad.onmessage
def onmessage(message):
    if message == "What is your favorite color?":
        toad.send("blue")
        toad.send("no, yellow!")


@toad.onclose
def onclose():
    print("Aaaaaah!")


toad.open("http://localhost:8001")
