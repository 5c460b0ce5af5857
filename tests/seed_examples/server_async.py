import toad


@toad.onopen
def onopen(client):
    client.send("What is your favorite color?")


@toad.onmessage
def onmessage(client, message):
    if message.contains("yellow"):
        client.send("Fine. Off you go.")
    elif message.contains("blue"):
        client.close()


toad.start_server(host="http://localhost", port=8001)
