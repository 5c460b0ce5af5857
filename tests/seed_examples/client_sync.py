import toad

toad.open("http://localhost:8001", block=False)

while toad.isopen():
    for message in toad.messages():
        if message == "What is your favorite color?":
            toad.send("blue")
            toad.send("no, yellow!")
print("Aaaaaah!")
