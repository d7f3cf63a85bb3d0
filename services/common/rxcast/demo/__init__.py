"""The closed loop, end to end: the suite on loopback, a simulated pharmacy
chain played day by day through it, drift injected on known days, and a report
comparing online and batch serving with the numbers measured in the run.

    python -m rxcast.demo [--plan default|short] [--out DIR]
"""
