import toad
import random


class Player:
    def __init__(self, client, team):
        self.client = client
        self.team = team


@toad.onopen
def onopen(client):
    team = random.choice(["red", "blue"])
    client.send(f"Welcome to team {team}")
    return Player(client, team)  # Return an object to replace the client object.


@toad.onmessage
def onmessage(player, message):  # Replaced object is passed to subsequent callbacks.
    print(f"Message from team {player.team}: {message}")


toad.start_server(host="http://localhost", port=8001)
