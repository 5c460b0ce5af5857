import toad

toad.start_server(host="http://localhost", port=8001, block=False)

while True:
    for client in toad.opens():
        client.send("What is your favorite color?")
    for client, message in toad.messages():
        if message.contains("yellow"):
            client.send("Fine. Off you go.")
        elif message.contains("blue"):
            client.close()
