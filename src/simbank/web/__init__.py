"""``simbank-web``: the dashboard, a single page that speaks the MQTT contract.

A small aiohttp process serves the page's static files and relays the contract over a
WebSocket, logging in to the broker with the user's own credentials, so the broker's users
and ACL decide who sees and who acts. It never talks to a daemon except through the broker.
"""
