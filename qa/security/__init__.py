"""``voipqa security``: attack the platform under test as an intruder would and judge
each defence (docs/security.md). The only scapy imports of voipqa live in this package
(DESIGN §9), inside the functions that craft raw packets.
"""
