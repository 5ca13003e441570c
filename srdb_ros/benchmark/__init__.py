"""`srdb bench`: latency and throughput of every backend against the reference implementation."""
