"""Start rxcast's services as local processes on loopback (the demo, the tests)."""
